/**
 * Where a consumer of a producer goes, and which pipes that takes.
 *
 * The consumer goes to the Router of its transport (the transport placement already
 * concentrated transports on the busiest Workers with room). If that Router already
 * receives the producer, consume there. Otherwise pipe the producer to it from the Router
 * that already carries it and is best placed: under the watermark first, then shallowest
 * in the producer's tree, then busiest. The pipe hangs the new Router one level below its
 * parent, so each producer's links form a tree rooted at its origin Router; a parent at the
 * maximum depth is never chosen, so the tree never grows deeper than `maxTreeDepth`.
 */
import { Data, HashMap } from "effect"
import type { ProducerId, RouterId } from "./Ids.js"
import type { PolicyOptions } from "./PolicyOptions.js"
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
 * Exported for the simulator's comparisons and for tests.
 */
export const chooseParent = (
  snapshot: ClusterSnapshot,
  options: PolicyOptions,
  tree: StreamTree
): TreeHop | undefined => {
  let best: { hop: TreeHop; room: boolean; load: number } | undefined
  for (const hop of HashMap.values(tree)) {
    if (hop.depth >= options.maxTreeDepth) continue
    const worker = workerOfRouter(snapshot, hop.router)
    if (worker === undefined) continue
    const load = effectiveLoad(worker)
    const room = load < options.watermark
    if (
      best === undefined ||
      (room && !best.room) ||
      (room === best.room &&
        (hop.depth < best.hop.depth ||
          (hop.depth === best.hop.depth &&
            (load > best.load || (load === best.load && hop.router < best.hop.router)))))
    ) {
      best = { hop, room, load }
    }
  }
  return best?.hop
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
