/**
 * `TrackerService` in memory: samples the Workers of the local `WorkerService` every
 * `interval` (default 1 second) on Effect's `Clock`.
 *
 * @module
 */
import { Clock, Duration, Effect, Layer, PubSub, Schedule, Stream } from "effect"
import { LoadReported } from "../core/ClusterEvent.js"
import type { WorkerId } from "../core/Ids.js"
import { type LoadReport, TrackerService } from "../services/TrackerService.js"
import { WorkerService } from "../services/WorkerService.js"

export interface TrackerOptions {
  /** Sampling interval (default 1 second). */
  readonly interval?: Duration.DurationInput | undefined
}

export const layerMemory = (
  options: TrackerOptions = {}
): Layer.Layer<TrackerService, never, WorkerService> =>
  Layer.scoped(
    TrackerService,
    Effect.gen(function* () {
      const workers = yield* WorkerService
      const interval = Duration.decode(options.interval ?? Duration.seconds(1))
      const pubsub = yield* Effect.acquireRelease(PubSub.unbounded<LoadReport>(), PubSub.shutdown)
      const previous = new Map<WorkerId, { readonly cpuMs: number; readonly at: number }>()
      const latest = new Map<WorkerId, LoadReport>()

      const sampleOne = (worker: WorkerId) =>
        Effect.gen(function* () {
          const cpuMs = yield* workers.cpuTime(worker)
          const at = yield* Clock.currentTimeMillis
          const before = previous.get(worker)
          previous.set(worker, { cpuMs, at })
          if (before === undefined || at <= before.at) return undefined
          const load = Math.max(0, ((cpuMs - before.cpuMs) / (at - before.at)) * 100)
          const report = LoadReported.make({ worker, load, at })
          latest.set(worker, report)
          return report
        }).pipe(Effect.orElseSucceed(() => undefined))

      const sample = Effect.gen(function* () {
        const live = yield* workers.workers
        const alive = new Set(live.map((w) => w.id))
        for (const id of previous.keys()) {
          if (!alive.has(id)) {
            previous.delete(id)
            latest.delete(id)
          }
        }
        const reports = yield* Effect.forEach(live, (w) => sampleOne(w.id), { concurrency: "unbounded" })
        const made = reports.filter((r): r is LoadReport => r !== undefined)
        yield* PubSub.publishAll(pubsub, made)
        return made
      })

      yield* sample.pipe(Effect.repeat(Schedule.spaced(interval)), Effect.interruptible, Effect.forkScoped)

      return {
        loads: Stream.fromPubSub(pubsub),
        subscribe: PubSub.subscribe(pubsub),
        latest: Effect.sync(() => new Map(latest)),
        sample
      }
    })
  )
