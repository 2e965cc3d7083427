/**
 * `TrackerService`: the CPU load of each Worker. It samples every Worker's CPU time on an
 * interval and turns the difference between two samples into a load in percent of one
 * core, published as `LoadReported` events for the cluster snapshot.
 *
 * Backend: `layerMemory` in `src/layers/TrackerService.ts` (one Node, in process).
 *
 * @module
 */
import { Context, type Effect, type Queue, type Scope, type Stream } from "effect"
import type { LoadReported } from "../core/ClusterEvent.js"
import type { WorkerId } from "../core/Ids.js"

export type LoadReport = typeof LoadReported.Type

export interface TrackerServiceShape {
  /** Every load report, as it is made (from when the stream starts). */
  readonly loads: Stream.Stream<LoadReport>
  /** A subscription to the load reports, made now and ended with the scope. */
  readonly subscribe: Effect.Effect<Queue.Dequeue<LoadReport>, never, Scope.Scope>
  /** The last load of each Worker that has one. */
  readonly latest: Effect.Effect<ReadonlyMap<WorkerId, LoadReport>>
  /** Samples every Worker now (the interval does this on its own). */
  readonly sample: Effect.Effect<ReadonlyArray<LoadReport>>
}

export class TrackerService extends Context.Tag("mafalda/TrackerService")<
  TrackerService,
  TrackerServiceShape
>() {}
