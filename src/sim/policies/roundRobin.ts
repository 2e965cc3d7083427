/**
 * `round-robin`, as mediasoup's demo: each new room gets a Router on the next Worker in
 * turn (one Worker per CPU, across the Nodes in order), and the whole room stays on it.
 * No load is looked at and nothing is ever rejected.
 */
import { HashMap } from "effect"
import type { RouterId } from "../../core/Ids.js"
import type { PolicyCluster, Slot } from "../Cluster.js"
import { consumeOnOwnRouter, roomSettings } from "./common.js"
import type { SimPolicy } from "./Policy.js"

interface RoundRobinRoom {
  router: RouterId
  slot: number
}

export const roundRobinPolicy = (cluster: PolicyCluster): SimPolicy => {
  let cursor = 0
  const nextSlot = (): Slot | undefined => {
    const n = cluster.slots.length
    for (let i = 0; i < n; i++) {
      const slot = cluster.slots[cursor++ % n]!
      if (cluster.nodeUp(slot.node)) return slot
    }
    return undefined
  }
  return {
    name: "round-robin",
    openRoom(room) {
      cluster.openMafaldaRouter(room, roomSettings(room))
    },
    join(p) {
      const room = p.room
      let data = room.data as RoundRobinRoom | undefined
      if (data === undefined || !HashMap.has(cluster.snapshot.routers, data.router)) {
        const slot = nextSlot()
        if (slot === undefined) return false
        const router = cluster.createRouter(cluster.slotWorker(slot), roomSettings(room))
        cluster.register(room, router)
        data = { router, slot: slot.index }
        room.data = data
      }
      p.transport = cluster.createTransport(room, data.router)
      p.router = data.router
      return true
    },
    produce: (p, kind) => cluster.createProducer(p, kind),
    consume: (p, producer) => consumeOnOwnRouter(cluster, p, producer),
    connected: (p) => cluster.hasTransport(p.transport),
    closeRoom: (room) => cluster.closeMafaldaRouter(room, true),
    tick: () => {}
  }
}
