/**
 * The RPC API of a Mafalda Node (`@effect/rpc`): Workers and Routers, transports, produce
 * and consume, and the pipe handshake between two Nodes. Every payload, success and error
 * is a `Schema`, so every message is validated on arrival; errors are
 * `Schema.TaggedError`s. Every request passes `NodeAuth`, the cluster's shared secret.
 *
 * The pipe handshake, as mediasoup's `pipeToRouter` does it within one process, here
 * between processes and driven by the destination Node (`PipeFrom`):
 *  1. the destination opens a PipeTransport on its Router, and asks the origin for one on
 *     the origin Router (`PipeOpen`): each end tells the other its ip, port and SRTP
 *     parameters (SRTP on by default), and each connects to the other (`PipeConnect`);
 *  2. the origin consumes the producer on its PipeTransport (`PipeConsume`), and the
 *     destination produces it on its own with the same producer id;
 *  3. the destination holds `PipeLease`, a stream from the origin that carries the pipe
 *     consumer's pause, resume and close. The stream is the pipe's lease: when it ends
 *     (the origin's consumer closed, the origin died, the socket broke) the destination
 *     closes its pipe producer; when the destination lets go of it (its pipe producer
 *     closed, or it died) the origin closes its pipe consumer and PipeTransport.
 *
 * An app that pipes a producer of another process into one of its Routers
 * (`pipeFromCluster`) asks the Router's Node for `PipeFrom`, then holds the pipe with
 * `PipeHold`: it learns when the pipe closes, and its hold goes when it lets go.
 *
 * Routers and pipes on a Node are shared between its clients (each RPC connection is one):
 * a Worker has at most one Router per set of settings, and a Router one pipe per producer,
 * whoever asks (a mediasoup Worker carries a producer id once). Each client holds what it
 * asked for (`CreateRouter`, `PipeFrom`, `PipeHold`) until it lets go (`CloseRouter`,
 * `ClosePipe`, the end of its `PipeHold`, its disconnect: the end of its last `Notices`
 * stream); an object closes when its last holder lets go, so no client sees a Router or pipe
 * close because another let go.
 *
 * @module
 */
import { Rpc, RpcGroup, RpcMiddleware } from "@effect/rpc"
import { Schema } from "effect"
import { NodeId, ProducerId, RouterId, SettingsKey, WorkerId } from "../core/Ids.js"
import { WorkerInfo } from "../services/WorkerService.js"
import {
  DtlsParameters,
  IceCandidate,
  IceParameters,
  ListenInfo,
  MediaKind,
  RemoteRouterSettings,
  RemoteWorkerSettings,
  RtpCapabilities,
  RtpParameters,
  SrtpCryptoSuite,
  SrtpParameters,
  Stats,
  TransportState,
  TransportTuple
} from "./schemas.js"

/** An object id: mediasoup's UUIDs, or ours. */
export const ObjectId = Schema.String.pipe(Schema.minLength(1), Schema.maxLength(256))

// --- Errors ------------------------------------------------------------------------------

/** The request did not carry the cluster's secret. */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", {
  message: Schema.String
}) {}

/** A mediasoup call on the Node failed; `errorName` is mediasoup's error class. */
export class NodeCallError extends Schema.TaggedError<NodeCallError>()("NodeCallError", {
  operation: Schema.String,
  errorName: Schema.String,
  message: Schema.String
}) {}

/** No such Worker, Router, transport, producer or consumer on the Node (any more). */
export class UnknownObjectError extends Schema.TaggedError<UnknownObjectError>()("UnknownObjectError", {
  what: Schema.String,
  id: Schema.String
}) {}

/** The Node is draining: it takes no new Worker, Router, transport or pipe. */
export class NodeDrainingError extends Schema.TaggedError<NodeDrainingError>()("NodeDrainingError", {
  node: Schema.String
}) {}

export const NodeError = Schema.Union(NodeCallError, UnknownObjectError, NodeDrainingError)
export type NodeError = typeof NodeError.Type

// --- Authentication ----------------------------------------------------------------------

/** The header that carries the cluster's secret. */
export const secretHeader = "x-mafalda-secret"

/** Every request must carry the cluster's shared secret (`secretHeader`). */
export class NodeAuth extends RpcMiddleware.Tag<NodeAuth>()("mafalda/NodeAuth", {
  failure: Unauthorized,
  requiredForClient: true
}) {}

