/**
 * `least-loaded`, as BigBlueButton's SFU: a publisher's transport goes to the Worker with
 * the lowest weighted count (10 × transports + 5 × producers + 2 × consumers, pipe
 * consumers included), across every CPU of every Node; subscribers are pinned to their
 * producer's Router: they get a receive transport there. Load (CPU) is never looked at and
 * nothing is rejected.
 */
import type { RouterId, WorkerId } from "../../core/Ids.js"
import { lookup } from "../../core/Snapshot.js"
import type { Engine, SimPolicy } from "../Engine.js"
import { bestSlot, roomRouterOn, roomSettings, slotLiveWorker } from "./common.js"

export const leastLoadedPolicy = (engine: Engine): SimPolicy => {
  const routersOf = (data: unknown): Map<WorkerId, RouterId> => data as Map<WorkerId, RouterId>
  const score = (worker: WorkerId | undefined): number => {
    if (worker === undefined) return 0
    const st = engine.workerStat(worker)
    return st === undefined ? 0 : 10 * st.transports + 5 * st.producers + 2 * (st.consumers + st.pipesOut)
  }
  return {
    name: "least-loaded",
    openRoom(room) {
      engine.openMafaldaRouter(room, roomSettings(room))
      room.data = new Map<WorkerId, RouterId>()
    },
    join(p) {
      p.extra = new Map()
      if (!p.publisher) return true
      const slot = bestSlot(engine, (s) => score(slotLiveWorker(engine, s)))
      if (slot === undefined) return false
      const { router } = roomRouterOn(engine, p.room, routersOf(p.room.data), engine.slotWorker(slot))
      p.transport = engine.createTransport(p.room, router)
      p.router = router
      return true
    },
    produce: (p, kind) => engine.createProducer(p, kind),
    consume(p, producer) {
      const prod = lookup(engine.snapshot.producers, producer.id)
      if (prod === undefined) return false
      const origin = prod.origin
      if (p.router === origin && p.transport !== null) {
        engine.createConsumer(p, p.transport, origin, producer)
        return true
      }
      const extra = p.extra ?? new Map()
      p.extra = extra
      let t = extra.get(origin)
      if (t === undefined || !engine.hasTransport(t)) {
        t = engine.createTransport(p.room, origin)
        extra.set(origin, t)
      }
      engine.createConsumer(p, t, origin, producer)
      return true
    },
    connected: (p) => (p.publisher ? engine.hasTransport(p.transport) : true),
    closeRoom: (room) => engine.closeMafaldaRouter(room, true),
    tick: () => {}
  }
}
