/**
 * The `mafalda` policy: the core's own decisions, carried out by the core's interpreter
 * exactly as the production shell carries them out. A transport goes where
 * `planTransportPlacement` says (the busiest Worker under the watermark, a new Router, a
 * new Worker, or another Node: delegation followed on the cluster snapshot, the Tracker's
 * view; or a rejection); a consumer where `decideConsumerPlacement` says (piping from the
 * best carrier of the producer's tree); idle pipes, Routers and Workers are closed by
 * `decideScaleDown`, each action re-checked with `isScaleDownDue` as the shell does.
 *
 * The request reaches the Node the room last used (its entry); a new room's first request
 * reaches the first Node with room in the simulator's tracker index (Nodes in order, so
 * rooms fill Nodes one after another).
 */
import { Either } from "effect"
import { decideConsumerPlacement } from "../../core/consumerPlacement.js"
import type { SettingsKey } from "../../core/Ids.js"
import { planTransportPlacement, scaleDownEvent } from "../../core/interpret.js"
import { lookup, type MediaKind } from "../../core/Snapshot.js"
import { decideScaleDown, isScaleDownDue } from "../../core/scaleDown.js"
import type { Engine, ProducerRef, SimPolicy } from "../Engine.js"

const ROUTER_SETTINGS = "r" as SettingsKey

export const mafaldaPolicy = (engine: Engine): SimPolicy => {
  const options = engine.options
  return {
    name: "mafalda",
    openRoom(room) {
      engine.openMafaldaRouter(room, ROUTER_SETTINGS)
    },
    join(p) {
      const room = p.room
      const entry = room.entry ?? engine.nodesWithRoom(1)[0] ?? engine.nodes[0]!.id
      const snapshot = engine.snapshot
      const plan = engine.decide(() =>
        planTransportPlacement(snapshot, options, { node: entry, mafaldaRouter: room.id })
      )
      if (Either.isLeft(plan)) return false
      const router = engine.carryOut(plan.right)
      p.transport = engine.createTransport(room, router)
      p.router = router
      room.entry = plan.right.node
      room.nodes.add(plan.right.node)
      return true
    },
    produce(p, kind: MediaKind) {
      return engine.createProducer(p, kind)
    },
    consume(p, producer: ProducerRef) {
      if (p.transport === null || p.router === null) return false
      const router = p.router
      const snapshot = engine.snapshot
      const d = engine.decide(() =>
        decideConsumerPlacement(snapshot, options, { producer: producer.id, router })
      )
      switch (d._tag) {
        case "ConsumeHere":
          engine.createConsumer(p, p.transport, router, producer)
          return true
        case "PipeThenConsume":
          engine.pipes(d.pipes)
          engine.createConsumer(p, p.transport, router, producer)
          return true
        case "Reject":
          return false
      }
    },
    connected(p) {
      return engine.hasTransport(p.transport)
    },
    closeRoom(room) {
      engine.closeMafaldaRouter(room, false)
    },
    tick(now) {
      const snapshot = engine.snapshot
      const actions = engine.decide(() => decideScaleDown(snapshot, options, now))
      for (const action of actions) {
        const s = engine.snapshot
        if (!isScaleDownDue(s, options, action, now)) continue
        const worker =
          action._tag === "CloseWorker" ? action.worker : lookup(s.routers, action.router)?.worker
        const node = worker === undefined ? undefined : lookup(s.workers, worker)?.node
        engine.emit(scaleDownEvent(action, now))
        if (action._tag !== "ClosePipe" && node !== undefined) engine.touchNode(node)
      }
    }
  }
}
