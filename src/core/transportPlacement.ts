/**
 * Where a new transport of a Mafalda Router (a room) goes. The policy concentrates, so that
 * few Workers carry many consumers and idle ones can be closed, but it plans for how rooms
 * grow: in a meeting every transport consumes every producer of its room, so a transport
 * placed while its room is small keeps growing on its Worker as the room fills. Each Worker's
 * *projected* load (`projection.ts`: its effective load plus the growth still to come from
 * the rooms on it, scaled by its measured/modeled `ratio`) is what a placement must keep
 * under `plannedLimit`, and its effective load plus what the transport brings at once under
 * the watermark.
 *
 * A Worker `fits` a transport of room `m` when (`placementCost`):
 *  - effective load + the growth still to come of the *other* rooms on it + `now` ≤ watermark
 *    (and the effective load is under it): what other rooms have reserved there stays
 *    theirs; `now` is
 *    the transport's own cost, a consumer of each live producer of the room and, on a Worker
 *    the room does not use while it has Routers elsewhere, a pipe of each of them in;
 *  - projected load + `final` ≤ `plannedLimit`, `final` being the same once the room reaches
 *    its projection (hint, or recent high).
 * It `holds the rest` of the room when, moreover, projected load + `rest` ≤ the watermark,
 * `rest` being what the room's transports still to come (with their share of the room's
 * producers) will cost there once the room is full: at most a Router's part of them and,
 * when a room planned over several Routers spreads onto one more (a Router it has nothing
 * on), at least `spreadShare` of a part. A big room's Routers fill up to the watermark while
 * it still expects members (those who leave have their seats taken by others, who may not
 * fit where they left: the Router the room's producers are piped out of carries a pipe end
 * for each other Router). Were each of those members placed where only they fit, each would
 * open a Router of its own on a busy Worker, with a pipe of every producer of the room in
 * (the webinar scenario had 2.95 times its lower bound of pipes): the new Router should have
 * room for the members that follow it there (steps 1 and 2 send them to it). That least share
 * counts for holding the rest only: a Worker that fits the transport still takes it (step 6)
 * when none holds the rest and no CPU is left to start a Worker.
 *
 * A room without a hint is projected at its recent high, so that one planned on one Router
 * that has to spread while at that high (`outgrows`) is growing past its projection: many
 * small rooms packed on a Worker while they were small, then all growing at once (a burst of
 * joins), each outgrowing it. Its `rest` is then `outgrowShare` of its size (up to
 * `spreadShare` of the watermark in the cost model, before the Worker's `ratio`), and a
 * Worker holds it only if it also has room for the same of each other room without a hint
 * growing there (planned on one Router, at its recent
 * high, reached within `growingWithinMillis`: `growingRest`). Counting its own growth alone,
 * every room spreading at once took the same freest Worker, each got a few members there
 * before it was full and spread again, and every room ended up on every Worker with a pipe
 * of each of its producers into each (the burst scenario: 15 Workers and 2,442 pipes for a
 * lower bound of 10 Workers; 12 and 652 with this rule). That too counts for holding the
 * rest only, never for fitting.
 *
 * Nothing is reserved either for a room without a hint whose members come and go: at its
 * recent high, it grows by one member now and then. A room opening on a Worker (a transport
 * on a Router where it has nothing) holds its rest there only if the rooms of that kind already
 * there (`fluctuatingMin` members or more, at least half of them publishing, at their recent
 * high) could all take one more member at once (`fluctuatingRest`; room for half of them did
 * no better in `daily` and cost `mixed` a Worker). Without it, Workers filled to the watermark with small
 * meetings split each one that grew onto another Worker, with a pipe of each of its producers
 * both ways: the `daily` scenario (3,000 meetings of 3 to 12 without a hint, people staying
 * 10 min) ran 123 Workers and 8,590 pipes at its peak for a lower bound of 63 Workers; 93 and
 * 2,672 with this rule.
 * Counting for holding the rest only, it never turns a transport away.
 *
 * A room planned over several Routers (`plannedRouters`) gives each at most its part
 * (`routerPart`) while it has members to come: a Router that holds its part already is
 * `overPart`, and steps 1 to 5 pass it by (it would take the place of another Router's members,
 * and its Worker the growth planned elsewhere); step 6 may still use it.
 *
 * In order, from the Node that received the request:
 *  1. a Router the room already uses on this Node whose Worker fits, the most projected
 *     Worker first (the room stays together while its Workers can hold its fan-out); a Router
 *     it registered once and has nothing on any more (its members left, or consolidation moved
 *     them off) is not among them, so that its Worker can close;
 *  2. a Router the room already uses on another `up` Node whose Worker fits: `Delegate` there;
 *  3. on this Node, the busiest Worker (projected load) that holds the rest of the room, so
 *     that a room opens where it can grow; a room without a hint that spreads (it uses Routers
 *     already), the Worker that holds the rest (with the growth of the other rooms growing
 *     there, when it outgrows its Routers) with the most free projected room, so that its
 *     next members can follow it there;
 *  4. a new Worker on this Node while it has fewer Workers with these settings than its
 *     limit (a fresh Worker has the most room);
 *  5. another Node (`Delegate`): one with a Worker that holds the room's part (a bounded
 *     walk of at most `maxDelegateCandidates` Workers of the Tracker's load index, busiest
 *     first), else the fullest one with a CPU that runs no Worker, then the fullest one whose
 *     CPUs all run Workers of other settings (a fresh Worker has the most room);
 *  6. the Worker of this Node with the most free projected room that fits; then another
 *     Node with a Worker that fits (the first met in that walk);
 *  7. otherwise `Reject`: there is no room, and nothing is placed on a Worker that would
 *     pass the watermark.
 * Ties are broken by the smaller Worker (or Node) id: decisions are deterministic.
 */
