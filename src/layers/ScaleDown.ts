/**
 * `ScaleDown` on this Node: the core's `decideScaleDown`, each action re-checked with
 * `isScaleDownDue` under `ClusterLocks` and recorded (out of the snapshot first, so that
 * nothing is placed there while it closes) before it is closed; on an interval.
 *
 * Where it is closed depends on where it is (cluster mode, `Delegation`):
 * - on this Node (a pipe with both ends here too): `WorkerService` closes it;
 * - a Router this Node's Mafalda Routers made on another Node (`Delegate`), or a pipe with
 *   an end on another Node: `Delegation` closes it there over RPC (a pipe by its
 *   destination's Node, which holds the pipes of the handshake, this Node's own included);
 * - a Worker of another Node: not decided here. The snapshot knows another Node's Workers
 *   from the registry, which tells their load but not who uses them: other apps' Routers may
 *   be on a Worker with none of ours. That Node owns its Workers and scales them down
 *   itself; recording its Worker closed here would only make the next sync start it again.
 *
 * Embedded (no `Delegation`), every object is on this Node: `WorkerService` closes it all.
 *
 * @module
 */
import { Duration, Effect, Layer, Option, Schedule } from "effect"
import type { NodeId, RouterId } from "../core/Ids.js"
import { scaleDownEvent, settingsOfAction } from "../core/interpret.js"
import type { PolicyOptions } from "../core/PolicyOptions.js"
import { type ClusterSnapshot, lookup, workerOfRouter } from "../core/Snapshot.js"
import { decideScaleDown, isScaleDownDue, type ScaleDownAction } from "../core/scaleDown.js"
import * as Observe from "../ops/observe.js"
import { ClusterLocks } from "../services/ClusterLocks.js"
import { ClusterNotice, ClusterNotices } from "../services/ClusterNotices.js"
import { delegationOrEmbedded } from "../services/Delegation.js"
import { ScaleDown, type ScaleDownShape } from "../services/ScaleDown.js"
import { ScaleDownHolds } from "../services/ScaleDownHolds.js"
import { SnapshotStore } from "../services/SnapshotStore.js"
import { WorkerService } from "../services/WorkerService.js"

export interface ScaleDownOptions {
  readonly policy: PolicyOptions
  /** How often idle things are looked for (default: a quarter of the grace period, 250 ms to 10 s). */
  readonly interval?: Duration.DurationInput | undefined
}

const make = (options: ScaleDownOptions) =>
  Effect.gen(function* () {
    const workers = yield* WorkerService
    const store = yield* SnapshotStore
    const locks = yield* ClusterLocks
    const notices = yield* ClusterNotices
    // What the shell uses beyond the snapshot (an RTP observer's pipe, a consume under way).
    const holds = Option.getOrUndefined(yield* Effect.serviceOption(ScaleDownHolds))
    const delegation = yield* delegationOrEmbedded
    const policy = options.policy
    const self = workers.node

    /** The Node a Router of the snapshot is on (this one when the snapshot does not say). */
    const nodeOfRouter = (snapshot: ClusterSnapshot, router: RouterId): NodeId =>
      workerOfRouter(snapshot, router)?.node ?? self

    /**
     * Where an action is carried out, read on the snapshot before it is recorded (the record
     * takes the object out of it): `undefined` for this Node's `WorkerService`, else the
     * Node whose API closes it.
     */
    const remoteNodeOf = (snapshot: ClusterSnapshot, action: ScaleDownAction): NodeId | undefined => {
      switch (action._tag) {
        case "CloseWorker": {
          const node = lookup(snapshot.workers, action.worker)?.node ?? self
          return node === self ? undefined : node
        }
        case "CloseRouter": {
          const node = nodeOfRouter(snapshot, action.router)
          return node === self ? undefined : node
        }
        case "ClosePipe": {
          const to = nodeOfRouter(snapshot, action.router)
          const tree = lookup(snapshot.trees, action.producer)
          const parent = tree === undefined ? undefined : lookup(tree, action.router)?.parent
          const from = parent === undefined || parent === null ? self : nodeOfRouter(snapshot, parent)
          // The destination's Node holds a pipe with an end elsewhere (this Node's NodeHost too).
          return to === self && from === self ? undefined : to
        }
      }
    }

    const close = (action: ScaleDownAction, node: NodeId | undefined): Effect.Effect<void> => {
      switch (action._tag) {
        case "ClosePipe":
          return node === undefined
            ? workers.closePipe(action.producer, action.router)
            : delegation.closePipe(action.producer, { node, router: action.router })
        case "CloseRouter":
          return node === undefined
            ? workers.closeRouter(action.router)
            : delegation.closeRouter(node, action.router)
        case "CloseWorker":
          // Never another Node's (filtered out in `run`).
          return workers.closeWorker(action.worker)
      }
    }

    const run: ScaleDownShape["run"] = Effect.gen(function* () {
      const at = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
      const done: Array<ScaleDownAction> = []
      const nodes = new Map<ScaleDownAction, NodeId>()
      for (const action of decideScaleDown(store.current(), policy, at)) {
        // Another Node's Workers are that Node's to scale down (see the module's comment).
        if (action._tag === "CloseWorker" && remoteNodeOf(store.current(), action) !== undefined) continue
        const carry = Effect.gen(function* () {
          // Checked and recorded in one synchronous step, so nothing starts using it in between.
          const due = yield* Effect.sync(() => {
            const snapshot = store.current()
            if (!isScaleDownDue(snapshot, policy, action, at) || holds?.isHeld(action) === true) {
              return undefined
            }
            const node = remoteNodeOf(snapshot, action)
            store.recordNow(scaleDownEvent(action, at))
            return { node }
          })
          if (due === undefined) return
          yield* close(action, due.node)
          if (due.node !== undefined) nodes.set(action, due.node)
          done.push(action)
        })
        if (action._tag === "ClosePipe") {
          yield* locks.pipes(action.producer)(carry)
          continue
        }
        const settings = settingsOfAction(store.current(), action)
        if (settings !== undefined) yield* locks.placement(settings)(carry)
      }
      yield* Observe.scaledDown(done, (action) => nodes.get(action))
      if (done.length > 0) yield* notices.publish(ClusterNotice.ScaledDown({ actions: done }))
      return done
    })

    const grace = policy.idleGraceMillis
    const interval =
      options.interval === undefined
        ? Duration.millis(Math.min(10_000, Math.max(250, grace / 4)))
        : Duration.decode(options.interval)
    yield* run.pipe(Effect.repeat(Schedule.spaced(interval)), Effect.interruptible, Effect.forkScoped)
    return { run }
  })

/** Scale-down on an interval (and on demand with `run`). */
export const layer = (
  options: ScaleDownOptions
): Layer.Layer<ScaleDown, never, WorkerService | SnapshotStore | ClusterLocks | ClusterNotices> =>
  Layer.scoped(ScaleDown, make(options))
