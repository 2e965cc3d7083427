/**
 * Transports, producers and consumers on another Mafalda Node, with mediasoup's API, backed
 * by the Node's RPC API (`src/rpc/NodeRpcs.ts`) and its `Notices` stream.
 *
 * What they offer, as mediasoup's objects do: `id`, `appData`, `closed`, the transport's
 * ICE/DTLS parameters (WebRTC) or tuples and SRTP parameters (plain) as the Node returned
 * them, `connect`, `produce`, `consume`, `close`, `pause`/`resume`, `dump` (from what this
 * process knows), and the events: `routerclose` on a transport (its Router, Worker or Node
 * went), `transportclose` on its producers and consumers, `producerclose`,
 * `producerpause`/`producerresume` on a consumer, and each object's `observer` (`close`,
 * `newproducer`, `newconsumer`, `pause`, `resume`). `@close` is emitted as mediasoup does
 * (the Mafalda Router listens to it) but is not public. `getStats()` asks the Node
 * (mediasoup's stats as its Worker gives them). A WebRTC transport's `icestatechange`,
 * `iceselectedtuplechange` and `dtlsstatechange` (on it and its observer) come from the
 * Node's notices, and update `iceState`, `iceSelectedTuple` and `dtlsState` as they arrive.
 *
 * Not offered yet (the Node API has no call for them; they reject with mediasoup's
 * `UnsupportedError`): data producers and consumers, trace events, bitrate settings, key
 * frame requests and preferred layers.
 *
 * @module
 */
import { types } from "mediasoup"
import { EnhancedEventEmitter } from "mediasoup/node/lib/enhancedEvents.js"
import type { NodeId, RouterId, WorkerId } from "../core/Ids.js"
import type {
  ConsumerData,
  NodeNotice,
  PlainTransportData,
  ProducerData,
  WebRtcTransportData
} from "../rpc/NodeRpcs.js"
import type { NodeClient } from "../rpc/transport.js"

/** What the remote objects of one Node share: its client, a way to run calls, the notices' routing. */
export interface RemoteSession {
  readonly node: NodeId
  readonly client: NodeClient
  /** Runs a call to the Node; its failure rejects with the error mediasoup would throw. */
  readonly run: <A>(call: (client: NodeClient) => unknown) => Promise<A>
  /** Runs a call whose result nobody waits for (a close); failures are logged. */
  readonly fire: (call: (client: NodeClient) => unknown) => void
  /**
   * Routes the Node's notices about `id` to `object` until it is forgotten (a transport
   * with its Worker, which a `WorkerDied` notice closes).
   */
  readonly track: (id: string, object: RemoteObject, worker?: WorkerId) => void
  readonly forget: (id: string) => void
}

/** What a remote object does when its Node tells something about it. */
export interface RemoteObject {
  /** The Node closed it on its own (not at this process' request). */
  readonly closedByNode: () => void
  /** Its Node, or its Worker, is gone. */
  readonly lost: (what?: "worker" | "node") => void
  readonly producerPaused?: (paused: boolean) => void
  /** A WebRTC transport's ICE, DTLS or SCTP state changed on the Node. */
  readonly stateChanged?: (notice: Extract<NodeNotice, { _tag: "TransportState" }>) => void
}

const unsupported = (what: string) =>
  Promise.reject(new types.UnsupportedError(`${what} is not available on a transport of another Node`))

// --- What they share -----------------------------------------------------------------------

/** An object of another Node: its id, `closed`, `observer`, `node` and the close bookkeeping. */
abstract class RemoteEntity<
  E extends types.ProducerEvents | types.ConsumerEvents | types.TransportEvents,
  O extends types.ProducerObserverEvents | types.ConsumerObserverEvents | types.TransportObserverEvents
