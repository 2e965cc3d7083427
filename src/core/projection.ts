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
 *
 * Every placement asks the projected load of each Worker it looks at, hence the growth of
 * every room on it: that growth is kept across decisions, per Router's rooms (`RouterMemo`),
 * per room share object (`termMemo`) and, for the Routers a room uses, per Mafalda Router
 * object (`routersInUse`). Snapshots are immutable, so each of those objects is replaced
 * whenever what it holds changes; each memo says what else it was worked out from, and a
 * figure is taken up again only while all of that is the same. The memos are WeakMaps: they
 * change no result, and go with the objects they are kept for.
 */
import { HashMap, HashSet } from "effect"
import { peakHoldMillis } from "./applyEvent.js"
import type { MafaldaRouterId, RouterId } from "./Ids.js"
import { kindCosts, type PolicyOptions } from "./PolicyOptions.js"
import {
  type ClusterRouter,
  type ClusterSnapshot,
  type ClusterWorker,
  effectiveLoad,
  lookup,
  type MafaldaRouter,
  type MediaKind,
  type RoomShare,
  type RoomSize
} from "./Snapshot.js"

/** The media kinds, in the order costs are summed. */
export const kinds: ReadonlyArray<MediaKind> = ["audio", "video"]

/** What a room is expected to reach: its transports, and its producers by kind. */
export interface RoomProjection {
  readonly transports: number
  readonly media: { readonly audio: number; readonly video: number }
}

/** Whether room `m`'s recent high still holds at `now` (`peakHoldMillis`). */
const holds = (m: MafaldaRouter, now: number): boolean => now - m.peakAt <= peakHoldMillis

/** The room's size, or its recent high while that holds (`peakHoldMillis`). */
export const heldSize = (m: MafaldaRouter, now: number): RoomSize =>
  holds(m, now)
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
export const perMemberMedia = (projection: RoomProjection, kind: MediaKind): number =>
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

/** Room `m`'s projection, from the decision's `cache` or worked out (and kept there). */
export const projectionFor = (
  snapshot: ClusterSnapshot,
  options: PolicyOptions,
  cache: Projections,
  m: MafaldaRouter
): RoomProjection => {
  const cached = cache.get(m.id)
  if (cached !== undefined) return cached
  const p = projectRoom(m, snapshot.now, options)
  cache.set(m.id, p)
  return p
}

/** What room `room` has on a Router (transports, producers, pipes, consumers), if anything. */
export const roomShareOn = (
  snapshot: ClusterSnapshot,
  router: RouterId,
  room: MafaldaRouterId
): RoomShare | undefined => lookup(lookup(snapshot.routers, router)?.rooms ?? HashMap.empty(), room)

/** What the rooms have on a Router (`ClusterRouter.rooms`): an immutable map. */
type RoomShares = ClusterRouter["rooms"]

// A number per object (snapshot, Mafalda Router, map of a Router's rooms), never reused: the
// memos below keep the numbers of the objects they were worked out from, not the objects, so
// that they hold on to nothing of an older snapshot (a memo kept with a current object would
// otherwise keep the objects it was checked against, and their own memos, alive in a chain).
const objectNumbers = new WeakMap<object, number>()
let objectsNumbered = 0

const objectNumber = (o: object): number => {
  let n = objectNumbers.get(o)
  if (n === undefined) {
    n = ++objectsNumbered
    objectNumbers.set(o, n)
  }
  return n
}

const snapshotNumber = (snapshot: ClusterSnapshot): number => objectNumber(snapshot)

/** `InUseMemo.rooms` of a Router gone, and of one not counted yet; `RoomTerm.m` of a room unknown. */
const goneRouter = -1
const notCounted = -2
const unknownRoom = -1

/**
 * How room `m`'s Routers in use were last counted (`routersInUse`): its registered Routers,
 * the number (`objectNumber`) of the map of rooms each had then (`goneRouter` for one gone,
 * `notCounted` before the first count) and whether the room had something on it, and how many
 * did.
 */
