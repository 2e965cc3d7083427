/**
 * `least-loaded`, as BigBlueButton's SFU: a publisher's transport goes to the Worker with
 * the lowest weighted count (10 × transports + 5 × producers + 2 × consumers, pipe
 * consumers included), across every CPU of every Node; subscribers are pinned to their
 * producer's Router: they get a receive transport there. Load (CPU) is never looked at and
 * nothing is rejected.
 */
import type { RouterId, WorkerId } from "../../core/Ids.js"
import { lookup } from "../../core/Snapshot.js"
import type { PolicyCluster, Slot } from "../Cluster.js"
import { bestSlot, roomRouterOn, roomSettings, slotStat } from "./common.js"
import type { SimPolicy } from "./Policy.js"

export const leastLoadedPolicy = (cluster: PolicyCluster): SimPolicy => {
  const routersOf = (data: unknown): Map<WorkerId, RouterId> => data as Map<WorkerId, RouterId>
  const score = (slot: Slot): number => {
    const st = slotStat(cluster, slot)
    return st === undefined ? 0 : 10 * st.transports + 5 * st.producers + 2 * (st.consumers + st.pipesOut)
  }
  return {
    name: "least-loaded",
    openRoom(room) {
      cluster.openMafaldaRouter(room, roomSettings(room))
      room.data = new Map<WorkerId, RouterId>()
    },
    join(p) {
      p.extra = new Map()
      if (!p.publisher) return true
      const slot = bestSlot(cluster, score)
      if (slot === undefined) return false
      const { router } = roomRouterOn(cluster, p.room, routersOf(p.room.data), cluster.slotWorker(slot))
      p.transport = cluster.createTransport(p.room, router)
      p.router = router
      return true
    },
    produce: (p, kind) => cluster.createProducer(p, kind),
    consume(p, producer) {
      const prod = lookup(cluster.snapshot.producers, producer.id)
      if (prod === undefined) return false
      const origin = prod.origin
      if (p.router === origin && p.transport !== null) {
        cluster.createConsumer(p, p.transport, origin, producer)
        return true
      }
      const extra = p.extra ?? new Map()
      p.extra = extra
      let t = extra.get(origin)
      if (t === undefined || !cluster.hasTransport(t)) {
        t = cluster.createTransport(p.room, origin)
        extra.set(origin, t)
      }
      cluster.createConsumer(p, t, origin, producer)
      return true
    },
    connected: (p) => (p.publisher ? cluster.hasTransport(p.transport) : true),
    closeRoom: (room) => cluster.closeMafaldaRouter(room, true),
    tick: () => {}
  }
}
