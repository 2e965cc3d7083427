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
import { createRequire } from "node:module"
import { Clock, Effect, Fiber, HashMap, Option, Runtime, Stream } from "effect"
import { types } from "mediasoup"
import { EnhancedEventEmitter } from "mediasoup/node/lib/enhancedEvents.js"
import type {
  MafaldaRouterId,
  NodeId,
  ProducerId,
  RouterId,
  RtpObserverId,
  TransportId,
  WorkerId
} from "../core/Ids.js"
import { lookup, type TransportKind, workerOfRouter } from "../core/Snapshot.js"
import { type DelegationShape, embedded } from "../services/Delegation.js"
import type { ProducerLocation } from "../services/IndexService.js"
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
import {
  call,
  clusterPipesOf,
  type MafaldaContext,
  runPromise,
  sharedKey,
  visibleTo
} from "./MafaldaContext.js"
import { makeDataPipeMirrors, makePipeMirrors } from "./pipeMirrors.js"
import {
  placementConstraint,
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

const ortc = createRequire(import.meta.url)("mediasoup/node/lib/ortc.js") as {
  canConsume: (consumable: types.RtpParameters, caps: types.RtpCapabilities) => boolean
}

/** What `pipeFromCluster` takes. */
export interface PipeFromClusterOptions {
  /** The id of a producer of another process of the cluster (as the Index has it). */
  readonly producerId: string
}

/** The events of a `ClusterPipe`: `originclose` when it closed because its origin went. */
export type ClusterPipeEvents = {
  /** The origin producer closed, or a Node on the pipe's way went (then it is closed). */
  originclose: []
  "@close": []
}

/** The events of a `ClusterPipe`'s observer. */
export type ClusterPipeObserverEvents = { close: []; pause: []; resume: [] }

/**
 * A producer of another process of the cluster piped into a Router of a Mafalda Router
 * (`pipeFromCluster`): the pipe producer there, with the producer's id. Consumers of it on
 * the Mafalda Router's transports consume it as any of its producers. It closes when the
 * application closes it, when the Mafalda Router closes, or when its origin goes (the origin
 * producer closed, or the origin's Node or the pipe's Node died: `originclose`); then every
 * consumer of it on the Mafalda Router closes with mediasoup's `producerclose`. It pauses
 * and resumes with the origin producer (observer `pause`, `resume`; the consumers get
 * mediasoup's `producerpause`, `producerresume`).
 */
export class ClusterPipe extends EnhancedEventEmitter<ClusterPipeEvents> {
  /** The producer's id (the origin producer's). */
  readonly id: string
  readonly kind: types.MediaKind
  /** Where the producer lives, as the Index said. */
  readonly origin: ProducerLocation
  /** The Node and Router of the Mafalda Router it was piped into. */
  readonly node: NodeId
  readonly router: RouterId
  /** Whether the media between the two PipeTransports is SRTP. */
  readonly srtp: boolean
  readonly type = "pipe" as const
  appData: types.AppData = {}
  readonly observer = new EnhancedEventEmitter<ClusterPipeObserverEvents>()
  readonly #rtpParameters: types.RtpParameters
  readonly #onClose: () => void
  #closed = false
  #paused: boolean

  /** @internal Made by `MafaldaRouter.pipeFromCluster`. */
  constructor(args: {
    readonly origin: ProducerLocation
    readonly kind: types.MediaKind
    readonly node: NodeId
    readonly router: RouterId
    readonly srtp: boolean
    readonly paused: boolean
    readonly rtpParameters: types.RtpParameters | undefined
    readonly onClose: () => void
  }) {
    super()
    this.id = args.origin.producer
    this.origin = args.origin
    this.kind = args.kind
    this.node = args.node
    this.router = args.router
    this.srtp = args.srtp
    this.#paused = args.paused
    this.#rtpParameters = args.rtpParameters ?? { codecs: [], encodings: [] }
    this.#onClose = args.onClose
  }

  get closed(): boolean {
    return this.#closed
  }
  /** Whether the origin producer is paused. */
  get paused(): boolean {
    return this.#paused
  }
  /** The pipe producer's RTP parameters (what consumers of it are made from). */
  get rtpParameters(): types.RtpParameters {
    return this.#rtpParameters
  }
  get consumableRtpParameters(): types.RtpParameters {
    return this.#rtpParameters
  }
  get score(): Array<types.ProducerScore> {
    return []
  }
  getStats(): Promise<Array<types.ProducerStat>> {
    return Promise.reject(new types.UnsupportedError("getStats() is not available on a ClusterPipe"))
  }
  dump(): Promise<never> {
    return Promise.reject(new types.UnsupportedError("dump() is not available on a ClusterPipe"))
  }

  /** Closes the pipe: the consumers of it on the Mafalda Router close with `producerclose`. */
  close(): void {
    if (!this.#end()) return
    this.emit("@close")
    this.observer.safeEmit("close")
  }

  /** @internal Its origin went (or the Mafalda Router closed: `announce` false). */
  originClosed(announce: boolean): void {
    if (!this.#end()) return
    if (announce) this.safeEmit("originclose")
    this.observer.safeEmit("close")
  }

  /** @internal The origin producer was paused or resumed. */
  pausedChanged(paused: boolean): void {
    if (this.#closed || this.#paused === paused) return
    this.#paused = paused
    this.observer.safeEmit(paused ? "pause" : "resume")
  }

  #end(): boolean {
    if (this.#closed) return false
    this.#closed = true
    this.#onClose()
    return true
  }
}

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
  /** Producers of other processes piped into it (`pipeFromCluster`), by id. */
  readonly #clusterPipes = new Map<string, ClusterPipe>()
  readonly #pipingFromCluster = Effect.unsafeMakeSemaphore(1)
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
    pipeFromCluster: (options: PipeFromClusterOptions): Effect.Effect<ClusterPipe, MafaldaRouterError> =>
      this.#pipeFromCluster(options),
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
   * Cluster mode: makes a producer of another process of the cluster (another app's, found
   * in the cluster's Index) a producer of this Router, as mediasoup's `pipeToRouter` makes a
   * producer of one Router a producer of another. It looks the producer up in the Index
   * (which Node, Mafalda Router and Router carry it), places a Router for this Mafalda Router
   * as the core decides (on this process' Node or another), and pipes the producer there
   * from its Router across the processes (the Node API's handshake, SRTP on), with the
   * producer's id. From then on `consume({ producerId })` on any transport of this Router
   * works as for its own producers (piping it on to the transport's Router when needed, as
   * usual); other Mafalda Routers do not see it (pipe it with `pipeToRouter`). Calling it
   * again for the same producer returns the same pipe.
   *
   * The returned `ClusterPipe` closes when the application closes it, when this Router
   * closes, or when the origin goes (the origin producer closed, or the Node it or the pipe
   * is on died: `originclose`); every consumer of it here then closes with `producerclose`.
   *
   * Rejects with a `TypeError` ("Producer not found") when the Index has no such producer
   * (or it is a data producer), or when `producerId` is missing; with `InvalidStateError`
   * when this Router is closed; with `UnsupportedError` when Mafalda is not in cluster mode,
   * or when the producer is one of this Mafalda instance's own (use `pipeToRouter`).
   */
  pipeFromCluster(options: PipeFromClusterOptions): Promise<ClusterPipe> {
    return runPromise(this.#ctx, this.effect.pipeFromCluster(options))
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
    if (router !== undefined) return router.canConsume({ producerId, rtpCapabilities })
    // A producer of another process piped into a Router of another Node: mediasoup's rule.
    const pipe = this.#clusterPipes.get(producerId)
    if (pipe === undefined) return false
    try {
      return ortc.canConsume(pipe.consumableRtpParameters, rtpCapabilities)
    } catch {
      return false
    }
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
    for (const pipe of Array.from(this.#clusterPipes.values())) pipe.originClosed(false)
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
      const remoteNode = this.#remoteNodeOf(placed.router)?.node
      const transport = wrapTransport(ctx, this.#id, placed.router, real, remoteNode !== undefined)
      routerOfTransport.set(transport, placed.router)
      const server = (options as { readonly webRtcServer?: unknown } | undefined)?.webRtcServer
      if (server instanceof MafaldaWebRtcServer) {
        server.adopt(real as unknown as types.WebRtcTransport, transport as unknown as types.WebRtcTransport)
      }
      this.#transports.set(transport.id, transport)
      real.observer.once("close", () => this.#transports.delete(transport.id))
      // Remembered for a relocation (to any Worker of this Node or another that is up).
      trackTransport(ctx, this, transport, real, {
        kind,
        options,
        router: placed.router,
        worker: placed.worker,
        node: remoteNode
      })
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

  #pipeFromCluster(options: PipeFromClusterOptions): Effect.Effect<ClusterPipe, MafaldaRouterError> {
    const ctx = this.#ctx
    // One at a time: a second call for the same producer waits for the first's pipe.
    return this.#pipingFromCluster.withPermits(1)(
      Effect.gen(this, function* () {
        yield* this.#checkOpen()
        const id = (options as Partial<PipeFromClusterOptions> | undefined)?.producerId
        if (typeof id !== "string" || id === "") {
          return yield* new InvalidArgumentError({ message: "missing producerId" })
        }
        const known = this.#clusterPipes.get(id)
        if (known !== undefined && !known.closed) return known
        if (ctx.producers.has(id) || ctx.dataProducers.has(id)) {
          return yield* new UnsupportedCallError({
            message: `Producer ${id} is one of this Mafalda instance's: pipe it with pipeToRouter()`
          })
        }
        const pipes = clusterPipesOf(ctx.runtime)
        if (pipes === undefined) {
          return yield* new UnsupportedCallError({
            message: "pipeFromCluster() needs cluster mode (createMafalda({ cluster }))"
          })
        }
        const found = yield* ctx.index.find(id as ProducerId).pipe(
          Effect.mapError(
            (cause) =>
              new MediasoupCallError({
                operation: "pipeFromCluster",
                cause: new Error(`the cluster's Index did not answer: ${cause.message}`)
              })
          )
        )
        const origin = Option.getOrUndefined(found)
        if (origin === undefined || origin.kind === "data") {
          return yield* new InvalidArgumentError({
            message: `Producer not found (the cluster's Index has no producer ${id})`
          })
        }
        // A Router of this Mafalda Router where the core places one: on this process' own
        // Workers when they have room, else on another Node's, never on a Worker of the
        // origin's Node (a mediasoup Worker carries a producer id once: the origin's Worker
        // has it). Workers of other Nodes may carry it too, piped there by the origin's app:
        // the Node then shares that pipe (and its Router) with this app.
        const workersOf = (keep: (node: NodeId) => boolean): ReadonlyArray<WorkerId> =>
          Array.from(HashMap.values(ctx.store.current().workers)).flatMap((w) => (keep(w.node) ? [w.id] : []))
        const placeAvoiding = (avoid: ReadonlyArray<WorkerId>) =>
          Effect.locally(ctx.placement.placeRouter(this.#id), placementConstraint, { avoid, only: undefined })
        const placed = yield* this.#orClosed(
          retryInDeathWindow(ctx, () =>
            placeAvoiding(workersOf((n) => n !== ctx.node)).pipe(
              Effect.catchIf(
                (e) => e._tag === "NoCapacityError",
                () => placeAvoiding(workersOf((n) => n === origin.node))
              )
            )
          )
        )
        this.#announce(placed)
        const node = workerOfRouter(ctx.store.current(), placed.router)?.node ?? ctx.node
        const to = { node, router: placed.router }
        const made = yield* pipes.open(id as ProducerId, { node: origin.node, router: origin.router }, to)
        // In the snapshot, the pipe's PipeTransport on that Router with the producer on it:
        // the root of its stream tree here (its origin's tree is another process').
        const transport = `pipe-from-cluster:${id}:${placed.router}` as TransportId
        const kind = made.kind ?? origin.kind
        const at = yield* Clock.currentTimeMillis
        // Not recorded: the pipe is let go of at once (held, then released), so its Node closes it.
        const letGo = Effect.ignore(Stream.runHead(pipes.hold(id as ProducerId, to)))
        yield* ctx.store
          .apply(
            {
              _tag: "TransportCreated",
              transport,
              kind: "pipe",
              router: placed.router,
              mafaldaRouter: this.#id,
              at
            },
            { _tag: "ProducerCreated", producer: id as ProducerId, kind, transport, at }
          )
          .pipe(Effect.tapError(() => letGo))
        emitPipes(
          ctx,
          [
            {
              producer: id as ProducerId,
              from: origin.router,
              to: placed.router,
              pipeConsumer: "",
              pipeProducer: id
            }
          ],
          true
        )
        let hold: Fiber.RuntimeFiber<void, never> | undefined
        const visible = visibleTo(ctx, this.#id)
        const pipe: ClusterPipe = new ClusterPipe({
          origin,
          kind,
          node,
          router: placed.router,
          srtp: made.srtp,
          paused: made.paused,
          rtpParameters: made.rtpParameters,
          onClose: () => {
            if (this.#clusterPipes.get(id) === pipe) this.#clusterPipes.delete(id)
            if (ctx.producers.get(id)?.producer === (pipe as unknown)) {
              ctx.producers.delete(id)
              for (const set of ctx.visible.values()) set.delete(id)
            }
            ctx.store.recordNow({ _tag: "ProducerClosed", producer: id as ProducerId })
            ctx.store.recordNow({ _tag: "TransportClosed", transport })
            // Letting go of the hold closes the pipe on its Node (and its consumers there).
            const fiber = hold
            if (fiber !== undefined) ctx.fork(Fiber.interrupt(fiber))
          }
        })
        this.#clusterPipes.set(id, pipe)
        ctx.producers.set(id, {
          producer: pipe as unknown as types.Producer,
          owner: this.#id,
          router: placed.router
        })
        visible.add(id)
        hold = Runtime.runFork(ctx.runtime)(
          pipes.hold(id as ProducerId, to).pipe(
            Stream.runForEach((paused) => Effect.sync(() => pipe.pausedChanged(paused))),
            // The hold ended on its own: the pipe closed there (its origin went) or is lost.
            Effect.ensuring(Effect.sync(() => pipe.originClosed(true)))
          )
        )
        if (this.#closed) {
          pipe.originClosed(false)
          return yield* new ClosedError({ message: "Router closed" })
        }
        return pipe
      })
    )
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
