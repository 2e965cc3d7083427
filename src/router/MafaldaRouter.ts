/**
 * The Mafalda Router: one object with the API of a mediasoup `Router` (3.14) that places
 * each transport on one of many underlying Routers on many Workers, as the functional core
 * decides, and pipes producers between them when a consumer needs it.
 *
 * Each method exists twice over the same code: as an Effect with typed errors
 * (`router.effect.createWebRtcTransport(...)`) and as a Promise that rejects with the error
 * mediasoup would throw (`router.createWebRtcTransport(...)`).
 *
 * Events: `workerclose` (Mafalda closed under it), `workerdied` (a Worker behind it died:
 * `(error, workerId)`), `newrouter` (it started using another underlying Router:
 * `(router, worker)`, mediasoup objects). Observer: `close`, `newtransport`,
 * `newrtpobserver`.
 *
 * @module
 */
import { EventEmitter } from "node:events"
import { Effect } from "effect"
import type { types } from "mediasoup"
import type { MafaldaRouterId, ProducerId, RouterId, RtpObserverId, WorkerId } from "../core/Ids.js"
import { lookup, type TransportKind, workerOfRouter } from "../core/Snapshot.js"
import type { Placed } from "../services/Placement.js"
import type { RouterSettings, WorkerSettings } from "../services/SettingsKeys.js"
import { ClosedError, InvalidArgumentError, type MafaldaRouterError, MediasoupCallError } from "./errors.js"
import { call, type MafaldaContext, runPromise, sharedKey, visibleTo } from "./MafaldaContext.js"
import { makeDataPipeMirrors, makePipeMirrors } from "./pipeMirrors.js"
import {
  dataConsumersOf,
  forgetMirror,
  pinDataPipe,
  setMirrorPaused,
  wrapRtpObserver,
  wrapTransport
} from "./wrapTransport.js"

export interface MafaldaRouterOptions<AppData extends types.AppData = types.AppData> {
  readonly mediaCodecs?: ReadonlyArray<types.RtpCodecCapability> | undefined
  readonly appData?: AppData | undefined
  /** Worker settings of this Mafalda Router (default: Mafalda's). */
  readonly workerSettings?: WorkerSettings | undefined
}

/** What `pipeToRouter` accepts: mediasoup's options with a Mafalda Router (or a Router) as target. */
export type MafaldaPipeToRouterOptions = Omit<types.PipeToRouterOptions, "router"> & {
  readonly router: MafaldaRouter | types.Router
}

type Creator<O, T> = (router: types.Router, options: O) => Promise<T>

export class MafaldaRouter<AppData extends types.AppData = types.AppData> extends EventEmitter {
  readonly #ctx: MafaldaContext
  readonly #id: MafaldaRouterId
  readonly #rtpCapabilities: types.RtpCapabilities
  readonly #observer = new EventEmitter()
  readonly #transports = new Set<types.Transport>()
  readonly #rtpObservers = new Set<types.RtpObserver>()
  readonly #onClose: () => void
  #closed = false
  #appData: AppData
  /** Settings this Mafalda Router was created with. */
  readonly settings: { readonly worker: WorkerSettings; readonly router: RouterSettings }

  /** @internal Made by `Mafalda.createRouter`. */
  constructor(args: {
    readonly ctx: MafaldaContext
    readonly id: MafaldaRouterId
    readonly rtpCapabilities: types.RtpCapabilities
    readonly appData: AppData
    readonly settings: { readonly worker: WorkerSettings; readonly router: RouterSettings }
    readonly onClose: () => void
  }) {
    super()
    this.#ctx = args.ctx
    this.#id = args.id
    this.#rtpCapabilities = args.rtpCapabilities
    this.#appData = args.appData
    this.settings = args.settings
    this.#onClose = args.onClose
  }

  get id(): string {
    return this.#id
  }
  get closed(): boolean {
    return this.#closed
  }
  get rtpCapabilities(): types.RtpCapabilities {
    return this.#rtpCapabilities
  }
  get appData(): AppData {
    return this.#appData
  }
  set appData(appData: AppData) {
    this.#appData = appData
  }
  get observer(): EventEmitter {
    return this.#observer
  }

