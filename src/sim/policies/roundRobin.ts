/**
 * `round-robin`, as mediasoup's demo: each new room gets a Router on the next Worker in
 * turn (one Worker per CPU, across the Nodes in order), and the whole room stays on it.
 * No load is looked at and nothing is ever rejected.
 */
import { HashMap } from "effect"
import type { RouterId } from "../../core/Ids.js"
import type { Engine, SimPolicy, Slot } from "../Engine.js"
import { consumeOnOwnRouter, roomSettings } from "./common.js"

interface RoundRobinRoom {
  router: RouterId
  slot: number
}

export const roundRobinPolicy = (engine: Engine): SimPolicy => {
  let cursor = 0
  const nextSlot = (): Slot | undefined => {
    const n = engine.slots.length
    for (let i = 0; i < n; i++) {
      const slot = engine.slots[cursor++ % n]!
      if (engine.nodeUp(slot.node)) return slot
    }
    return undefined
  }
  return {
    name: "round-robin",
    openRoom(room) {
      engine.openMafaldaRouter(room, roomSettings(room))
    },
    join(p) {
      const room = p.room
      let data = room.data as RoundRobinRoom | undefined
      if (data === undefined || !HashMap.has(engine.snapshot.routers, data.router)) {
        const slot = nextSlot()
        if (slot === undefined) return false
        const router = engine.createRouter(engine.slotWorker(slot), roomSettings(room))
        engine.register(room, router)
        data = { router, slot: slot.index }
        room.data = data
      }
      p.transport = engine.createTransport(room, data.router)
      p.router = data.router
      return true
    },
    produce: (p, kind) => engine.createProducer(p, kind),
    consume: (p, producer) => consumeOnOwnRouter(engine, p, producer),
    connected: (p) => engine.hasTransport(p.transport),
    closeRoom: (room) => engine.closeMafaldaRouter(room, true),
    tick: () => {}
  }
}
