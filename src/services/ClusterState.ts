/**
 * `ClusterState`: the effectful shell around the functional core. It holds the cluster
 * snapshot, takes it, asks the pure decisions (`decideTransportPlacement`,
 * `decideConsumerPlacement`, `decidePipeToRouter`, `decideScaleDown`) what to do, carries
 * the decision out through `WorkerService`, and applies the resulting events.
 *
 * Concurrency: every change to the snapshot is one synchronous `applyEvent`, so it is
 * atomic; a decision and the work that carries it out are serialised per key with a lock,
 * so two requests never act on the same stale snapshot:
 *  - transport placements (and Router/Worker closes) per set of Worker settings: two
 *    simultaneous transports never start two Workers where one was decided;
 *  - pipes per producer: two simultaneous consumers of one producer on one Router make one
 *    pipe. A consumer whose Router already receives the producer takes no lock at all.
 *
 * Layer: `layer` in `src/layers/ClusterState.ts`.
 *
 * @module
 */
import { Context, Data, type Effect, type Queue, type Scope, type Stream } from "effect"
import type { InvalidEvent } from "../core/applyEvent.js"
import type { ClusterEvent } from "../core/ClusterEvent.js"
import type { MafaldaRouterId, NodeId, ProducerId, RouterId, WorkerId } from "../core/Ids.js"
import type { PolicyOptions } from "../core/PolicyOptions.js"
import type { ClusterSnapshot, TransportKind } from "../core/Snapshot.js"
import type { ScaleDownAction } from "../core/scaleDown.js"
import type { RouterSettings, WorkerSettings } from "./SettingsKeys.js"
import type { PipeInfo, WorkerServiceError } from "./WorkerService.js"

/** No Worker has room for the transport, and no CPU is left to start one. */
export class NoCapacityError extends Data.TaggedError("NoCapacityError")<{ readonly message: string }> {}

/** The producer is unknown, or no live Router carries it any more. */
export class ProducerNotFoundError extends Data.TaggedError("ProducerNotFoundError")<{
  readonly producer: string
  readonly message: string
}> {}

/** The Mafalda Router is unknown (closed). */
export class MafaldaRouterClosedError extends Data.TaggedError("MafaldaRouterClosedError")<{
  readonly mafaldaRouter: string
  readonly message: string
}> {}

/** Where a transport (or a pipe destination) was placed. */
export interface Placement {
  readonly router: RouterId
  readonly worker: WorkerId
  /** The Mafalda Router did not use this Router before. */
  readonly added: boolean
}

export interface PlacedTransport<A> extends Placement {
  readonly transport: A
}

/** What `pipeToMafaldaRouter` did. */
export type PipeToRouterOutcome = Data.TaggedEnum<{
  /** The destination now uses a Router that already carries the producer: nothing piped. */
  Shared: { readonly router: RouterId; readonly added: boolean; readonly worker: WorkerId }
  /** A real pipe into a Router of the destination. */
  Piped: { readonly pipe: PipeInfo; readonly placement: Placement }
}>
export const PipeToRouterOutcome = Data.taggedEnum<PipeToRouterOutcome>()

/** What the shell tells the Mafalda Routers about. */
export type ClusterNotice = Data.TaggedEnum<{
  /** A Worker process died; these Mafalda Routers used Routers on it. */
  WorkerLost: {
    readonly worker: WorkerId
    readonly reason: string
    readonly mafaldaRouters: ReadonlyArray<MafaldaRouterId>
  }
  /** The shell closed idle things (scale-down). */
  ScaledDown: { readonly actions: ReadonlyArray<ScaleDownAction> }
}>
export const ClusterNotice = Data.taggedEnum<ClusterNotice>()

