/**
 * The `mafalda` policy: the core's own decisions. A transport goes where
 * `decideTransportPlacement` says (concentrating on the busiest Worker under the
 * watermark, then a new Router, a new Worker, another Node, or a rejection); a consumer
 * where `decideConsumerPlacement` says (piping from the best carrier of the producer's
 * tree); idle pipes, Routers and Workers are closed by `decideScaleDown`.
 *
 * The request reaches the Node the room last used (its entry); a new room's first request
 * reaches the first Node with room in the simulator's tracker index (Nodes in order, so
 * rooms fill Nodes one after another). When the entry Node has no room the core delegates,
 * using the snapshot's own load indexes, and the simulator follows the delegation.
 */
import { HashMap } from "effect"
import { decideConsumerPlacement } from "../../core/consumerPlacement.js"
import type { NodeId, RouterId, SettingsKey } from "../../core/Ids.js"
import { lookup, type MediaKind } from "../../core/Snapshot.js"
import { decideScaleDown } from "../../core/scaleDown.js"
import { decideTransportPlacement, type TransportPlacement } from "../../core/transportPlacement.js"
import type { Engine, Participant, ProducerRef, Room, SimPolicy } from "../Engine.js"

const ROUTER_SETTINGS = "r" as SettingsKey

export const mafaldaPolicy = (engine: Engine): SimPolicy => {
  const options = engine.options

  const decideAt = (entry: NodeId, room: Room, wide: boolean): TransportPlacement => {
    const snapshot = wide ? engine.trackerView(room, entry) : engine.snapshot
    return engine.decide(() =>
      decideTransportPlacement(snapshot, options, { node: entry, mafaldaRouter: room.id })
    )
  }

  const place = (p: Participant, router: RouterId, node: NodeId): void => {
    const room = p.room
    p.transport = engine.createTransport(room, router)
    p.router = router
    room.entry = node
    room.nodes.add(node)
  }

  return {
    name: "mafalda",
    openRoom(room) {
      engine.openMafaldaRouter(room, ROUTER_SETTINGS)
    },
    join(p) {
      const room = p.room
      let entry = room.entry ?? engine.nodesWithRoom(1)[0] ?? engine.nodes[0]!.id
      let wide = !engine.stripIndexes
      for (let hops = 0; hops < 5; hops++) {
        const d = decideAt(entry, room, wide)
        switch (d._tag) {
          case "UseRouter":
            place(p, d.router, d.node)
            return true
          case "CreateRouter":
            place(p, engine.createRouter(d.worker, ROUTER_SETTINGS), d.node)
            return true
          case "CreateWorker": {
            const worker = engine.startWorker(d.node)
            place(p, engine.createRouter(worker, ROUTER_SETTINGS), d.node)
            return true
          }
          case "Delegate":
            entry = d.node
            break
          case "Reject":
            // Without the core's indexes, the first look was at the room's own Routers only.
            if (wide || d.reason !== "NoRoom") return false
            wide = true
            break
        }
      }
      return false
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
          for (const pipe of d.pipes) engine.pipe(pipe.producer, pipe.from, pipe.to)
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
      for (const a of actions) {
        const s = engine.snapshot
        switch (a._tag) {
          case "ClosePipe": {
            const hop = lookup(lookup(s.trees, a.producer) ?? HashMap.empty(), a.router)
            if (hop !== undefined && hop.parent !== null)
              engine.emit({ _tag: "PipeClosed", producer: a.producer, to: a.router, at: now })
            break
          }
          case "CloseRouter": {
            const r = lookup(s.routers, a.router)
            if (r !== undefined) {
              engine.emit({ _tag: "RouterClosed", router: a.router, at: now })
              const node = lookup(s.workers, r.worker)?.node
              if (node !== undefined) engine.touchNode(node)
            }
            break
          }
          case "CloseWorker": {
            const w = lookup(s.workers, a.worker)
            if (w !== undefined) {
              engine.emit({ _tag: "WorkerClosed", worker: a.worker, at: now })
              engine.touchNode(w.node)
            }
            break
          }
        }
      }
    }
  }
}
