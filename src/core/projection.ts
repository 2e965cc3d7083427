/**
 * How rooms grow, and what that will cost. In a meeting every transport consumes every
 * producer of its room, so a transport placed while its room is small keeps growing: each
 * newcomer who publishes adds a consumer to every transport of the room, wherever it is, and
 * a pipe into every Router of the room that does not carry it yet. Placement that looks at
 * today's load alone fills a Worker with small rooms that later outgrow it.
 *
 * A room's projection is what it is expected to reach: what the application said (`hint`:
 * the participants it expects and how many of them publish), else its recent high (so a room
 * whose clients are reconnecting after a failure keeps its size), grown by
 * `roomGrowth` while it has no hint. From it:
 *  - the growth still to come on each Router (`shareGrowth`): the consumers the room's
 *    transports there will add, and the pipes the Router will need, once the room is full;
 *  - a Worker's projected load (`projectedLoad`): its effective load plus that growth over
 *    its Routers, scaled by how its measured load compares with the model (`ratio`);
 *  - the cost of one more transport of a room, now and once the room is full
 *    (`transportCost`).
 */
import { HashMap, HashSet } from "effect"
import { peakHoldMillis } from "./applyEvent.js"
import type { MafaldaRouterId, RouterId } from "./Ids.js"
import { kindCosts, type PolicyOptions } from "./PolicyOptions.js"
import {
  type ClusterSnapshot,
  type ClusterWorker,
  effectiveLoad,
  lookup,
  type MafaldaRouter,
  type MediaKind,
  type RoomShare,
  type RoomSize
} from "./Snapshot.js"

const kinds: ReadonlyArray<MediaKind> = ["audio", "video"]

/** What a room is expected to reach: its transports, and its producers by kind. */
export interface RoomProjection {
  readonly transports: number
  readonly media: { readonly audio: number; readonly video: number }
}

/** The room's size, or its recent high while that holds (`peakHoldMillis`). */
export const heldSize = (m: MafaldaRouter, now: number): RoomSize =>
  now - m.peakAt <= peakHoldMillis
    ? {
        transports: Math.max(m.size.transports, m.peak.transports),
        publishers: Math.max(m.size.publishers, m.peak.publishers),
        media: {
          audio: Math.max(m.size.media.audio, m.peak.media.audio),
          video: Math.max(m.size.media.video, m.peak.media.video)
        }
      }
    : m.size

/** What the room is expected to reach (see the module's documentation). */
export const projectRoom = (m: MafaldaRouter, now: number, options: PolicyOptions): RoomProjection => {
  const held = heldSize(m, now)
  if (m.hint === null) {
    const grow = 1 + options.roomGrowth
    return {
      transports: held.transports * grow,
      media: { audio: held.media.audio * grow, video: held.media.video * grow }
    }
  }
  const participants = Math.max(m.hint.participants, held.transports)
  const publishers = Math.max(m.hint.publishers ?? participants, held.publishers)
  // Producers per publisher, as the room shows them (one of each kind until it shows any).
  const per = (kind: MediaKind) => (held.publishers > 0 ? held.media[kind] / held.publishers : 1)
  return {
    transports: participants,
    media: {
      audio: Math.max(held.media.audio, publishers * per("audio")),
      video: Math.max(held.media.video, publishers * per("video"))
    }
  }
}

/** The producers of a kind one member of the room is expected to make. */
const perMemberMedia = (projection: RoomProjection, kind: MediaKind): number =>
  projection.transports > 0 ? projection.media[kind] / projection.transports : 0

/**
 * The CPU % (cost model) still to come on a Router from one room once the room reaches
 * its projection. The room's transports there grow to their part of the room (the room's
 * projected transports over the Routers it is projected to span, `routers`), as far as the
 * room still has transports to come (`toCome`): that reserves the room's growth where it
 * opened. Every transport of the room there consumes every producer of the room but its own,
 * and each transport still to come there makes its share of the room's producers; and, when
 * the room spans several Routers, the Router receives every producer of the room that was not made on it, and sends
 * each producer made on it to the other Routers (pipes of a tree may be relayed by other
 * carriers; this counts them at their origin).
 */
