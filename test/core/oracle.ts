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
  type RouterId,
  type StreamTree,
  type TransportRequest,
  type TreeHop,
  workerOfRouter
} from "../../src/core/index.js"
import { contains, count } from "./helpers.js"

const byId = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

/** Busiest (highest effective load) first, then the smaller id. */
const busiestFirst = (a: ClusterWorker, b: ClusterWorker): number =>
  effectiveLoad(b) - effectiveLoad(a) || byId(a.id, b.id)

const liveWorkers = (s: ClusterSnapshot, node: NodeId, m: MafaldaRouter): Array<ClusterWorker> =>
  [...HashMap.values(s.workers)].filter((w) => w.node === node && w.alive && w.settings === m.workerSettings)

const routerIdOn = (s: ClusterSnapshot, w: ClusterWorker, m: MafaldaRouter): RouterId | undefined =>
  [...HashMap.values(s.routers)].find((r) => r.worker === w.id && r.settings === m.routerSettings)?.id

/**
 * The rule, as `transportPlacement.ts` documents it (not as `expectedLoad` computes it): a
 * new transport of a Mafalda Router will most likely consume every producer made on the
 * Mafalda Router's transports, so each such live producer is expected to add a consumer to
 * the Worker that takes the transport. On a Router the Mafalda Router does not use yet, each
 * must also be piped in first, and a pipe costs its `pipe` cost at each of its two ends
 * (`Costs`). What is expected is capped at half the watermark, so that a Worker with nothing
 * on it has room for any room's transport.
 */
export const oracleExpected = (s: ClusterSnapshot, options: PolicyOptions, m: MafaldaRouter) => {
  const { consumer, pipe } = options.costs
  const perProducer = { used: consumer, other: consumer + 2 * pipe }
  let producers = 0
  for (const p of HashMap.values(s.producers)) if (p.mafaldaRouter === m.id) producers++
  const half = options.watermark / 2
  return {
    used: Math.min(producers * perProducer.used, half),
    other: Math.min(producers * perProducer.other, half)
  }
}

interface LocalChoice {
  readonly step: 1 | 2 | 3
  readonly worker: ClusterWorker
  readonly router: RouterId | undefined
}

/** Steps 1 to 3 on one Node, or undefined when no Worker there is under the watermark. */
export const oracleLocal = (
  s: ClusterSnapshot,
  options: PolicyOptions,
  node: NodeId,
  m: MafaldaRouter
): LocalChoice | undefined => {
  const extra = oracleExpected(s, options, m)
  const tagged = liveWorkers(s, node, m)
    .sort(busiestFirst)
    .map((worker) => {
      const router = routerIdOn(s, worker, m)
      const step: 1 | 2 | 3 = router === undefined ? 3 : contains(m.routers, router) ? 1 : 2
      return { step, worker, router }
    })
    .filter((c) => effectiveLoad(c.worker) + (c.step === 1 ? extra.used : extra.other) < options.watermark)
  for (const step of [1, 2, 3] as const) {
    const first = tagged.find((c) => c.step === step)
    if (first !== undefined) return first
  }
  return undefined
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
  return n !== undefined && n.state === "up" && liveWorkers(s, node, m).length < oracleLimit(s, options, node)
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
   * `expected`: the acceptable Nodes, those of the best rank with the best score. Ties are
   * left to the core (any deterministic tie-break will do; the example tests pin one). Within
   * rank 2 ("a Worker under the watermark"), the busiest Worker may be read as the one the
   * Node would use (a Router to share before a new one) or as the busiest with room at all:
   * both readings are accepted.
   */
  | { readonly _tag: "Delegate"; readonly rank: number; readonly expected: ReadonlyArray<NodeId> }
  | { readonly _tag: "Reject"; readonly reason: "NoRoom" | "UnknownMafaldaRouter" | "UnknownNode" }

/** The delegation rank of another Node: 1, 2, 3, or undefined when it cannot take the transport. */
export const oracleDelegationRank = (
  s: ClusterSnapshot,
  options: PolicyOptions,
  node: NodeId,
  m: MafaldaRouter
): { readonly rank: 1 | 2 | 3; readonly scores: ReadonlyArray<number> } | undefined => {
  const n = lookup(s.nodes, node)
  if (n === undefined || n.state !== "up") return undefined
  const local = oracleLocal(s, options, node, m)
  if (local !== undefined) {
    if (local.step === 1) return { rank: 1, scores: [effectiveLoad(local.worker)] }
    const extra = oracleExpected(s, options, m)
    const busiest = Math.max(
      ...liveWorkers(s, node, m)
        .map(effectiveLoad)
        .filter((l) => l + extra.other < options.watermark)
    )
    return { rank: 2, scores: [effectiveLoad(local.worker), busiest] }
  }
  // Rank 3: first the Nodes with a CPU that runs no Worker at all, fullest first; only then
  // the Nodes whose CPUs all run Workers of other settings (fullest first too).
  if (oracleCanStart(s, options, node, m)) {
    const used = count(n.workers) / n.cpus
    return { rank: 3, scores: [used < 1 ? 10 + used : used] }
  }
  return undefined
}

export const oracleTransportPlacement = (
  s: ClusterSnapshot,
  options: PolicyOptions,
  request: TransportRequest
): OracleTransport => {
  const m = lookup(s.mafaldaRouters, request.mafaldaRouter)
  if (m === undefined) return { _tag: "Reject", reason: "UnknownMafaldaRouter" }
  const node = lookup(s.nodes, request.node)
  if (node === undefined) return { _tag: "Reject", reason: "UnknownNode" }
  if (node.state === "up") {
    const local = oracleLocal(s, options, node.id, m)
    if (local !== undefined) {
      return local.router === undefined
        ? { _tag: "CreateRouter", worker: local.worker.id }
        : { _tag: "UseRouter", router: local.router, worker: local.worker.id, register: local.step === 2 }
    }
    if (oracleCanStart(s, options, node.id, m)) return { _tag: "CreateWorker", node: node.id }
  }
  const ranked = [...HashMap.keys(s.nodes)]
    .filter((n) => n !== request.node)
    .flatMap((n) => {
      const r = oracleDelegationRank(s, options, n, m)
      return r === undefined ? [] : [{ node: n, ...r }]
    })
  if (ranked.length === 0) return { _tag: "Reject", reason: "NoRoom" }
  const rank = Math.min(...ranked.map((r) => r.rank))
  const inRank = ranked.filter((r) => r.rank === rank)
  const expected = new Set<NodeId>()
  for (let reading = 0; reading < inRank[0]!.scores.length; reading++) {
    const score = (r: (typeof inRank)[number]) => r.scores[reading] ?? Number.NEGATIVE_INFINITY
    const best = Math.max(...inRank.map(score))
    for (const r of inRank) if (score(r) === best) expected.add(r.node)
  }
  return { _tag: "Delegate", rank, expected: [...expected].sort(byId) }
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