import { Data, HashMap, HashSet, Option, RedBlackTree } from "effect"
import type { MafaldaRouterId, NodeId, RouterId, WorkerId } from "./Ids.js"
import { kindCosts, type PolicyOptions } from "./PolicyOptions.js"
import {
  kinds,
  type Projections,
  perMemberMedia,
  projectedLoad,
  projectedRouters,
  projectionFor,
  projectRoom,
  type RoomProjection,
  roomGrowthOn,
  roomRouterOn,
  roomShareOn,
  routerPart,
  routersInUse,
  transportCost
} from "./projection.js"
import {
  type ClusterNode,
  type ClusterSnapshot,
  type ClusterWorker,
  effectiveLoad,
  lookup,
  type MafaldaRouter,
  nodesWithSpareCpu,
  type RoomShare,
  routerIdOn,
  underProcessCap,
  workerOfRouter,
  workersOn,
  workersUnder
} from "./Snapshot.js"

export type TransportPlacement = Data.TaggedEnum<{
  /** Use an existing Router; `register` when the Mafalda Router does not use it yet. */
  UseRouter: {
    readonly router: RouterId
    readonly worker: WorkerId
    readonly node: NodeId
    readonly register: boolean
  }
  /** Create a Router on an existing Worker, then use it. */
  CreateRouter: { readonly worker: WorkerId; readonly node: NodeId }
  /** Start a Worker on this Node, create a Router on it, then use it. */
  CreateWorker: { readonly node: NodeId }
  /** This Node has no room: send the client to that Node, which decides there. */
  Delegate: { readonly node: NodeId }
  Reject: { readonly reason: "NoRoom" | "UnknownMafaldaRouter" | "UnknownNode"; readonly message: string }
}>
export const TransportPlacement = Data.taggedEnum<TransportPlacement>()

/** A placement refused: no room anywhere, or an unknown Mafalda Router or Node. */
export type TransportRejection = Data.TaggedEnum.Value<TransportPlacement, "Reject">

export interface TransportRequest {
  /** The Node that received the request (the local Node for an embedded cluster). */
  readonly node: NodeId
  readonly mafaldaRouter: MafaldaRouterId
}

/** The most Workers with one set of settings that a Node may run. */
export const workerLimit = (node: ClusterNode, options: PolicyOptions): number =>
  Math.min(node.cpus, options.maxWorkersPerNode ?? node.cpus)

/**
 * Sums of costs are compared with this much slack: 600 transports of 0.1 % make 60 % in
 * decimal, and 60.000000000000x in binary.
 */
