/**
 * What can happen to a cluster. Every change to a snapshot is one of these events, applied
 * by `applyEvent`; the effectful shell emits them after it carries out a decision, the
 * Tracker emits load reports, and the simulator emits all of them.
 */
import { Schema } from "effect"
import {
  ConsumerId,
  MafaldaRouterId,
  NodeId,
  ProducerId,
  RouterId,
  RtpObserverId,
  SettingsKey,
  TransportId,
  WorkerId
} from "./Ids.js"
import { MediaKind, RoomHint, TransportKind } from "./Snapshot.js"

/** Milliseconds on the cluster's clock (Effect's `Clock`, real or simulated). */
const At = Schema.Number

export const NodeUp = Schema.TaggedStruct("NodeUp", {
  node: NodeId,
  cpus: Schema.Int.pipe(Schema.positive()),
  /** Its cap on Worker processes, whatever their settings (`ClusterNode.maxWorkerProcesses`). */
  maxWorkerProcesses: Schema.optional(Schema.Int.pipe(Schema.positive())),
  address: Schema.String,
  at: At
})
export const NodeDraining = Schema.TaggedStruct("NodeDraining", { node: NodeId, at: At })
/** The Node is gone: its Workers die with everything on them; the Node stays, `down`. */
export const NodeDown = Schema.TaggedStruct("NodeDown", { node: NodeId, at: At })
/** The Node leaves the cluster for good (after `NodeDown`, or when it has no Workers). */
export const NodeLeft = Schema.TaggedStruct("NodeLeft", { node: NodeId, at: At })

export const WorkerStarted = Schema.TaggedStruct("WorkerStarted", {
  worker: WorkerId,
  node: NodeId,
  settings: SettingsKey,
  at: At
})
/** The Worker process died: it is dropped with its Routers and everything on them. */
export const WorkerDied = Schema.TaggedStruct("WorkerDied", { worker: WorkerId, at: At })
/** The Worker was closed on purpose (scale-down); same effect on the snapshot as dying. */
export const WorkerClosed = Schema.TaggedStruct("WorkerClosed", { worker: WorkerId, at: At })
export const LoadReported = Schema.TaggedStruct("LoadReported", {
  worker: WorkerId,
  /** CPU % of one core over the last sampling interval. */
  load: Schema.Number.pipe(Schema.nonNegative()),
  /** When the load was sampled. */
  at: At
})

export const RouterCreated = Schema.TaggedStruct("RouterCreated", {
  router: RouterId,
  worker: WorkerId,
  settings: SettingsKey,
  at: At
})
export const RouterClosed = Schema.TaggedStruct("RouterClosed", { router: RouterId, at: At })

export const MafaldaRouterCreated = Schema.TaggedStruct("MafaldaRouterCreated", {
  mafaldaRouter: MafaldaRouterId,
  workerSettings: SettingsKey,
  routerSettings: SettingsKey,
  /** What the application says the room will grow to (`expectedParticipants`...). */
  hint: Schema.optional(RoomHint),
  at: At
})
export const MafaldaRouterClosed = Schema.TaggedStruct("MafaldaRouterClosed", {
  mafaldaRouter: MafaldaRouterId,
  at: At
})
/** A Mafalda Router starts using an underlying Router (shares it). */
export const RouterRegistered = Schema.TaggedStruct("RouterRegistered", {
  mafaldaRouter: MafaldaRouterId,
  router: RouterId,
  at: At
})

export const TransportCreated = Schema.TaggedStruct("TransportCreated", {
  transport: TransportId,
  kind: TransportKind,
  router: RouterId,
  mafaldaRouter: MafaldaRouterId,
  at: At
})
/** Closes the transport's producers and consumers too. */
export const TransportClosed = Schema.TaggedStruct("TransportClosed", { transport: TransportId, at: At })

export const ProducerCreated = Schema.TaggedStruct("ProducerCreated", {
  producer: ProducerId,
  kind: MediaKind,
  transport: TransportId,
  at: At
})
/** Closes the producer's whole stream tree and every consumer of it. */
export const ProducerClosed = Schema.TaggedStruct("ProducerClosed", { producer: ProducerId, at: At })

export const ConsumerCreated = Schema.TaggedStruct("ConsumerCreated", {
  consumer: ConsumerId,
  producer: ProducerId,
  transport: TransportId,
  at: At
})
export const ConsumerClosed = Schema.TaggedStruct("ConsumerClosed", { consumer: ConsumerId, at: At })

/** A pipe of `producer` from `from` (which already receives it) to `to` (which does not). */
export const PipeCreated = Schema.TaggedStruct("PipeCreated", {
  producer: ProducerId,
  from: RouterId,
  to: RouterId,
  /** Made on the application's request (`pipeToRouter`): kept until closed, never scaled down. */
  pinned: Schema.optional(Schema.Boolean),
  at: At
})
/** Closes the pipe into `to`, and with it everything below `to` in the producer's tree. */
export const PipeClosed = Schema.TaggedStruct("PipeClosed", { producer: ProducerId, to: RouterId, at: At })

/** An RTP observer keeps its Router in use. */
export const RtpObserverCreated = Schema.TaggedStruct("RtpObserverCreated", {
  observer: RtpObserverId,
  router: RouterId,
  at: At
})
export const RtpObserverClosed = Schema.TaggedStruct("RtpObserverClosed", {
  observer: RtpObserverId,
  router: RouterId,
  at: At
})

export const ClusterEvent = Schema.Union(
  NodeUp,
  NodeDraining,
  NodeDown,
  NodeLeft,
  WorkerStarted,
  WorkerDied,
  WorkerClosed,
  LoadReported,
  RouterCreated,
  RouterClosed,
  MafaldaRouterCreated,
  MafaldaRouterClosed,
  RouterRegistered,
  TransportCreated,
  TransportClosed,
  ProducerCreated,
  ProducerClosed,
  ConsumerCreated,
  ConsumerClosed,
  PipeCreated,
  PipeClosed,
  RtpObserverCreated,
  RtpObserverClosed
)
export type ClusterEvent = typeof ClusterEvent.Type
