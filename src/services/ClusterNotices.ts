/**
 * `ClusterNotices`: what happened to the cluster on its own, for the Mafalda Routers (and
 * operators) to react to: a Worker died, idle things were closed.
 *
 * Layer: `layer` in `src/layers/ClusterNotices.ts`.
 *
 * @module
 */
import { Context, Data, type Effect, type Queue, type Scope, type Stream } from "effect"
import type { MafaldaRouterId, WorkerId } from "../core/Ids.js"
import type { ScaleDownAction } from "../core/scaleDown.js"

export type ClusterNotice = Data.TaggedEnum<{
  /** A Worker process died; these Mafalda Routers used Routers on it. */
  WorkerLost: {
    readonly worker: WorkerId
    readonly reason: string
    readonly mafaldaRouters: ReadonlyArray<MafaldaRouterId>
  }
  /** Idle things were closed (scale-down). */
  ScaledDown: { readonly actions: ReadonlyArray<ScaleDownAction> }
}>
export const ClusterNotice = Data.taggedEnum<ClusterNotice>()

export interface ClusterNoticesShape {
  readonly publish: (notice: ClusterNotice) => Effect.Effect<void>
  /** The notices, as they happen (from when the stream starts). */
  readonly notices: Stream.Stream<ClusterNotice>
  /** A subscription to the notices, made now and ended with the scope. */
  readonly subscribe: Effect.Effect<Queue.Dequeue<ClusterNotice>, never, Scope.Scope>
}

export class ClusterNotices extends Context.Tag("mafalda/ClusterNotices")<
  ClusterNotices,
  ClusterNoticesShape
>() {}
