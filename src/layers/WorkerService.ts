/**
 * The two backends of `WorkerService`:
 *
 * - `layerMediasoup`: real mediasoup Workers, each a scoped resource in its own child scope
 *   (closing the layer's scope closes every Worker and waits for its process to exit), and
 *   `LocalMediasoup`, their mediasoup objects;
 * - `layerSimulated`: Workers and Routers in memory whose CPU time follows the core's cost
 *   model and Effect's `Clock` (drive it with `TestClock`), with `SimulatedWorkers` to
 *   charge load and to kill Workers.
 *
 * @module
 */
import { availableParallelism } from "node:os"
import {
  Clock,
  Context,
  Effect,
  ExecutionStrategy,
  Exit,
  Layer,
  Option,
  PubSub,
  Runtime,
  Scope,
  Stream
} from "effect"
import type { types } from "mediasoup"
import { NodeId, type ProducerId, RouterId, WorkerId } from "../core/Ids.js"
import type { Costs } from "../core/PolicyOptions.js"
import { defaultPolicyOptions } from "../core/PolicyOptions.js"
import { acquireWorker } from "../media/worker.js"
import * as Observe from "../ops/observe.js"
import { LocalMediasoup, type LocalMediasoupShape } from "../services/LocalMediasoup.js"
import {
  type RouterSettings,
  routerSettingsKey,
  type WorkerSettings,
  workerSettingsKey
} from "../services/SettingsKeys.js"
import {
  type PipeInfo,
  type RouterInfo,
  type WorkerInfo,
  WorkerNotice,
  WorkerService,
  WorkerServiceError,
  type WorkerServiceShape
} from "../services/WorkerService.js"

/** Options of the `WorkerService` layers. */
export interface WorkerServiceOptions {
  /** The id of this Node (default `"local"`). */
  readonly node?: string | undefined
  /** CPUs of this Node: the most Workers per set of settings (default `os.availableParallelism()`). */
  readonly cpus?: number | undefined
  /** The most Worker processes whatever their settings (default: no cap beyond `cpus` per set). */
  readonly maxProcesses?: number | undefined
}

const pipeKey = (producer: string, to: string): string => `${producer}\u0000${to}`

const notFound = (operation: string, what: string) =>
  new WorkerServiceError({ operation, message: `${what} not found` })

/**
 * Why a Node would refuse to start one more Worker (`startWorker`), or undefined: `withKey`
 * Workers with its settings and `all` in all (starts under way counted) against `cpus` per
 * set of settings and `maxProcesses` overall; `WorkerService.startRefusal` answers with it.
 */
const startRefusal = (
  withKey: number,
  all: number,
  cpus: number,
  maxProcesses: number
): WorkerServiceError | undefined =>
  withKey >= cpus ? tooMany(cpus) : all >= maxProcesses ? tooManyProcesses(maxProcesses) : undefined

const tooMany = (cpus: number) =>
  new WorkerServiceError({
    operation: "startWorker",
    message: `${cpus} Workers with these settings already run (one per CPU)`
  })

const tooManyProcesses = (max: number) =>
  new WorkerServiceError({
    operation: "startWorker",
    message: `${max} Worker processes already run (maxWorkerProcesses)`
  })

// --- Real mediasoup ------------------------------------------------------------------

interface LocalWorker {
  readonly info: WorkerInfo
  readonly worker: types.Worker
  readonly scope: Scope.CloseableScope
}

interface LocalRouter {
  readonly info: RouterInfo
  readonly router: types.Router
}

