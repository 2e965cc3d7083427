/**
 * Layers of the `Mafalda` service:
 *
 * - `layer`: Mafalda Routers over the cluster services (`Placement`, `SnapshotStore`,
 *   `ClusterNotices`), `LocalMediasoup` (the mediasoup objects of this process' Workers)
 *   and `IndexService`; with `WorkerService`, `ClusterLocks`, `ScaleDownHolds` and
 *   `TrackerService` in the context too (as `layerLocal` has them), it also makes
 *   WebRtcServers, holds what scale-down must keep, and reports overloads;
 * - `layerLocal(options)`: everything for one machine: real mediasoup Workers
 *   (`layerMediasoup`), the in-memory Tracker and Index, the cluster services (`layerCluster`).
 *   Closing its scope closes every Mafalda Router and Worker.
 *
 * @module
 */
import { randomUUID } from "node:crypto"
import { Effect, Either, Layer, Logger, LogLevel, Option, Queue, Runtime, Schedule, Stream } from "effect"
import type { types } from "mediasoup"
import { EnhancedEventEmitter } from "mediasoup/node/lib/enhancedEvents.js"
import { applyEvent } from "../core/applyEvent.js"
import { MafaldaRouterId, type WorkerId } from "../core/Ids.js"
import { decideRelocations, type Move } from "../core/relocation.js"
import { effectiveLoad, lookup, workersOn } from "../core/Snapshot.js"
import { badAppData, badRoomHint } from "../router/checks.js"
import {
  InvalidArgumentError,
  type InvalidOptionsError,
  type MafaldaRouterError,
  MediasoupCallError,
  UnsupportedCallError
} from "../router/errors.js"
import type { MafaldaContext } from "../router/MafaldaContext.js"
import type { ResolvedMafaldaOptions } from "../router/MafaldaOptions.js"
import { resolveMafaldaOptions, validateWorkerSettings } from "../router/MafaldaOptions.js"
import { MafaldaRouter, type MafaldaRouterOptions } from "../router/MafaldaRouter.js"
import { type RelocationTarget, relocationUnderWay } from "../router/relocation.js"
import { routerRtpCapabilities } from "../router/rtpCapabilities.js"
import { clusterStatus } from "../router/status.js"
import {
  MafaldaWebRtcServer,
  type MafaldaWebRtcServerOptions,
  type WebRtcServerPorts
} from "../router/webRtcServer.js"
import { ClusterLocks } from "../services/ClusterLocks.js"
import { ClusterNotices } from "../services/ClusterNotices.js"
import { delegationOrEmbedded } from "../services/Delegation.js"
import { IndexService } from "../services/IndexService.js"
import { LocalMediasoup, type LocalMediasoupShape } from "../services/LocalMediasoup.js"
import { Mafalda, type MafaldaEvents, type MafaldaShape } from "../services/Mafalda.js"
import { Placement } from "../services/Placement.js"
import { ScaleDownHolds, type ScaleDownHoldsShape } from "../services/ScaleDownHolds.js"
import { type WorkerSettings, workerSettingsKey } from "../services/SettingsKeys.js"
import { SnapshotStore } from "../services/SnapshotStore.js"
import { TrackerService } from "../services/TrackerService.js"
import { WorkerService } from "../services/WorkerService.js"
import * as ClusterLayer from "./Cluster.js"
import * as IndexLayer from "./IndexService.js"
import * as ScaleDownHoldsLayer from "./ScaleDownHolds.js"
import * as TrackerLayer from "./TrackerService.js"
import { layerMediasoup } from "./WorkerService.js"

/** What the Mafalda layer is made with. */
export interface MafaldaDefaults {
  /** Default Worker settings of the Mafalda Routers. */
  readonly workerSettings: types.WorkerSettings
  /** Ports of WebRtcServer instances after the first one (default `"workerRange"`). */
  readonly webRtcServerPorts?: WebRtcServerPorts | undefined
  /** Whether relocations the core decides are offered (`"offer"`) or not (default `"off"`). */
  readonly relocation?: "off" | "offer" | undefined
}