> extends EnhancedEventEmitter<E> {
  readonly #session: RemoteSession
  readonly #what: "producer" | "consumer" | "transport"
  readonly #observer = new EnhancedEventEmitter<O>()
  #closed = false

  constructor(session: RemoteSession, what: "producer" | "consumer" | "transport") {
    super()
    this.#session = session
    this.#what = what
  }

  abstract get id(): string
  get closed(): boolean {
    return this.#closed
  }
  get observer(): EnhancedEventEmitter<O> {
    return this.#observer
  }
  /** The Node it lives on. */
  get node(): NodeId {
    return this.#session.node
  }

  protected get session(): RemoteSession {
    return this.#session
  }

  /** Emits on it or on its observer, events known to every kind (`@close`, `close`, ...). */
  protected say(event: string, on: "self" | "observer" = "self", safe = true): void {
    const emitter = (on === "self" ? this : this.#observer) as unknown as EnhancedEventEmitter
    if (safe) emitter.safeEmit(event)
    else emitter.emit(event)
  }

  /** mediasoup's stats of it, from its Node. */
  protected stats<A>(): Promise<Array<A>> {
    if (this.#closed) {
      const name = { producer: "Producer", consumer: "Consumer", transport: "Transport" }[this.#what]
      return Promise.reject(new types.InvalidStateError(`${name} closed`))
    }
    return this.session.run<Array<A>>((c) => c.GetStats({ what: this.#what, id: this.id }))
  }

  close(): void {
    if (this.#closed) return
    this.#end()
    this.#session.fire((c) => c.Close({ what: this.#what, id: this.id }))
    this.say("@close", "self", false)
    this.say("close", "observer")
  }

  /** Closes it for a reason other than `close()`: `announce` emits the reason's events. */
  protected closedBecause(announce: () => void): void {
    if (this.#closed) return
    this.#end()
    announce()
    this.say("close", "observer")
  }

  /** What else closes with it (a transport's producers and consumers). */
  protected ended(): void {}

  #end(): void {
    this.#closed = true
    this.#session.forget(this.id)
    this.ended()
  }
}

/** A producer or consumer: `transportClosed`, `paused`, `pause`/`resume`. */
abstract class RemotePausable<
  E extends types.ProducerEvents | types.ConsumerEvents,
  O extends types.ProducerObserverEvents | types.ConsumerObserverEvents
> extends RemoteEntity<E, O> {
  readonly #what: "producer" | "consumer"
  #paused: boolean

  constructor(session: RemoteSession, what: "producer" | "consumer", paused: boolean) {
    super(session, what)
    this.#what = what
    this.#paused = paused
  }

  get paused(): boolean {
    return this.#paused
  }

  /** Whether its own pause and resume are silent on its observer (a consumer whose producer is paused). */
  protected get quiet(): boolean {
    return false
  }

  /** @internal Its transport closed (or its Node, Worker or Router went). */
  transportClosed(): void {
    this.closedBecause(() => this.say("transportclose"))
  }

  async pause(): Promise<void> {
    await this.#setPaused(true)
  }

  async resume(): Promise<void> {
    await this.#setPaused(false)
  }

  async #setPaused(paused: boolean): Promise<void> {
    if (this.closed)
      throw new types.InvalidStateError(this.#what === "producer" ? "Producer closed" : "Consumer closed")
    await this.session.run((c) => c.Pause({ what: this.#what, id: this.id, paused }))
    const was = this.#paused
    this.#paused = paused
    if (was !== paused && !this.quiet) this.say(paused ? "pause" : "resume", "observer")
  }
}

// --- Producers ----------------------------------------------------------------------------

export class RemoteProducer extends RemotePausable<types.ProducerEvents, types.ProducerObserverEvents> {
  readonly #data: ProducerData
  appData: types.AppData

  constructor(session: RemoteSession, data: ProducerData, appData: types.AppData | undefined) {
    super(session, "producer", data.paused)
    this.#data = data
    this.appData = appData ?? {}
  }

  get id(): string {
    return this.#data.id
  }
  get kind(): types.MediaKind {
    return this.#data.kind
  }
  get type(): types.ProducerType {
    return this.#data.type as types.ProducerType
  }
  get rtpParameters(): types.RtpParameters {
    return this.#data.rtpParameters as types.RtpParameters
  }
  get consumableRtpParameters(): types.RtpParameters {
    return this.#data.rtpParameters as types.RtpParameters
  }
  get score(): Array<types.ProducerScore> {
    return []
  }

  getStats(): Promise<Array<types.ProducerStat>> {
    return this.stats()
  }
  enableTraceEvent(): Promise<void> {
    return unsupported("Producer.enableTraceEvent()")
  }
  async dump(): Promise<unknown> {
    return {
      id: this.id,
      kind: this.kind,
      type: this.type,
      rtpParameters: this.rtpParameters,
      paused: this.paused
    }
  }

  /** @internal */
  asRemoteObject(): RemoteObject {
    return { closedByNode: () => this.transportClosed(), lost: () => this.transportClosed() }
  }
}

// --- Consumers ----------------------------------------------------------------------------

export class RemoteConsumer extends RemotePausable<types.ConsumerEvents, types.ConsumerObserverEvents> {
  readonly #data: ConsumerData
  #producerPaused: boolean
  appData: types.AppData

  constructor(session: RemoteSession, data: ConsumerData, appData: types.AppData | undefined) {
    super(session, "consumer", data.paused)
    this.#data = data
    this.#producerPaused = data.producerPaused
    this.appData = appData ?? {}
  }

  get id(): string {
    return this.#data.id
  }
  get producerId(): string {
    return this.#data.producer
  }
  get kind(): types.MediaKind {
    return this.#data.kind
  }
  get type(): types.ConsumerType {
    return this.#data.type as types.ConsumerType
  }
  get rtpParameters(): types.RtpParameters {
    return this.#data.rtpParameters as types.RtpParameters
  }
  get producerPaused(): boolean {
    return this.#producerPaused
  }
  get priority(): number {
    return 1
  }
  get score(): types.ConsumerScore {
    return { score: 10, producerScore: 10, producerScores: [] }
  }
  get preferredLayers(): types.ConsumerLayers | undefined {
    return undefined
  }
  get currentLayers(): types.ConsumerLayers | undefined {
    return undefined
  }

  protected override get quiet(): boolean {
    return this.#producerPaused
  }

  /** @internal Its producer closed (on the Node: the producer, or the pipe that brought it). */
  producerClosed(): void {
    this.closedBecause(() => {
      this.say("@producerclose", "self", false)
      this.say("producerclose")
    })
  }

  getStats(): Promise<Array<types.ConsumerStat>> {
    return this.stats()
  }
  setPreferredLayers(): Promise<void> {
    return unsupported("Consumer.setPreferredLayers()")
  }
  setPriority(): Promise<void> {
    return unsupported("Consumer.setPriority()")
  }
  unsetPriority(): Promise<void> {
    return unsupported("Consumer.unsetPriority()")
  }
  requestKeyFrame(): Promise<void> {
    return unsupported("Consumer.requestKeyFrame()")
  }
  enableTraceEvent(): Promise<void> {
    return unsupported("Consumer.enableTraceEvent()")
  }
  async dump(): Promise<unknown> {
    return {
      id: this.id,
      producerId: this.producerId,
      kind: this.kind,
      type: this.type,
      rtpParameters: this.rtpParameters,
      paused: this.paused,
      producerPaused: this.producerPaused
    }
  }

  /** @internal */
  asRemoteObject(): RemoteObject {
    return {
      // Closed on the Node on its own, its transport still open: its producer went.
      closedByNode: () => this.producerClosed(),
      lost: () => this.transportClosed(),
      producerPaused: (paused) => {
        if (this.closed || this.#producerPaused === paused) return
        this.#producerPaused = paused
        this.say(paused ? "producerpause" : "producerresume")
        if (!this.paused) this.say(paused ? "pause" : "resume", "observer")
      }
    }
  }
}

// --- Transports ---------------------------------------------------------------------------

export type RemoteTransportData =
  | ({ readonly kind: "webrtc" } & WebRtcTransportData)
  | ({ readonly kind: "plain" } & PlainTransportData)

/** A WebRtcTransport or PlainTransport on another Node. */
export class RemoteTransport extends RemoteEntity<types.TransportEvents, types.TransportObserverEvents> {
  readonly #data: RemoteTransportData
  readonly #producers = new Map<string, RemoteProducer>()
  readonly #consumers = new Map<string, RemoteConsumer>()
  readonly #mafaldaRouter: string
  #tuple: types.TransportTuple | undefined
  #rtcpTuple: types.TransportTuple | undefined
  #iceState: types.IceState = "new"
  #iceSelectedTuple: types.TransportTuple | undefined
  #dtlsState: types.DtlsState = "new"
  #lostWith: "worker" | "node" | undefined
  appData: types.AppData
  /** The Router (on `node`) and Worker it was made on. */
  readonly routerId: RouterId
  readonly workerId: WorkerId

  constructor(args: {
    readonly session: RemoteSession
    readonly data: RemoteTransportData
    readonly router: RouterId
    readonly worker: WorkerId
    readonly mafaldaRouter: string
    readonly appData: types.AppData | undefined
  }) {
    super(args.session, "transport")
    this.#data = args.data
    this.routerId = args.router
    this.workerId = args.worker
    this.#mafaldaRouter = args.mafaldaRouter
    this.appData = args.appData ?? {}
    this.#tuple = args.data.kind === "plain" ? (args.data.tuple as types.TransportTuple) : undefined
    this.#rtcpTuple =
      args.data.kind === "plain" ? (args.data.rtcpTuple as types.TransportTuple | undefined) : undefined
  }

  /**
   * @internal What it was lost with, when it closed on its Node without this process asking:
   * `"worker"` when its Worker died (the Node closes its transports, then tells of the
   * death) or the Node closed it on its own (shutting down), `"node"` when the Node's
   * notices stopped (it died, its socket broke, it left the registry). A relocation offers
   * it again elsewhere (`WorkerLost`; away from its Node for `"node"`). The Mafalda Router
   * closes a transport here before its Router there, so a close this process asked for
   * never counts.
   */
  get lostWith(): "worker" | "node" | undefined {
    return this.#lostWith
  }

  get id(): string {
    return this.#data.id
  }

  // WebRtcTransport's fields (undefined on a plain one).
  get iceRole(): "controlled" | undefined {
    return this.#data.kind === "webrtc" ? "controlled" : undefined
  }
  get iceParameters(): types.IceParameters | undefined {
    return this.#data.kind === "webrtc" ? (this.#data.iceParameters as types.IceParameters) : undefined
  }
  get iceCandidates(): Array<types.IceCandidate> | undefined {
    return this.#data.kind === "webrtc" ? (this.#data.iceCandidates as Array<types.IceCandidate>) : undefined
  }
  get dtlsParameters(): types.DtlsParameters | undefined {
    return this.#data.kind === "webrtc" ? (this.#data.dtlsParameters as types.DtlsParameters) : undefined
  }
  get iceState(): types.IceState | undefined {
    return this.#data.kind === "webrtc" ? (this.closed ? "closed" : this.#iceState) : undefined
  }
  get dtlsState(): types.DtlsState | undefined {
    return this.#data.kind === "webrtc" ? (this.closed ? "closed" : this.#dtlsState) : undefined
  }
  get iceSelectedTuple(): types.TransportTuple | undefined {
    return this.closed ? undefined : this.#iceSelectedTuple
  }
  get sctpState(): undefined {
    return undefined
  }
  // PlainTransport's fields (undefined on a WebRTC one).
  get tuple(): types.TransportTuple | undefined {
    return this.#tuple
  }
  get rtcpTuple(): types.TransportTuple | undefined {
    return this.#rtcpTuple
  }
  get srtpParameters(): types.SrtpParameters | undefined {
    return this.#data.kind === "plain"
      ? (this.#data.srtpParameters as types.SrtpParameters | undefined)
      : undefined
  }

  /** Closes it on its Node: its producers and consumers close (`transportclose`). */
  override close(): void {
    super.close()
  }

  /** @internal Its Router went on its Node (the Router, its Worker or the Node itself). */
  routerClosed(): void {
    this.closedBecause(() => this.say("routerclose"))
  }

  protected override ended(): void {
    for (const p of Array.from(this.#producers.values())) p.transportClosed()
    for (const c of Array.from(this.#consumers.values())) c.transportClosed()
    this.#producers.clear()
    this.#consumers.clear()
  }

  #checkOpen(): void {
    if (this.closed) throw new types.InvalidStateError("Transport closed")
  }

  async connect(parameters: {
    readonly dtlsParameters?: types.DtlsParameters
    readonly ip?: string
    readonly port?: number
    readonly rtcpPort?: number
    readonly srtpParameters?: types.SrtpParameters
  }): Promise<void> {
    this.#checkOpen()
    if (typeof parameters !== "object" || parameters === null) throw new TypeError("missing parameters")
    await this.session.run((c) => c.ConnectTransport({ transport: this.id, ...parameters } as never))
    if (this.#data.kind === "plain" && this.#tuple !== undefined && parameters.ip !== undefined) {
      this.#tuple = {
        ...this.#tuple,
        remoteIp: parameters.ip,
        ...(parameters.port === undefined ? {} : { remotePort: parameters.port })
      }
    }
  }

  async produce(options: types.ProducerOptions): Promise<types.Producer> {
    this.#checkOpen()
    if (typeof options !== "object" || options === null)
      throw new TypeError("if given, options must be an object")
    const { kind, rtpParameters, paused, appData } = options
    if (kind !== "audio" && kind !== "video") throw new TypeError(`invalid kind "${String(kind)}"`)
    if (typeof rtpParameters !== "object" || rtpParameters === null)
      throw new TypeError("missing rtpParameters")
    if (options.id !== undefined)
      throw new types.UnsupportedError("a producer id cannot be chosen on another Node")
    const data = await this.session.run<ProducerData>((c) =>
      c.Produce({
        transport: this.id,
        kind,
        rtpParameters: rtpParameters as never,
        ...(paused === undefined ? {} : { paused }),
        mafaldaRouter: this.#mafaldaRouter
      })
    )
    const producer = new RemoteProducer(this.session, data, appData)
    if (this.closed) {
      producer.transportClosed()
      throw new types.InvalidStateError("Transport closed")
    }
    this.#producers.set(producer.id, producer)
    this.session.track(producer.id, producer.asRemoteObject())
    producer.observer.once("close", () => this.#producers.delete(producer.id))
    this.observer.safeEmit("newproducer", producer as unknown as types.Producer)
    return producer as unknown as types.Producer
  }

  async consume(options: types.ConsumerOptions): Promise<types.Consumer> {
    this.#checkOpen()
    if (typeof options !== "object" || options === null) throw new TypeError("missing options")
    const { producerId, rtpCapabilities, paused, appData } = options
    if (typeof producerId !== "string") throw new TypeError("missing producerId")
    if (typeof rtpCapabilities !== "object" || rtpCapabilities === null) {
      throw new TypeError("missing rtpCapabilities")
    }
    const data = await this.session.run<ConsumerData>((c) =>
      c.Consume({
        transport: this.id,
        producer: producerId as never,
        rtpCapabilities: rtpCapabilities as never,
        ...(paused === undefined ? {} : { paused })
      })
    )
    const consumer = new RemoteConsumer(this.session, data, appData)
    if (this.closed) {
      consumer.transportClosed()
      throw new types.InvalidStateError("Transport closed")
    }
    this.#consumers.set(consumer.id, consumer)
    this.session.track(consumer.id, consumer.asRemoteObject())
    consumer.observer.once("close", () => this.#consumers.delete(consumer.id))
    this.observer.safeEmit("newconsumer", consumer as unknown as types.Consumer)
    return consumer as unknown as types.Consumer
  }

  produceData(): Promise<types.DataProducer> {
    return unsupported("produceData()")
  }
  consumeData(): Promise<types.DataConsumer> {
    return unsupported("consumeData()")
  }
  getStats(): Promise<Array<types.WebRtcTransportStat | types.PlainTransportStat>> {
    return this.stats()
  }
  enableTraceEvent(): Promise<void> {
    return unsupported("Transport.enableTraceEvent()")
  }
  setMaxIncomingBitrate(): Promise<void> {
    return unsupported("Transport.setMaxIncomingBitrate()")
  }
  setMaxOutgoingBitrate(): Promise<void> {
    return unsupported("Transport.setMaxOutgoingBitrate()")
  }
  setMinOutgoingBitrate(): Promise<void> {
    return unsupported("Transport.setMinOutgoingBitrate()")
  }
  restartIce(): Promise<types.IceParameters> {
    return unsupported("WebRtcTransport.restartIce()")
  }

  /** What this process knows of it (mediasoup's dump fields that it can fill). */
  async dump(): Promise<unknown> {
    return {
      id: this.id,
      producerIds: Array.from(this.#producers.keys()),
      consumerIds: Array.from(this.#consumers.keys()),
      dataProducerIds: [],
      dataConsumerIds: [],
      mapSsrcConsumerId: [],
      mapRtxSsrcConsumerId: [],
      recvRtpHeaderExtensions: {},
      rtpListener: { ssrcTable: [], midTable: [], ridTable: [] },
      maxMessageSize: 0,
      sctpListener: { streamIdTable: [] },
      traceEventTypes: [],
      ...(this.#data.kind === "webrtc"
        ? {
            iceRole: "controlled",
            iceParameters: this.iceParameters,
            iceCandidates: this.iceCandidates,
            iceState: this.iceState,
            iceSelectedTuple: this.iceSelectedTuple,
            dtlsParameters: this.dtlsParameters,
            dtlsState: this.dtlsState
          }
        : { tuple: this.tuple, rtcpTuple: this.rtcpTuple, srtpParameters: this.srtpParameters })
    }
  }

  /** @internal */
  asRemoteObject(): RemoteObject {
    const lost = (what: "worker" | "node" = "worker") => {
      if (!this.closed) this.#lostWith = what
      this.routerClosed()
    }
    return { closedByNode: () => lost("worker"), lost, stateChanged: (notice) => this.#stateChanged(notice) }
  }

  /** A state change the Node told of: recorded, and emitted on it and its observer as mediasoup does. */
  #stateChanged(notice: Extract<NodeNotice, { _tag: "TransportState" }>): void {
    if (this.closed) return
    const emit = (event: string, value: unknown) => {
      ;(this as unknown as EnhancedEventEmitter).safeEmit(event, value)
      ;(this.observer as unknown as EnhancedEventEmitter).safeEmit(event, value)
    }
    if (this.#data.kind === "plain") {
      // A PlainTransport's tuples (`comedia`: learnt from the first packet), as mediasoup emits them.
      const tuple = notice.tuple as types.TransportTuple | undefined
      if (tuple === undefined) return
      if (notice.event === "tuple") {
        this.#tuple = tuple
        emit("tuple", tuple)
      } else if (notice.event === "rtcptuple") {
        this.#rtcpTuple = tuple
        emit("rtcptuple", tuple)
      }
      return
    }
    if (this.#data.kind !== "webrtc") return
    switch (notice.event) {
      case "icestatechange": {
        const state = notice.state as types.IceState
        this.#iceState = state
        emit(notice.event, state)
        return
      }
      case "dtlsstatechange": {
        const state = notice.state as types.DtlsState
        this.#dtlsState = state
        emit(notice.event, state)
        return
      }
      case "iceselectedtuplechange": {
        const tuple = notice.tuple as types.TransportTuple | undefined
        this.#iceSelectedTuple = tuple
        emit(notice.event, tuple)
        return
      }
      case "sctpstatechange":
        // No SCTP on a transport of another Node (no data channels): nothing to tell.
        return
    }
  }
}
