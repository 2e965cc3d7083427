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
 * Bad options reject with a `TypeError`; calls on closed objects with mediasoup's
 * `InvalidStateError`.
 *
 * @module
 */
import type { EventEmitter } from "node:events"
import { Effect, Either, ManagedRuntime } from "effect"
import type { types } from "mediasoup"
import type { ClusterSnapshot } from "./core/Snapshot.js"
import { layerFromResolved } from "./layers/Mafalda.js"
import { ClosedError, type MafaldaRouterError, toMediasoupError } from "./router/errors.js"
import { runWith } from "./router/MafaldaContext.js"
import { type MafaldaOptionsInput, resolveMafaldaOptions } from "./router/MafaldaOptions.js"
import type { MafaldaRouter, MafaldaRouterOptions } from "./router/MafaldaRouter.js"
import type { ClusterStatus } from "./router/status.js"
import { LocalMediasoup } from "./services/LocalMediasoup.js"
import { Mafalda } from "./services/Mafalda.js"
import { ScaleDown } from "./services/ScaleDown.js"
import { SnapshotStore } from "./services/SnapshotStore.js"
import { WorkerService } from "./services/WorkerService.js"

export interface MafaldaInstance {
  /** Makes a Mafalda Router: the API of a mediasoup `Router` over all local Workers. */
  readonly createRouter: <AppData extends types.AppData = types.AppData>(
    options?: MafaldaRouterOptions<AppData>
  ) => Promise<MafaldaRouter<AppData>>
  /** Workers, loads, stream trees and pipes, as plain JSON-able data. */
  readonly status: () => Promise<ClusterStatus>
  /** The cluster snapshot now. */
  readonly snapshot: () => ClusterSnapshot
  /** Closes idle pipes, Routers and Workers now (it also runs on its own interval). */
  readonly scaleDown: () => Promise<number>
  /** The local mediasoup Workers (for inspection and tests). */
  readonly workers: () => Promise<ReadonlyArray<types.Worker>>
  /** Emits `newrouter` (a Mafalda Router). */
  readonly observer: EventEmitter
  readonly closed: boolean
  /** Closes every Mafalda Router and Worker, and waits for the Worker processes to exit. */
  readonly close: () => Promise<void>
}

export const createMafalda = async (options: MafaldaOptionsInput = {}): Promise<MafaldaInstance> => {
  const resolved = resolveMafaldaOptions(options)
  if (Either.isLeft(resolved)) throw toMediasoupError(resolved.left)
  const runtime = ManagedRuntime.make(layerFromResolved(resolved.right))
  const { mafalda, store, scaleDown, workers, local } = await runtime.runPromise(
    Effect.all({
      mafalda: Mafalda,
      store: SnapshotStore,
      scaleDown: ScaleDown,
      workers: WorkerService,
      local: LocalMediasoup
    })
  )
  const effectRuntime = await runtime.runtime()
  const run = <A>(effect: Effect.Effect<A, MafaldaRouterError>) => runWith(effectRuntime, effect)
  let closed = false
  const guard = () => {
    if (closed) throw toMediasoupError(new ClosedError({ message: "Mafalda closed" }))
  }
  return {
    createRouter: async (routerOptions) => {
      guard()
      return run(mafalda.createRouter(routerOptions))
    },
    status: () => runtime.runPromise(mafalda.status),
    snapshot: () => store.current(),
    scaleDown: () => runtime.runPromise(Effect.map(scaleDown.run, (done) => done.length)),
    workers: () =>
      runtime.runPromise(
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
    }
  }
}