/**
 * In cluster mode with `relocation: "offer"`, how often the snapshot is checked for another
 * Node that drains (and, while one does, its `Drain` moves decided and offered: a move
 * under way is not offered again, one given up is, at this pace).
 */
const drainCheckMillis = 1000

/** Which Worker `acquireWorker` prefers. */
export interface AcquireWorker {
  /** `"new"`: start one while the caps allow it, else pick; `"existing"`: pick, else start. */
  readonly prefer: "new" | "existing"
  /** Among live Workers of the settings, the one to use (default: the least loaded). */
  readonly pick?: ((candidates: ReadonlyArray<WorkerId>) => WorkerId) | undefined
}

const make = (defaults: MafaldaDefaults) =>
  Effect.gen(function* () {
    const placement = yield* Placement
    const store = yield* SnapshotStore
    const notices = yield* ClusterNotices
    const local = yield* LocalMediasoup
    const index = yield* IndexService
    // Cluster mode when the context has a `Delegation` (transports on other Nodes).
    const delegation = yield* delegationOrEmbedded
    // Optional services (`layerLocal` has them all).
    const workerService = Option.getOrUndefined(yield* Effect.serviceOption(WorkerService))
    const locks = Option.getOrUndefined(yield* Effect.serviceOption(ClusterLocks))
    const tracker = Option.getOrUndefined(yield* Effect.serviceOption(TrackerService))
    // Without the cluster's holds (scale-down does not see these), holds are kept but inert.
    const holds = Option.getOrElse(yield* Effect.serviceOption(ScaleDownHolds), ScaleDownHoldsLayer.make)
    const runtime = yield* Effect.runtime<never>()
    const observer = new EnhancedEventEmitter<MafaldaEvents>()
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
      holds,
      events: observer,
      webRtcServerPorts: defaults.webRtcServerPorts ?? "workerRange",
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
    const servers = new Set<MafaldaWebRtcServer>()

    // Closing Mafalda closes its Routers ("workerclose") and WebRtcServers, before the Workers go.
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        for (const router of Array.from(routers.values())) router.workerClosed()
        for (const server of Array.from(servers)) server.workerClosed()
      })
    )

    yield* Stream.fromQueue(yield* notices.subscribe).pipe(
      Stream.runForEach((notice) =>
        Effect.sync(() => {
          if (notice._tag === "ScaledDown") {
            observer.safeEmit("scaledown", notice.actions)
            return
          }
          for (const id of notice.mafaldaRouters) routers.get(id)?.workerDied(notice.worker, notice.reason)
          observer.safeEmit("workerdied", new Error(`Worker ${notice.worker} died: ${notice.reason}`), {
            worker: notice.worker,
            pid: pidOf(notice.worker),
            mafaldaRouters: notice.mafaldaRouters
          })
        })
      ),
      Effect.interruptible,
      Effect.forkScoped
    )

    const pidOf = (worker: string): number | undefined => {
      const w = local.worker(worker as WorkerId)
      if (w !== undefined) return w.pid
      const match = /-(\d+)$/.exec(worker)
      return match === null ? undefined : Number(match[1])
    }

    // `overload`: a Worker's reported load crossing the watermark upwards (once per crossing).
    if (tracker !== undefined) {
      const over = new Set<string>()
      const watermark = placement.options.watermark
      yield* Stream.fromQueue(yield* tracker.subscribe).pipe(
        Stream.runForEach((report) =>
          Effect.sync(() => {
            if (report.load < watermark) {
              over.delete(report.worker)
              return
            }
            if (over.has(report.worker)) return
            over.add(report.worker)
            observer.safeEmit("overload", {
              worker: report.worker,
              pid: pidOf(report.worker),
              load: report.load,
              watermark
            })
          })
        ),
        Effect.interruptible,
        Effect.forkScoped
      )
    }

    // `relocation: "offer"`: after each sampling round, the core's decision on the snapshot
    // (with the round's reports), each move offered as `relocateTransport` would; in cluster
    // mode, while another Node drains, its Drain moves too (see `drainCheckMillis`).
    if (defaults.relocation === "offer") {
      const offerMove = (move: Move) =>
        Effect.gen(function* () {
          // Offered by the death path (a Worker of this Node, or a remote transport lost).
          if (move.reason === "WorkerLost") return
          const router = routers.get(move.mafaldaRouter)
          if (router === undefined || router.closed) return
          if (relocationUnderWay(move.transport) !== false) return
          // Without a listener nobody would carry it out (mediasoup's Router type names only
          // its own events, hence the cast).
          if ((router as unknown as NodeJS.EventEmitter).listenerCount("relocation") === 0) return
          const to = move.to
          const target: RelocationTarget =
            to._tag === "CreateWorker" || to.worker.startsWith("\u0000")
              ? { newWorker: true }
              : { worker: to.worker }
          yield* router.effect.relocateTransport(move.transport, { reason: move.reason, target }).pipe(
            Effect.tap(() =>
              Effect.logInfo("relocation offered").pipe(
                Effect.annotateLogs({
                  transport: move.transport,
                  mafaldaRouter: move.mafaldaRouter,
                  reason: move.reason,
                  from: move.from.worker,
                  to: "worker" in target ? target.worker : "new"
                })
              )
            ),
            Effect.catchAll((error) =>
              Effect.logWarning("relocation not offered").pipe(
                Effect.annotateLogs({ transport: move.transport, reason: move.reason, error: error.message })
              )
            )
          )
        })
      if (tracker !== undefined) {
        yield* Stream.fromQueue(yield* tracker.subscribe).pipe(
          Stream.runForEachChunk((reports) =>
            Effect.suspend(() => {
              let snapshot = store.current()
              for (const report of reports) {
                const applied = applyEvent(snapshot, report, placement.options.costs)
                if (Either.isRight(applied)) snapshot = applied.right
              }
              return Effect.forEach(decideRelocations(snapshot, placement.options), offerMove, {
                discard: true
              })
            }).pipe(logFailure("relocation decision failed"))
          ),
          Effect.interruptible,
          Effect.forkScoped
        )
      }
      // Another Node draining (the registry says so, and the sync tells the snapshot): its
      // transports of this app's Mafalda Routers are offered (`Drain`) without waiting for a
      // sampling round, so that it empties and exits long before its drain timeout.
      if (delegation.delegates) {
        const otherNodeDraining = () => {
          for (const [, n] of store.current().nodes) {
            if (n.id !== placement.node && n.state === "draining" && n.workers.length > 0) return true
          }
          return false
        }
        yield* Effect.suspend(() => {
          if (!otherNodeDraining()) return Effect.void
          const moves = decideRelocations(store.current(), placement.options).filter(
            (m) => m.reason === "Drain"
          )
          return Effect.forEach(moves, offerMove, { discard: true })
        }).pipe(
          logFailure("relocation decision (drain) failed"),
          Effect.repeat(Schedule.spaced(drainCheckMillis)),
          Effect.interruptible,
          Effect.forkScoped
        )
      }
    }

    const resolveWorkerSettings = (input: unknown): Effect.Effect<WorkerSettings, InvalidArgumentError> => {
      const merged =
        input === undefined
          ? defaults.workerSettings
          : typeof input === "object" && input !== null
            ? { ...defaults.workerSettings, ...input }
            : input
      const checked = validateWorkerSettings(merged)
      return Either.isLeft(checked)
        ? Effect.fail(new InvalidArgumentError({ message: checked.left.message }))
        : Effect.succeed(checked.right)
    }

    const createRouter = <AppData extends types.AppData = types.AppData>(
      options: MafaldaRouterOptions<AppData> = {}
    ) =>
      Effect.gen(function* () {
        if (typeof options !== "object" || options === null) {
          return yield* new InvalidArgumentError({ message: "if given, options must be an object" })
        }
        const badData = badAppData(options.appData)
        if (badData !== undefined) return yield* new InvalidArgumentError({ message: badData })
        const badHint = badRoomHint(options)
        if (badHint !== undefined) return yield* new InvalidArgumentError({ message: badHint })
        const hint =
          options.expectedParticipants === undefined
            ? undefined
            : { participants: options.expectedParticipants, publishers: options.expectedPublishers ?? null }
        // mediasoup's own TypeError or UnsupportedError for bad codecs.
        const rtpCapabilities = yield* Effect.try({
          try: () => routerRtpCapabilities({ mediaCodecs: options.mediaCodecs ?? [] }),
          catch: (cause) => new MediasoupCallError({ operation: "createRouter", cause })
        })
        const routerSettings = { mediaCodecs: options.mediaCodecs ?? [] }
        const workerSettings = yield* resolveWorkerSettings(options.workerSettings)
        const id = MafaldaRouterId.make(randomUUID())
        yield* placement.createMafaldaRouter(id, workerSettings, routerSettings, hint)
        const router = new MafaldaRouter<AppData>({
          ctx,
          id,
          rtpCapabilities,
          appData: options.appData ?? ({} as AppData),
          settings: { worker: workerSettings, router: routerSettings },
          onClose: () => routers.delete(id),
          delegation
        })
        routers.set(id, router as unknown as MafaldaRouter)
        observer.safeEmit("newrouter", router as unknown as MafaldaRouter)
        return router
      })

    const leastLoaded = (candidates: ReadonlyArray<WorkerId>): WorkerId => {
      const snapshot = store.current()
      const loadOf = (id: WorkerId) => {
        const w = lookup(snapshot.workers, id)
        return w === undefined ? 0 : effectiveLoad(w)
      }
      return candidates.reduce((best, id) => (loadOf(id) < loadOf(best) ? id : best))
    }

    /**
     * A Worker of these settings on this Node, under the placement lock: a new one (started
     * and recorded), or a live one, as `how` says. Used for the home of a WebRtcServer and
     * for the Worker process a `mafalda/mediasoup` Worker stands for; the caller holds it.
     */
    const acquireWorker = (
      settings: WorkerSettings,
      how: AcquireWorker
    ): Effect.Effect<WorkerId, MafaldaRouterError> =>
      Effect.gen(function* () {
        if (workerService === undefined || locks === undefined) {
          return yield* new UnsupportedCallError({ message: "this Mafalda has no local Workers" })
        }
        const key = workerSettingsKey(settings)
        return yield* locks.placement(key)(
          Effect.gen(function* () {
            const live = workersOn(store.current(), placement.node, key)
              .filter((w) => local.worker(w.id) !== undefined)
              .map((w) => w.id)
            const pick = how.pick ?? leastLoaded
            if (how.prefer === "existing" && live.length > 0) return pick(live)
            const started = yield* Effect.either(workerService.startWorker(settings))
            if (Either.isLeft(started)) {
              if (live.length > 0) return pick(live)
              return yield* started.left
            }
            const at = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
            yield* store.apply({
              _tag: "WorkerStarted",
              worker: started.right.id,
              node: placement.node,
              settings: key,
              at
            })
            return started.right.id
          })
        )
      })

    const createWebRtcServer = <AppData extends types.AppData = types.AppData>(
      options: MafaldaWebRtcServerOptions<AppData>,
      home?: WorkerId
    ) =>
      Effect.gen(function* () {
        if (typeof options !== "object" || options === null) {
          return yield* new InvalidArgumentError({ message: "options must be an object" })
        }
        const { listenInfos, appData } = options
        if (!Array.isArray(listenInfos))
          return yield* new InvalidArgumentError({ message: "missing listenInfos" })
        if (listenInfos.length === 0) return yield* new InvalidArgumentError({ message: "empty listenInfos" })
        if (listenInfos.some((info) => typeof info !== "object" || info === null)) {
          return yield* new InvalidArgumentError({ message: "wrong listenInfos (not objects)" })
        }
        const badData = badAppData(appData)
        if (badData !== undefined) return yield* new InvalidArgumentError({ message: badData })
        const worker =
          home ??
          (yield* acquireWorker(yield* resolveWorkerSettings(options.workerSettings), { prefer: "existing" }))
        const server = new MafaldaWebRtcServer<AppData>({ ctx, id: randomUUID(), listenInfos, appData })
        // The home instance listens now: a port in use fails here, as in mediasoup.
        yield* Effect.onError(server.instanceOn(worker), () => Effect.sync(() => server.close()))
        servers.add(server as unknown as MafaldaWebRtcServer)
        server.observer.once("close", () => servers.delete(server as unknown as MafaldaWebRtcServer))
        observer.safeEmit("newwebrtcserver", server as unknown as MafaldaWebRtcServer)
        return server
      })

    const service: MafaldaShape & MafaldaInternals = {
      createRouter,
      createWebRtcServer: (options) => createWebRtcServer(options),
      routers: Effect.sync(() => Array.from(routers.values())),
      snapshot: store.snapshot,
      status: Effect.sync(() =>
        clusterStatus(store.current(), placement.node, (w) => local.worker(w as never)?.pid)
      ),
      observer,
      relocated: (relocation) => Effect.sync(() => void observer.safeEmit("relocation", relocation)),
      acquireWorker,
      createWebRtcServerOn: createWebRtcServer,
      holds,
      local
    }
    return service
  })

