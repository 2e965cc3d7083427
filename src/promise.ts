/**
 * The Promise API: Mafalda for code that does not use Effect.
 *
 * ```ts
 * const mafalda = await createMafalda({ watermark: 60 })
 * const router = await mafalda.createRouter({ mediaCodecs })
 * const transport = await router.createWebRtcTransport({ listenInfos })
 * // ... as with mediasoup
 * await mafalda.close()
 * ```
 *
 * Cluster mode (`cluster`): this process is also a Mafalda Node of a cluster (registered in
 * its Redis, serving the Node API), and a transport the core delegates to another Node
 * (this one over the watermark) is made there and returned with mediasoup's API:
 *
 * ```ts
 * const mafalda = await createMafalda({ cluster: { secret, redis: "redis://127.0.0.1:6379" } })
 * ```
 *
 * The cluster's code (Redis, RPC) is loaded then only, by a dynamic `import()`.
 *
 * Only mediasoup's error kinds leave it: bad options and arguments reject with a
 * `TypeError`, calls on closed objects (the instance included) with mediasoup's
 * `InvalidStateError`, what Mafalda does not do with `UnsupportedError`, anything else
 * with a plain `Error` whose message names the problem.
 *
 * @module
 */
import { Effect, Either, type Layer, ManagedRuntime, Option } from "effect"
import type { types } from "mediasoup"
import type { EnhancedEventEmitter } from "mediasoup/node/lib/enhancedEvents.js"
import type { ClusterSnapshot } from "./core/Snapshot.js"
import {
  internalsOf,
  type LocalServices,
  layerFromResolved,
  type MafaldaInternals
} from "./layers/Mafalda.js"
import {
  ClosedError,
  InvalidArgumentError,
  type MafaldaRouterError,
  MediasoupCallError,
  toMediasoupError
} from "./router/errors.js"
import { runWith } from "./router/MafaldaContext.js"
import {
  badClusterOptions,
  type ClusterModeOptions,
  type MafaldaOptionsInput,
  resolveMafaldaOptions
} from "./router/MafaldaOptions.js"
import type { MafaldaRouter, MafaldaRouterOptions } from "./router/MafaldaRouter.js"
import type { ClusterStatus } from "./router/status.js"
import type { MafaldaWebRtcServer, MafaldaWebRtcServerOptions } from "./router/webRtcServer.js"
import { IndexService, type ProducerLocation } from "./services/IndexService.js"
import { LocalMediasoup } from "./services/LocalMediasoup.js"
import { Mafalda, type MafaldaEvents } from "./services/Mafalda.js"
import { ScaleDown } from "./services/ScaleDown.js"
import { SnapshotStore } from "./services/SnapshotStore.js"
import { WorkerService } from "./services/WorkerService.js"

export interface MafaldaInstance {
  /**
   * Makes a Mafalda Router: the API of a mediasoup `Router` over all local Workers. Besides
   * mediasoup's `mediaCodecs` and `appData` it takes the room's size hint, which room-aware
   * placement plans for from the first transport on:
   * `createRouter({ mediaCodecs, expectedParticipants: 40, expectedPublishers: 4 })`
   * (bad values reject with a `TypeError`; see `MafaldaRouterOptions`).
   */
  readonly createRouter: <AppData extends types.AppData = types.AppData>(
    options?: MafaldaRouterOptions<AppData>
  ) => Promise<MafaldaRouter<AppData>>
  /**
   * Makes a WebRtcServer that stands for one per Worker: pass it to `createWebRtcTransport`
   * of any Mafalda Router of this instance, whatever Worker the transport lands on (see
   * `src/router/webRtcServer.ts` for the port plan).
   */
  readonly createWebRtcServer: <AppData extends types.AppData = types.AppData>(
    options: MafaldaWebRtcServerOptions<AppData>
  ) => Promise<MafaldaWebRtcServer<AppData>>
  /** Workers, loads, stream trees and pipes, as plain JSON-able data. */
  readonly status: () => Promise<ClusterStatus>
  /** The cluster snapshot now. */
  readonly snapshot: () => ClusterSnapshot
  /**
   * The Index: where producers live. In cluster mode it is the cluster's (Redis), so it
   * answers for the producers of every process of the cluster; embedded, for this
   * instance's own. `find` resolves to the producer's Node, Mafalda Router, Router and kind,
   * or `undefined` when it has none with that id (a producer of another process is consumed
   * with `router.pipeFromCluster({ producerId })`).
   */
  readonly index: MafaldaIndex
  /** Closes idle pipes, Routers and Workers now (it also runs on its own interval). */
  readonly scaleDown: () => Promise<number>
  /** The local mediasoup Workers (for inspection and tests). */
  readonly workers: () => Promise<ReadonlyArray<types.Worker>>
  /**
   * Typed events: `newrouter`, `newwebrtcserver`, `workerdied`, `pipe`, `overload`,
   * `scaledown`, `relocation` (see `MafaldaEvents`).
   */
  readonly observer: EnhancedEventEmitter<MafaldaEvents>
  readonly closed: boolean
  /** Closes every Mafalda Router and Worker, and waits for the Worker processes to exit. */
  readonly close: () => Promise<void>
  /** @internal For `mafalda/mediasoup`. */
  readonly internals: MafaldaInternals
  /** @internal Runs an Effect of this instance as a Promise, with mediasoup's errors. */
  readonly run: <A>(effect: Effect.Effect<A, MafaldaRouterError>) => Promise<A>
}