// --- Data --------------------------------------------------------------------------------

export const NodeInfo = Schema.Struct({
  node: NodeId,
  cpus: Schema.Int,
  announcedIp: Schema.String,
  state: Schema.Literal("up", "draining"),
  workers: Schema.Array(WorkerInfo),
  /** Transports made by clients (not pipes) that are open. */
  transports: Schema.Int,
  /** PipeTransports of pipes across Nodes that are open (either end, made by the handshake). */
  pipes: Schema.Int
})
export type NodeInfo = typeof NodeInfo.Type

export const RouterData = Schema.Struct({
  id: RouterId,
  worker: WorkerId,
  settings: SettingsKey,
  rtpCapabilities: RtpCapabilities,
  /**
   * `CreateRouter`: the asking client held this Router already (an earlier `CreateRouter` of
   * its own), so that its `CloseRouter` would let go of what it has there too. Absent from a
   * Node of an earlier version.
   */
  heldBefore: Schema.optional(Schema.Boolean)
})
export type RouterData = typeof RouterData.Type

export const WebRtcTransportData = Schema.Struct({
  id: ObjectId,
  iceRole: Schema.Literal("controlled", "controlling"),
  iceParameters: IceParameters,
  iceCandidates: Schema.Array(IceCandidate),
  dtlsParameters: DtlsParameters
})
export type WebRtcTransportData = typeof WebRtcTransportData.Type

export const PlainTransportData = Schema.Struct({
  id: ObjectId,
  tuple: TransportTuple,
  rtcpTuple: Schema.optional(TransportTuple),
  srtpParameters: Schema.optional(SrtpParameters)
})
export type PlainTransportData = typeof PlainTransportData.Type

export const ProducerData = Schema.Struct({
  id: ProducerId,
  kind: MediaKind,
  type: Schema.Literal("simple", "simulcast", "svc", "pipe"),
  rtpParameters: RtpParameters,
  paused: Schema.Boolean
})
export type ProducerData = typeof ProducerData.Type

export const ConsumerData = Schema.Struct({
  id: ObjectId,
  producer: ProducerId,
  kind: MediaKind,
  type: Schema.Literal("simple", "simulcast", "svc", "pipe"),
  rtpParameters: RtpParameters,
  paused: Schema.Boolean,
  producerPaused: Schema.Boolean
})
export type ConsumerData = typeof ConsumerData.Type

/** One end of a pipe: its PipeTransport and where the other end sends to. */
export const PipeEnd = Schema.Struct({
  transport: ObjectId,
  ip: Schema.String,
  port: Schema.Int,
  srtpParameters: Schema.optional(SrtpParameters)
})
export type PipeEnd = typeof PipeEnd.Type

export const PipeData = Schema.Struct({
  producer: ProducerId,
  from: RouterId,
  to: RouterId,
  /** The pipe consumer on the origin Node. */
  pipeConsumer: ObjectId,
  /** The pipe producer on this Node (its id is the producer's). */
  pipeProducer: ProducerId,
  /** Whether the media between the two PipeTransports is SRTP. */
  srtp: Schema.Boolean,
  /** The pipe producer's kind, RTP parameters and whether it is paused now. */
  kind: Schema.optional(MediaKind),
  rtpParameters: Schema.optional(RtpParameters),
  paused: Schema.optional(Schema.Boolean)
})
export type PipeData = typeof PipeData.Type

/** What the origin says about a pipe: its consumer paused or resumed, or closed (then the stream ends). */
export const PipeSignal = Schema.Literal("pause", "resume", "close")
export type PipeSignal = typeof PipeSignal.Type

const ObjectKind = Schema.Literal("transport", "producer", "consumer")

