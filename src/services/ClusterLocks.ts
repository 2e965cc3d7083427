/**
 * `ClusterLocks`: the locks that serialise a decision with the work that carries it out,
 * so that two requests never act on the same stale snapshot:
 *  - per set of Worker settings: transport placements, and closing a Router or Worker with
 *    those settings (two simultaneous transports never start two Workers where one was
 *    decided; nothing is placed on a Router while it closes);
 *  - per producer: its pipes (two simultaneous consumers of one producer on one Router make
 *    one pipe; scale-down never closes a pipe a consumer is being placed on).
 * A consumer whose Router already receives its producer takes no lock at all.
 *
 * Layer: `layer` in `src/layers/ClusterLocks.ts`.
 *
 * @module
 */
import { Context, type Effect } from "effect"
import type { ProducerId, SettingsKey } from "../core/Ids.js"

export interface ClusterLocksShape {
  /** Runs `effect` holding the placement lock of a set of Worker settings. */
  readonly placement: (
    settings: SettingsKey
  ) => <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /** Runs `effect` holding the pipe lock of a producer. */
  readonly pipes: (
    producer: ProducerId
  ) => <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
}

export class ClusterLocks extends Context.Tag("mafalda/ClusterLocks")<ClusterLocks, ClusterLocksShape>() {}