export const tolerance = 1e-9

/** How many Workers of other Nodes delegation looks at, at most (busiest first). */
export const maxDelegateCandidates = 64

/**
 * The share of a Router's part of the room (`routerPart`) that a room planned over several
 * Routers must find room for when it spreads onto one more Router, however few members it
 * still expects (see the module's documentation).
 */
export const spreadShare = 0.5

/**
 * How much more a room without a hint is expected to grow, as a share of its size, when it
 * has outgrown the Routers it uses (see the module's documentation): set on the burst
 * scenario, where 1 (twice its size) opened more Workers and 0.5 left more pipes.
 */
export const outgrowShare = 0.75

/**
 * A room without a hint is still growing while it reached a new high (`peakAt`) this recently
 * (milliseconds); rooms whose members come one every few seconds stop counting at once.
 */
export const growingWithinMillis = 2_000

/**
 * A room without a hint counts as one whose members come and go, and may grow by one at any
 * time, from this many members on, when at least half of them publish (see `fluctuatingRest`).
 * Below it (and in rooms of one speaker and viewers) one more member costs little.
 */
export const fluctuatingMin = 3

/** What a transport of a room costs on a Worker (CPU %, scaled by the Worker's `ratio`). */
export interface PlacementCost {
  /** At once: its own cost, a consumer of each live producer of the room, pipes to bring them. */
  readonly now: number
  /** Once the room reaches its projection. */
  readonly final: number
  /**
   * The room's transports still to come (and its producers, when it has no Router yet), there;
   * when a room planned over several Routers spreads onto one more, at least `spreadShare` of
   * a Router's part of them.
   */
  readonly rest: number
  /**
   * The Router already holds its part of a room planned over several Routers (`routerPart`)
   * while the room still has transports to come: the transport would take another Router's
   * place there, and its Worker the growth planned elsewhere.
   */
  readonly overPart: boolean
  /**
   * A room without a hint planned on one Router that spreads at its recent high (see the
   * module's documentation): its `rest` is `outgrowShare` of its size, and the Worker must
   * also hold what the other rooms growing there expect (`growingRest`).
   */
  readonly outgrows: boolean
  /** The room has nothing on the Worker's Router: the transport opens its part there. */
  readonly opens: boolean
}

/** The room's live producers, as a projection (what a transport consumes at once). */
const current = (m: MafaldaRouter): RoomProjection => ({ transports: m.size.transports, media: m.size.media })

/**
 * What one more transport of room `m` costs on `worker` (see the module's documentation),
 * given the room's projection. On a Router where the room's growth is already reserved (its
 * part of the room is not reached yet, see `shareGrowth`), the transport's final cost is in
 * the Worker's projected load already: it adds nothing more. On a Worker the room does not
 * use yet, its final cost is the room's part there (`rest`), which is reserved once it lands.
 */
export const placementCost = (
  snapshot: ClusterSnapshot,
  options: PolicyOptions,
  m: MafaldaRouter,
  projection: RoomProjection,
  worker: ClusterWorker
): PlacementCost => {
  const router = roomRouterOn(m, worker)
  const share = router === undefined ? undefined : roomShareOn(snapshot, router, m.id)
  const inUse = routersInUse(snapshot, m)
  // A Router the room has nothing on (none yet, or one registered once): the transport
  // spreads the room there, and the room's producers elsewhere must be piped in.
  const adds = share === undefined
  const spread = adds && inUse > 0
  const now = transportCost(options, current(m), spread).final
  const routers = projectedRouters(options, projection, inUse + (adds ? 1 : 0))
  const final = transportCost(options, projection, spread, routers)
  const toCome = Math.max(0, Math.ceil(projection.transports) - m.size.transports)
  const part = Math.max(1, Math.ceil(projection.transports / routers))
  const here = share?.transports ?? 0
  const reserved = here > 0 && here < part && toCome > 0
  const planned = routerPart(options, projection)
  // The room's transports still to come, each with its share of the room's producers; of
  // a room projected over several Routers, one Router's part of them. A room planned over
  // several Routers that spreads onto one more counts at least `spreadShare` of a part there
  // (see the module's documentation), however few members it still expects.
  // That least share makes a Worker hold the rest (preferred by steps 3 and 5), not fit: a
  // Worker with room for the members still expected alone still takes them when none holds it.
  const multi = Math.ceil(projection.transports) > planned
  const least = spread && multi ? Math.ceil(part * spreadShare) : 1
  const slots = Math.min(Math.max(1, toCome), part)
  const each = final.perMember + final.outs
  const pipesIn = spread || routers > 1 ? final.pipes : 0
  const due = slots * each + pipesIn
  // A room without a hint planned on one Router that spreads at its recent high has outgrown
  // what it was projected at: it counts `outgrowShare` of its size still to come, up to
  // `spreadShare` of the watermark (see the module's documentation).
  const outgrows = m.hint === null && spread && toCome === 0 && !multi
  const rest = outgrows
    ? Math.max(outgrowRest(options, m, projection), slots * each) + pipesIn
    : Math.min(Math.max(slots, least), part) * each + pipesIn
  const k = worker.ratio
  // On a Router the room has nothing on yet, the transport opens the room's part there: its
  // growth is reserved once it lands, so that part must fit.
  const finalCost = reserved ? 0 : adds ? Math.max(due, final.final) : final.final
  const overPart = here >= planned && toCome > 0 && Math.ceil(projection.transports) > planned
  return { now: now * k, final: finalCost * k, rest: rest * k, overPart, outgrows, opens: adds }
}