  /** The underlying Routers this Mafalda Router uses now (ids). */
  get routerIds(): ReadonlyArray<string> {
    const m = this.#ctx.store.current().mafaldaRouters
    for (const [id, value] of m) if (id === this.#id) return Array.from(value.routers)
    return []
  }

  // --- Effect API ----------------------------------------------------------------------

  readonly effect = {
    createWebRtcTransport: (options: types.WebRtcTransportOptions) =>
      this.#createTransport("webrtc", "createWebRtcTransport", options, (r, o) => r.createWebRtcTransport(o)),
    createPlainTransport: (options: types.PlainTransportOptions) =>
      this.#createTransport("plain", "createPlainTransport", options, (r, o) => r.createPlainTransport(o)),
    createPipeTransport: (options: types.PipeTransportOptions) =>
      this.#createTransport("pipe", "createPipeTransport", options, (r, o) => r.createPipeTransport(o)),
    createDirectTransport: (options: Partial<types.DirectTransportOptions> = {}) =>
      this.#createTransport("direct", "createDirectTransport", options, (r, o) =>
        r.createDirectTransport(o as types.DirectTransportOptions)
      ),
    createActiveSpeakerObserver: (options: types.ActiveSpeakerObserverOptions = {}) =>
      this.#createRtpObserver("createActiveSpeakerObserver", options, (r, o) =>
        r.createActiveSpeakerObserver(o)
      ),
    createAudioLevelObserver: (options: types.AudioLevelObserverOptions = {}) =>
      this.#createRtpObserver("createAudioLevelObserver", options, (r, o) => r.createAudioLevelObserver(o)),
    pipeToRouter: (options: MafaldaPipeToRouterOptions) => this.#pipeToRouter(options)
  }

  // --- mediasoup's Promise API -----------------------------------------------------------

  createWebRtcTransport(options: types.WebRtcTransportOptions): Promise<types.WebRtcTransport> {
    return runPromise(this.#ctx, this.effect.createWebRtcTransport(options))
  }
  createPlainTransport(options: types.PlainTransportOptions): Promise<types.PlainTransport> {
    return runPromise(this.#ctx, this.effect.createPlainTransport(options))
  }
  createPipeTransport(options: types.PipeTransportOptions): Promise<types.PipeTransport> {
    return runPromise(this.#ctx, this.effect.createPipeTransport(options))
  }
  createDirectTransport(options: Partial<types.DirectTransportOptions> = {}): Promise<types.DirectTransport> {
    return runPromise(this.#ctx, this.effect.createDirectTransport(options))
  }
  createActiveSpeakerObserver(
    options: types.ActiveSpeakerObserverOptions = {}
  ): Promise<types.ActiveSpeakerObserver> {
    return runPromise(this.#ctx, this.effect.createActiveSpeakerObserver(options))
  }
  createAudioLevelObserver(options: types.AudioLevelObserverOptions = {}): Promise<types.AudioLevelObserver> {
    return runPromise(this.#ctx, this.effect.createAudioLevelObserver(options))
  }
  pipeToRouter(options: MafaldaPipeToRouterOptions): Promise<types.PipeToRouterResult> {
    return runPromise(this.#ctx, this.effect.pipeToRouter(options))
  }

  /** Whether `rtpCapabilities` can consume the producer (which this Mafalda Router must see). */
  canConsume({
    producerId,
    rtpCapabilities
  }: {
    producerId: string
    rtpCapabilities: types.RtpCapabilities
  }): boolean {
    const entry = this.#ctx.producers.get(producerId)
    if (entry === undefined || !visibleTo(this.#ctx, this.#id).has(producerId)) return false
    const router = this.#ctx.local.router(entry.router)
    return router?.canConsume({ producerId, rtpCapabilities }) ?? false
  }

  /** Closes the Mafalda Router: its transports and RTP observers (not the shared Routers). */
  close(): void {
    if (this.#closed) return
    this.#shutdown()
    this.#observer.emit("close")
  }

  /** @internal Mafalda closed under this Router. */
  workerClosed(): void {
    if (this.#closed) return
    this.#shutdown()
    this.emit("workerclose")
    this.#observer.emit("close")
  }

  /** @internal A Worker behind this Router died. */
  workerDied(worker: WorkerId, reason: string): void {
    if (this.#closed) return
    this.emit("workerdied", new Error(`Worker ${worker} died: ${reason}`), worker)
  }

  #shutdown(): void {
    this.#closed = true
    for (const t of this.#transports) t.close()
    for (const o of this.#rtpObservers) o.close()
    this.#transports.clear()
    this.#rtpObservers.clear()
    for (const key of this.#ctx.sharedConsumers.keys()) {
      if (key.startsWith(`${this.#id} `)) this.#ctx.sharedConsumers.delete(key)
    }
    this.#ctx.visible.delete(this.#id)
    this.#ctx.fork(this.#ctx.placement.closeMafaldaRouter(this.#id))
    this.#onClose()
  }

  #checkOpen(): Effect.Effect<void, ClosedError> {
    return this.#closed ? Effect.fail(new ClosedError({ message: "Router closed" })) : Effect.void
  }

  #announce(placement: Placed): void {
    if (!placement.added) return
    const router = this.#ctx.local.router(placement.router)
    const worker = this.#ctx.local.worker(placement.worker)
    this.emit("newrouter", router, worker)
  }

  #localRouter(id: RouterId): Effect.Effect<types.Router, MediasoupCallError> {
    const router = this.#ctx.local.router(id)
    return router === undefined
      ? Effect.fail(
          new MediasoupCallError({ operation: "router", cause: new Error(`Router ${id} is not local`) })
        )
      : Effect.succeed(router)
  }

  /** Runs a mediasoup creator on the local Router behind `routerId`. */
  #onLocalRouter<O, T>(routerId: RouterId, operation: string, options: O, f: Creator<O, T>) {
    return Effect.flatMap(this.#localRouter(routerId), (router) => call(operation, () => f(router, options)))
  }

  #createTransport<O, T extends types.Transport>(
    kind: TransportKind,
    operation: string,
    options: O,
    f: Creator<O, T>
  ): Effect.Effect<T, MafaldaRouterError> {
    const ctx = this.#ctx
    return Effect.gen(this, function* () {
      yield* this.#checkOpen()
      const placed = yield* ctx.placement.placeTransport(
        this.#id,
        kind,
        (routerId) => this.#onLocalRouter(routerId, operation, options, f),
        (t) => t.id
      )
      this.#announce(placed)
      const transport = wrapTransport(ctx, this.#id, placed.router, placed.transport)
      this.#transports.add(transport)
      placed.transport.observer.once("close", () => this.#transports.delete(transport))
      if (this.#closed) transport.close()
      this.#observer.emit("newtransport", transport)
      return transport
    })
  }

  #createRtpObserver<O, T extends types.RtpObserver>(
    operation: string,
    options: O,
    f: Creator<O, T>
  ): Effect.Effect<T, MafaldaRouterError> {
    const ctx = this.#ctx
    return Effect.gen(this, function* () {
      yield* this.#checkOpen()
      // Created and recorded under the placement lock: the Router is in use from then on.
      const placed = yield* ctx.placement.placeRtpObserver(
        this.#id,
        (routerId) => this.#onLocalRouter(routerId, operation, options, f),
        (o) => o.id
      )
      this.#announce(placed)
      const observer = placed.transport
      const wrapped = wrapRtpObserver(ctx, this.#id, placed.router, observer)
      this.#rtpObservers.add(wrapped)
      observer.observer.once("close", () => {
        this.#rtpObservers.delete(wrapped)
        ctx.store.recordNow({
          _tag: "RtpObserverClosed",
          observer: observer.id as RtpObserverId,
          router: placed.router
        })
      })
      if (this.#closed) observer.close()
      this.#observer.emit("newrtpobserver", wrapped)
      return wrapped
    })
  }

  #pipeToRouter(
    options: MafaldaPipeToRouterOptions
  ): Effect.Effect<types.PipeToRouterResult, MafaldaRouterError> {
    const ctx = this.#ctx
    return Effect.gen(this, function* () {
      yield* this.#checkOpen()
      const { producerId, dataProducerId, router: target } = options ?? ({} as MafaldaPipeToRouterOptions)
      if (producerId === undefined && dataProducerId === undefined) {
        return yield* new InvalidArgumentError({ message: "missing producerId or dataProducerId" })
      }
      if (producerId !== undefined && dataProducerId !== undefined) {
        return yield* new InvalidArgumentError({ message: "just producerId or dataProducerId can be given" })
      }
      if (target === undefined || target === null)
        return yield* new InvalidArgumentError({ message: "Router not found" })
      if ((target as unknown) === this) {
        return yield* new InvalidArgumentError({ message: "cannot use this Router as destination" })
      }
      const visible = visibleTo(ctx, this.#id)
      const id = (producerId ?? dataProducerId) as string
      if (!visible.has(id)) {
        return yield* new InvalidArgumentError({
          message: producerId !== undefined ? "Producer not found" : "DataProducer not found"
        })
      }
      if (!(target instanceof MafaldaRouter)) {
        // A plain mediasoup Router: a real pipe from the Router the producer lives on.
        const entry = producerId !== undefined ? ctx.producers.get(producerId) : ctx.dataProducers.get(id)
        const from = entry === undefined ? undefined : ctx.local.router(entry.router)
        if (from === undefined) return yield* new InvalidArgumentError({ message: "Producer not found" })
        return yield* call("pipeToRouter", () =>
          from.pipeToRouter({ ...options, router: target } as types.PipeToRouterOptions)
        )
      }
      if (target.closed) return yield* new ClosedError({ message: "destination Router closed" })
      const destination = visibleTo(ctx, target.#id)
      if (destination.has(id)) {
        return yield* new InvalidArgumentError({ message: "destination Router already has this producer" })
      }
      if (dataProducerId !== undefined) return yield* this.#pipeDataToRouter(dataProducerId, target)
      const entry = ctx.producers.get(id)
      if (entry === undefined) return yield* new InvalidArgumentError({ message: "Producer not found" })
      const outcome = yield* ctx.placement.pipeToMafaldaRouter(id as ProducerId, this.#id, target.#id)
      destination.add(id)
      if (outcome._tag === "Shared") {
        target.#announce(outcome)
        const key = sharedKey(target.#id, id)
        const consumersThere = () => ctx.sharedConsumers.get(key) ?? new Set<types.Consumer>()
        // Pausing the mirror pauses the destination's consumers only, shown to them as
        // `producerPaused` (see pipeMirrors.ts): the original producer keeps flowing.
        return makePipeMirrors(entry.producer, {
          onPause: () => setMirrorPaused(ctx, target.#id, id, true),
          onResume: () => setMirrorPaused(ctx, target.#id, id, false),
          onClose: () => {
            destination.delete(id)
            forgetMirror(ctx, target.#id, id)
            for (const c of consumersThere()) c.close()
            ctx.sharedConsumers.delete(key)
          }
        }) as unknown as types.PipeToRouterResult
      }
      target.#announce(outcome.placement)
      const pipe = ctx.local.pipe(id as ProducerId, outcome.pipe.to)
      if (pipe === undefined) return {}
      pipe.producer.observer.once("close", () => destination.delete(id))
      return { pipeConsumer: pipe.consumer, pipeProducer: pipe.producer }
    })
  }

  /**
   * `pipeToRouter({ dataProducerId })` to another Mafalda Router (checked already). Data
   * producers are not placed by the core. When the destination accepts the settings of the
   * Router that carries the data producer, it shares it: mirror objects, no pipe (its data
   * consumers on other Routers get one as usual, from `consumeData`). Otherwise mediasoup's
   * own data pipe into a Router placed for the destination, held until the application
   * closes it (data consumers there use it too). Either way, closing the returned pipe data
   * producer (or consumer) closes the destination's data consumers of it, and the
   * destination no longer sees it.
   */
  #pipeDataToRouter(
    id: string,
    target: MafaldaRouter
  ): Effect.Effect<types.PipeToRouterResult, MafaldaRouterError> {
    const ctx = this.#ctx
    return Effect.gen(this, function* () {
      const entry = ctx.dataProducers.get(id)
      if (entry === undefined) return yield* new InvalidArgumentError({ message: "DataProducer not found" })
      const destination = visibleTo(ctx, target.#id)
      const closeConsumersThere = () => {
        for (const c of Array.from(dataConsumersOf(ctx, target.#id, id))) c.close()
      }
      const snapshot = ctx.store.current()
      const carrier = lookup(snapshot.routers, entry.router)
      const to = lookup(snapshot.mafaldaRouters, target.#id)
      const shares =
        carrier !== undefined &&
        to !== undefined &&
        carrier.settings === to.routerSettings &&
        workerOfRouter(snapshot, entry.router)?.settings === to.workerSettings
      let piped: types.PipeToRouterResult | undefined
      if (!shares) {
        const placement = yield* ctx.placement.placeRouter(target.#id)
        target.#announce(placement)
        piped = yield* call("pipeToRouter", () => pinDataPipe(ctx, id, placement.router))
      }
      if (target.#closed) {
        piped?.pipeDataProducer?.close()
        return yield* new ClosedError({ message: "destination Router closed" })
      }
      destination.add(id)
      if (piped?.pipeDataProducer !== undefined) {
        piped.pipeDataProducer.observer.once("close", () => {
          destination.delete(id)
          // The data producer itself closed: mediasoup closes them (`dataproducerclose`).
          if (!entry.dataProducer.closed) closeConsumersThere()
        })
        return piped
      }
      // Paused by the mirror (and not by the application), to resume with it.
      const pausedByMirror = new Set<types.DataConsumer>()
      return makeDataPipeMirrors(entry.dataProducer, {
        onPause: async () => {
          const toPause = Array.from(dataConsumersOf(ctx, target.#id, id)).filter((c) => !c.paused)
          for (const c of toPause) pausedByMirror.add(c)
          await Promise.all(toPause.map((c) => c.pause().catch(() => undefined)))
        },
        onResume: async () => {
          const toResume = Array.from(pausedByMirror).filter((c) => !c.closed)
          pausedByMirror.clear()
          await Promise.all(toResume.map((c) => c.resume().catch(() => undefined)))
        },
        onClose: (cause) => {
          destination.delete(id)
          pausedByMirror.clear()
          if (cause === "mirror") closeConsumersThere()
        }
      }) as unknown as types.PipeToRouterResult
    })
  }
}
