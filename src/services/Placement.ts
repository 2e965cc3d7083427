/**
 * `Placement`: carries out the core's placement decisions on this Node. It asks the pure
 * decisions where a transport, an RTP observer or a pipe goes, has the Workers and Routers
 * they need made through `WorkerService`, and records what was made in the `SnapshotStore`
 * through the core's interpreter (`src/core/interpret.ts`), under `ClusterLocks`.
 *
 * Layer: `layer` in `src/layers/Placement.ts`.
 *
 * @module
 */
import { Context, Data, type Effect } from "effect"
import type { InvalidEvent } from "../core/applyEvent.js"
import type { MafaldaRouterId, NodeId, ProducerId, RouterId, WorkerId } from "../core/Ids.js"
import type { PolicyOptions } from "../core/PolicyOptions.js"
import type { RoomHint, TransportKind } from "../core/Snapshot.js"
import type {
  MafaldaRouterClosedError,
  NoCapacityError,
  ProducerNotFoundError,
  WorkerServiceError
} from "./errors.js"
import type { RouterSettings, WorkerSettings } from "./SettingsKeys.js"
import type { PipeInfo } from "./WorkerService.js"

/** Where a transport (or a pipe destination) was placed. */
export interface Placed {
  readonly router: RouterId
  readonly worker: WorkerId
  /** The Mafalda Router did not use this Router before. */
  readonly added: boolean
}

export interface PlacedTransport<A> extends Placed {
  readonly transport: A
}

/** What `pipeToMafaldaRouter` did. */
export type PipeToRouterOutcome = Data.TaggedEnum<{
  /** The destination now uses a Router that already carries the producer: nothing piped. */
  Shared: { readonly router: RouterId; readonly added: boolean; readonly worker: WorkerId }
  /** A real pipe into a Router of the destination. */
  Piped: { readonly pipe: PipeInfo; readonly placement: Placed }
}>
export const PipeToRouterOutcome = Data.taggedEnum<PipeToRouterOutcome>()

export type PlacementError = NoCapacityError | MafaldaRouterClosedError | WorkerServiceError | InvalidEvent

export interface PlacementShape {
  /** The Node that places (this one). */
  readonly node: NodeId
  readonly options: PolicyOptions
  /** Registers a Mafalda Router with its Worker and Router settings, and the app's room size hint if any. */
  readonly createMafaldaRouter: (
    id: MafaldaRouterId,
    workerSettings: WorkerSettings,
    routerSettings: RouterSettings,
    hint?: RoomHint
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
  ) => Effect.Effect<PlacedTransport<A>, E | PlacementError>
  /**
   * Places an RTP observer of a Mafalda Router: chooses its Router as for a transport,
   * creates it with `create` there and records it (`RtpObserverCreated`), all under the
   * placement lock, so scale-down never closes the Router in between.
   */
  readonly placeRtpObserver: <A, E>(
    mafaldaRouter: MafaldaRouterId,
    create: (router: RouterId) => Effect.Effect<A, E>,
    idOf: (observer: A) => string
  ) => Effect.Effect<PlacedTransport<A>, E | PlacementError>
  /** Places a Router for a Mafalda Router without creating anything on it. */
  readonly placeRouter: (mafaldaRouter: MafaldaRouterId) => Effect.Effect<Placed, PlacementError>
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
  ) => Effect.Effect<PipeToRouterOutcome, ProducerNotFoundError | PlacementError>
}

export class Placement extends Context.Tag("mafalda/Placement")<Placement, PlacementShape>() {}
