/**
 * `pipeToRouter` between two Mafalda Routers. When the destination can use a Router that
 * already carries the producer (same Worker and Router settings), the two Mafalda Routers
 * simply share it: no PipeTransport, the shell returns mirror objects. Otherwise a real
 * pipe is planned from the best-placed carrier to where the destination's next transport
 * would go (`plan`, delegation followed: the shell carries out exactly that).
 */
import { Data, Either, HashMap, HashSet } from "effect"
import { chooseParent } from "./consumerPlacement.js"
import type { MafaldaRouterId, NodeId, ProducerId, RouterId } from "./Ids.js"
import { type PlacementPlan, planTransportPlacement } from "./interpret.js"
import type { PolicyOptions } from "./PolicyOptions.js"
import { type ClusterSnapshot, lookup, workerOfRouter } from "./Snapshot.js"

export type PipeToRouterDecision = Data.TaggedEnum<{
  /** Both Mafalda Routers use `router`; register it with the destination if needed. */
  Share: { readonly router: RouterId; readonly register: boolean }
  /** Pipe from `from` to the Router that `plan` gives for the destination. */
  Pipe: { readonly from: RouterId; readonly plan: PlacementPlan }
  Reject: {
    readonly reason: "SameRouter" | "UnknownMafaldaRouter" | "UnknownProducer" | "NoRoom" | "UnknownNode"
    readonly message: string
  }
}>
export const PipeToRouterDecision = Data.taggedEnum<PipeToRouterDecision>()

export interface PipeToRouterRequest {
  readonly producer: ProducerId
  readonly from: MafaldaRouterId
  readonly to: MafaldaRouterId
  /** The Node that received the request. */
  readonly node: NodeId
}

export const decidePipeToRouter = (
  snapshot: ClusterSnapshot,
  options: PolicyOptions,
  request: PipeToRouterRequest
): PipeToRouterDecision => {
  if (request.from === request.to) {
    return PipeToRouterDecision.Reject({
      reason: "SameRouter",
      message: "cannot pipe a Mafalda Router to itself"
    })
  }
  const from = lookup(snapshot.mafaldaRouters, request.from)
  const to = lookup(snapshot.mafaldaRouters, request.to)
  if (from === undefined || to === undefined) {
    const missing = from === undefined ? request.from : request.to
    return PipeToRouterDecision.Reject({
      reason: "UnknownMafaldaRouter",
      message: `unknown Mafalda Router ${missing}`
    })
  }
  const tree = lookup(snapshot.trees, request.producer)
  const visible = tree !== undefined && HashMap.some(tree, (hop) => HashSet.has(from.routers, hop.router))
  if (tree === undefined || !visible) {
    return PipeToRouterDecision.Reject({
      reason: "UnknownProducer",
      message: `Producer ${request.producer} is not on Mafalda Router ${request.from}`
    })
  }
  // Share the shallowest carrier whose settings the destination accepts.
  let shared: { router: RouterId; depth: number } | undefined
  for (const hop of HashMap.values(tree)) {
    const router = lookup(snapshot.routers, hop.router)
    if (router === undefined || router.settings !== to.routerSettings) continue
    if (workerOfRouter(snapshot, hop.router)?.settings !== to.workerSettings) continue
    if (
      shared === undefined ||
      hop.depth < shared.depth ||
      (hop.depth === shared.depth && hop.router < shared.router)
    ) {
      shared = { router: hop.router, depth: hop.depth }
    }
  }
  if (shared !== undefined) {
    return PipeToRouterDecision.Share({
      router: shared.router,
      register: !HashSet.has(to.routers, shared.router)
    })
  }
  const parent = chooseParent(snapshot, options, tree)
  if (parent === undefined) {
    return PipeToRouterDecision.Reject({
      reason: "UnknownProducer",
      message: `Producer ${request.producer} has no live Router to pipe from`
    })
  }
  const plan = planTransportPlacement(snapshot, options, { node: request.node, mafaldaRouter: request.to })
  if (Either.isLeft(plan)) {
    // The destination Mafalda Router exists (checked above): no room, or an unknown Node.
    const reason = plan.left.reason === "UnknownNode" ? "UnknownNode" : "NoRoom"
    return PipeToRouterDecision.Reject({ reason, message: plan.left.message })
  }
  return PipeToRouterDecision.Pipe({ from: parent.router, plan: plan.right })
}
