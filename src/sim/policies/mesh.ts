/**
 * `mesh`, as EduMeet v3: a room fills its current Router until that Worker has
 * `meshPeersPerRouter` peers (transports), then spreads to the Worker with the fewest
 * peers; every producer of the room is piped from its origin to every Router the room
 * uses, as soon as either exists (a full mesh, depth 1). Load is never looked at.
 */
import { HashMap } from "effect"
import type { RouterId, WorkerId } from "../../core/Ids.js"
import { lookup } from "../../core/Snapshot.js"
import type { PolicyCluster } from "../Cluster.js"
import { bestSlot, consumeOnOwnRouter, roomRouterOn, roomSettings, slotStat } from "./common.js"
import type { SimPolicy } from "./Policy.js"

interface MeshRoom {
  readonly routers: Array<RouterId>
  readonly byWorker: Map<WorkerId, RouterId>
}

export const meshPolicy = (cluster: PolicyCluster, peersPerRouter: number): SimPolicy => {
  const peers = (worker: WorkerId | undefined): number =>
    worker === undefined ? 0 : (cluster.workerStat(worker)?.transports ?? 0)
  const live = (router: RouterId) => HashMap.has(cluster.snapshot.routers, router)
  return {
    name: "mesh",
    openRoom(room) {
      cluster.openMafaldaRouter(room, roomSettings(room))
      room.data = { routers: [], byWorker: new Map() } satisfies MeshRoom
    },
    join(p) {
      const room = p.room
      const data = room.data as MeshRoom
      let current: RouterId | undefined
      for (let i = data.routers.length - 1; i >= 0; i--) {
        if (live(data.routers[i]!)) {
          current = data.routers[i]
          break
        }
      }
      const currentWorker =
        current === undefined ? undefined : lookup(cluster.snapshot.routers, current)?.worker
      const currentNode =
        currentWorker === undefined ? undefined : lookup(cluster.snapshot.workers, currentWorker)?.node
      let router: RouterId
      if (
        current !== undefined &&
        currentNode !== undefined &&
        cluster.nodeUp(currentNode) &&
        peers(currentWorker) < peersPerRouter
      ) {
        router = current
      } else {
        const slot = bestSlot(cluster, (s) => slotStat(cluster, s)?.transports ?? 0)
        if (slot === undefined) return false
        const got = roomRouterOn(cluster, room, data.byWorker, cluster.slotWorker(slot))
        router = got.router
        if (got.created) {
          for (let i = 0; i < data.routers.length; i++)
            if (!live(data.routers[i]!)) data.routers.splice(i--, 1)
          data.routers.push(router)
          // Full mesh: every producer of the room reaches the new Router.
          for (const producer of room.producers) {
            const prod = lookup(cluster.snapshot.producers, producer.id)
            if (prod !== undefined && !cluster.carries(router, producer.id))
              cluster.pipe(producer.id, prod.origin, router)
          }
        }
      }
      p.transport = cluster.createTransport(room, router)
      p.router = router
      return true
    },
    produce(p, kind) {
      const producer = cluster.createProducer(p, kind)
      if (producer === undefined || p.router === null) return producer
      for (const r of (p.room.data as MeshRoom).routers) {
        if (r !== p.router && live(r) && !cluster.carries(r, producer.id))
          cluster.pipe(producer.id, p.router, r)
      }
      return producer
    },
    consume: (p, producer) => consumeOnOwnRouter(cluster, p, producer),
    connected: (p) => cluster.hasTransport(p.transport),
    closeRoom: (room) => cluster.closeMafaldaRouter(room, true),
    tick: () => {}
  }
}
