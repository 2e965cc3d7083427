/**
 * mediasoup Workers as scoped resources, and small helpers around mediasoup calls.
 *
 * @module
 */

import type { Scope } from "effect"
import { Data, Duration, Effect } from "effect"
import type { types } from "mediasoup"
import { createWorker } from "mediasoup"

/** A mediasoup call (creating a Worker, Router, Transport, Producer, ...) rejected. */
export class MediasoupError extends Data.TaggedError("MediasoupError")<{
  /** What was being done, e.g. `"createWorker"` or `"routerA.pipeToRouter"`. */
  readonly operation: string
  readonly cause: unknown
}> {
  override get message(): string {
    const cause = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `mediasoup ${this.operation} failed: ${cause}`
  }
}

/** Runs a mediasoup call that returns a promise, with its rejection as a {@link MediasoupError}. */
export const tryMediasoup = <A>(
  operation: string,
  call: () => Promise<A>
): Effect.Effect<A, MediasoupError> =>
  Effect.tryPromise({ try: call, catch: (cause) => new MediasoupError({ operation, cause }) })

/** Options of {@link acquireWorker}. */
export interface AcquireWorkerOptions extends types.WorkerSettings {
  /**
   * How long the release waits for the worker process to exit after `close()` (which sends
   * SIGTERM) before sending SIGKILL; default 5 seconds.
   */
  readonly closeTimeout?: Duration.DurationInput | undefined
}

/**
 * Starts a mediasoup Worker (a `mediasoup-worker` child process) whose release closes it
 * and waits until the child process has exited, so that no process outlives the scope.
 */
export const acquireWorker = (
  options: AcquireWorkerOptions = {}
): Effect.Effect<types.Worker, MediasoupError, Scope.Scope> => {
  const { closeTimeout, ...settings } = options
  return Effect.acquireRelease(
    tryMediasoup("createWorker", () => createWorker(settings)),
    (worker) => closeWorker(worker, closeTimeout)
  )
}

/** Succeeds once the worker's child process has exited and its pipes are closed. */
const awaitSubprocessClose = (worker: types.Worker): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    if (worker.subprocessClosed) {
      resume(Effect.void)
      return
    }
    const onClose = () => resume(Effect.void)
    worker.once("subprocessclose", onClose)
    return Effect.sync(() => worker.off("subprocessclose", onClose))
  })

/**
 * Closes a Worker (and with it its Routers and everything in them) and waits until its
 * process has exited: SIGTERM first, SIGKILL if it is still running after `timeout`
 * (default 5 seconds). Never fails.
 */
export const closeWorker = (
  worker: types.Worker,
  timeout: Duration.DurationInput = Duration.seconds(5)
): Effect.Effect<void> =>
  Effect.sync(() => worker.close()).pipe(
    Effect.zipRight(awaitSubprocessClose(worker)),
    Effect.timeoutTo({
      duration: timeout,
      onSuccess: () => Effect.void,
      onTimeout: () =>
        Effect.sync(() => {
          try {
            process.kill(worker.pid, "SIGKILL")
          } catch {
            // Already gone.
          }
        }).pipe(Effect.zipRight(awaitSubprocessClose(worker)), Effect.timeout(timeout), Effect.ignore)
    }),
    Effect.flatten
  )

/**
 * Whether a process with this pid exists (`process.kill(pid, 0)` does not throw ESRCH).
 * Used to check that a Worker's process is gone.
 */
export const processExists = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== "ESRCH"
  }
}

/** Opus, 48 kHz stereo: the audio codec of the demo and tests. */
export const opusCodec: types.RtpCodecCapability = {
  kind: "audio",
  mimeType: "audio/opus",
  clockRate: 48000,
  channels: 2
}

/** VP8, 90 kHz: the video codec of the demo and tests. */
export const vp8Codec: types.RtpCodecCapability = {
  kind: "video",
  mimeType: "video/VP8",
  clockRate: 90000
}
