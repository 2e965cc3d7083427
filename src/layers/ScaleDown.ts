/**
 * `ScaleDown` on this Node: the core's `decideScaleDown`, each action re-checked with
 * `isScaleDownDue` under `ClusterLocks` and recorded (out of the snapshot first, so that
 * nothing is placed there while it closes) before `WorkerService` closes it; on an interval.
 *
 * @module
 */
import { Duration, Effect, Layer, Option, Schedule } from "effect"
import { scaleDownEvent, settingsOfAction } from "../core/interpret.js"
import type { PolicyOptions } from "../core/PolicyOptions.js"
import { decideScaleDown, isScaleDownDue, type ScaleDownAction } from "../core/scaleDown.js"
import * as Observe from "../ops/observe.js"
import { ClusterLocks } from "../services/ClusterLocks.js"
import { ClusterNotice, ClusterNotices } from "../services/ClusterNotices.js"
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
    const policy = options.policy

    const close = (action: ScaleDownAction): Effect.Effect<void> => {
      switch (action._tag) {
        case "ClosePipe":
          return workers.closePipe(action.producer, action.router)
        case "CloseRouter":
          return workers.closeRouter(action.router)
        case "CloseWorker":
          return workers.closeWorker(action.worker)
      }
    }

    const run: ScaleDownShape["run"] = Effect.gen(function* () {
      const at = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
      const done: Array<ScaleDownAction> = []
      for (const action of decideScaleDown(store.current(), policy, at)) {
        const carry = Effect.gen(function* () {
          // Checked and recorded in one synchronous step, so nothing starts using it in between.
          const due = yield* Effect.sync(() => {
            if (!isScaleDownDue(store.current(), policy, action, at) || holds?.isHeld(action) === true) {
              return false
            }
            store.recordNow(scaleDownEvent(action, at))
            return true
          })
          if (!due) return
          yield* close(action)
          done.push(action)
        })
        if (action._tag === "ClosePipe") {
          yield* locks.pipes(action.producer)(carry)
          continue
        }
        const settings = settingsOfAction(store.current(), action)
        if (settings !== undefined) yield* locks.placement(settings)(carry)
      }
      yield* Observe.scaledDown(done)
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