const makeMediasoup = (options: WorkerServiceOptions) =>
  Effect.gen(function* () {
    const node = NodeId.make(options.node ?? "local")
    const cpus = options.cpus ?? availableParallelism()
    const scope = yield* Effect.scope
    const clock = yield* Effect.clock
    // mediasoup's "died" listener runs outside any fiber: close the Worker's scope on the
    // layer's own runtime, logging a failure instead of losing it.
    const runFork = Runtime.runFork(yield* Effect.runtime<never>())
    const notices = yield* Effect.acquireRelease(PubSub.unbounded<WorkerNotice>(), PubSub.shutdown)
    const workers = new Map<WorkerId, LocalWorker>()
    const routers = new Map<RouterId, LocalRouter>()
    const pipes = new Map<string, { readonly consumer: types.Consumer; readonly producer: types.Producer }>()
    const starting = new Map<string, number>()
    let counter = 0

    const countWith = (settings: string): number => {
      let n = starting.get(settings) ?? 0
      for (const w of workers.values()) if (w.info.settings === settings) n++
      return n
    }
    const maxProcesses = options.maxProcesses ?? Number.POSITIVE_INFINITY
    const countAll = (): number => {
      let n = workers.size
      for (const k of starting.values()) n += k
      return n
    }
    const refusalFor = (key: string): WorkerServiceError | undefined =>
      startRefusal(countWith(key), countAll(), cpus, maxProcesses)

    const forget = (id: WorkerId) => {
      workers.delete(id)
      for (const [rid, r] of routers) if (r.info.worker === id) routers.delete(rid)
    }

    // Close every Worker at once (each waits for its process), not one after the other.
    yield* Effect.addFinalizer(() =>
      Effect.forEach(
        Array.from(workers.values()),
        (w) => Effect.zipRight(Scope.close(w.scope, Exit.void), Observe.workerExited(w.info, "shutdown")),
        {
          concurrency: "unbounded",
          discard: true
        }
      )
    )

    const startWorker = (settings: WorkerSettings): Effect.Effect<WorkerInfo, WorkerServiceError> =>
      Effect.suspend(() => {
        const key = workerSettingsKey(settings)
        const refusal = refusalFor(key)
        if (refusal !== undefined) return Effect.fail(refusal)
        starting.set(key, (starting.get(key) ?? 0) + 1)
        return Effect.gen(function* () {
          const child = yield* Scope.fork(scope, ExecutionStrategy.sequential)
          const worker = yield* acquireWorker({ ...settings, closeTimeout: "3 seconds" }).pipe(
            Scope.extend(child),
            Effect.mapError(
              (e) => new WorkerServiceError({ operation: "startWorker", message: e.message, cause: e.cause })
            ),
            Effect.tapError(() => Scope.close(child, Exit.void))
          )
          const id = WorkerId.make(`${node}/worker-${++counter}-${worker.pid}`)
          const info: WorkerInfo = { id, node, settings: key, pid: worker.pid }
          workers.set(id, { info, worker, scope: child })
          worker.on("died", (error: Error) => {
            forget(id)
            runFork(Observe.workerDied(info, error.message))
            notices.unsafeOffer(
              WorkerNotice.WorkerDied({
                worker: id,
                reason: error.message,
                at: clock.unsafeCurrentTimeMillis()
              })
            )
            runFork(
              Scope.close(child, Exit.void).pipe(
                Effect.catchAllCause((cause) =>
                  Effect.logWarning("closing a dead Worker's scope failed", cause)
                )
              )
            )
          })
          yield* Observe.workerStarted(info)
          return info
        }).pipe(
          Effect.ensuring(
            Effect.sync(() => {
              const n = (starting.get(key) ?? 1) - 1
              if (n <= 0) starting.delete(key)
              else starting.set(key, n)
            })
          )
        )
      })

    const closeWorker = (id: WorkerId): Effect.Effect<void> =>
      Effect.suspend(() => {
        const w = workers.get(id)
        if (w === undefined) return Effect.void
        forget(id)
        return Effect.zipRight(Scope.close(w.scope, Exit.void), Observe.workerExited(w.info, "closed"))
      })

    const createRouter = (
      id: WorkerId,
      settings: RouterSettings
    ): Effect.Effect<RouterInfo, WorkerServiceError> =>
      Effect.suspend(() => {
        const w = workers.get(id)
        if (w === undefined) return Effect.fail(notFound("createRouter", `Worker ${id}`))
        const key = routerSettingsKey(settings)
        for (const r of routers.values()) {
          if (r.info.worker === id && r.info.settings === key) {
            return Effect.fail(
              new WorkerServiceError({
                operation: "createRouter",
                message: `Worker ${id} already has Router ${r.info.id} with these settings`
              })
            )
          }
        }
        return Effect.tryPromise({
          try: () =>
            w.worker.createRouter(
              settings.mediaCodecs === undefined ? {} : { mediaCodecs: [...settings.mediaCodecs] }
            ),
          catch: (cause) =>
            new WorkerServiceError({ operation: "createRouter", message: String(cause), cause })
        }).pipe(
          Effect.map((router) => {
            const info: RouterInfo = { id: RouterId.make(router.id), worker: id, settings: key }
            routers.set(info.id, { info, router })
            router.observer.once("close", () => {
              routers.delete(info.id)
            })
            return info
          })
        )
      })

    const closeRouter = (id: RouterId): Effect.Effect<void> =>
      Effect.sync(() => {
        routers.get(id)?.router.close()
        routers.delete(id)
      })

    const pipe = (
      producer: ProducerId,
      from: RouterId,
      to: RouterId
    ): Effect.Effect<PipeInfo, WorkerServiceError> =>
      Effect.suspend(() => {
        const a = routers.get(from)
        const b = routers.get(to)
        if (a === undefined) return Effect.fail(notFound("pipe", `Router ${from}`))
        if (b === undefined) return Effect.fail(notFound("pipe", `Router ${to}`))
        return Effect.tryPromise({
          try: () => a.router.pipeToRouter({ producerId: producer, router: b.router }),
          catch: (cause) =>
            new WorkerServiceError({
              operation: "pipe",
              message: cause instanceof Error ? cause.message : String(cause),
              cause
            })
        }).pipe(
          Effect.flatMap(({ pipeConsumer, pipeProducer }) => {
            if (pipeConsumer === undefined || pipeProducer === undefined) {
              return Effect.fail(
                new WorkerServiceError({ operation: "pipe", message: "pipeToRouter returned no pipe" })
              )
            }
            // mediasoup passes the pipe consumer's pause and resume on to the pipe producer
            // without handling a failure: one whose Worker has just gone (closing, or dying)
            // would be an unhandled rejection. The same, with the failure ignored.
            pipeConsumer.observer.removeAllListeners("pause")
            pipeConsumer.observer.removeAllListeners("resume")
            pipeConsumer.observer.on("pause", () => void pipeProducer.pause().catch(() => undefined))
            pipeConsumer.observer.on("resume", () => void pipeProducer.resume().catch(() => undefined))
            const key = pipeKey(producer, to)
            pipes.set(key, { consumer: pipeConsumer, producer: pipeProducer })
            pipeProducer.observer.once("close", () => {
              if (pipes.get(key)?.producer === pipeProducer) pipes.delete(key)
              notices.unsafeOffer(
                WorkerNotice.PipeClosed({ producer, to, at: clock.unsafeCurrentTimeMillis() })
              )
            })
            return Effect.succeed<PipeInfo>({
              producer,
              from,
              to,
              pipeConsumer: pipeConsumer.id,
              pipeProducer: pipeProducer.id
            })
          })
        )
      })

    const closePipe = (producer: ProducerId, to: RouterId): Effect.Effect<void> =>
      Effect.sync(() => {
        const key = pipeKey(producer, to)
        const p = pipes.get(key)
        pipes.delete(key)
        p?.producer.close()
      })

    const cpuTime = (id: WorkerId): Effect.Effect<number, WorkerServiceError> =>
      Effect.suspend(() => {
        const w = workers.get(id)
        if (w === undefined) return Effect.fail(notFound("cpuTime", `Worker ${id}`))
        return Effect.tryPromise({
          try: () => w.worker.getResourceUsage(),
          catch: (cause) => new WorkerServiceError({ operation: "cpuTime", message: String(cause), cause })
        }).pipe(Effect.map((u) => u.ru_utime + u.ru_stime))
      })

    const service: WorkerServiceShape = {
      node,
      cpus,
      maxProcesses: options.maxProcesses,
      startWorker,
      startRefusal: (key) => Effect.sync(() => Option.fromNullable(refusalFor(key))),
      closeWorker,
      createRouter,
      closeRouter,
      pipe,
      closePipe,
      cpuTime,
      workers: Effect.sync(() => Array.from(workers.values(), (w) => w.info)),
      notices: Stream.fromPubSub(notices),
      subscribe: PubSub.subscribe(notices)
    }
    const local: LocalMediasoupShape = {
      worker: (id) => workers.get(id)?.worker,
      router: (id) => routers.get(id)?.router,
      pipe: (producer, to) => pipes.get(pipeKey(producer, to))
    }
    return Context.make(WorkerService, service).pipe(Context.add(LocalMediasoup, local))
  })

