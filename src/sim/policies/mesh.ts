/**
 * `mesh`, as EduMeet v3: a room fills its current Router until that Worker has
 * `meshPeersPerRouter` peers (transports), then spreads to the Worker with the fewest
 * peers; every producer of the room is piped from its origin to every Router the room
 * uses, as soon as either exists (a full mesh, depth 1). Load is never looked at.
 */
import { HashMap } from "effect"
import type { RouterId, WorkerId } from "../../core/Ids.js"
import { lookup } from "../../core/Snapshot.js"
import type { Engine, SimPolicy } from "../Engine.js"
import { bestSlot, consumeOnOwnRouter, roomRouterOn, roomSettings, slotLiveWorker } from "./common.js"

interface MeshRoom {
  readonly routers: Array<RouterId>
  readonly byWorker: Map<WorkerId, RouterId>
}

export const meshPolicy = (engine: Engine): SimPolicy => {
  const limit = engine.scenario.meshPeersPerRouter
  const peers = (worker: WorkerId | undefined): number =>
    worker === undefined ? 0 : (engine.workerStat(worker)?.transports ?? 0)
  const live = (router: RouterId) => HashMap.has(engine.snapshot.routers, router)
  return {
    name: "mesh",
    openRoom(room) {
      engine.openMafaldaRouter(room, roomSettings(room))
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
        current === undefined ? undefined : lookup(engine.snapshot.routers, current)?.worker
      const currentNode =
        currentWorker === undefined ? undefined : lookup(engine.snapshot.workers, currentWorker)?.node
      let router: RouterId
      if (
        current !== undefined &&
        currentNode !== undefined &&
        engine.nodeUp(currentNode) &&
        peers(currentWorker) < limit
      ) {
        router = current
      } else {
        const slot = bestSlot(engine, (s) => peers(slotLiveWorker(engine, s)))
        if (slot === undefined) return false
        const got = roomRouterOn(engine, room, data.byWorker, engine.slotWorker(slot))
        router = got.router
        if (got.created) {
          for (let i = 0; i < data.routers.length; i++)
            if (!live(data.routers[i]!)) data.routers.splice(i--, 1)
          data.routers.push(router)
          // Full mesh: every producer of the room reaches the new Router.
          for (const producer of room.producers) {
            const prod = lookup(engine.snapshot.producers, producer.id)
            if (prod !== undefined && !engine.carries(router, producer.id))
              engine.pipe(producer.id, prod.origin, router)
          }
        }
      }
      p.transport = engine.createTransport(room, router)
      p.router = router
      return true
    },
    produce(p, kind) {
      const producer = engine.createProducer(p, kind)
      if (producer === undefined || p.router === null) return producer
      for (const r of (p.room.data as MeshRoom).routers) {
        if (r !== p.router && live(r) && !engine.carries(r, producer.id))
          engine.pipe(producer.id, p.router, r)
      }
      return producer
    },
    consume: (p, producer) => consumeOnOwnRouter(engine, p, producer),
    connected: (p) => engine.hasTransport(p.transport),
    closeRoom: (room) => engine.closeMafaldaRouter(room, true),
    tick: () => {}
  }
}
