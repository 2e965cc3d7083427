/**
 * Reference models of the placement rules, written from the specification with plain
 * sorting (not the core's single-pass scans), used as oracles by the property tests.
 */

import { HashMap } from "effect"
import {
  type ClusterSnapshot,
  type ClusterWorker,
  effectiveLoad,
  lookup,
  type MafaldaRouter,
  type NodeId,
  type PolicyOptions,
  placementCost,
  type RoomShare,
  type RouterId,
  type StreamTree,
  type TransportRequest,
  type TreeHop,
  workerOfRouter
} from "../../src/core/index.js"
import {
  projectedLoad,
  projectRoom,
  roomGrowthOn,
  routerPart,
  transportCost
} from "../../src/core/projection.js"
import { growingWithinMillis, outgrowShare, spreadShare } from "../../src/core/transportPlacement.js"
import { contains, count } from "./helpers.js"

const byId = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

const liveWorkers = (s: ClusterSnapshot, node: NodeId, m: MafaldaRouter): Array<ClusterWorker> =>
  [...HashMap.values(s.workers)].filter((w) => w.node === node && w.alive && w.settings === m.workerSettings)

const routerIdOn = (s: ClusterSnapshot, w: ClusterWorker, m: MafaldaRouter): RouterId | undefined =>
  [...HashMap.values(s.routers)].find((r) => r.worker === w.id && r.settings === m.routerSettings)?.id

/**
 * How a Worker stands for one more transport of room `m`, from the rule as
 * `transportPlacement.ts` documents it: it fits when its effective load stays under the
 * watermark with what the transport brings at once (`now`), and its projected load under
 * `plannedLimit` with what the transport will cost once the room is full (`final`); it holds
 * the rest of the room when, moreover, its projected load plus `rest` stays under
 * `plannedLimit`. (The costs and projections are the core's own functions, tested by example;
 * this model checks the order of the steps with plain sorting.)
 */
export const oracleStanding = (
  s: ClusterSnapshot,
  options: PolicyOptions,
  m: MafaldaRouter,
  w: ClusterWorker
) => {
  const cost = placementCost(s, options, m, projectRoom(m, s.now, options), w)
  const load = effectiveLoad(w)
  const projected = projectedLoad(s, options, w)
  const e = 1e-9 // sums of decimal costs in binary (see `tolerance`)
  const others = Math.max(0, projected - load - roomGrowthOn(s, options, w, m.id))
  const fits =
    load < options.watermark &&
    load + others + cost.now <= options.watermark + e &&
    projected + cost.final <= options.plannedLimit + e
  // A Router past its part of a room planned over several Routers is left to the last resort.
  const preferred = fits && !cost.overPart
  return {
    worker: w,
    load,
    projected,
    cost,
    fits,
    preferred,
    holds:
      preferred &&
      projected + cost.rest <= options.watermark + e &&
      (!cost.outgrows || projected + cost.rest + othersGrowing(s, options, m, w) <= options.watermark + e) &&
      (!cost.opens || projected + cost.rest + oneMoreEach(s, options, m, w) <= options.watermark + e)
  }
}

/** The other rooms without a hint that have transports on the Worker's Routers, with their share there. */
const otherHintless = (
  s: ClusterSnapshot,
  m: MafaldaRouter,
  w: ClusterWorker
): Array<{ readonly o: MafaldaRouter; readonly share: RoomShare }> => {
  const out: Array<{ readonly o: MafaldaRouter; readonly share: RoomShare }> = []
  for (const r of HashMap.values(s.routers)) {
    if (r.worker !== w.id) continue
    for (const [room, share] of r.rooms) {
      const o = lookup(s.mafaldaRouters, room)
      if (room !== m.id && share.transports > 0 && o !== undefined && o.hint === null) out.push({ o, share })
    }
  }
  return out
}

/**
 * What the other rooms without a hint growing on the Worker still expect (`growingRest`, as
 * `transportPlacement.ts` documents it): rooms with transports there that reached their recent
 * high within `growingWithinMillis`, at it and planned on one Router, each `outgrowShare` of its
 * size more at a member's cost, up to `spreadShare` of the watermark.
 */