/**
 * Real mediasoup Workers, started lazily, closed (and their processes awaited) with the
 * layer; and their mediasoup objects.
 */
export const layerMediasoup = (
  options: WorkerServiceOptions = {}
): Layer.Layer<WorkerService | LocalMediasoup> => Layer.scopedContext(makeMediasoup(options))

// --- Simulated -----------------------------------------------------------------------

/** What a simulated Worker charges for, with the core's cost of each. */
export type SimulatedObject = "transport" | "producer" | "consumer" | "pipe"

export interface SimulatedWorkersShape {
  /** Adds `count` objects of a kind to a Worker (negative to remove): its load moves by their cost. */
  readonly place: (worker: WorkerId, kind: SimulatedObject, count?: number) => Effect.Effect<void>
  /** Adds CPU % to a Worker's load directly (negative to lower it). */
  readonly charge: (worker: WorkerId, percent: number) => Effect.Effect<void>
  /** The Worker's current CPU %. */
  readonly load: (worker: WorkerId) => Effect.Effect<number>
  /** Kills a Worker: it is gone, with its Routers and pipes, and a `WorkerDied` notice goes out. */
  readonly kill: (worker: WorkerId, reason?: string) => Effect.Effect<void>
}

/** Control of the simulated Workers (only with `layerSimulated`). */
export class SimulatedWorkers extends Context.Tag("mafalda/SimulatedWorkers")<
  SimulatedWorkers,
  SimulatedWorkersShape