/**
 * What a room without a hint that outgrew its Routers expects still (cost model): `outgrowShare`
 * of its transports, each at its cost once there, up to `spreadShare` of the watermark in
 * the cost model (before the Worker's `ratio` scales it, as every cost here).
 */
const outgrowRest = (options: PolicyOptions, m: MafaldaRouter, projection: RoomProjection): number =>
  Math.min(
    Math.ceil(m.size.transports * outgrowShare) * transportCost(options, projection, false).perMember,
    options.watermark * spreadShare
  )

/**
 * Calls `f` with each other room without a hint that has transports on the Worker's Routers,
 * and its share there: nothing of such a room's growth is reserved anywhere.
 */
const eachOtherHintless = (
  snapshot: ClusterSnapshot,
  m: MafaldaRouter,
  worker: ClusterWorker,
  f: (room: MafaldaRouter, share: RoomShare) => void
): void => {
  for (const { id } of worker.routers) {
    for (const [room, share] of lookup(snapshot.routers, id)?.rooms ?? HashMap.empty()) {
      if (room === m.id || share.transports === 0) continue
      const o = lookup(snapshot.mafaldaRouters, room)
      if (o !== undefined && o.hint === null) f(o, share)
    }
  }
}

/**
 * What the other rooms without a hint growing on a Worker expect still (`outgrowRest`, scaled
 * by the Worker's `ratio`): rooms planned on one Router, at their recent high and that
 * reached it within `growingWithinMillis`, with transports on the Worker's Routers.
 */
const growingRest = (
  snapshot: ClusterSnapshot,
  options: PolicyOptions,
  m: MafaldaRouter,
  worker: ClusterWorker,
  cache: Projections
): number => {
  let sum = 0
  eachOtherHintless(snapshot, m, worker, (o) => {
    if (snapshot.now - o.peakAt > growingWithinMillis) return
    const p = projectionFor(snapshot, options, cache, o)
    if (Math.ceil(p.transports) > o.size.transports || Math.ceil(p.transports) > routerPart(options, p))
      return
    sum += outgrowRest(options, o, p)
  })
  return sum * worker.ratio
}

/**
 * What one more member of every other room without a hint on a Worker whose members mostly
 * publish (`fluctuatingMin` members or more, at least half of them publishing) would cost there
 * at once: each one's own transport with its consumers and producers, and a consumer of its
 * producers on each of the room's transports there; scaled by the Worker's `ratio`. A room
 * below its projection (its recent high: someone just left) is left out, its next member's
 * cost being reserved in the Worker's projected load already.
 */