/**
 * What the Mafalda layer offers beyond `MafaldaShape`, for `mafalda/mediasoup`: a Worker
 * process to stand for, a WebRtcServer whose home is that Worker, scale-down holds.
 */
export interface MafaldaInternals {
  readonly acquireWorker: (
    settings: WorkerSettings,
    how: AcquireWorker
  ) => Effect.Effect<WorkerId, MafaldaRouterError>
  readonly createWebRtcServerOn: <AppData extends types.AppData = types.AppData>(
    options: MafaldaWebRtcServerOptions<AppData>,
    home: WorkerId
  ) => Effect.Effect<MafaldaWebRtcServer<AppData>, MafaldaRouterError>
  readonly holds: ScaleDownHoldsShape
  readonly local: LocalMediasoupShape
}

/** The internals of a `MafaldaShape` made by this layer (undefined for another implementation). */
export const internalsOf = (mafalda: MafaldaShape): MafaldaInternals | undefined =>
  "acquireWorker" in mafalda ? (mafalda as MafaldaShape & MafaldaInternals) : undefined

/** Mafalda over the services; `workerSettings` are the Mafalda Routers' defaults. */
export const layer = (
  defaults: MafaldaDefaults = { workerSettings: {} }
): Layer.Layer<Mafalda, never, Placement | SnapshotStore | ClusterNotices | LocalMediasoup | IndexService> =>
  Layer.scoped(Mafalda, make(defaults))

