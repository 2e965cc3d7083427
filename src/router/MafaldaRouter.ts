/**
 * The Mafalda Router: one object with the API of a mediasoup `Router` (3.14) that places
 * each transport on one of many underlying Routers on many Workers, as the functional core
 * decides, and pipes producers between them when a consumer needs it.
 *
 * It is a mediasoup `Router` to the type checker and to `instanceof` (it extends mediasoup's
 * class, overriding every public method; the base class gets an inert channel), so code
 * typed against `types.Router` takes it.
 *
 * In cluster mode a transport the core delegates to another Mafalda Node is made there
 * through `Delegation` (`src/services/Delegation.ts`) and returned as an object with
 * mediasoup's Transport API backed by RPC; embedded (the default), nothing is delegated.
 *
 * Each method exists twice over the same code: as an Effect with typed errors
 * (`router.effect.createWebRtcTransport(...)`) and as a Promise that rejects with the error
 * mediasoup would throw (`router.createWebRtcTransport(...)`).
 *
 * Events (typed, `MafaldaRouterEvents`): mediasoup's `workerclose` (Mafalda, or the
 * `mafalda/mediasoup` Worker it belongs to, closed under it), and Mafalda's `workerdied` (a
 * Worker behind it died: `(error, workerId)`; the transports there closed with
 * `routerclose`) and `newrouter` (it started using another underlying Router:
 * `(router, worker)`, mediasoup objects) and `relocation` (one of its transports is offered
 * for a move to another Worker, with the helper that carries it out: see `relocation.ts`;
 * `relocateTransport` offers one). Observer: mediasoup's `close`, `newtransport`,
 * `newrtpobserver`. Its transports and RTP observers emit `routerclose` when it closes, as
 * mediasoup's do.
 *
 * @module
 */
import { Effect } from "effect"
import { types } from "mediasoup"
import type { MafaldaRouterId, NodeId, ProducerId, RouterId, RtpObserverId, WorkerId } from "../core/Ids.js"
import { lookup, type TransportKind, workerOfRouter } from "../core/Snapshot.js"
import { type DelegationShape, embedded } from "../services/Delegation.js"
import type { RouterSettings, WorkerSettings } from "../services/SettingsKeys.js"
import {
  checkActiveSpeakerObserverOptions,
  checkAudioLevelObserverOptions,
  checkDirectTransportOptions,
  checkPipeTransportOptions,
  checkPlainTransportOptions,
  checkWebRtcTransportOptions
} from "./checks.js"
import { retryInDeathWindow } from "./deathWindow.js"
import {
  ClosedError,
  InvalidArgumentError,
  type MafaldaRouterError,
  MediasoupCallError,
  UnsupportedCallError
} from "./errors.js"
import { inertChannel } from "./inertChannel.js"
import { call, type MafaldaContext, runPromise, sharedKey, visibleTo } from "./MafaldaContext.js"
import { makeDataPipeMirrors, makePipeMirrors } from "./pipeMirrors.js"
import {
  type RelocateTransportOptions,
  relocateTransport,
  runSync,
  type TransportRelocation,
  trackTransport
} from "./relocation.js"
import { MafaldaWebRtcServer } from "./webRtcServer.js"
import {
  dataConsumersOf,
  emitPipes,
  forgetMirror,
  pinDataPipe,
  setMirrorPaused,
  wrapRtpObserver,
  wrapTransport
} from "./wrapTransport.js"

export interface MafaldaRouterOptions<AppData extends types.AppData = types.AppData> {
  readonly mediaCodecs?: ReadonlyArray<types.RtpCodecCapability> | undefined
  readonly appData?: AppData | undefined
  /** Worker settings of this Mafalda Router (default: Mafalda's); validated as mediasoup does. */
  readonly workerSettings?: WorkerSettings | undefined
  /**
   * How many participants (transports' owners) the room is expected to reach, its capacity say:
   * placement keeps room for them on the Workers it picks from the first transport on, instead of
   * guessing the room's growth from its recent high. A positive integer; `TypeError` otherwise.
   */
  readonly expectedParticipants?: number | undefined
  /**
   * How many of the expected participants publish (produce media); all of them when not given.
   * A non-negative integer, at most `expectedParticipants`, and only with it; `TypeError` otherwise.
   */
  readonly expectedPublishers?: number | undefined
}

/** The events of a Mafalda Router: mediasoup's `RouterEvents` and Mafalda's own. */
export type MafaldaRouterEvents = types.RouterEvents & {
  /** A Worker behind it died (`(error, workerId)`); it stays open on the others. */
  workerdied: [Error, string]
  /** It started using another underlying Router (mediasoup objects). */
  newrouter: [types.Router, types.Worker | undefined]
  /**
   * One of its transports is offered for a move to another Worker (forced, overload, drain,
   * consolidation, or its Worker died: then before the transport's `routerclose`).
   */
  relocation: [TransportRelocation]
}