const othersGrowing = (
  s: ClusterSnapshot,
  options: PolicyOptions,
  m: MafaldaRouter,
  w: ClusterWorker
): number => {
  let sum = 0
  for (const { o } of otherHintless(s, m, w)) {
    if (s.now - o.peakAt > growingWithinMillis) continue
    const p = projectRoom(o, s.now, options)
    if (Math.ceil(p.transports) > o.size.transports || Math.ceil(p.transports) > routerPart(options, p))
      continue
    sum += Math.min(
      Math.ceil(o.size.transports * outgrowShare) * transportCost(options, p, false).perMember,
      options.watermark * spreadShare
    )
  }
  return sum * w.ratio
}

/**
 * What one more member of each other room without a hint on the Worker would cost there at once
 * (`fluctuatingRest`, as `transportPlacement.ts` documents it): rooms of 3 members or more, at
 * least half of them publishing, at their projection; each member's transport, a consumer of
 * each of the room's projected producers, its share of them, and a consumer of its producers
 * on each of the room's transports on the Worker.
 */
const oneMoreEach = (
  s: ClusterSnapshot,
  options: PolicyOptions,
  m: MafaldaRouter,
  w: ClusterWorker
): number => {
  let sum = 0
  for (const { o, share } of otherHintless(s, m, w)) {
    if (o.size.transports < 3 || 2 * o.size.publishers < o.size.transports) continue
    const p = projectRoom(o, s.now, options)
    if (Math.ceil(p.transports) > o.size.transports) continue
    let one = options.costs.transport
    for (const kind of ["audio", "video"] as const) {
      const each = p.transports > 0 ? p.media[kind] / p.transports : 0
      const c = options.costs[kind]
      one += p.media[kind] * c.consumer + each * c.producer + share.transports * each * c.consumer
    }
    sum += one
  }
  return sum * w.ratio
}
type Standing = ReturnType<typeof oracleStanding>

const mostProjected = (a: Standing, b: Standing) =>
  b.projected - a.projected || byId(a.worker.id, b.worker.id)
const leastProjected = (a: Standing, b: Standing) =>
  a.projected - b.projected || byId(a.worker.id, b.worker.id)

interface LocalChoice {
  readonly step: 1 | 3 | 4
  readonly worker: ClusterWorker
  readonly router: RouterId | undefined
}

/** The room has something on its Router of this Worker (a Router it emptied since is not its own). */
const usesWorker = (s: ClusterSnapshot, m: MafaldaRouter, w: ClusterWorker): boolean =>
  [...HashMap.values(s.routers)].some(
    (r) => r.worker === w.id && contains(m.routers, r.id) && HashMap.has(r.rooms, m.id)
  )

/** Step 1 on one Node: the room's own Router whose Worker fits, most projected first. */
export const oracleOwn = (
  s: ClusterSnapshot,
  options: PolicyOptions,
  node: NodeId,
  m: MafaldaRouter
): LocalChoice | undefined => {
  const own = liveWorkers(s, node, m)
    .filter((w) => usesWorker(s, m, w))
    .map((w) => oracleStanding(s, options, m, w))
    .filter((x) => x.preferred)
    .sort(mostProjected)[0]
  return own === undefined ? undefined : { step: 1, worker: own.worker, router: routerIdOn(s, own.worker, m) }
}

/** A room without a hint that has something on one of its Routers: it spreads when it takes another. */
const spreads = (s: ClusterSnapshot, m: MafaldaRouter): boolean =>
  m.hint === null &&
  [...HashMap.values(s.routers)].some((r) => contains(m.routers, r.id) && HashMap.has(r.rooms, m.id))

/**
 * Steps 3 (holds the rest: most projected first, or least projected first for a room without
 * a hint that already uses Routers) and 4b (fits, least projected first) on one Node.
 */
