/**
 * Layers of the `Mafalda` service:
 *
 * - `layer`: Mafalda Routers over the cluster services (`Placement`, `SnapshotStore`,
 *   `ClusterNotices`), `LocalMediasoup` (the mediasoup objects of this process' Workers)
 *   and `IndexService`;
 * - `layerLocal(options)`: everything for one machine: real mediasoup Workers
 *   (`layerMediasoup`), the in-memory Tracker and Index, the cluster services (`layerCluster`).
 *   Closing its scope closes every Mafalda Router and Worker.
 *
 * @module
 */
import { randomUUID } from "node:crypto"
import { EventEmitter } from "node:events"
import { Effect, Layer, Logger, LogLevel, Queue, Runtime, Stream } from "effect"
import type { types } from "mediasoup"
import { MafaldaRouterId } from "../core/Ids.js"
import { InvalidArgumentError, type InvalidOptionsError } from "../router/errors.js"
import type { MafaldaContext } from "../router/MafaldaContext.js"
import type { ResolvedMafaldaOptions } from "../router/MafaldaOptions.js"
import { resolveMafaldaOptions } from "../router/MafaldaOptions.js"
import { MafaldaRouter, type MafaldaRouterOptions } from "../router/MafaldaRouter.js"
import { routerRtpCapabilities } from "../router/rtpCapabilities.js"
import { clusterStatus } from "../router/status.js"
import { ClusterNotices } from "../services/ClusterNotices.js"
import { IndexService } from "../services/IndexService.js"
import { LocalMediasoup } from "../services/LocalMediasoup.js"
import { Mafalda, type MafaldaShape } from "../services/Mafalda.js"
import { Placement } from "../services/Placement.js"
import { SnapshotStore } from "../services/SnapshotStore.js"
import type { TrackerService } from "../services/TrackerService.js"
import type { WorkerService } from "../services/WorkerService.js"
import * as ClusterLayer from "./Cluster.js"
import * as IndexLayer from "./IndexService.js"
import * as TrackerLayer from "./TrackerService.js"
import { layerMediasoup } from "./WorkerService.js"

const make = (defaults: { readonly workerSettings: types.WorkerSettings }) =>
  Effect.gen(function* () {
    const placement = yield* Placement
    const store = yield* SnapshotStore
    const notices = yield* ClusterNotices
    const local = yield* LocalMediasoup
    const index = yield* IndexService
    const runtime = yield* Effect.runtime<never>()
    const observer = new EventEmitter()
    const routers = new Map<string, MafaldaRouter>()
    const logFailure = (what: string) => (effect: Effect.Effect<void, unknown>) =>
      effect.pipe(Effect.catchAllCause((cause) => Effect.logError(what, cause)))
    const runFork = Runtime.runFork(runtime)
    // Index writes, one at a time and in order (a remove never overtakes its add).
    const indexWrites = yield* Queue.unbounded<Effect.Effect<void, unknown>>()
    yield* Stream.fromQueue(indexWrites).pipe(
      Stream.runForEach(logFailure("an Index write failed")),
      Effect.interruptible,
      Effect.forkScoped
    )
    const ctx: MafaldaContext = {
      node: placement.node,
      placement,
      store,
      local,
      index,
      runtime,
      fork: (effect) => void runFork(logFailure("a background task failed")(effect)),
      writeIndex: (effect) => void indexWrites.unsafeOffer(effect),
      producers: new Map(),
      dataProducers: new Map(),
      visible: new Map(),
      sharedConsumers: new Map(),
      dataPipes: new Map(),
      dataPipesClosing: new Map()
    }

    // Closing Mafalda closes its Routers ("workerclose"), before the Workers go.
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        for (const router of Array.from(routers.values())) router.workerClosed()
      })
    )

    yield* Stream.fromQueue(yield* notices.subscribe).pipe(
      Stream.runForEach((notice) =>
        Effect.sync(() => {
          if (notice._tag !== "WorkerLost") return
          for (const id of notice.mafaldaRouters) routers.get(id)?.workerDied(notice.worker, notice.reason)
        })
      ),
      Effect.interruptible,
      Effect.forkScoped
    )

    const createRouter = <AppData extends types.AppData = types.AppData>(
      options: MafaldaRouterOptions<AppData> = {}
    ) =>
      Effect.gen(function* () {
        if (typeof options !== "object" || options === null) {
          return yield* new InvalidArgumentError({ message: "if given, options must be an object" })
        }
        const routerSettings = { mediaCodecs: options.mediaCodecs ?? [] }
        const rtpCapabilities = yield* Effect.try({
          try: () => routerRtpCapabilities(routerSettings),
          catch: (cause) =>
            new InvalidArgumentError({ message: cause instanceof Error ? cause.message : String(cause) })
        })
        const workerSettings = { ...defaults.workerSettings, ...options.workerSettings }
        const id = MafaldaRouterId.make(randomUUID())
        yield* placement.createMafaldaRouter(id, workerSettings, routerSettings)
        const router = new MafaldaRouter<AppData>({
          ctx,
          id,
          rtpCapabilities,
          appData: options.appData ?? ({} as AppData),
          settings: { worker: workerSettings, router: routerSettings },
          onClose: () => routers.delete(id)
        })
        routers.set(id, router as unknown as MafaldaRouter)
        observer.emit("newrouter", router)
        return router
      })

    const service: MafaldaShape = {
      createRouter,
      routers: Effect.sync(() => Array.from(routers.values())),
      snapshot: store.snapshot,
      status: Effect.sync(() =>
        clusterStatus(store.current(), placement.node, (w) => local.worker(w as never)?.pid)
      ),
      observer
    }
    return service
  })

/** Mafalda over the services; `workerSettings` are the Mafalda Routers' defaults. */
export const layer = (
  defaults: { readonly workerSettings: types.WorkerSettings } = { workerSettings: {} }
): Layer.Layer<Mafalda, never, Placement | SnapshotStore | ClusterNotices | LocalMediasoup | IndexService> =>
  Layer.scoped(Mafalda, make(defaults))

const logLevels = {
  all: LogLevel.All,
  trace: LogLevel.Trace,
  debug: LogLevel.Debug,
  info: LogLevel.Info,
  warning: LogLevel.Warning,
  error: LogLevel.Error,
  none: LogLevel.None
} as const

/** What `layerLocal` provides: Mafalda and the services under it. */
export type LocalServices =
  | Mafalda
  | ClusterLayer.ClusterServices
  | WorkerService
  | LocalMediasoup
  | TrackerService
  | IndexService

/** Everything for one machine, from resolved options. */
export const layerFromResolved = (options: ResolvedMafaldaOptions): Layer.Layer<LocalServices> => {
  const workers = layerMediasoup({ cpus: options.cpus })
  const tracker = TrackerLayer.layerMemory({ interval: options.samplingInterval })
  const cluster = ClusterLayer.layer({
    policy: options.policy,
    scaleDownInterval: options.scaleDownInterval
  }).pipe(Layer.provideMerge(tracker))
  const services = Layer.mergeAll(cluster, IndexLayer.layerMemory).pipe(Layer.provideMerge(workers))
  return layer({ workerSettings: options.workerSettings }).pipe(
    Layer.provideMerge(services),
    Layer.provide(Logger.minimumLogLevel(logLevels[options.logLevel]))
  )
}

/** Everything for one machine with real mediasoup Workers; fails on invalid options. */
export const layerLocal = (options: unknown = {}): Layer.Layer<LocalServices, InvalidOptionsError> =>
  Layer.unwrapEffect(Effect.map(resolveMafaldaOptions(options), layerFromResolved))