type Listener<K extends keyof MafaldaRouterEvents> = (...args: MafaldaRouterEvents[K]) => void
type Emit = (eventName: string, ...args: Array<unknown>) => boolean
type On<R> = (eventName: string, listener: never) => R

/** What `pipeToRouter` accepts: mediasoup's options; the target a Mafalda Router or a mediasoup Router. */
export type MafaldaPipeToRouterOptions = types.PipeToRouterOptions

type Creator<O, T> = (router: types.Router, options: O) => Promise<T>

/** A mediasoup Router dump, as `Router.dump()` resolves it. */
export type RouterDump = Awaited<ReturnType<types.Router["dump"]>>

export class MafaldaRouter<AppData extends types.AppData = types.AppData> extends types.Router<AppData> {
  readonly #ctx: MafaldaContext
  readonly #id: MafaldaRouterId
  /** Transports on other Nodes (cluster mode; embedded: never). */
  readonly #delegation: DelegationShape
  /** The application's transports (wrapped), by id. */
  readonly #transports = new Map<string, types.Transport>()
  /** Of those, the PipeTransports of `pipeToRouter` between Workers (shared with Mafalda's pipes). */
  readonly #pipeTransports = new Set<string>()
  readonly #rtpObservers = new Map<string, types.RtpObserver>()
  readonly #onClose: () => void
  #closed = false
  /** Settings this Mafalda Router was created with. */
  readonly settings: { readonly worker: WorkerSettings; readonly router: RouterSettings }
  /**
   * @internal The `mafalda/mediasoup` Worker it was made on, if any. Between Routers of two
   * such Workers `pipeToRouter` follows mediasoup: a real pipe, its PipeTransports listed by
   * both Routers; between Routers of one such Worker it fails, as in mediasoup.
   */
  pipeGroup: string | undefined

  /** @internal Made by `Mafalda.createRouter`. */
  constructor(args: {
    readonly ctx: MafaldaContext
    readonly id: MafaldaRouterId
    readonly rtpCapabilities: types.RtpCapabilities
    readonly appData: AppData
    readonly settings: { readonly worker: WorkerSettings; readonly router: RouterSettings }
    readonly onClose: () => void
    /** How transports placed on other Nodes are made (default: embedded, never). */
    readonly delegation?: DelegationShape | undefined
  }) {
    super({
      internal: { routerId: args.id },
      data: { rtpCapabilities: args.rtpCapabilities },
      channel: inertChannel,
      appData: args.appData
    })
    this.#ctx = args.ctx
    this.#id = args.id
    this.settings = args.settings
    this.#onClose = args.onClose
    this.#delegation = args.delegation ?? embedded
  }

  override get closed(): boolean {
    return this.#closed
  }

  /** The application's transports, by id (mediasoup's testing accessor). */
  override get transportsForTesting(): Map<string, types.Transport> {
    return this.#transports
  }