const fluctuatingRest = (
  snapshot: ClusterSnapshot,
  options: PolicyOptions,
  m: MafaldaRouter,
  worker: ClusterWorker,
  cache: Projections
): number => {
  let sum = 0
  eachOtherHintless(snapshot, m, worker, (o, share) => {
    if (o.size.transports < fluctuatingMin || o.size.publishers * 2 < o.size.transports) return
    const p = projectionFor(snapshot, options, cache, o)
    if (Math.ceil(p.transports) > o.size.transports) return
    let fanOut = 0
    for (const kind of kinds) {
      fanOut += share.transports * perMemberMedia(p, kind) * kindCosts(options.costs, kind).consumer
    }
    sum += transportCost(options, p, false).perMember + fanOut
  })
  return sum * worker.ratio
}

/** How one Worker stands for a transport of the room. */
interface Standing {
  readonly worker: ClusterWorker
  readonly projected: number
  readonly fits: boolean
  /** It fits, and not past the Router's part of the room (`overPart`): steps 1 to 5 take only these. */
  readonly preferred: boolean
  readonly holdsRest: boolean
}

const stand = (
  snapshot: ClusterSnapshot,
  options: PolicyOptions,
  m: MafaldaRouter,
  projection: RoomProjection,
  worker: ClusterWorker,
  cache: Projections
): Standing => {
  const load = effectiveLoad(worker)
  // At or over the watermark nothing fits, and every caller reads a standing only when it
  // fits: its costs and projection are not worked out (`projected` is left at the load).
  if (load >= options.watermark)
    return { worker, projected: load, fits: false, preferred: false, holdsRest: false }
  const cost = placementCost(snapshot, options, m, projection, worker)
  // The first condition of `fits` with the other rooms' growth left out (it only adds): a
  // Worker the transport's cost now takes past the watermark fits in no case, whatever its
  // projection, which is not worked out either.
  if (load + cost.now > options.watermark + tolerance)
    return { worker, projected: load, fits: false, preferred: false, holdsRest: false }
  const projected = projectedLoad(snapshot, options, worker, cache)
  // What the other rooms on the Worker will still grow by is theirs: the watermark bounds
  // this transport's cost now on top of it, so that they can still complete there.
  const others = projected - load - roomGrowthOn(snapshot, options, worker, m.id, cache)
  const fits =
    load < options.watermark &&
    load + Math.max(0, others) + cost.now <= options.watermark + tolerance &&
    projected + cost.final <= options.plannedLimit + tolerance
  const preferred = fits && !cost.overPart
  const holdsRest =
    preferred &&
    projected + cost.rest <= options.watermark + tolerance &&
    (!cost.outgrows ||
      projected + cost.rest + growingRest(snapshot, options, m, worker, cache) <=
        options.watermark + tolerance) &&
    (!cost.opens ||
      projected + cost.rest + fluctuatingRest(snapshot, options, m, worker, cache) <=
        options.watermark + tolerance)
  return { worker, projected, fits, preferred, holdsRest }
}

/** Higher projected load first, then the smaller Worker id: a total order. */
const moreProjected = (a: Standing, b: Standing): boolean =>
  a.projected > b.projected || (a.projected === b.projected && a.worker.id < b.worker.id)

/** More free projected room first (lower projected load), then the smaller Worker id. */
const moreFree = (a: Standing, b: Standing): boolean =>
  a.projected < b.projected || (a.projected === b.projected && a.worker.id < b.worker.id)

const canStartWorker = (
  snapshot: ClusterSnapshot,
  node: ClusterNode,
  m: MafaldaRouter,
  options: PolicyOptions
): boolean =>
  node.state === "up" &&
  underProcessCap(node) &&
  workersOn(snapshot, node.id, m.workerSettings).length < workerLimit(node, options)

/** Uses the Worker for room `m`: its Router with the room's settings, or a new one. */
const onWorker = (m: MafaldaRouter, worker: ClusterWorker): TransportPlacement => {
  const router = routerIdOn(worker, m.routerSettings)
  return router === undefined
    ? TransportPlacement.CreateRouter({ worker: worker.id, node: worker.node })
    : TransportPlacement.UseRouter({
        router,
        worker: worker.id,
        node: worker.node,
        register: !HashSet.has(m.routers, router)
      })
}

/**
 * Whether the room has something on its Router of this Worker (a transport, a producer, a pipe,
 * a consumer): a Router it registered once and emptied since (its members left, or were moved
 * off by consolidation) is not its own for steps 1 and 2, so that the Worker can close.
 */