/** Something that happened on the Node on its own, for its clients' proxies. */
export const NodeNotice = Schema.Union(
  /**
   * An object closed (on request or not: its transport, Router, Worker or producer went).
   * A consumer's `reason` says why when it did not close on request: `transportclose` (its
   * transport, Router or Worker closed: the transport's own `Closed` follows at once) or
   * `producerclose` (its producer closed).
   */
  Schema.TaggedStruct("Closed", {
    what: ObjectKind,
    id: ObjectId,
    reason: Schema.optional(Schema.Literal("transportclose", "producerclose"))
  }),
  /** A consumer's producer was paused or resumed. */
  Schema.TaggedStruct("ProducerPaused", { consumer: ObjectId, paused: Schema.Boolean }),
  Schema.TaggedStruct("WorkerDied", { worker: WorkerId, reason: Schema.String }),
  /**
   * A client's WebRtcTransport changed state, as mediasoup's events tell: `icestatechange`,
   * `dtlsstatechange`, `sctpstatechange` (`state`), `iceselectedtuplechange` (`tuple`).
   */
  Schema.TaggedStruct("TransportState", {
    transport: ObjectId,
    event: Schema.Literal(
      "icestatechange",
      "iceselectedtuplechange",
      "dtlsstatechange",
      "sctpstatechange",
      // A PlainTransport's (`comedia`): the remote end it learnt from the first packet.
      "tuple",
      "rtcptuple"
    ),
    state: Schema.optional(TransportState),
    tuple: Schema.optional(TransportTuple)
  }),
  /** A pipe into one of the Node's Routers closed. */
  Schema.TaggedStruct("PipeClosed", { producer: ProducerId, router: RouterId })
)
export type NodeNotice = typeof NodeNotice.Type

/**
 * What a client asks of `Notices`: nothing (a client of an earlier version, whose schema does
 * not know the newer notices: it is sent none of them), or the newer notices it takes.
 */
export const NoticesRequest = Schema.Union(
  Schema.Undefined,
  Schema.Null,
  Schema.Struct({
    /** A PlainTransport's `tuple` and `rtcptuple` (`TransportState` notices). */
    tuples: Schema.optional(Schema.Boolean)
  })
)
export type NoticesRequest = typeof NoticesRequest.Type

/** Whether a client that asked `request` of `Notices` takes `notice` (see `NoticesRequest`). */
export const takesNotice = (request: NoticesRequest, notice: NodeNotice): boolean =>
  !(notice._tag === "TransportState" && (notice.event === "tuple" || notice.event === "rtcptuple")) ||
  request?.tuples === true

// --- The group ---------------------------------------------------------------------------

const call = <const Tag extends string, P extends Schema.Struct.Fields, S extends Schema.Schema.Any>(
  tag: Tag,
  payload: P,
  success: S
) => Rpc.make(tag, { payload, success, error: NodeError })

