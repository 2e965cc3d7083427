/**
 * Where a new transport of a Mafalda Router goes. The policy concentrates: it fills the
 * busiest Worker still under the watermark, so that few Workers carry many consumers and
 * idle ones can be closed.
 *
 * "Under the watermark" counts what the transport is expected to bring (`expectedLoad`: the
 * consumers of the Mafalda Router's producers, and the pipes to bring them in).
 *
 * In order, on the Node that received the request:
 *  1. a Router this Mafalda Router already uses, on a Worker under the watermark, busiest first;
 *  2. a Router with the same settings that it does not use yet, busiest Worker first;
 *  3. a new Router on a Worker with the same settings under the watermark, busiest first;
 *  4. a new Worker, while the Node has fewer Workers with these settings than its limit;
 * then, on another Node (the Tracker's view, carried in the snapshot):
 *  5. the Node to hand the client to (`Delegate`): first one where this Mafalda Router
 *     already has a Router with room (busiest Worker first), then the one with the busiest
 *     Worker under the watermark, then the fullest one with a CPU that runs no Worker, then
 *     the fullest one whose CPUs all run Workers of other settings;
 *  6. otherwise `Reject`: there is no room, and nothing is placed on an overloaded Worker.
 */
import { Data, HashMap, HashSet } from "effect"
import type { MafaldaRouterId, NodeId, RouterId, SettingsKey, WorkerId } from "./Ids.js"
import type { PolicyOptions } from "./PolicyOptions.js"
import {
  type ClusterNode,
  type ClusterSnapshot,
  type ClusterWorker,
  effectiveLoad,
  lookup,
  nodesWithSpareCpu,
  routerIdOn,
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

/** Higher load first, then the smaller id: a total order, so decisions are deterministic. */
const busier = (a: ClusterWorker, b: ClusterWorker): boolean => {
  const la = effectiveLoad(a)
  const lb = effectiveLoad(b)
  return la > lb || (la === lb && a.id < b.id)
}

/**
 * The load a new transport of this Mafalda Router is expected to bring besides its own cost:
 * it will most likely consume the Mafalda Router's producers (a meeting's receive transport
 * consumes everyone), and on a Router that does not carry them yet, pipe them in first. A
 * Worker has room for the transport when its effective load plus this stays under the
 * watermark. Capped at half the watermark, so that a very large room still fits a fresh
 * Worker.
 */
export interface ExpectedLoad {
  /** On a Router this Mafalda Router already uses (its producers are there or near). */
  readonly onUsedRouter: number
  /** On any other Router: its producers must be piped in as well. */
  readonly onOtherRouter: number
}

export const expectedLoad = (options: PolicyOptions, producers: number): ExpectedLoad => {
  const cap = options.watermark / 2
  const { consumer, pipe } = options.costs
  return {
    onUsedRouter: Math.min(cap, consumer * producers),
    onOtherRouter: Math.min(cap, (consumer + 2 * pipe) * producers)
  }
}

interface Candidate {
  readonly worker: ClusterWorker
  readonly router: RouterId | undefined
}

/** Steps 1 to 3 on one Node: the best existing Worker (and Router) with room. */
const bestOnNode = (
  snapshot: ClusterSnapshot,
  node: NodeId,
  workerSettings: SettingsKey,
  routerSettings: SettingsKey,
  used: HashSet.HashSet<RouterId>,
  watermark: number,
  expected: ExpectedLoad
): { readonly step: 1 | 2 | 3; readonly candidate: Candidate } | undefined => {
  // One pass over the Node's Workers (a few: at most its CPUs), whatever the size of the
  // Mafalda Router: each Worker's Router with these settings is in its own record.
  let best: { step: 1 | 2 | 3; candidate: Candidate } | undefined
  for (const id of lookup(snapshot.nodes, node)?.workers ?? []) {
    const worker = lookup(snapshot.workers, id)
    if (worker === undefined || !worker.alive || worker.settings !== workerSettings) continue
    const router = routerIdOn(worker, routerSettings)
    const step = router === undefined ? 3 : HashSet.has(used, router) ? 1 : 2
    const extra = step === 1 ? expected.onUsedRouter : expected.onOtherRouter
    if (effectiveLoad(worker) + extra >= watermark) continue
    if (
      best === undefined ||
      step < best.step ||
      (step === best.step && busier(worker, best.candidate.worker))
    ) {
      best = { step, candidate: { worker, router } }
    }
  }
  return best
}

const canStartWorker = (
  snapshot: ClusterSnapshot,
  node: ClusterNode,
  settings: SettingsKey,
  options: PolicyOptions
): boolean =>
  node.state === "up" && workersOn(snapshot, node.id, settings).length < workerLimit(node, options)

/**
 * Step 5: the other Node to delegate to, or undefined. Uses the snapshot's indexes (the
 * Tracker's view), so its cost does not grow with the size of the cluster.
 */
const delegateTo = (
  snapshot: ClusterSnapshot,
  request: TransportRequest,
  workerSettings: SettingsKey,
  used: HashSet.HashSet<RouterId>,
  options: PolicyOptions,
  expected: ExpectedLoad
): NodeId | undefined => {
  const elsewhere = (node: NodeId) => node !== request.node && lookup(snapshot.nodes, node)?.state === "up"
  // 1. A Node where this Mafalda Router already has a Router with room, busiest Worker first.
  let best: ClusterWorker | undefined
  for (const id of used) {
    const worker = workerOfRouter(snapshot, id)
    if (
      worker === undefined ||
      effectiveLoad(worker) + expected.onUsedRouter >= options.watermark ||
      !elsewhere(worker.node)
    )
      continue
    if (best === undefined || busier(worker, best)) best = worker
  }
  if (best !== undefined) return best.node
  // 2. A Node with a Worker with these settings under the watermark, busiest Worker first.
  for (const worker of workersUnder(snapshot, workerSettings, options.watermark - expected.onOtherRouter)) {
    if (elsewhere(worker.node)) return worker.node
  }
  // 3. A Node that can start a Worker, the fullest first: Nodes with an idle CPU, from the
  // index; failing that (every CPU runs a Worker), a Node whose Workers have other settings.
  for (const node of nodesWithSpareCpu(snapshot)) {
    if (node.id !== request.node && canStartWorker(snapshot, node, workerSettings, options)) return node.id
  }
  let fallback: ClusterNode | undefined
  for (const node of HashMap.values(snapshot.nodes)) {
    if (node.id === request.node || !canStartWorker(snapshot, node, workerSettings, options)) continue
    const used = node.workers.length / node.cpus
    const best = fallback === undefined ? -1 : fallback.workers.length / fallback.cpus
    if (fallback === undefined || used > best || (used === best && node.id < fallback.id)) fallback = node
  }
  return fallback?.id
}

export const decideTransportPlacement = (
  snapshot: ClusterSnapshot,
  options: PolicyOptions,
  request: TransportRequest
): TransportPlacement => {
  const mafaldaRouter = lookup(snapshot.mafaldaRouters, request.mafaldaRouter)
  if (mafaldaRouter === undefined) {
    return TransportPlacement.Reject({
      reason: "UnknownMafaldaRouter",
      message: `unknown Mafalda Router ${request.mafaldaRouter}`
    })
  }
  const node = lookup(snapshot.nodes, request.node)
  if (node === undefined) {
    return TransportPlacement.Reject({ reason: "UnknownNode", message: `unknown Node ${request.node}` })
  }
  const { workerSettings, routerSettings, routers: used } = mafaldaRouter
  const expected = expectedLoad(options, mafaldaRouter.producers)
  if (node.state === "up") {
    const found = bestOnNode(
      snapshot,
      node.id,
      workerSettings,
      routerSettings,
      used,
      options.watermark,
      expected
    )
    if (found !== undefined) {
      const { worker, router } = found.candidate
      return router === undefined
        ? TransportPlacement.CreateRouter({ worker: worker.id, node: node.id })
        : TransportPlacement.UseRouter({
            router,
            worker: worker.id,
            node: node.id,
            register: found.step === 2
          })
    }
    if (canStartWorker(snapshot, node, workerSettings, options))
      return TransportPlacement.CreateWorker({ node: node.id })
  }
  const other = delegateTo(snapshot, request, workerSettings, used, options, expected)
  if (other !== undefined) return TransportPlacement.Delegate({ node: other })
  return TransportPlacement.Reject({
    reason: "NoRoom",
    message: `no Worker under the ${options.watermark} % watermark and no CPU left to start one`
  })
}