  /** The underlying Routers this Mafalda Router uses now (ids). */
  get routerIds(): ReadonlyArray<string> {
    const m = lookup(this.#ctx.store.current().mafaldaRouters, this.#id)
    return m === undefined ? [] : Array.from(m.routers)
  }

  // --- Typed events (mediasoup's and Mafalda's) ------------------------------------------

  override on<K extends keyof MafaldaRouterEvents & string>(eventName: K, listener: Listener<K>): this {
    return (super.on as On<this>)(eventName, listener as never)
  }
  override once<K extends keyof MafaldaRouterEvents & string>(eventName: K, listener: Listener<K>): this {
    return (super.once as On<this>)(eventName, listener as never)
  }
  override off<K extends keyof MafaldaRouterEvents & string>(eventName: K, listener: Listener<K>): this {
    return (super.off as On<this>)(eventName, listener as never)
  }
  override addListener<K extends keyof MafaldaRouterEvents & string>(
    eventName: K,
    listener: Listener<K>
  ): this {
    return (super.addListener as On<this>)(eventName, listener as never)
  }
  override removeListener<K extends keyof MafaldaRouterEvents & string>(
    eventName: K,
    listener: Listener<K>
  ): this {
    return (super.removeListener as On<this>)(eventName, listener as never)
  }
  override prependListener<K extends keyof MafaldaRouterEvents & string>(
    eventName: K,
    listener: Listener<K>
  ): this {
    return (super.prependListener as On<this>)(eventName, listener as never)
  }
  override prependOnceListener<K extends keyof MafaldaRouterEvents & string>(
    eventName: K,
    listener: Listener<K>
  ): this {
    return (super.prependOnceListener as On<this>)(eventName, listener as never)
  }
  override emit<K extends keyof MafaldaRouterEvents & string>(
    eventName: K,
    ...args: MafaldaRouterEvents[K]
  ): boolean {
    return (super.emit as Emit).call(this, eventName, ...args)
  }
  override safeEmit<K extends keyof MafaldaRouterEvents & string>(
    eventName: K,
    ...args: MafaldaRouterEvents[K]
  ): boolean {
    return (super.safeEmit as Emit).call(this, eventName, ...args)
  }

  // --- Effect API ----------------------------------------------------------------------

  readonly effect = {
    createWebRtcTransport: <T extends types.AppData = types.AppData>(
      options: types.WebRtcTransportOptions<T>
    ): Effect.Effect<types.WebRtcTransport<T>, MafaldaRouterError> =>
      this.#createTransport("webrtc", checkWebRtcTransportOptions, options, (r, o) =>
        this.#createWebRtc(r, o)
      ),
    createPlainTransport: <T extends types.AppData = types.AppData>(
      options: types.PlainTransportOptions<T>
    ): Effect.Effect<types.PlainTransport<T>, MafaldaRouterError> =>
      this.#createTransport("plain", checkPlainTransportOptions, options, (r, o) =>
        call("createPlainTransport", () => r.createPlainTransport(o))
      ),
    createPipeTransport: <T extends types.AppData = types.AppData>(
      options: types.PipeTransportOptions<T>
    ): Effect.Effect<types.PipeTransport<T>, MafaldaRouterError> =>
      this.#createTransport("pipe", checkPipeTransportOptions, options, (r, o) =>
        call("createPipeTransport", () => r.createPipeTransport(o))
      ),
    createDirectTransport: <T extends types.AppData = types.AppData>(
      options?: types.DirectTransportOptions<T>
    ): Effect.Effect<types.DirectTransport<T>, MafaldaRouterError> =>
      this.#createTransport("direct", checkDirectTransportOptions, options, (r, o) =>
        call("createDirectTransport", () => r.createDirectTransport(o))
      ),
    createActiveSpeakerObserver: <T extends types.AppData = types.AppData>(
      options?: types.ActiveSpeakerObserverOptions<T>
    ): Effect.Effect<types.ActiveSpeakerObserver<T>, MafaldaRouterError> =>
      this.#createRtpObserver(
        "createActiveSpeakerObserver",
        checkActiveSpeakerObserverOptions,
        options,
        (r, o) => r.createActiveSpeakerObserver(o)
      ),
    createAudioLevelObserver: <T extends types.AppData = types.AppData>(
      options?: types.AudioLevelObserverOptions<T>
    ): Effect.Effect<types.AudioLevelObserver<T>, MafaldaRouterError> =>
      this.#createRtpObserver("createAudioLevelObserver", checkAudioLevelObserverOptions, options, (r, o) =>
        r.createAudioLevelObserver(o)
      ),
    pipeToRouter: (options: MafaldaPipeToRouterOptions) => this.#pipeToRouter(options),
    dump: (): Effect.Effect<RouterDump, MafaldaRouterError> => this.#dump(),
    relocateTransport: (
      transportId: string,
      options?: RelocateTransportOptions
    ): Effect.Effect<TransportRelocation, MafaldaRouterError> =>
      relocateTransport(this, this.#transports.get(transportId), options)
  }

  // --- mediasoup's Promise API -----------------------------------------------------------

  override createWebRtcTransport<T extends types.AppData = types.AppData>(
    options: types.WebRtcTransportOptions<T>
  ): Promise<types.WebRtcTransport<T>> {
    return runPromise(this.#ctx, this.effect.createWebRtcTransport(options))
  }
  override createPlainTransport<T extends types.AppData = types.AppData>(
    options: types.PlainTransportOptions<T>
  ): Promise<types.PlainTransport<T>> {
    return runPromise(this.#ctx, this.effect.createPlainTransport(options))
  }
  override createPipeTransport<T extends types.AppData = types.AppData>(
    options: types.PipeTransportOptions<T>
  ): Promise<types.PipeTransport<T>> {
    return runPromise(this.#ctx, this.effect.createPipeTransport(options))
  }
  override createDirectTransport<T extends types.AppData = types.AppData>(
    options?: types.DirectTransportOptions<T>
  ): Promise<types.DirectTransport<T>> {
    return runPromise(this.#ctx, this.effect.createDirectTransport(options))
  }
  override createActiveSpeakerObserver<T extends types.AppData = types.AppData>(
    options?: types.ActiveSpeakerObserverOptions<T>
  ): Promise<types.ActiveSpeakerObserver<T>> {
    return runPromise(this.#ctx, this.effect.createActiveSpeakerObserver(options))
  }
  override createAudioLevelObserver<T extends types.AppData = types.AppData>(
    options?: types.AudioLevelObserverOptions<T>
  ): Promise<types.AudioLevelObserver<T>> {
    return runPromise(this.#ctx, this.effect.createAudioLevelObserver(options))
  }
  override pipeToRouter(options: MafaldaPipeToRouterOptions): Promise<types.PipeToRouterResult> {
    return runPromise(this.#ctx, this.effect.pipeToRouter(options))
  }
  /**
   * The underlying Routers' dumps, merged under this Router's id: its own transports and
   * RTP observers, the producers it sees (its own and those piped to it) and its consumers of
   * them; Mafalda's pipes and other Mafalda Routers' objects on shared Routers left out.
   */
  override dump(): Promise<RouterDump> {
    return runPromise(this.#ctx, this.effect.dump())
  }

  /**
   * Offers one of its transports for relocation to another Worker (reason `"Forced"` unless
   * given; to `target.worker` if given, else wherever placement puts it, never on its own
   * Worker): emits `relocation` (here and on the Mafalda instance's observer) and returns
   * the offer, whose `prepare()`, `complete()` and `abandon()` carry it out.
   */
  relocateTransport(transportId: string, options?: RelocateTransportOptions): TransportRelocation {
    return runSync(this.#ctx, this.effect.relocateTransport(transportId, options))
  }

  /** @internal mediasoup's pipe bookkeeping between Routers: not used by Mafalda Routers. */
  override addPipeTransportPair(): void {
    throw new types.UnsupportedError("addPipeTransportPair() is internal to mediasoup Routers")
  }

  /** Whether `rtpCapabilities` can consume the producer (which this Mafalda Router must see). */
  override canConsume({
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

  /** Closes the Mafalda Router: its transports and RTP observers (`routerclose`), not the shared Routers. */
  override close(): void {
    if (this.#closed) return
    this.#shutdown()
    this.emit("@close")
    this.observer.safeEmit("close")
  }

  /** @internal Mafalda (or the `mafalda/mediasoup` Worker it belongs to) closed under this Router. */
  override workerClosed(): void {
    if (this.#closed) return
    this.#shutdown()
    this.safeEmit("workerclose")
    this.observer.safeEmit("close")
  }

  /** @internal A Worker behind this Router died. */
  workerDied(worker: WorkerId, reason: string): void {
    if (this.#closed) return
    this.safeEmit("workerdied", new Error(`Worker ${worker} died: ${reason}`), worker)
  }

  #shutdown(): void {
    this.#closed = true
    // Closed under their Router: `routerclose` (after their children closed, before the
    // observer's `close`), as mediasoup's `routerClosed()` does.
    // The PipeTransports of pipeToRouter between Workers carry Mafalda's pipes too: they stay.
    for (const t of Array.from(this.#transports.values()))
      if (!this.#pipeTransports.has(t.id)) closedByRouter(t)
    for (const o of Array.from(this.#rtpObservers.values())) closedByRouter(o)
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

  /** A failure of work done for this Router: `InvalidStateError` once it is closed meanwhile. */
  #orClosed<A>(effect: Effect.Effect<A, MafaldaRouterError>): Effect.Effect<A, MafaldaRouterError> {
    return Effect.catchAll(effect, (error) =>
      this.#closed ? Effect.fail(new ClosedError({ message: "Router closed" })) : Effect.fail(error)
    )
  }

  #announce(placement: {
    readonly router: RouterId
    readonly worker: WorkerId
    readonly added: boolean
  }): void {
    if (!placement.added) return
    const router = this.#ctx.local.router(placement.router)
    const worker = this.#ctx.local.worker(placement.worker)
    if (router !== undefined) this.safeEmit("newrouter", router, worker)
  }

  /** The Node and Worker of a Router of another Node (undefined: on this Node, or unknown). */
  #remoteNodeOf(id: RouterId): { readonly node: NodeId; readonly worker: WorkerId } | undefined {
    if (this.#ctx.local.router(id) !== undefined) return undefined
    const worker = workerOfRouter(this.#ctx.store.current(), id)
    return worker === undefined || worker.node === this.#ctx.node
      ? undefined
      : { node: worker.node, worker: worker.id }
  }

  #localRouter(id: RouterId): Effect.Effect<types.Router, MediasoupCallError> {
    const router = this.#ctx.local.router(id)
    return router === undefined
      ? Effect.fail(
          new MediasoupCallError({
            operation: "router",
            cause: new types.InvalidStateError(`Router ${id} is not open on this Node`)
          })
        )
      : Effect.succeed(router)
  }

  /** A WebRtcTransport on `router`: with a Mafalda WebRtcServer, through its instance on that Worker. */
  #createWebRtc<T extends types.AppData>(
    router: types.Router,
    options: types.WebRtcTransportOptions<T>
  ): Effect.Effect<types.WebRtcTransport<T>, MafaldaRouterError> {
    const server = options.webRtcServer
    if (!(server instanceof MafaldaWebRtcServer)) {
      return call("createWebRtcTransport", () => router.createWebRtcTransport(options))
    }
    const worker = server.workerOf(router.id)
    if (worker === undefined) {
      return Effect.fail(
        new MediasoupCallError({
          operation: "createWebRtcTransport",
          cause: new types.InvalidStateError(`Router ${router.id} is gone`)
        })
      )
    }
    return Effect.flatMap(server.instanceOn(worker), (instance) =>
      call("createWebRtcTransport", () =>
        router.createWebRtcTransport({
          ...options,
          webRtcServer: instance
        } as types.WebRtcTransportOptions<T>)
      )
    )
  }

  #createTransport<O, T extends types.Transport>(
    kind: TransportKind,
    check: (options: unknown) => string | undefined,
    options: O,
    f: (router: types.Router, options: O) => Effect.Effect<T, MafaldaRouterError>
  ): Effect.Effect<T, MafaldaRouterError> {
    const ctx = this.#ctx
    return Effect.gen(this, function* () {
      yield* this.#checkOpen()
      const bad = check(options)
      if (bad !== undefined) return yield* new InvalidArgumentError({ message: bad })
      const placed = yield* this.#orClosed(
        retryInDeathWindow(ctx, (used) =>
          ctx.placement.placeTransport(
            this.#id,
            kind,
            (routerId): Effect.Effect<T, MafaldaRouterError> => {
              used(routerId)
              const remote = this.#remoteNodeOf(routerId)
              if (remote !== undefined) {
                // The core delegated it to another Node: made there, with mediasoup's API.
                return this.#delegation.createTransport({
                  node: remote.node,
                  worker: remote.worker,
                  router: routerId,
                  mafaldaRouter: this.#id,
                  kind,
                  options
                }) as Effect.Effect<T, MafaldaRouterError>
              }
              return Effect.flatMap(this.#localRouter(routerId), (router) => f(router, options))
            },
            (t) => t.id
          )
        )
      )
      this.#announce(placed)
      const real = placed.transport
      const remote = this.#remoteNodeOf(placed.router) !== undefined
      const transport = wrapTransport(ctx, this.#id, placed.router, real, remote)
      routerOfTransport.set(transport, placed.router)
      const server = (options as { readonly webRtcServer?: unknown } | undefined)?.webRtcServer
      if (server instanceof MafaldaWebRtcServer) {
        server.adopt(real as unknown as types.WebRtcTransport, transport as unknown as types.WebRtcTransport)
      }
      this.#transports.set(transport.id, transport)
      real.observer.once("close", () => this.#transports.delete(transport.id))
      // Relocation moves transports between this Node's Workers only.
      if (!remote) {
        trackTransport(ctx, this, transport, real, {
          kind,
          options,
          router: placed.router,
          worker: placed.worker
        })
      }
      if (this.#closed) {
        closedByRouter(transport)
        return yield* new ClosedError({ message: "Router closed" })
      }
      this.observer.safeEmit("newtransport", transport)
      return transport
    })
  }

  #createRtpObserver<O, T extends types.RtpObserver>(
    operation: string,
    check: (options: unknown) => string | undefined,
    options: O,
    f: Creator<O, T>
  ): Effect.Effect<T, MafaldaRouterError> {
    const ctx = this.#ctx
    return Effect.gen(this, function* () {
      yield* this.#checkOpen()
      const bad = check(options)
      if (bad !== undefined) return yield* new InvalidArgumentError({ message: bad })
      // Created and recorded under the placement lock: the Router is in use from then on.
      const placed = yield* this.#orClosed(
        retryInDeathWindow(ctx, (used) =>
          ctx.placement.placeRtpObserver(
            this.#id,
            (routerId) => {
              used(routerId)
              return Effect.flatMap(this.#localRouter(routerId), (router) =>
                call(operation, () => f(router, options))
              )
            },
            (o) => o.id
          )
        )
      )
      this.#announce(placed)
      const observer = placed.transport
      const wrapped = wrapRtpObserver(ctx, this.#id, placed.router, observer)
      this.#rtpObservers.set(wrapped.id, wrapped)
      observer.observer.once("close", () => {
        this.#rtpObservers.delete(wrapped.id)
        ctx.store.recordNow({
          _tag: "RtpObserverClosed",
          observer: observer.id as RtpObserverId,
          router: placed.router
        })
      })
      if (this.#closed) {
        closedByRouter(wrapped)
        return yield* new ClosedError({ message: "Router closed" })
      }
      this.observer.safeEmit("newrtpobserver", wrapped)
      return wrapped
    })
  }

  #dump(): Effect.Effect<RouterDump, MafaldaRouterError> {
    const ctx = this.#ctx
    return Effect.gen(this, function* () {
      yield* this.#checkOpen()
      const transports = Array.from(this.#transports.values())
      const routers = Array.from(
        new Set(
          transports.flatMap((t) => routerOfTransport.get(t) ?? []).concat(this.routerIds as Array<RouterId>)
        )
      ).flatMap((id) => ctx.local.router(id as RouterId) ?? [])
      const [transportDumps, routerDumps] = yield* call("dump", () =>
        Promise.all([
          Promise.all(transports.map((t) => t.dump().catch(() => undefined))),
          Promise.all(routers.map((r) => r.dump().catch(() => undefined)))
        ])
      )
      return mergeDumps(
        this.#id,
        transports.map((t) => t.id),
        Array.from(this.#rtpObservers.keys()),
        transportDumps.flatMap((d) => (d === undefined ? [] : [d])),
        routerDumps.flatMap((d) => (d === undefined ? [] : [d])),
        visibleTo(ctx, this.#id),
        ctx
      )
    })
  }

  #pipeToRouter(
    options: MafaldaPipeToRouterOptions
  ): Effect.Effect<types.PipeToRouterResult, MafaldaRouterError> {
    const ctx = this.#ctx
    return Effect.gen(this, function* () {
      yield* this.#checkOpen()
      const o = (options ?? {}) as Partial<MafaldaPipeToRouterOptions>
      const { producerId, dataProducerId, router: target } = o
      if (o.listenInfo && o.listenIp) {
        return yield* new InvalidArgumentError({
          message: "only one of listenInfo and listenIp must be given"
        })
      }
      if (!producerId && !dataProducerId) {
        return yield* new InvalidArgumentError({ message: "missing producerId or dataProducerId" })
      }
      if (producerId && dataProducerId) {
        return yield* new InvalidArgumentError({ message: "just producerId or dataProducerId can be given" })
      }
      if (!target) return yield* new InvalidArgumentError({ message: "Router not found" })
      if ((target as unknown) === this) {
        return yield* new InvalidArgumentError({ message: "cannot use this Router as destination" })
      }
      if (!(target instanceof types.Router)) {
        return yield* new InvalidArgumentError({
          message: "router must be a Router (a Mafalda Router or a mediasoup Router)"
        })
      }
      const visible = visibleTo(ctx, this.#id)
      const id = (producerId ?? dataProducerId) as string
      if (!visible.has(id)) {
        return yield* new InvalidArgumentError({
          message: producerId ? "Producer not found" : "DataProducer not found"
        })
      }
      if (!(target instanceof MafaldaRouter)) {
        // A plain mediasoup Router: a real pipe from the Router the producer lives on.
        const entry = producerId ? ctx.producers.get(producerId) : ctx.dataProducers.get(id)
        const from = entry === undefined ? undefined : ctx.local.router(entry.router)
        if (from === undefined) return yield* new InvalidArgumentError({ message: "Producer not found" })
        if (target.closed) return yield* new ClosedError({ message: "destination Router closed" })
        return yield* call("pipeToRouter", () => from.pipeToRouter({ ...options, router: target }))
      }
      if (target.#ctx !== ctx) {
        return yield* new UnsupportedCallError({
          message:
            "cannot pipe to a Router of another Mafalda instance (pipe between Routers of one instance, or to a mediasoup Router)"
        })
      }
      if (target.closed) return yield* new ClosedError({ message: "destination Router closed" })
      const destination = visibleTo(ctx, target.#id)
      if (destination.has(id)) {
        return yield* new InvalidArgumentError({ message: "destination Router already has this producer" })
      }
      if (this.pipeGroup !== undefined && target.pipeGroup !== undefined) {
        if (this.pipeGroup === target.pipeGroup) {
          return yield* new UnsupportedCallError({
            message: "cannot pipe between two Routers of the same Worker (as in mediasoup)"
          })
        }
        const between = yield* this.#pipeBetweenWorkers(id, !dataProducerId, target, o)
        if (between !== undefined) return between
      }
      if (dataProducerId) return yield* this.#pipeDataToRouter(dataProducerId, target)
      const entry = ctx.producers.get(id)
      if (entry === undefined) return yield* new InvalidArgumentError({ message: "Producer not found" })
      const outcome = yield* retryInDeathWindow(ctx, () =>
        ctx.placement.pipeToMafaldaRouter(id as ProducerId, this.#id, target.#id)
      )
      destination.add(id)
      if (outcome._tag === "Shared") {
        target.#announce(outcome)
        const key = sharedKey(target.#id, id)
        const consumersThere = () => ctx.sharedConsumers.get(key) ?? new Set<types.Consumer>()
        // Pausing the mirror pauses the destination's consumers only, shown to them as
        // `producerPaused` (see pipeMirrors.ts): the original producer keeps flowing.
        return makePipeMirrors(
          entry.producer,
          {
            onPause: () => setMirrorPaused(ctx, target.#id, id, true),
            onResume: () => setMirrorPaused(ctx, target.#id, id, false),
            onClose: () => {
              destination.delete(id)
              forgetMirror(ctx, target.#id, id)
              for (const c of consumersThere()) c.close()
              ctx.sharedConsumers.delete(key)
            }
          },
          o.enableRtx === true
        ) as unknown as types.PipeToRouterResult
      }
      target.#announce(outcome.placement)
      emitPipes(ctx, [outcome.pipe], true)
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
  /**
   * `pipeToRouter` between Routers of two `mafalda/mediasoup` Workers, as mediasoup does it:
   * mediasoup's own pipe from the Router that carries the (data) producer into a Router of
   * the destination (one it uses already, else one placed for it), recorded as a pinned pipe,
   * and the PipeTransport pair listed by both Routers. `undefined` when the destination can
   * only use the source's own Router (then the pipe is shared, as between Mafalda Routers).
   */
  #pipeBetweenWorkers(
    id: string,
    media: boolean,
    target: MafaldaRouter,
    options: Partial<MafaldaPipeToRouterOptions>
  ): Effect.Effect<types.PipeToRouterResult | undefined, MafaldaRouterError> {
    const ctx = this.#ctx
    return Effect.gen(this, function* () {
      const source = (media ? ctx.producers.get(id) : ctx.dataProducers.get(id))?.router
      if (source === undefined) {
        return yield* new InvalidArgumentError({
          message: media ? "Producer not found" : "DataProducer not found"
        })
      }
      let to = target.routerIds.find((r) => r !== source) as RouterId | undefined
      if (to === undefined) {
        const placed = yield* retryInDeathWindow(ctx, () => ctx.placement.placeRouter(target.#id))
        target.#announce(placed)
        if (placed.router === source) return undefined
        to = placed.router
      }
      const from = ctx.local.router(source)
      const into = ctx.local.router(to)
      if (from === undefined || into === undefined) {
        return yield* new ClosedError({ message: "a Router of the pipe is gone" })
      }
      const destination = visibleTo(ctx, target.#id)
      let result: types.PipeToRouterResult
      if (!media) {
        result = (yield* call("pipeToRouter", () => pinDataPipe(ctx, id, to as RouterId))) ?? {}
      } else if (ctx.store.receives(id as ProducerId, to)) {
        // Mafalda piped it there already (for a consumer): that pipe, kept from now on.
        const pipe = ctx.local.pipe(id as ProducerId, to)
        if (pipe === undefined) return undefined
        const release = ctx.holds.holdPipe(id as ProducerId, to)
        pipe.producer.observer.once("close", release)
        result = { pipeConsumer: pipe.consumer, pipeProducer: pipe.producer }
      } else {
        const { listenInfo, listenIp, enableSctp, numSctpStreams, enableRtx, enableSrtp } = options
        result = yield* call("pipeToRouter", () =>
          from.pipeToRouter({
            producerId: id,
            router: into,
            ...(listenIp === undefined
              ? { listenInfo: listenInfo ?? { protocol: "udp", ip: "127.0.0.1" } }
              : { listenIp }),
            ...(enableSctp === undefined ? {} : { enableSctp }),
            ...(numSctpStreams === undefined ? {} : { numSctpStreams }),
            ...(enableRtx === undefined ? {} : { enableRtx }),
            ...(enableSrtp === undefined ? {} : { enableSrtp })
          } as types.PipeToRouterOptions)
        )
        const at = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
        yield* ctx.store.apply({
          _tag: "PipeCreated",
          producer: id as ProducerId,
          from: source,
          to,
          pinned: true,
          at
        })
        const made = to
        result.pipeProducer?.observer.once("close", () =>
          ctx.store.recordNow({ _tag: "PipeClosed", producer: id as ProducerId, to: made })
        )
        emitPipes(
          ctx,
          [{ producer: id as ProducerId, from: source, to, pipeConsumer: "", pipeProducer: id }],
          true
        )
      }
      destination.add(id)
      const forget = () => destination.delete(id)
      result.pipeProducer?.observer.once("close", forget)
      result.pipeDataProducer?.observer.once("close", forget)
      this.#listPipeTransports(result, from, into, target)
      return result
    })
  }

  /** Lists the PipeTransport pair of a pipe between Workers in this Router and `target`. */
  #listPipeTransports(
    result: types.PipeToRouterResult,
    from: types.Router,
    into: types.Router,
    target: MafaldaRouter
  ): void {
    const isPipe = (t: types.Transport): t is types.PipeTransport => t.constructor.name === "PipeTransport"
    const inner = (t: types.Transport) =>
      t as unknown as {
        readonly consumers: Map<string, unknown>
        readonly dataConsumers: Map<string, unknown>
      }
    const consumer = result.pipeConsumer?.id ?? result.pipeDataConsumer?.id
    const local = Array.from(from.transportsForTesting.values()).find(
      (t): t is types.PipeTransport =>
        isPipe(t) &&
        consumer !== undefined &&
        (inner(t).consumers.has(consumer) || inner(t).dataConsumers.has(consumer))
    )
    if (local === undefined) return
    const remote = Array.from(into.transportsForTesting.values()).find(
      (t): t is types.PipeTransport =>
        isPipe(t) &&
        t.tuple.localPort === local.tuple.remotePort &&
        t.tuple.remotePort === local.tuple.localPort
    )
    this.#listPipeTransport(local)
    if (remote !== undefined) target.#listPipeTransport(remote)
  }

  #listPipeTransport(transport: types.PipeTransport): void {
    if (this.#transports.has(transport.id) || transport.closed) return
    this.#transports.set(transport.id, transport)
    this.#pipeTransports.add(transport.id)
    transport.observer.once("close", () => {
      this.#transports.delete(transport.id)
      this.#pipeTransports.delete(transport.id)
    })
    this.observer.safeEmit("newtransport", transport)
  }

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
        const placement = yield* retryInDeathWindow(ctx, () => ctx.placement.placeRouter(target.#id))
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

/** The Router each wrapped transport was placed on (for `dump`). */
export const routerOfTransport = new WeakMap<object, RouterId>()

/**
 * Closes a transport or RTP observer as its Router's closing does in mediasoup: its children
 * close, then it emits `routerclose`, then its observer `close`. (`close()` tells the
 * underlying Router, which stays open for others; `@close` comes right before the observer's
 * `close`, and `routerclose` is emitted then.)
 */
const closedByRouter = (closable: types.Transport | types.RtpObserver): void => {
  if (closable.closed) return
  const emitter = closable as unknown as {
    once(event: "@close", listener: () => void): unknown
    safeEmit(event: "routerclose"): boolean
  }
  emitter.once("@close", () => emitter.safeEmit("routerclose"))
  closable.close()
}

type KeyValues = { key: string; values: Array<string> }
type KeyValue = { key: string; value: string }

/**
 * One Router dump for a Mafalda Router out of its transports' and its underlying Routers'
 * dumps: what mediasoup's own Router would list if it were alone to hold them.
 */
const mergeDumps = (
  id: string,
  transportIds: ReadonlyArray<string>,
  rtpObserverIds: ReadonlyArray<string>,
  transports: ReadonlyArray<{
    producerIds: Array<string>
    consumerIds: Array<string>
    dataProducerIds: Array<string>
    dataConsumerIds: Array<string>
  }>,
  routers: ReadonlyArray<RouterDump>,
  visible: ReadonlySet<string>,
  ctx: MafaldaContext
): RouterDump => {
  const consumers = new Set(transports.flatMap((t) => t.consumerIds))
  const dataConsumers = new Set(transports.flatMap((t) => t.dataConsumerIds))
  const observers = new Set(rtpObserverIds)
  const producers = Array.from(visible).filter((p) => ctx.producers.has(p))
  const dataProducers = Array.from(visible).filter((p) => ctx.dataProducers.has(p))
  const collect = (
    keys: ReadonlyArray<string>,
    pick: (d: RouterDump) => ReadonlyArray<KeyValues>,
    keep: ReadonlySet<string>
  ): Array<KeyValues> => {
    const values = new Map<string, Array<string>>(keys.map((k) => [k, []]))
    for (const d of routers) {
      for (const { key, values: vs } of pick(d)) {
        const into = values.get(key)
        if (into === undefined) continue
        for (const v of vs) if (keep.has(v) && !into.includes(v)) into.push(v)
      }
    }
    return Array.from(values, ([key, vs]) => ({ key, values: vs }))
  }
  const pairs = (pick: (d: RouterDump) => ReadonlyArray<KeyValue>, keep: ReadonlySet<string>) => {
    const out = new Map<string, string>()
    for (const d of routers) for (const { key, value } of pick(d)) if (keep.has(key)) out.set(key, value)
    return Array.from(out, ([key, value]) => ({ key, value }))
  }
  return {
    id,
    transportIds: [...transportIds],
    rtpObserverIds: [...rtpObserverIds],
    mapProducerIdConsumerIds: collect(producers, (d) => d.mapProducerIdConsumerIds, consumers),
    mapConsumerIdProducerId: pairs((d) => d.mapConsumerIdProducerId, consumers),
    mapProducerIdObserverIds: collect(producers, (d) => d.mapProducerIdObserverIds, observers),
    mapDataProducerIdDataConsumerIds: collect(
      dataProducers,
      (d) => d.mapDataProducerIdDataConsumerIds,
      dataConsumers
    ),
    mapDataConsumerIdDataProducerId: pairs((d) => d.mapDataConsumerIdDataProducerId, dataConsumers)
  }
}
