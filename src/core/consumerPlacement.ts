/**
 * Where a consumer of a producer goes, and which pipes that takes.
 *
 * The consumer goes to the Router of its transport (the transport placement already
 * concentrated transports on the busiest Workers with room). If that Router already
 * receives the producer, consume there. Otherwise pipe the producer to it from the Router
 * that already carries it and is best placed (see `chooseParent`: under the pipe limit,
 * shallowest, busiest). The pipe hangs the new Router one level below its
 * parent, so each producer's links form a tree rooted at its origin Router; a parent at the
 * maximum depth is never chosen, so the tree never grows deeper than `maxTreeDepth`.
 */
import { Data, HashMap } from "effect"
import type { ProducerId, RouterId } from "./Ids.js"
import { type PolicyOptions, pipeLimit } from "./PolicyOptions.js"
import {
  type ClusterSnapshot,
  effectiveLoad,
  lookup,
  type StreamTree,
  type TreeHop,
  workerOfRouter
} from "./Snapshot.js"

export interface PlannedPipe {
  readonly producer: ProducerId
  readonly from: RouterId
  readonly to: RouterId
}

export type ConsumerPlacement = Data.TaggedEnum<{
  /** The Router already receives the producer. */
  ConsumeHere: { readonly router: RouterId }
  /** Create these pipes, in order, then consume on `router`. */
  PipeThenConsume: { readonly router: RouterId; readonly pipes: ReadonlyArray<PlannedPipe> }
  Reject: { readonly reason: "UnknownProducer" | "UnknownRouter"; readonly message: string }
}>
export const ConsumerPlacement = Data.taggedEnum<ConsumerPlacement>()

export interface ConsumerRequest {
  readonly producer: ProducerId
  /** The Router of the transport that will consume. */
  readonly router: RouterId
}

/**
 * The Router of `tree` best placed to feed a new pipe, or undefined when the tree is empty.
 * Carriers at the maximum depth are never chosen. Then, in two tiers:
 *  1. carriers under the pipe limit (`pipeWatermark`; a pipe consumer costs little, so a
 *     Router over the watermark may still feed a few): shallowest first, for the shortest
 *     path from the origin, then busiest, to concentrate;
 *  2. otherwise (every carrier is over the limit): least loaded first, then shallowest.
 * Ties go to the smaller Router id. Exported for the simulator and for tests.
 */
export const chooseParent = (
  snapshot: ClusterSnapshot,
  options: PolicyOptions,
  tree: StreamTree
): TreeHop | undefined => {
  const limit = pipeLimit(options)
  let best: Scored | undefined
  for (const hop of HashMap.values(tree)) {
    if (hop.depth >= options.maxTreeDepth) continue
    const worker = workerOfRouter(snapshot, hop.router)
    if (worker === undefined) continue
    const load = effectiveLoad(worker)
    const scored = { hop, tier: load < limit ? 1 : 2, load }
    if (best === undefined || better(scored, best)) best = scored
  }
  return best?.hop
}

interface Scored {
  readonly hop: TreeHop
  readonly tier: number
  readonly load: number
}

const better = (a: Scored, b: Scored): boolean => {
  if (a.tier !== b.tier) return a.tier < b.tier
  const depth = a.hop.depth - b.hop.depth
  const order = a.tier === 1 ? [depth, b.load - a.load] : [a.load - b.load, depth]
  for (const d of order) if (d !== 0) return d < 0
  return a.hop.router < b.hop.router
}

export const decideConsumerPlacement = (
  snapshot: ClusterSnapshot,
  options: PolicyOptions,
  request: ConsumerRequest
): ConsumerPlacement => {
  const tree = lookup(snapshot.trees, request.producer)
  if (tree === undefined) {
    return ConsumerPlacement.Reject({
      reason: "UnknownProducer",
      message: `unknown Producer ${request.producer}`
    })
  }
  if (!HashMap.has(snapshot.routers, request.router)) {
    return ConsumerPlacement.Reject({ reason: "UnknownRouter", message: `unknown Router ${request.router}` })
  }
  if (HashMap.has(tree, request.router)) return ConsumerPlacement.ConsumeHere({ router: request.router })
  const parent = chooseParent(snapshot, options, tree)
  if (parent === undefined) {
    return ConsumerPlacement.Reject({
      reason: "UnknownProducer",
      message: `Producer ${request.producer} has no live Router to pipe from`
    })
  }
  return ConsumerPlacement.PipeThenConsume({
    router: request.router,
    pipes: [{ producer: request.producer, from: parent.router, to: request.router }]
  })
}