export const oracleOpen = (
  s: ClusterSnapshot,
  options: PolicyOptions,
  node: NodeId,
  m: MafaldaRouter
): { readonly holder: LocalChoice | undefined; readonly freest: LocalChoice | undefined } => {
  const fitting = liveWorkers(s, node, m)
    .map((w) => oracleStanding(s, options, m, w))
    .filter((x) => x.fits)
  const holder = fitting.filter((x) => x.holds).sort(spreads(s, m) ? leastProjected : mostProjected)[0]
  const freest = [...fitting].sort(leastProjected)[0]
  const choice = (x: Standing | undefined, step: 3 | 4) =>
    x === undefined ? undefined : { step, worker: x.worker, router: routerIdOn(s, x.worker, m) }
  return { holder: choice(holder, 3), freest: choice(freest, 4) }
}

export const oracleLimit = (s: ClusterSnapshot, options: PolicyOptions, node: NodeId): number => {
  const n = lookup(s.nodes, node)
  if (n === undefined) return 0
  return Math.min(n.cpus, options.maxWorkersPerNode ?? n.cpus)
}

export const oracleCanStart = (
  s: ClusterSnapshot,
  options: PolicyOptions,
  node: NodeId,
  m: MafaldaRouter
) => {
  const n = lookup(s.nodes, node)
  return (
    n !== undefined &&
    n.state === "up" &&
    // Its cap on Worker processes counts every Worker it has, of any settings.
    (n.maxWorkerProcesses === undefined || count(n.workers) < n.maxWorkerProcesses) &&
    liveWorkers(s, node, m).length < oracleLimit(s, options, node)
  )
}

export type OracleTransport =
  | {
      readonly _tag: "UseRouter"
      readonly router: RouterId
      readonly worker: string
      readonly register: boolean
    }
  | { readonly _tag: "CreateRouter"; readonly worker: string }
  | { readonly _tag: "CreateWorker"; readonly node: NodeId }
  /**
   * `expected`: the acceptable Nodes, those of the best rank with the best score (rank 0: a
   * Router of the room there fits). Ties are left to the core (any deterministic tie-break
   * will do; the example tests pin one).
   */
  | { readonly _tag: "Delegate"; readonly rank: number; readonly expected: ReadonlyArray<NodeId> }
  | { readonly _tag: "Reject"; readonly reason: "NoRoom" | "UnknownMafaldaRouter" | "UnknownNode" }

/**
 * The delegation rank of another `up` Node when no Router of the room on any other Node fits
 * (step 2 comes first): 1, a Worker there holds the rest of the room (the busiest such Worker
 * by effective load, as the Tracker's load index walks them); 2, it can start a Worker (a
 * CPU running no Worker first, fullest first; then a Node whose CPUs all run Workers of other
 * settings, fullest first); 3, a Worker there fits (the busiest first). Undefined: none.
 */
export const oracleDelegationRank = (
  s: ClusterSnapshot,
  options: PolicyOptions,
  node: NodeId,
  m: MafaldaRouter
): { readonly rank: 1 | 2 | 3; readonly score: number } | undefined => {
  const n = lookup(s.nodes, node)
  if (n === undefined || n.state !== "up") return undefined
  const standings = liveWorkers(s, node, m).map((w) => oracleStanding(s, options, m, w))
  const holders = standings.filter((x) => x.holds).map((x) => x.load)
  if (holders.length > 0) return { rank: 1, score: Math.max(...holders) }
  if (oracleCanStart(s, options, node, m)) {
    const used = count(n.workers) / n.cpus
    return { rank: 2, score: used < 1 ? 10 + used : used }
  }
  const fitting = standings.filter((x) => x.fits).map((x) => x.load)
  if (fitting.length > 0) return { rank: 3, score: Math.max(...fitting) }
  return undefined
}

const localDecision = (c: LocalChoice, m: MafaldaRouter): OracleTransport =>
  c.router === undefined
    ? { _tag: "CreateRouter", worker: c.worker.id }
    : { _tag: "UseRouter", router: c.router, worker: c.worker.id, register: !contains(m.routers, c.router) }