export const logLevels = {
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
  | ScaleDownHolds

/** Everything for one machine, from resolved options. */
export const layerFromResolved = (options: ResolvedMafaldaOptions): Layer.Layer<LocalServices> => {
  const workers = layerMediasoup({ cpus: options.cpus, maxProcesses: options.maxWorkerProcesses })
  const tracker = TrackerLayer.layerMemory({ interval: options.samplingInterval })
  // Scale-down reads the holds when it is built: they are provided under the cluster layer.
  const cluster = ClusterLayer.layer({
    policy: options.policy,
    scaleDownInterval: options.scaleDownInterval
  }).pipe(Layer.provideMerge(tracker), Layer.provideMerge(ScaleDownHoldsLayer.layer))
  const services = Layer.mergeAll(cluster, IndexLayer.layerMemory).pipe(Layer.provideMerge(workers))
  return layer({
    workerSettings: options.workerSettings,
    webRtcServerPorts: options.webRtcServerPorts,
    relocation: options.relocation
  }).pipe(Layer.provideMerge(services), Layer.provide(Logger.minimumLogLevel(logLevels[options.logLevel])))
}

/** Everything for one machine with real mediasoup Workers; fails on invalid options. */
export const layerLocal = (options: unknown = {}): Layer.Layer<LocalServices, InvalidOptionsError> =>
  Layer.unwrapEffect(Effect.map(resolveMafaldaOptions(options), layerFromResolved))