/** The Index, as `MafaldaInstance.index` offers it. */
export interface MafaldaIndex {
  /** Where the producer lives; `undefined` when the Index has no producer with that id. */
  readonly find: (producerId: string) => Promise<ProducerLocation | undefined>
}

/** Mafalda's options, and `cluster` for cluster mode (see `ClusterModeOptions`). */
export type CreateMafaldaOptions = MafaldaOptionsInput & {
  /**
   * Cluster mode: this process is also a Mafalda Node of the cluster (Redis, RPC), and
   * transports go to other Nodes when this one has no room. Without it (the default): one
   * process, nothing of the cluster loaded.
   */
  readonly cluster?: ClusterModeOptions | undefined
}

export const createMafalda = async (options: CreateMafaldaOptions = {}): Promise<MafaldaInstance> => {
  const { cluster, ...rest } = (options ?? {}) as CreateMafaldaOptions
  const resolved = resolveMafaldaOptions(rest)
  if (Either.isLeft(resolved)) throw toMediasoupError(resolved.left)
  let layer = layerFromResolved(resolved.right) as Layer.Layer<LocalServices, unknown>
  if (cluster !== undefined) {
    const bad = badClusterOptions(cluster)
    if (bad !== undefined) throw new TypeError(`invalid Mafalda options: ${bad}`)
    // Loaded only in cluster mode: the embedded path never loads Redis or RPC (optional
    // peer dependencies: when one is missing, the error says what to install).
    const { layerCluster } = await import("./cluster/ClusterMafalda.js").catch(async (error: unknown) => {
      const { missingPackagesMessage } = await import("./cluster/optionalPackages.js")
      const message = missingPackagesMessage(error, "createMafalda({ cluster })")
      throw message === undefined ? error : new Error(message, { cause: error })
    })
    layer = layerCluster(resolved.right, cluster)
  }
  const runtime = ManagedRuntime.make(layer)
  const { mafalda, store, scaleDown, workers, local, index } = await runtime
    .runPromise(
      Effect.all({
        mafalda: Mafalda,
        store: SnapshotStore,
        scaleDown: ScaleDown,
        workers: WorkerService,
        local: LocalMediasoup,
        index: IndexService
      })
    )
    .catch(async (error: unknown) => {
      await runtime.dispose()
      throw error
    })
  const internals = internalsOf(mafalda)!
  const effectRuntime = await runtime.runtime()
  let closed = false
  const closedError = () => toMediasoupError(new ClosedError({ message: "Mafalda closed" }))
  const run = <A>(effect: Effect.Effect<A, MafaldaRouterError>): Promise<A> =>
    closed ? Promise.reject(closedError()) : runWith(effectRuntime, effect)
  return {
    createRouter: (routerOptions) => run(mafalda.createRouter(routerOptions)),
    createWebRtcServer: (serverOptions) => run(mafalda.createWebRtcServer(serverOptions)),
    status: () => run(mafalda.status),
    snapshot: () => {
      if (closed) throw closedError()
      return store.current()
    },
    index: {
      find: (producerId) =>
        run(
          typeof producerId !== "string" || producerId === ""
            ? Effect.fail(new InvalidArgumentError({ message: "producerId must be a non-empty string" }))
            : index.find(producerId as never).pipe(
                Effect.map(Option.getOrUndefined),
                Effect.mapError(
                  (cause) =>
                    new MediasoupCallError({
                      operation: "index.find",
                      cause: new Error(`the Index did not answer: ${cause.message}`)
                    })
                )
              )
        )
    },
    scaleDown: () => run(Effect.map(scaleDown.run, (done) => done.length)),
    workers: () =>
      run(
        Effect.map(workers.workers, (infos) =>
          infos.flatMap((w) => {
            const worker = local.worker(w.id)
            return worker === undefined ? [] : [worker]
          })
        )
      ),
    observer: mafalda.observer,
    get closed() {
      return closed
    },
    close: async () => {
      if (closed) return
      closed = true
      await runtime.dispose()
    },
    internals,
    run
  }
}