interface InUseMemo {
  readonly ids: ReadonlyArray<RouterId>
  readonly rooms: Array<number>
  readonly uses: Array<boolean>
  count: number
  /** The number of the last snapshot it was counted on (`snapshotNumber`): no need to look again. */
  countedOn: number
}

// Memo of `routersInUse` across decisions, per Mafalda Router object (replaced on any change
// of the room, its registered Routers among them). What a room has on a Router changes only
// with the Router's map of rooms (immutable, replaced on any change): each count is brought
// up to date by looking again at the Routers whose map is not the one last counted on, and at
// those alone.
const inUseMemo = new WeakMap<MafaldaRouter, InUseMemo>()

/**
 * The Routers room `m` has something on (transports, producers, pipes, consumers): Routers
 * it registered once and no longer uses do not make it spread.
 */
export const routersInUse = (snapshot: ClusterSnapshot, m: MafaldaRouter): number => {
  const on = snapshotNumber(snapshot)
  let memo = inUseMemo.get(m)
  if (memo === undefined) {
    const ids = Array.from(m.routers)
    memo = { ids, rooms: ids.map(() => notCounted), uses: ids.map(() => false), count: 0, countedOn: -1 }
    inUseMemo.set(m, memo)
  } else if (memo.countedOn === on) return memo.count
  memo.countedOn = on
  for (let i = 0; i < memo.ids.length; i++) {
    const rooms = lookup(snapshot.routers, memo.ids[i] as RouterId)?.rooms
    const number = rooms === undefined ? goneRouter : objectNumber(rooms)
    if (number === memo.rooms[i]) continue
    const uses = rooms !== undefined && lookup(rooms, m.id) !== undefined
    memo.count += (uses ? 1 : 0) - (memo.uses[i] ? 1 : 0)
    memo.rooms[i] = number
    memo.uses[i] = uses
  }
  return memo.count
}

/**
 * One room's growth still to come on one Router (`shareGrowth`), with what it was worked out
 * from beyond the Router's own share: the room's Mafalda Router object, whether its recent
 * high held (`heldSize`: the only way the time enters a projection), and the Routers it was
 * projected to span (`projectedRouters`).
 */
interface RoomTerm {
  readonly options: PolicyOptions
  /**
   * The number (`objectNumber`) of the room's Mafalda Router object, or `unknownRoom` for a
   * room the snapshot does not know: no growth.
   */
  readonly m: number
  readonly held: boolean
  /** `plannedRouters` of the room's projection. */
  readonly planned: number
  /** `projectedRouters`: the most of `planned` and the Routers the room uses now. */
  readonly routers: number
  readonly growth: number
}

/**
 * The growth still to come on a Router from room `m`, whose share there is `share`. The
 * Routers the room uses now are counted only when they could exceed the plan: a room that
 * has registered no more Routers than it is planned to span (most rooms: one) spans as
 * planned, whatever it still has on them.
 */
const roomTerm = (
  snapshot: ClusterSnapshot,
  options: PolicyOptions,
  cache: Projections,
  m: MafaldaRouter,
  share: RoomShare
): RoomTerm => {
  const projection = projectionFor(snapshot, options, cache, m)
  const planned = plannedRouters(options, projection)
  const routers = HashSet.size(m.routers) <= planned ? planned : Math.max(routersInUse(snapshot, m), planned)
  const toCome = Math.max(0, Math.ceil(projection.transports) - m.size.transports)
  const growth = shareGrowth(share, projection, options, routers, toCome)
  return { options, m: objectNumber(m), held: holds(m, snapshot.now), planned, routers, growth }
}

const unknownRoomTerm = (options: PolicyOptions): RoomTerm => ({
  options,
  m: unknownRoom,
  held: false,
  planned: 0,
  routers: 0,
  growth: 0
})

/**
 * Whether `term`, worked out from a share of room `room`, is still its value on this snapshot
 * with these options, for the same share object (immutable): see `RouterMemo`.
 */
