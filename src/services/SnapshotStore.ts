/**
 * `SnapshotStore`: the cluster snapshot, and the one place where events change it, whether
 * they come from this process (a placement carried out, a mediasoup object closed) or from
 * elsewhere (load reports, another Node). Each change is one synchronous `applyEvent`, so
 * it is atomic on the JavaScript thread; work of several steps is serialised by
 * `ClusterLocks`.
 *
 * Layer: `layer` in `src/layers/SnapshotStore.ts`.
 *
 * @module
 */
import { Context, type Effect } from "effect"
import type { InvalidEvent } from "../core/applyEvent.js"
import type { ClusterEvent } from "../core/ClusterEvent.js"
import type { ProducerId, RouterId } from "../core/Ids.js"
import type { Costs } from "../core/PolicyOptions.js"
import type { ClusterSnapshot } from "../core/Snapshot.js"

/** `Omit` over each member of a union. */
export type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never

/** An event without its time: `recordNow` stamps it with the clock. */
export type UnstampedEvent = DistributiveOmit<ClusterEvent, "at">

export interface SnapshotStoreShape {
  /** The cost model events are applied with. */
  readonly costs: Costs
  /** The snapshot now. */
  readonly snapshot: Effect.Effect<ClusterSnapshot>
  /** The snapshot now, synchronously (for hot paths and event listeners). */
  readonly current: () => ClusterSnapshot
  /**
   * Whether `router` receives `producer` now: the consume fast path (O(1), synchronous,
   * without applying queued consumer events, which never change it).
   */
  readonly receives: (producer: ProducerId, router: RouterId) => boolean
  /** Applies events in order; fails at the first that does not fit the snapshot. */
  readonly apply: (...events: ReadonlyArray<ClusterEvent>) => Effect.Effect<void, InvalidEvent>
  /**
   * Applies an event that reports something that already happened (a close, a load): one
   * that no longer fits (its object is already gone) is dropped.
   */
  readonly record: (event: ClusterEvent) => Effect.Effect<void>
  /**
   * `record`, synchronously, for mediasoup event listeners; `at` is taken from the clock.
   * `ConsumerCreated` and `ConsumerClosed` are queued and applied, in order, before the
   * snapshot is next read or changed (write-behind, to keep `consume()` thin).
   */
  readonly recordNow: (event: UnstampedEvent) => void
}

export class SnapshotStore extends Context.Tag("mafalda/SnapshotStore")<
  SnapshotStore,
  SnapshotStoreShape
>() {}