const holdsRoom = (snapshot: ClusterSnapshot, m: MafaldaRouter, worker: ClusterWorker): boolean => {
  const router = roomRouterOn(m, worker)
  return router !== undefined && roomShareOn(snapshot, router, m.id) !== undefined
}

/** The live Workers of a Node with the room's worker settings that fit its transport. */
const fittingOn = (
  snapshot: ClusterSnapshot,
  options: PolicyOptions,
  node: ClusterNode,
  m: MafaldaRouter,
  projection: RoomProjection,
  cache: Projections,
  ownOnly: boolean
): Array<Standing> => {
  const out: Array<Standing> = []
  for (const id of node.workers) {
    const worker = lookup(snapshot.workers, id)
    if (worker === undefined || !worker.alive || worker.settings !== m.workerSettings) continue
    if (ownOnly && !holdsRoom(snapshot, m, worker)) continue
    const st = stand(snapshot, options, m, projection, worker, cache)
    if (st.fits) out.push(st)
  }
  return out
}

/** Step 1: a Router the room uses on the receiving Node (`up`) whose Worker fits, or undefined. */
const ownOnNode = (
  snapshot: ClusterSnapshot,
  options: PolicyOptions,
  node: ClusterNode,
  m: MafaldaRouter,
  projection: RoomProjection,
  cache: Projections
): TransportPlacement | undefined => {
  let own: Standing | undefined
  for (const st of fittingOn(snapshot, options, node, m, projection, cache, true)) {
    if (st.preferred && (own === undefined || moreProjected(st, own))) own = st
  }
  return own === undefined ? undefined : onWorker(m, own.worker)
}

/**
 * Steps 3 and 4 on the receiving Node (`up`): a placement, or (`freest`) the Worker with the
 * most free projected room that fits, to use only when no other Node holds the room's part
 * or can start a Worker; or undefined.
 */
const openOnNode = (
  snapshot: ClusterSnapshot,
  options: PolicyOptions,
  node: ClusterNode,
  m: MafaldaRouter,
  projection: RoomProjection,
  cache: Projections
): TransportPlacement | { readonly freest: TransportPlacement } | undefined => {
  let holder: Standing | undefined
  let freest: Standing | undefined
  // A room without a hint that spreads (it has Routers in use already) goes where it has the
  // most room to follow: nothing of its growth is reserved anywhere, its own Routers could not
  // take this transport, and the busiest Worker that holds it would not take the next one
  // either, each newcomer then opening a Router of its own with a pipe of every producer.
  const spreads = m.hint === null && routersInUse(snapshot, m) > 0
  for (const st of fittingOn(snapshot, options, node, m, projection, cache, false)) {
    if (
      st.holdsRest &&
      (holder === undefined || (spreads ? moreFree(st, holder) : moreProjected(st, holder)))
    )
      holder = st
    if (freest === undefined || moreFree(st, freest)) freest = st
  }
  if (holder !== undefined) return onWorker(m, holder.worker)
  if (canStartWorker(snapshot, node, m, options)) return TransportPlacement.CreateWorker({ node: node.id })
  return freest === undefined ? undefined : { freest: onWorker(m, freest.worker) }
}

/** Step 2: another `up` Node where the room has a Router whose Worker fits, most projected first. */
const ownElsewhere = (
  snapshot: ClusterSnapshot,
  options: PolicyOptions,
  request: TransportRequest,
  m: MafaldaRouter,
  projection: RoomProjection,
  cache: Projections
): NodeId | undefined => {
  let best: Standing | undefined
  for (const id of m.routers) {
    const worker = workerOfRouter(snapshot, id)
    if (worker === undefined || !worker.alive || worker.node === request.node) continue
    if (roomShareOn(snapshot, id, m.id) === undefined) continue
    if (lookup(snapshot.nodes, worker.node)?.state !== "up") continue
    const st = stand(snapshot, options, m, projection, worker, cache)
    if (st.preferred && (best === undefined || moreProjected(st, best))) best = st
  }
  return best?.worker.node
}