export const oracleTransportPlacement = (
  s: ClusterSnapshot,
  options: PolicyOptions,
  request: TransportRequest
): OracleTransport => {
  const m = lookup(s.mafaldaRouters, request.mafaldaRouter)
  if (m === undefined) return { _tag: "Reject", reason: "UnknownMafaldaRouter" }
  const node = lookup(s.nodes, request.node)
  if (node === undefined) return { _tag: "Reject", reason: "UnknownNode" }
  const up = node.state === "up"
  if (up) {
    const own = oracleOwn(s, options, node.id, m)
    if (own !== undefined) return localDecision(own, m)
  }
  // Step 2: the room's Routers on other up Nodes whose Workers fit, most projected first.
  const elsewhere = [...HashMap.values(s.routers)]
    .filter((r) => contains(m.routers, r.id) && HashMap.has(r.rooms, m.id))
    .flatMap((r) => {
      const w = lookup(s.workers, r.worker)
      if (w === undefined || !w.alive || w.node === request.node) return []
      if (lookup(s.nodes, w.node)?.state !== "up") return []
      const x = oracleStanding(s, options, m, w)
      return x.preferred ? [x] : []
    })
    .sort(mostProjected)
  if (elsewhere.length > 0) {
    const best = elsewhere[0]!.projected
    const nodes = elsewhere.filter((x) => x.projected === best).map((x) => x.worker.node)
    return { _tag: "Delegate", rank: 0, expected: [...new Set(nodes)].sort(byId) }
  }
  const open = up ? oracleOpen(s, options, node.id, m) : { holder: undefined, freest: undefined }
  if (up) {
    if (open.holder !== undefined) return localDecision(open.holder, m)
    if (oracleCanStart(s, options, node.id, m)) return { _tag: "CreateWorker", node: node.id }
  }
  const ranked = [...HashMap.keys(s.nodes)]
    .filter((n) => n !== request.node)
    .flatMap((n) => {
      const r = oracleDelegationRank(s, options, n, m)
      return r === undefined ? [] : [{ node: n, ...r }]
    })
  // A Worker of this Node that fits, most free first, before another Node where one only fits.
  const better = ranked.filter((r) => r.rank < 3)
  if (better.length === 0 && open.freest !== undefined) return localDecision(open.freest, m)
  if (ranked.length === 0) return { _tag: "Reject", reason: "NoRoom" }
  const rank = Math.min(...ranked.map((r) => r.rank))
  const inRank = ranked.filter((r) => r.rank === rank)
  const best = Math.max(...inRank.map((r) => r.score))
  return {
    _tag: "Delegate",
    rank,
    expected: inRank
      .filter((r) => r.score === best)
      .map((r) => r.node)
      .sort(byId)
  }
}

/**
 * The hop to pipe from: among hops shallower than the maximum depth on a live Worker,
 * under the watermark first, then shallowest, then busiest, then smallest Router id.
 */
export const oracleParent = (
  s: ClusterSnapshot,
  options: PolicyOptions,
  tree: StreamTree
): TreeHop | undefined => {
  const candidates = [...HashMap.values(tree)].flatMap((hop) => {
    if (hop.depth >= options.maxTreeDepth) return []
    const w = workerOfRouter(s, hop.router)
    if (w === undefined) return []
    const load = effectiveLoad(w)
    const limit = Math.max(options.watermark, options.pipeWatermark ?? (options.watermark + 100) / 2)
    return [{ hop, load, tier: load < limit ? 1 : 2 }]
  })
  // Tier 1 (under the pipe limit): shallowest, then busiest. Tier 2: least loaded, then
  // shallowest. Then the smaller id.
  candidates.sort(
    (a, b) =>
      a.tier - b.tier ||
      (a.tier === 1
        ? a.hop.depth - b.hop.depth || b.load - a.load
        : a.load - b.load || a.hop.depth - b.hop.depth) ||
      byId(a.hop.router, b.hop.router)
  )
  return candidates[0]?.hop
}