export class NodeRpcs extends RpcGroup.make(
  Rpc.make("NodeInfo", { success: NodeInfo }),
  call("StartWorker", { settings: RemoteWorkerSettings }, WorkerInfo),
  call("CloseWorker", { worker: WorkerId }, Schema.Void),
  /**
   * A Router on the Worker for the client (its connection): the Worker's Router with these
   * settings when it has one (made for another client, say: a Worker has at most one per set
   * of settings, shared), else a new one. The client holds it until `CloseRouter` or its
   * disconnect (the end of its last `Notices` stream).
   */
  call("CreateRouter", { worker: WorkerId, settings: RemoteRouterSettings }, RouterData),
  /**
   * The client lets go of its Router: its transports there and its holds on the pipes into it
   * go; the Router closes when its last holder lets go (other clients' keep it meanwhile).
   */
  call("CloseRouter", { router: RouterId }, Schema.Void),
  call(
    "CreateWebRtcTransport",
    {
      router: RouterId,
      listenInfos: Schema.NonEmptyArray(ListenInfo),
      enableUdp: Schema.optional(Schema.Boolean),
      enableTcp: Schema.optional(Schema.Boolean),
      preferUdp: Schema.optional(Schema.Boolean),
      preferTcp: Schema.optional(Schema.Boolean),
      initialAvailableOutgoingBitrate: Schema.optional(Schema.Int.pipe(Schema.positive())),
      iceConsentTimeout: Schema.optional(Schema.Int.pipe(Schema.nonNegative()))
    },
    WebRtcTransportData
  ),
  call(
    "CreatePlainTransport",
    {
      router: RouterId,
      listenInfo: ListenInfo,
      rtcpListenInfo: Schema.optional(ListenInfo),
      rtcpMux: Schema.optional(Schema.Boolean),
      comedia: Schema.optional(Schema.Boolean),
      enableSrtp: Schema.optional(Schema.Boolean),
      srtpCryptoSuite: Schema.optional(SrtpCryptoSuite)
    },
    PlainTransportData
  ),
  call(
    "ConnectTransport",
    {
      transport: ObjectId,
      dtlsParameters: Schema.optional(DtlsParameters),
      ip: Schema.optional(Schema.String.pipe(Schema.maxLength(256))),
      port: Schema.optional(Schema.Int.pipe(Schema.between(0, 65535))),
      rtcpPort: Schema.optional(Schema.Int.pipe(Schema.between(0, 65535))),
      srtpParameters: Schema.optional(SrtpParameters)
    },
    Schema.Void
  ),
  call(
    "Produce",
    {
      transport: ObjectId,
      kind: MediaKind,
      rtpParameters: RtpParameters,
      paused: Schema.optional(Schema.Boolean),
      /** The Mafalda Router that owns the producer, for the Index. */
      mafaldaRouter: Schema.optional(ObjectId)
    },
    ProducerData
  ),
  call(
    "Consume",
    {
      transport: ObjectId,
      producer: ProducerId,
      rtpCapabilities: RtpCapabilities,
      paused: Schema.optional(Schema.Boolean)
    },
    ConsumerData
  ),
  call("Close", { what: ObjectKind, id: ObjectId }, Schema.Void),
  /**
   * mediasoup's `getStats()` of a transport, producer or consumer the client made (the
   * objects of other clients, and pipes, are unknown to it).
   */
  call("GetStats", { what: ObjectKind, id: ObjectId }, Stats),
  call(
    "Pause",
    { what: Schema.Literal("producer", "consumer"), id: ObjectId, paused: Schema.Boolean },
    Schema.Void
  ),
  /**
   * What happens on the Node on its own. The end of a client's last `Notices` stream (its
   * connection closed) lets go of everything it held (see `CreateRouter`, `PipeFrom`).
   */
  Rpc.make("Notices", { payload: NoticesRequest, success: NodeNotice, stream: true }),
  call("PipeOpen", { router: RouterId, enableSrtp: Schema.Boolean }, PipeEnd),
  call(
    "PipeConnect",
    {
      transport: ObjectId,
      ip: Schema.String.pipe(Schema.maxLength(256)),
      port: Schema.Int.pipe(Schema.between(1, 65535)),
      srtpParameters: Schema.optional(SrtpParameters)
    },
    Schema.Void
  ),
  call(
    "PipeConsume",
    { transport: ObjectId, producer: ProducerId },
    Schema.Struct({
      consumer: ObjectId,
      kind: MediaKind,
      rtpParameters: RtpParameters,
      producerPaused: Schema.Boolean
    })
  ),
  Rpc.make("PipeLease", {
    payload: { consumer: ObjectId },
    success: PipeSignal,
    error: NodeError,
    stream: true
  }),
  /**
   * Pipes the producer into `to` for the client, which holds the pipe until `ClosePipe`,
   * the end of its `PipeHold`, `CloseRouter` of `to`, or its disconnect. When `to` receives
   * the producer already (another client's pipe), that pipe's data: one pipe per producer
   * and Router, shared by its holders.
   */
  call(
    "PipeFrom",
    {
      producer: ProducerId,
      /** The Node that carries the producer (its address comes from the `NodeRegistry`). */
      origin: NodeId,
      from: RouterId,
      to: RouterId,
      enableSrtp: Schema.optionalWith(Schema.Boolean, { default: () => true })
    },
    PipeData
  ),
  /** The client lets go of its hold on the pipe; the pipe closes when its last holder lets go. */
  call("ClosePipe", { producer: ProducerId, router: RouterId }, Schema.Void),
  /**
   * Holds a pipe made by `PipeFrom` into `router` for the client (an app's
   * `pipeFromCluster`): the pipe producer's state now, then its pauses and resumes; the
   * stream ends when the pipe closes (its origin went, or its last holder let go). When the
   * client lets go (it closed its end, or died), its hold goes, and the pipe with the last.
   */
  Rpc.make("PipeHold", {
    payload: { producer: ProducerId, router: RouterId },
    success: PipeSignal,
    error: NodeError,
    stream: true
  }),
  Rpc.make("Drain", { success: Schema.Void })
).middleware(NodeAuth) {}

/** The tags of the Node API (what a frame's `tag` may be). */
export const nodeRpcTags: ReadonlySet<string> = new Set(NodeRpcs.requests.keys())