export const shareGrowth = (
  share: RoomShare,
  projection: RoomProjection,
  options: PolicyOptions,
  routers: number,
  toCome = 0
): number => {
  if (share.transports === 0) return 0
  const part = Math.ceil(projection.transports / Math.max(1, routers))
  const transports = Math.max(share.transports, Math.min(part, share.transports + toCome))
  let growth = (transports - share.transports) * options.costs.transport
  for (const kind of kinds) {
    const costs = kindCosts(options.costs, kind)
    const producers = projection.media[kind]
    // Transports to come bring their share of the room's producers; those here already have theirs.
    const origins = share.origins[kind] + (transports - share.transports) * perMemberMedia(projection, kind)
    const consumers = transports * producers - origins
    growth += Math.max(0, consumers - share.consumers[kind]) * costs.consumer
    growth += Math.max(0, origins - share.origins[kind]) * costs.producer
    if (routers > 1) {
      growth += Math.max(0, producers - origins - share.pipedIn[kind]) * costs.pipe
      growth += Math.max(0, origins * (routers - 1) - share.pipedOut[kind]) * costs.pipe
    }
  }
  return growth
}

/** Projections of rooms, computed once per decision. */
export type Projections = Map<MafaldaRouterId, RoomProjection>

const projectionOf = (
  snapshot: ClusterSnapshot,
  options: PolicyOptions,
  cache: Projections,
  room: MafaldaRouterId
): RoomProjection | undefined => {
  const cached = cache.get(room)
  if (cached !== undefined) return cached
  const m = lookup(snapshot.mafaldaRouters, room)
  if (m === undefined) return undefined
  const p = projectRoom(m, snapshot.now, options)
  cache.set(room, p)
  return p
}

// Memo of `routersInUse` per projection object (one per room and decision): a pure function
// of the snapshot the projection was made from, computed once per decision.
const inUse = new WeakMap<RoomProjection, number>()

/** What room `room` has on a Router (transports, producers, pipes, consumers), if anything. */
export const roomShareOn = (
  snapshot: ClusterSnapshot,
  router: RouterId,
  room: MafaldaRouterId
): RoomShare | undefined => lookup(lookup(snapshot.routers, router)?.rooms ?? HashMap.empty(), room)

/**
 * The Routers room `m` has something on (transports, producers, pipes, consumers): Routers
 * it registered once and no longer uses do not make it spread. Memoised on `projection`,
 * which must be the room's projection on the same snapshot.
 */
export const routersInUse = (
  snapshot: ClusterSnapshot,
  m: MafaldaRouter,
  projection: RoomProjection
): number => {
  const known = inUse.get(projection)
  if (known !== undefined) return known
  let n = 0
  for (const id of m.routers) if (roomShareOn(snapshot, id, m.id) !== undefined) n++
  inUse.set(projection, n)
  return n
}

/**
 * The growth still to come on a Router (cost model), over the rooms that have something
 * there, or only room `only`'s when given.
 */
export const routerGrowth = (
  snapshot: ClusterSnapshot,
  options: PolicyOptions,
  router: RouterId,
  cache: Projections = new Map(),
  only?: MafaldaRouterId
): number => {
  const r = lookup(snapshot.routers, router)
  if (r === undefined) return 0
  let growth = 0
  for (const [room, share] of r.rooms) {
    if (only !== undefined && room !== only) continue
    const projection = projectionOf(snapshot, options, cache, room)
    const m = lookup(snapshot.mafaldaRouters, room)
    if (projection === undefined || m === undefined) continue
    const routers = projectedRouters(options, projection, routersInUse(snapshot, m, projection))
    const toCome = Math.max(0, Math.ceil(projection.transports) - m.size.transports)
    growth += shareGrowth(share, projection, options, routers, toCome)
  }
  return growth
}

/**
 * The growth still to come on a Worker, over its Routers, from every room or `only` one,
 * scaled by what its reports say of the cost model (`ratio`).
 */
const workerGrowth = (
  snapshot: ClusterSnapshot,
  options: PolicyOptions,
  worker: ClusterWorker,
  cache: Projections,
  only?: MafaldaRouterId
): number => {
  let growth = 0
  for (const { id } of worker.routers) growth += routerGrowth(snapshot, options, id, cache, only)
  return growth * worker.ratio
}

/** The growth still to come on a Worker from one room (scaled by the Worker's `ratio`). */
export const roomGrowthOn = (
  snapshot: ClusterSnapshot,
  options: PolicyOptions,
  worker: ClusterWorker,
  room: MafaldaRouterId,
  cache: Projections = new Map()
): number => workerGrowth(snapshot, options, worker, cache, room)

/**
 * A Worker's projected load: its effective load plus the growth still to come from the
 * rooms on its Routers, that growth scaled by what its reports say of the cost model.
 */
