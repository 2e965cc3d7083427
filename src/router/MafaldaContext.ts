/**
 * What all Mafalda Routers of one Mafalda instance share: the services, how to run an
 * Effect from a Promise method, and the registry of producers and of who may consume them.
 *
 * @module
 */
import { Cause, Context, Effect, Exit, Runtime, type Stream } from "effect"
import type { types } from "mediasoup"
import type { EnhancedEventEmitter } from "mediasoup/node/lib/enhancedEvents.js"
import type { MafaldaRouterId, NodeId, ProducerId, RouterId } from "../core/Ids.js"
import type { WorkerServiceError } from "../services/errors.js"
import type { IndexServiceShape } from "../services/IndexService.js"
import type { LocalMediasoupShape } from "../services/LocalMediasoup.js"
import type { MafaldaEvents } from "../services/Mafalda.js"
import type { PlacementShape } from "../services/Placement.js"
import type { ScaleDownHoldsShape } from "../services/ScaleDownHolds.js"
import type { SnapshotStoreShape } from "../services/SnapshotStore.js"
import { type MafaldaRouterError, MediasoupCallError, toMediasoupError } from "./errors.js"
import type { WebRtcServerPorts } from "./webRtcServer.js"

export interface ProducerEntry {
  readonly producer: types.Producer
  readonly owner: MafaldaRouterId
  readonly router: RouterId
}

export interface DataProducerEntry {
  readonly dataProducer: types.DataProducer
  readonly owner: MafaldaRouterId
  readonly router: RouterId
}

export interface MafaldaContext {
  /** This Node. */
  readonly node: NodeId
  readonly placement: PlacementShape
  readonly store: SnapshotStoreShape
  /** The mediasoup objects of this process' Workers. */
  readonly local: LocalMediasoupShape
  readonly index: IndexServiceShape
  /** What scale-down must leave alone beyond the snapshot (observers' pipes, consumes under way). */
  readonly holds: ScaleDownHoldsShape
  /** The Mafalda instance's observer (`pipe` is emitted from here). */
  readonly events: EnhancedEventEmitter<MafaldaEvents>
  /** Ports of WebRtcServer instances after the first one (see `webRtcServer.ts`). */
  readonly webRtcServerPorts: WebRtcServerPorts
  /** The application's runtime: every Effect of a Promise method runs there. */
  readonly runtime: Runtime.Runtime<never>
  /**
   * Runs an Effect in the background on the application's runtime (from a mediasoup event
   * listener, say); a failure is logged, never lost.
   */
  readonly fork: (effect: Effect.Effect<void, unknown>) => void
  /** Queues a write to the Index: writes are carried out one at a time, in order; failures are logged. */
  readonly writeIndex: (effect: Effect.Effect<void, unknown>) => void
  readonly producers: Map<string, ProducerEntry>
  readonly dataProducers: Map<string, DataProducerEntry>
  /** The producers and data producers each Mafalda Router may consume (its own and those piped to it). */
  readonly visible: Map<MafaldaRouterId, Set<string>>
  /** Consumers of producers that reached a Mafalda Router by a shared pipe: `mafaldaRouter producer`. */
  readonly sharedConsumers: Map<string, Set<types.Consumer>>
  /** Data pipes made between Routers: `dataProducer router` → the pipe in flight or made. */
  readonly dataPipes: Map<string, DataPipe>
  /** Data pipes being closed (their last data consumer went): `dataProducer router` → done. */
  readonly dataPipesClosing: Map<string, Promise<void>>
}

/** A data producer piped into a Router, and how many data consumers there use it. */
export interface DataPipe {
  readonly pending: Promise<types.PipeToRouterResult>
  users: number
}

export const sharedKey = (mafaldaRouter: string, producer: string): string => `${mafaldaRouter} ${producer}`

export const visibleTo = (ctx: MafaldaContext, mafaldaRouter: MafaldaRouterId): Set<string> => {
  let set = ctx.visible.get(mafaldaRouter)
  if (set === undefined) {
    set = new Set()
    ctx.visible.set(mafaldaRouter, set)
  }
  return set
}

/** Runs an Effect for a Promise method: its failure becomes the error mediasoup would throw. */
export const runPromise = <A>(
  ctx: MafaldaContext,
  effect: Effect.Effect<A, MafaldaRouterError>
): Promise<A> => runWith(ctx.runtime, effect)

/** Runs an Effect on a runtime: its failure becomes the error mediasoup would throw. */
export const runWith = <A>(
  runtime: Runtime.Runtime<never>,
  effect: Effect.Effect<A, MafaldaRouterError>
): Promise<A> =>
  Runtime.runPromiseExit(runtime)(effect).then((exit) => {
    if (Exit.isSuccess(exit)) return exit.value
    const failure = Cause.failureOption(exit.cause)
    if (failure._tag === "Some") throw toMediasoupError(failure.value)
    throw Cause.squash(exit.cause)
  })

/** A mediasoup call as an Effect; its error (mediasoup's own) is kept as the cause. */
export const call = <A>(operation: string, f: () => Promise<A> | A): Effect.Effect<A, MediasoupCallError> =>
  Effect.tryPromise({
    try: async () => f(),
    catch: (cause) => new MediasoupCallError({ operation, cause })
  })

// --- Pipes from other processes of the cluster (cluster mode) -------------------------------

/** One end of a pipe between processes: a Router and its Node. */
export interface ClusterPipeEnd {
  readonly node: NodeId
  readonly router: RouterId
}

/** What the destination's Node made: a pipe producer with the producer's id. */
export interface ClusterPipeMade {
  readonly kind: "audio" | "video" | undefined
  readonly rtpParameters: types.RtpParameters | undefined
  readonly paused: boolean
  /** Whether the media between the two PipeTransports is SRTP. */
  readonly srtp: boolean
}

/**
 * Cluster mode only (`src/cluster/ClusterMafalda.ts` provides it; embedded, the context has
 * none): a producer of another process of the cluster piped into a Router of this one, for
 * `MafaldaRouter.pipeFromCluster`. Nothing here loads the cluster's engines (Redis, RPC).
 */
export interface ClusterPipesShape {
  /** Pipes `producer` from `from` into `to`: the RPC handshake driven by `to`'s Node, SRTP on. */
  readonly open: (
    producer: ProducerId,
    from: ClusterPipeEnd,
    to: ClusterPipeEnd
  ) => Effect.Effect<ClusterPipeMade, WorkerServiceError>
  /**
   * Holds the pipe into `to`: whether its producer is paused, now and at each change. The
   * stream ends when the pipe closes (its origin producer, or a Node on its way, went) or
   * `to`'s Node cannot be reached; interrupting it closes the pipe there.
   */
  readonly hold: (producer: ProducerId, to: ClusterPipeEnd) => Stream.Stream<boolean>
}

export class ClusterPipes extends Context.Tag("mafalda/ClusterPipes")<ClusterPipes, ClusterPipesShape>() {}

/** The cluster's pipes, when `runtime` is the runtime of an instance in cluster mode. */
export const clusterPipesOf = (runtime: Runtime.Runtime<never>): ClusterPipesShape | undefined => {
  const found = Context.getOption(runtime.context, ClusterPipes)
  return found._tag === "Some" ? found.value : undefined
}