const termHolds = (
  snapshot: ClusterSnapshot,
  options: PolicyOptions,
  room: MafaldaRouterId,
  term: RoomTerm
): boolean => {
  if (term.options !== options) return false
  const m = lookup(snapshot.mafaldaRouters, room)
  if ((m === undefined ? unknownRoom : objectNumber(m)) !== term.m) return false
  if (m === undefined) return true
  if (holds(m, snapshot.now) !== term.held) return false
  if (HashSet.size(m.routers) <= term.planned) return true
  return Math.max(routersInUse(snapshot, m), term.planned) === term.routers
}

/**
 * A Router's growth (`routerGrowth` over every room), kept across decisions: every join asks
 * it of the Workers it looks at, and most Routers have not changed since the last one. It is
 * kept per map of the Router's rooms (immutable: any change to what the rooms have on the
 * Router replaces it, and with it this entry), and valid while each of its terms holds
 * (`termHolds`: the same `options` object and, for the room, the same Mafalda Router object,
 * replaced on any change of the room, on the same side of its peak-hold window (`heldSize`),
 * spanning the same `projectedRouters`). Rooms with no transport on the Router add nothing
 * (`shareGrowth`) and have no term. The sum is the one worked out when the entry was made, in
 * the order of the Router's rooms, so it is the very figure summing the terms again would give.
 * `checkedOn` is the number of the last snapshot it was found valid on (`snapshotNumber`), with
 * `options`: a snapshot is immutable, there is no need to check again on it.
 */
interface RouterMemo {
  readonly options: PolicyOptions
  readonly ids: ReadonlyArray<MafaldaRouterId>
  readonly terms: ReadonlyArray<RoomTerm>
  readonly growth: number
  checkedOn: number
}

const routerMemo = new WeakMap<RoomShares, RouterMemo>()

// Memo of each room's term per share object (immutable), for a Router whose rooms changed
// elsewhere than in this share: valid as a Router's terms are (`termHolds`).
const termMemo = new WeakMap<RoomShare, RoomTerm>()

/** The growth still to come on a Router with these rooms, over every room (see `RouterMemo`). */
const allRoomsGrowth = (
  snapshot: ClusterSnapshot,
  options: PolicyOptions,
  shares: RoomShares,
  cache: Projections
): number => {
  const checkedOn = snapshotNumber(snapshot)
  const memo = routerMemo.get(shares)
  if (memo !== undefined) {
    if (memo.checkedOn === checkedOn && memo.options === options) return memo.growth
    let valid = true
    for (let i = 0; valid && i < memo.ids.length; i++) {
      valid = termHolds(snapshot, options, memo.ids[i] as MafaldaRouterId, memo.terms[i] as RoomTerm)
    }
    if (valid) {
      memo.checkedOn = checkedOn
      return memo.growth
    }
  }
  // Summed in the order of the Router's rooms, as the terms are kept: the same sum each time.
  // The terms of the rooms whose share and Mafalda Router are unchanged are taken up again.
  let growth = 0
  const ids: Array<MafaldaRouterId> = []
  const terms: Array<RoomTerm> = []
  for (const [room, share] of shares) {
    if (share.transports === 0) continue
    let term = termMemo.get(share)
    if (term === undefined || !termHolds(snapshot, options, room, term)) {
      const m = lookup(snapshot.mafaldaRouters, room)
      term = m === undefined ? unknownRoomTerm(options) : roomTerm(snapshot, options, cache, m, share)
      termMemo.set(share, term)
    }
    ids.push(room)
    terms.push(term)
    if (term.m !== unknownRoom) growth += term.growth
  }
  routerMemo.set(shares, { options, ids, terms, growth, checkedOn })
  return growth
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
  if (only === undefined) return allRoomsGrowth(snapshot, options, r.rooms, cache)
  const share = lookup(r.rooms, only)
  const m = lookup(snapshot.mafaldaRouters, only)
  return share === undefined || m === undefined ? 0 : roomTerm(snapshot, options, cache, m, share).growth
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