export const projectedLoad = (
  snapshot: ClusterSnapshot,
  options: PolicyOptions,
  worker: ClusterWorker,
  cache: Projections = new Map()
): number => effectiveLoad(worker) + workerGrowth(snapshot, options, worker, cache)

/** What one more transport of a room costs on a Worker (cost model, before `ratio`). */
export interface TransportCost {
  /** Once the room reaches its projection: its consumers, and the pipes to bring them in. */
  readonly final: number
  /** Per transport of the room, once it is full, where the room's producers are already. */
  readonly perMember: number
  /** The sending ends of pipes of its own producers to the room's other Routers. */
  readonly outs: number
  /** The receiving ends of pipes of the room's producers, on a Router the room does not use. */
  readonly pipes: number
}

/**
 * The cost of one more transport of room `m`: its own cost, a consumer of each producer
 * the room is projected to have, its share of the room's producers (the room's producers
 * over its transports) and, on a Router of a Worker the room does not use yet while it has
 * producers elsewhere, a pipe of each of them into it.
 */
export const transportCost = (
  options: PolicyOptions,
  projection: RoomProjection,
  piped: boolean,
  routers = 1
): TransportCost => {
  let perMember = options.costs.transport
  let pipes = 0
  let outs = 0
  for (const kind of kinds) {
    const costs = kindCosts(options.costs, kind)
    perMember += projection.media[kind] * costs.consumer
    perMember += perMemberMedia(projection, kind) * costs.producer
    pipes += projection.media[kind] * costs.pipe
    outs += perMemberMedia(projection, kind) * costs.pipe * Math.max(0, routers - 1)
  }
  return { perMember, outs, pipes, final: perMember + outs + (piped ? pipes : 0) }
}

/**
 * How many Routers the room is planned to span once full: one while its whole fan-out fits a
 * Worker's planned limit; else as many as its members need when each Router also receives
 * every producer made elsewhere and sends its own to the others (on average as much out as
 * in: a pipe has two ends). A room whose Router could not hold one member beside those pipes
 * is planned at one Router per member.
 *
 * One Router more when the last member of a part could not be admitted: a transport is placed
 * only while its Worker's effective load stays under the watermark, and a Router keeps growing
 * after its members came (they consume the producers of those who come after). The Routers
 * filled while the room is small pass the watermark only later; the one filled last meets
 * its part's cost, less the last member's own, at once. Planned without that Router, the
 * room's last members are turned away to Routers of their own, each receiving a pipe of every
 * producer of the room.
 */
export const plannedRouters = (options: PolicyOptions, projection: RoomProjection): number => {
  const { perMember, final } = transportCost(options, projection, true)
  const total = projection.transports * perMember
  const admissible = (routers: number): boolean => {
    const part = Math.ceil(projection.transports / routers)
    const pipes = routers > 1 ? 2 * (final - perMember) * (1 - 1 / routers) : 0
    return part * perMember + pipes - perMember <= options.watermark + 1e-9
  }
  if (total <= options.plannedLimit) return admissible(1) ? 1 : 2
  const room = options.plannedLimit - 2 * (final - perMember)
  if (room <= perMember) return Math.max(1, Math.ceil(projection.transports))
  const routers = Math.ceil(total / room)
  return admissible(routers) ? routers : routers + 1
}

/** The Routers the room is projected to span: as planned (`plannedRouters`), and at least those it uses now. */
export const projectedRouters = (
  options: PolicyOptions,
  projection: RoomProjection,
  current: number
): number => Math.max(current, plannedRouters(options, projection))

/**
 * The most transports of the room one Router is planned to take: its projected transports
 * over the Routers it is planned to span (`plannedRouters`; Routers it uses beyond the plan,
 * a few transports each, do not lower it).
 */
export const routerPart = (options: PolicyOptions, projection: RoomProjection): number =>
  Math.max(1, Math.ceil(projection.transports / plannedRouters(options, projection)))

/** The Routers room `m` uses on a Worker (at most one per set of Router settings: one). */
export const roomRouterOn = (m: MafaldaRouter, worker: ClusterWorker): RouterId | undefined => {
  for (const r of worker.routers) if (HashSet.has(m.routers, r.id)) return r.id
  return undefined
}

/** The transports a room has on a Worker. */
export const roomTransportsOn = (
  snapshot: ClusterSnapshot,
  m: MafaldaRouter,
  worker: ClusterWorker
): number => {
  let n = 0
  for (const r of worker.routers) {
    n += roomShareOn(snapshot, r.id, m.id)?.transports ?? 0
  }
  return n
}