>() {}

export interface SimulatedOptions extends WorkerServiceOptions {
  /** The cost model (default: the core's default costs). */
  readonly costs?: Costs | undefined
}

interface SimWorker {
  readonly info: WorkerInfo
  load: number
  cpuMs: number
  lastAt: number
}

const makeSimulated = (options: SimulatedOptions) =>
  Effect.gen(function* () {
    const node = NodeId.make(options.node ?? "local")
    const cpus = options.cpus ?? availableParallelism()
    const costs = options.costs ?? defaultPolicyOptions.costs
    const notices = yield* Effect.acquireRelease(PubSub.unbounded<WorkerNotice>(), PubSub.shutdown)
    const workers = new Map<WorkerId, SimWorker>()
    const routers = new Map<RouterId, RouterInfo>()
    const pipes = new Map<string, PipeInfo>()
    let counter = 0

    const advance = (w: SimWorker, now: number) => {
      w.cpuMs += (Math.max(0, w.load) * Math.max(0, now - w.lastAt)) / 100
      w.lastAt = now
    }
    const withWorker = (id: WorkerId, f: (w: SimWorker, now: number) => void) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.sync(() => {
          const w = workers.get(id)
          if (w !== undefined) {
            advance(w, now)
            f(w, now)
          }
        })
      )

    const dropWorker = (id: WorkerId, now: number, died: string | undefined) => {
      if (!workers.delete(id)) return
      for (const [rid, r] of routers) {
        if (r.worker !== id) continue
        routers.delete(rid)
        for (const [key, p] of pipes) {
          if (p.from !== rid && p.to !== rid) continue
          pipes.delete(key)
          notices.unsafeOffer(WorkerNotice.PipeClosed({ producer: p.producer, to: p.to, at: now }))
        }
      }
      if (died !== undefined)
        notices.unsafeOffer(WorkerNotice.WorkerDied({ worker: id, reason: died, at: now }))
    }

    const maxProcesses = options.maxProcesses ?? Number.POSITIVE_INFINITY
    const refusalFor = (key: string): WorkerServiceError | undefined => {
      let n = 0
      for (const w of workers.values()) if (w.info.settings === key) n++
      return startRefusal(n, workers.size, cpus, maxProcesses)
    }

    const service: WorkerServiceShape = {
      node,
      cpus,
      maxProcesses: options.maxProcesses,
      startRefusal: (key) => Effect.sync(() => Option.fromNullable(refusalFor(key))),
      startWorker: (settings) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Effect.suspend(() => {
            const key = workerSettingsKey(settings)
            const refusal = refusalFor(key)
            if (refusal !== undefined) return Effect.fail(refusal)
            counter++
            const info: WorkerInfo = {
              id: WorkerId.make(`${node}/sim-worker-${counter}`),
              node,
              settings: key,
              pid: 100_000 + counter
            }
            workers.set(info.id, { info, load: 0, cpuMs: 0, lastAt: now })
            return Effect.succeed(info)
          })
        ),
      closeWorker: (id) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.sync(() => dropWorker(id, now, undefined))),
      createRouter: (worker, settings) =>
        Effect.suspend(() => {
          if (!workers.has(worker)) return Effect.fail(notFound("createRouter", `Worker ${worker}`))
          const key = routerSettingsKey(settings)
          for (const r of routers.values()) {
            if (r.worker === worker && r.settings === key) {
              return Effect.fail(
                new WorkerServiceError({
                  operation: "createRouter",
                  message: `Worker ${worker} already has Router ${r.id} with these settings`
                })
              )
            }
          }
          counter++
          const info: RouterInfo = {
            id: RouterId.make(`${node}/sim-router-${counter}`),
            worker,
            settings: key
          }
          routers.set(info.id, info)
          return Effect.succeed(info)
        }),
      closeRouter: (id) => Effect.sync(() => void routers.delete(id)),
      pipe: (producer, from, to) =>
        Effect.suspend(() => {
          if (!routers.has(from)) return Effect.fail(notFound("pipe", `Router ${from}`))
          if (!routers.has(to)) return Effect.fail(notFound("pipe", `Router ${to}`))
          counter++
          const info: PipeInfo = {
            producer,
            from,
            to,
            pipeConsumer: `sim-pipe-consumer-${counter}`,
            pipeProducer: producer
          }
          pipes.set(pipeKey(producer, to), info)
          return Effect.succeed(info)
        }),
      closePipe: (producer, to) => Effect.sync(() => void pipes.delete(pipeKey(producer, to))),
      cpuTime: (id) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Effect.suspend(() => {
            const w = workers.get(id)
            if (w === undefined) return Effect.fail(notFound("cpuTime", `Worker ${id}`))
            advance(w, now)
            return Effect.succeed(w.cpuMs)
          })
        ),
      workers: Effect.sync(() => Array.from(workers.values(), (w) => w.info)),
      notices: Stream.fromPubSub(notices),
      subscribe: PubSub.subscribe(notices)
    }

    const control: SimulatedWorkersShape = {
      place: (worker, kind, count = 1) =>
        withWorker(worker, (w) => {
          w.load += costs[kind] * count
        }),
      charge: (worker, percent) =>
        withWorker(worker, (w) => {
          w.load += percent
        }),
      load: (worker) => Effect.sync(() => workers.get(worker)?.load ?? 0),
      kill: (worker, reason = "killed") =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.sync(() => dropWorker(worker, now, reason)))
    }
    return Context.make(WorkerService, service).pipe(Context.add(SimulatedWorkers, control))
  })

/** Workers and Routers in memory, load from the cost model, time from `Clock`. */
export const layerSimulated = (
  options: SimulatedOptions = {}
): Layer.Layer<WorkerService | SimulatedWorkers> => Layer.scopedContext(makeSimulated(options))