export interface ClusterStateShape {
  /** The local Node. */
  readonly node: NodeId
  readonly options: PolicyOptions
  /** The snapshot now. */
  readonly snapshot: Effect.Effect<ClusterSnapshot>
  /** The snapshot now, synchronously (for hot paths and event listeners). */
  readonly current: () => ClusterSnapshot
  /**
   * Whether `router` receives `producer` now: the consume fast path (O(1), synchronous,
   * without applying queued consumer events, which never change it).
   */
  readonly receives: (producer: ProducerId, router: RouterId) => boolean
  /** Applies an event; fails when it does not fit the snapshot. */
  readonly apply: (event: ClusterEvent) => Effect.Effect<void, InvalidEvent>
  /**
   * Applies an event that reports something that already happened (a close, a load):
   * one that no longer fits (its object is already gone) is dropped.
   */
  readonly record: (event: ClusterEvent) => Effect.Effect<void>
  /**
   * `record`, synchronously, for mediasoup event listeners; `at` is taken from the clock.
   * `ConsumerCreated` and `ConsumerClosed` are queued and applied, in order, before the
   * snapshot is next read or changed (write-behind, to keep `consume()` thin).
   */
  readonly recordNow: (event: DistributiveOmit<ClusterEvent, "at">) => void
  /** Registers a Mafalda Router with its Worker and Router settings. */
  readonly createMafaldaRouter: (
    id: MafaldaRouterId,
    workerSettings: WorkerSettings,
    routerSettings: RouterSettings
  ) => Effect.Effect<void, InvalidEvent>
  readonly closeMafaldaRouter: (id: MafaldaRouterId) => Effect.Effect<void>
  /**
   * Places a transport of a Mafalda Router (starting a Worker or creating a Router when the
   * core says so), creates it with `create` on the chosen Router, and records it.
   */
  readonly placeTransport: <A, E>(
    mafaldaRouter: MafaldaRouterId,
    kind: TransportKind,
    create: (router: RouterId) => Effect.Effect<A, E>,
    idOf: (transport: A) => string
  ) => Effect.Effect<
    PlacedTransport<A>,
    E | NoCapacityError | MafaldaRouterClosedError | WorkerServiceError | InvalidEvent
  >
  /**
   * Places an RTP observer of a Mafalda Router: chooses its Router as for a transport,
   * creates it with `create` there and records it (`RtpObserverCreated`), all under the
   * placement lock, so scale-down never closes the Router in between.
   */
  readonly placeRtpObserver: <A, E>(
    mafaldaRouter: MafaldaRouterId,
    create: (router: RouterId) => Effect.Effect<A, E>,
    idOf: (observer: A) => string
  ) => Effect.Effect<
    PlacedTransport<A>,
    E | NoCapacityError | MafaldaRouterClosedError | WorkerServiceError | InvalidEvent
  >
  /**
   * Places a Router for a Mafalda Router without creating anything on it.
   */
  readonly placeRouter: (
    mafaldaRouter: MafaldaRouterId
  ) => Effect.Effect<
    Placement,
    NoCapacityError | MafaldaRouterClosedError | WorkerServiceError | InvalidEvent
  >
  /**
   * Makes `router` receive `producer`, piping it along the producer's stream tree when it
   * does not yet; returns the pipes made (none on the fast path).
   */
  readonly ensureProducer: (
    producer: ProducerId,
    router: RouterId
  ) => Effect.Effect<ReadonlyArray<PipeInfo>, ProducerNotFoundError | WorkerServiceError | InvalidEvent>
  /**
   * `pipeToRouter` between two Mafalda Routers. A real pipe made for it is pinned: scale-down
   * never closes it; it goes when the application closes its pipe producer or consumer.
   */
  readonly pipeToMafaldaRouter: (
    producer: ProducerId,
    from: MafaldaRouterId,
    to: MafaldaRouterId
  ) => Effect.Effect<
    PipeToRouterOutcome,
    ProducerNotFoundError | MafaldaRouterClosedError | NoCapacityError | WorkerServiceError | InvalidEvent
  >
  /** Closes what has been idle for the grace period, once; returns what it closed. */
  readonly scaleDown: Effect.Effect<ReadonlyArray<ScaleDownAction>>
  /** Worker deaths and scale-downs, as they happen (from when the stream starts). */
  readonly notices: Stream.Stream<ClusterNotice>
  /** A subscription to the notices, made now and ended with the scope. */
  readonly subscribe: Effect.Effect<Queue.Dequeue<ClusterNotice>, never, Scope.Scope>
}

/** `Omit` over each member of a union. */
export type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never

export class ClusterState extends Context.Tag("mafalda/ClusterState")<ClusterState, ClusterStateShape>() {}
