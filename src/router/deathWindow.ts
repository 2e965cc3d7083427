/**
 * Placements in a Worker's death window. Between a Worker process's death and the moment
 * the snapshot records it (mediasoup's `died`, then `WorkerDied` from the local Node's
 * watcher: some 20 ms), the core still counts the Worker: a placement may choose it (and
 * mediasoup then fails with `Channel closed`), or find no room because it still counts it.
 * Such a placement waits until the death is recorded and is decided again (at most a few
 * times), so it lands on a live Worker or on the replacement the core then starts.
 *
 * @module
 */
import { Duration, Effect, Either, HashMap } from "effect"
import { types } from "mediasoup"
import type { RouterId, WorkerId } from "../core/Ids.js"
import { lookup } from "../core/Snapshot.js"
import type { MafaldaContext } from "./MafaldaContext.js"

/** How long a placement waits for a death to be recorded, at most. */
const DEATH_RECORD_TIMEOUT = Duration.seconds(3)
/** How many times a placement is decided again after a death. */
const RETRIES = 3

/** Whether a failure says that the Worker behind a Router is gone (its channel closed). */
const saysWorkerGone = (error: unknown): boolean => {
  const cause = (error as { readonly cause?: unknown } | undefined)?.cause
  return cause instanceof types.InvalidStateError
}

/**
 * The Workers the snapshot still has alive on this Node whose process is gone or going:
 * mediasoup says so, `LocalMediasoup` forgot them, or (`suspect`) a call to them failed
 * because their channel closed.
 */
const dyingWorkers = (ctx: MafaldaContext, suspect: WorkerId | undefined): ReadonlyArray<WorkerId> => {
  const out: Array<WorkerId> = []
  for (const w of HashMap.values(ctx.store.current().workers)) {
    if (!w.alive || w.node !== ctx.node) continue
    const worker = ctx.local.worker(w.id)
    if (worker === undefined || worker.died || worker.closed || w.id === suspect) out.push(w.id)
  }
  return out
}

/** Waits until none of `workers` is alive in the snapshot any more (or the timeout). */
const awaitRecorded = (ctx: MafaldaContext, workers: ReadonlyArray<WorkerId>): Effect.Effect<void> => {
  const pending = () => workers.some((id) => lookup(ctx.store.current().workers, id)?.alive === true)
  const poll: Effect.Effect<void> = Effect.suspend(() =>
    pending() ? Effect.zipRight(Effect.sleep(Duration.millis(5)), poll) : Effect.void
  )
  return poll.pipe(Effect.timeout(DEATH_RECORD_TIMEOUT), Effect.ignore)
}

/**
 * Runs a placement (`attempt`, told each Router it uses through `used`); when it fails while
 * a Worker is dying, waits for the death to be recorded and runs it again.
 */
export const retryInDeathWindow = <A, E>(
  ctx: MafaldaContext,
  attempt: (used: (router: RouterId) => void) => Effect.Effect<A, E>
): Effect.Effect<A, E> => {
  const loop = (left: number): Effect.Effect<A, E> => {
    let router: RouterId | undefined
    return Effect.either(
      attempt((r) => {
        router = r
      })
    ).pipe(
      Effect.flatMap((result) => {
        if (Either.isRight(result)) return Effect.succeed(result.right)
        if (left <= 0) return Effect.fail(result.left)
        const gone = router !== undefined && saysWorkerGone(result.left)
        const routerWorker =
          router === undefined ? undefined : lookup(ctx.store.current().routers, router)?.worker
        const dying = dyingWorkers(ctx, gone ? routerWorker : undefined)
        // Its Worker's death was recorded meanwhile: decide again at once.
        if (gone && routerWorker === undefined) return loop(left - 1)
        if (dying.length === 0) return Effect.fail(result.left)
        return Effect.zipRight(awaitRecorded(ctx, dying), loop(left - 1))
      })
    )
  }
  return loop(RETRIES)
}