/** Step 5: the other Node to delegate to, or undefined (bounded: see `maxDelegateCandidates`). */
const delegateTo = (
  snapshot: ClusterSnapshot,
  options: PolicyOptions,
  request: TransportRequest,
  m: MafaldaRouter,
  projection: RoomProjection,
  cache: Projections
): { readonly node: NodeId; readonly fitsOnly?: true } | undefined => {
  const elsewhere = (node: NodeId) => node !== request.node && lookup(snapshot.nodes, node)?.state === "up"
  let seen = 0
  let fitting: NodeId | undefined
  for (const worker of workersUnder(snapshot, m.workerSettings, options.watermark)) {
    if (seen >= maxDelegateCandidates) break
    if (!elsewhere(worker.node)) continue
    seen++
    const st = stand(snapshot, options, m, projection, worker, cache)
    if (st.holdsRest) return { node: worker.node }
    if (st.fits && fitting === undefined) fitting = worker.node
  }
  // A Node that can start a Worker, the fullest first: Nodes with an idle CPU, from the
  // index; failing that (every CPU runs a Worker), a Node whose Workers have other settings.
  for (const node of nodesWithSpareCpu(snapshot)) {
    if (node.id !== request.node && canStartWorker(snapshot, node, m, options)) return { node: node.id }
  }
  // Only Workers of other settings (or dead ones, not yet removed) can leave a Node without a
  // spare CPU able to start one of these: when every Worker is alive with these settings, there
  // is none, and no need to look at every Node (a full cluster of thousands rejects at once).
  const live = HashMap.get(snapshot.byLoad, m.workerSettings).pipe(Option.map(RedBlackTree.size))
  if (
    HashMap.size(snapshot.byLoad) <= 1 &&
    Option.getOrElse(live, () => 0) === HashMap.size(snapshot.workers)
  ) {
    return fitting === undefined ? undefined : { node: fitting, fitsOnly: true }
  }
  let fallback: ClusterNode | undefined
  for (const node of HashMap.values(snapshot.nodes)) {
    if (node.id === request.node || !canStartWorker(snapshot, node, m, options)) continue
    const used = node.workers.length / node.cpus
    const best = fallback === undefined ? -1 : fallback.workers.length / fallback.cpus
    if (fallback === undefined || used > best || (used === best && node.id < fallback.id)) fallback = node
  }
  if (fallback !== undefined) return { node: fallback.id }
  return fitting === undefined ? undefined : { node: fitting, fitsOnly: true }
}

export const decideTransportPlacement = (
  snapshot: ClusterSnapshot,
  options: PolicyOptions,
  request: TransportRequest
): TransportPlacement => {
  const m = lookup(snapshot.mafaldaRouters, request.mafaldaRouter)
  if (m === undefined) {
    return TransportPlacement.Reject({
      reason: "UnknownMafaldaRouter",
      message: `unknown Mafalda Router ${request.mafaldaRouter}`
    })
  }
  const node = lookup(snapshot.nodes, request.node)
  if (node === undefined) {
    return TransportPlacement.Reject({ reason: "UnknownNode", message: `unknown Node ${request.node}` })
  }
  const cache: Projections = new Map()
  const projection = projectRoom(m, snapshot.now, options)
  cache.set(m.id, projection)
  const up = node.state === "up"
  const own = up ? ownOnNode(snapshot, options, node, m, projection, cache) : undefined
  if (own !== undefined) return own
  const there = ownElsewhere(snapshot, options, request, m, projection, cache)
  if (there !== undefined) return TransportPlacement.Delegate({ node: there })
  const opened = up ? openOnNode(snapshot, options, node, m, projection, cache) : undefined
  if (opened !== undefined && !("freest" in opened)) return opened
  const other = delegateTo(snapshot, options, request, m, projection, cache)
  if (other !== undefined && other.fitsOnly === undefined)
    return TransportPlacement.Delegate({ node: other.node })
  if (opened !== undefined) return opened.freest
  if (other !== undefined) return TransportPlacement.Delegate({ node: other.node })
  return TransportPlacement.Reject({
    reason: "NoRoom",
    message: `no Worker under the ${options.watermark} % watermark (and its rooms' planned ${options.plannedLimit} %) with room for the transport, and no CPU left to start one`
  })
}
