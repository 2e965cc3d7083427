/**
 * The workload's data model: groups of rooms, their participants and their producers. The
 * workload (`Workload.ts`) owns who is where; policies read it and keep their own
 * bookkeeping in the fields marked as theirs.
 */
import type { MafaldaRouterId, NodeId, ProducerId, RouterId, TransportId } from "../core/Ids.js"
import type { MediaKind } from "../core/Snapshot.js"
import type { Prng } from "./Prng.js"
import type { RoomGroup } from "./Scenario.js"

export interface ProducerRef {
  readonly id: ProducerId
  readonly num: number
  readonly kind: MediaKind
  readonly owner: Participant
}

export interface Participant {
  readonly num: number
  readonly room: Room
  /** Publishes, as the scenario says (one of the room's first joiners); its producers exist only while placed. */
  publisher: boolean
  /** The producers' kinds it creates while placed, as the scenario says (its role); none unless a publisher. */
  kinds: ReadonlyArray<MediaKind>
  /** Its index in the group's `roles` while a publisher in one, else -1. */
  role: number
  /** The participant's transport (send and receive), or null. */
  transport: TransportId | null
  router: RouterId | null
  /** Extra receive transports by Router (policies that pin subscribers to producers' Routers). */
  extra: Map<RouterId, TransportId> | null
  producers: Array<ProducerRef>
  /** Index in `room.members` while present. */
  slot: number
  present: boolean
  /** False when the join was rejected: the participant keeps its seat (the demand) but has no media. */
  placed: boolean
}

export interface Room {
  readonly index: number
  readonly id: MafaldaRouterId
  readonly group: GroupState
  readonly size: number
  /** Publishers the room has when full: the group's `publishers`, plus those promoted. */
  publishersWanted: number
  /** Present participants with the publisher role. */
  publishers: number
  /** Present publishers in each of the group's `roles`. */
  readonly roleHolders: Array<number>
  /** Producers of each kind the present publishers make (as the scenario says, placed or not). */
  readonly published: Record<MediaKind, number>
  /** Present publishers making at least one video producer (see `roomMedia`). */
  videoPublishers: number
  readonly members: Array<Participant>
  /** Members whose join was placed. */
  placedCount: number
  producers: Array<ProducerRef>
  /** Whether the room exists in the cluster (its Mafalda Router was created). */
  opened: boolean
  /** Index in the group's list of rooms with a free seat, or -1. */
  openSlot: number
  /** The Node the room's clients reach first (policy's choice). */
  entry: NodeId | null
  /** Nodes the room has used (policy's bookkeeping). */
  readonly nodes: Set<NodeId>
  /** Policy-specific state. */
  data: unknown
}

export interface GroupState {
  readonly index: number
  readonly spec: RoomGroup
  readonly rooms: Array<Room>
  readonly open: Array<Room>
  readonly prng: Prng
  readonly maxFactor: number
  /** First room that may have a free seat (`fill: inOrder`). */
  cursor: number
}

/** The media a room asks for: producers and consumers of each kind. */
export interface RoomMedia {
  readonly producers: Record<MediaKind, number>
  readonly consumers: Record<MediaKind, number>
}

/**
 * What the room's present members would make if all were placed (the demand, whatever the
 * policy): each publisher's producers (its role's kinds), and the consumers: every member
 * consumes every producer but its own, and with last-N at most N video producers (a
 * publisher of video at most N of the others'). Exact when each publisher makes at most one
 * producer of each kind (every built-in scenario).
 */
export const roomMedia = (room: Room): RoomMedia => {
  const members = room.members.length
  const { audio, video } = room.published
  const lastN = room.group.spec.lastN
  const videoConsumers =
    lastN === undefined
      ? video * Math.max(0, members - 1)
      : (members - room.videoPublishers) * Math.min(lastN, video) +
        room.videoPublishers * Math.min(lastN, Math.max(0, video - 1))
  return {
    producers: { audio, video },
    consumers: { audio: audio * Math.max(0, members - 1), video: videoConsumers }
  }
}
