/**
 * What a placement policy is to the simulator: it turns the workload's joins, producers and
 * consumers into cluster events, through the cluster adapter (`PolicyCluster`).
 */
import type { Move } from "../../core/relocation.js"
import type { MediaKind } from "../../core/Snapshot.js"
import type { Participant, ProducerRef, Room } from "../Rooms.js"

export type PolicyName = "mafalda" | "round-robin" | "least-loaded" | "mesh" | "chain" | "room-per-node"
export const policyNames: ReadonlyArray<PolicyName> = [
  "mafalda",
  "round-robin",
  "least-loaded",
  "mesh",
  "chain",
  "room-per-node"
]

/** A placement policy in the simulator. */
export interface SimPolicy {
  /** A `PolicyName`, or another name for a policy a test makes. */
  readonly name: string
  /** The room gets its first participant. */
  openRoom(room: Room): void
  /** Place the participant's transport(s); false rejects the join. */
  join(p: Participant): boolean
  /** Create a producer for a publisher (and whatever the topology needs). */
  produce(p: Participant, kind: MediaKind): ProducerRef | undefined
  /** Make `p` consume `producer`; false when it cannot. */
  consume(p: Participant, producer: ProducerRef): boolean
  /** Whether the participant is still connected after a failure. */
  connected(p: Participant): boolean
  /** The room's last participant left. */
  closeRoom(room: Room): void
  /** Periodic housekeeping (scale-down). */
  tick(now: number): void
  /**
   * Transports to move (relocation), asked by the engine each time load reports reach the
   * policy; the workload carries each move out as a reconnect (see `Workload.relocate`).
   * A policy without it never moves anything.
   */
  relocate?(now: number): ReadonlyArray<Move>
}
