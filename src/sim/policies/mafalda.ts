/**
 * The `mafalda` policy: the core's own decisions, carried out by the core's interpreter
 * exactly as the production shell carries them out. A transport goes where
 * `planTransportPlacement` says (the busiest Worker under the watermark, a new Router, a
 * new Worker, or another Node: delegation followed on the cluster snapshot, the Tracker's
 * view; or a rejection); a consumer where `decideConsumerPlacement` says (piping from the
 * best carrier of the producer's tree); idle pipes, Routers and Workers are closed by
 * `decideScaleDown`, each action re-checked with `isScaleDownDue` as the shell does.
 *
 * A room whose scenario group says `hint: "size"` is opened with its size and publishers as
 * the Mafalda Router's hint (`MafaldaRouterCreated.hint`), as an app that knows its rooms'
 * capacity would give them.
 *
 * Each request of a room is decided on the room's home Node (its entry), as production
 * decides each request of a Mafalda Router on the Node it lives on, delegating to another
 * Node when the home has no room; a room's home is the first Node with room in the
 * simulator's tracker index when it opens (Nodes in order, so rooms fill Nodes one after
 * another), or when its home failed.
 */
import { Either } from "effect"
import { decideConsumerPlacement } from "../../core/consumerPlacement.js"
import type { SettingsKey } from "../../core/Ids.js"
import { planTransportPlacement, scaleDownEvent } from "../../core/interpret.js"
import { decideRelocations } from "../../core/relocation.js"
import { lookup, type MediaKind } from "../../core/Snapshot.js"
import { decideScaleDown, isScaleDownDue } from "../../core/scaleDown.js"
import { type PolicyCluster, WORKER_SETTINGS } from "../Cluster.js"
import type { ProducerRef } from "../Rooms.js"
import type { SimPolicy } from "./Policy.js"

const ROUTER_SETTINGS = "r" as SettingsKey

export const mafaldaPolicy = (cluster: PolicyCluster): SimPolicy => {
  const options = cluster.options
  return {
    name: "mafalda",
    openRoom(room) {
      if (room.group.spec.hint === "none") {
        cluster.openMafaldaRouter(room, ROUTER_SETTINGS)
        return
      }
      // The app's hint: the room's size and its publishers. The room opens now: at the time of the latest event (the workload's clock is not shown
      // to policies, and a join's events follow at once).
      cluster.emit({
        _tag: "MafaldaRouterCreated",
        mafaldaRouter: room.id,
        workerSettings: WORKER_SETTINGS,
        routerSettings: ROUTER_SETTINGS,
        hint: { participants: room.size, publishers: room.publishersWanted },
        at: cluster.snapshot.now
      })
    },
    join(p) {
      const room = p.room
      // The room's home: the Node its Mafalda Router lives on, which decides each of the
      // room's requests (as production's Placement decides on its own Node), delegating when
      // it has no room. A room opens on the first Node with room; a room whose home failed
      // gets a new one.
      if (room.entry === null || !cluster.nodeUp(room.entry)) {
        room.entry = cluster.nodesWithRoom(1)[0] ?? cluster.nodes[0]!.id
      }
      const entry = room.entry
      const snapshot = cluster.snapshot
      const plan = cluster.decide(() =>
        planTransportPlacement(snapshot, options, { node: entry, mafaldaRouter: room.id })
      )
      if (Either.isLeft(plan)) return false
      const router = cluster.carryOut(plan.right)
      p.transport = cluster.createTransport(room, router)
      p.router = router
      room.nodes.add(plan.right.node)
      return true
    },
    produce(p, kind: MediaKind) {
      return cluster.createProducer(p, kind)
    },
    consume(p, producer: ProducerRef) {
      if (p.transport === null || p.router === null) return false
      const router = p.router
      const snapshot = cluster.snapshot
      const d = cluster.decide(() =>
        decideConsumerPlacement(snapshot, options, { producer: producer.id, router })
      )
      switch (d._tag) {
        case "ConsumeHere":
          cluster.createConsumer(p, p.transport, router, producer)
          return true
        case "PipeThenConsume":
          cluster.pipes(d.pipes)
          cluster.createConsumer(p, p.transport, router, producer)
          return true
        case "Reject":
          return false
      }
    },
    connected(p) {
      return cluster.hasTransport(p.transport)
    },
    relocate: () => cluster.decide(() => decideRelocations(cluster.snapshot, options)),
    closeRoom(room) {
      cluster.closeMafaldaRouter(room, false)
    },
    tick(now) {
      const snapshot = cluster.snapshot
      const actions = cluster.decide(() => decideScaleDown(snapshot, options, now))
      for (const action of actions) {
        const s = cluster.snapshot
        if (!isScaleDownDue(s, options, action, now)) continue
        const worker =
          action._tag === "CloseWorker" ? action.worker : lookup(s.routers, action.router)?.worker
        const node = worker === undefined ? undefined : lookup(s.workers, worker)?.node
        cluster.emit(scaleDownEvent(action, now))
        if (action._tag !== "ClosePipe" && node !== undefined) cluster.touchNode(node)
      }
    }
  }
}
