/**
 * The one interpreter of decisions. A decision says what to do; carrying it out takes
 * steps that only a backend can perform (start a Worker process, create a Router, pipe a
 * producer), which make the ids the decision cannot know in advance. This module says, in
 * one place, which steps a decision takes and which cluster events record it once those
 * steps are done. The effectful shell (real mediasoup) and the simulator both call it, so
 * the simulator scores exactly what production runs.
 *
 *  - `planTransportPlacement`: a transport placement made concrete, delegation followed to
 *    the Node that takes it; `placementEvents` records it once carried out;
 *  - `pipeEvents`: the pipes a consumer placement or a `pipeToRouter` makes;
 *  - `scaleDownEvent`: what records one scale-down action (whether it still holds when the
 *    shell gets to it is `isScaleDownDue`, in `scaleDown.ts`).
 */
import { Either } from "effect"
import type { ClusterEvent } from "./ClusterEvent.js"
import type { PlannedPipe } from "./consumerPlacement.js"
import type { MafaldaRouterId, NodeId, RouterId, SettingsKey, WorkerId } from "./Ids.js"
import type { PolicyOptions } from "./PolicyOptions.js"
import { type ClusterSnapshot, lookup } from "./Snapshot.js"
import type { ScaleDownAction } from "./scaleDown.js"
import {
  decideTransportPlacement,
  TransportPlacement,
  type TransportRejection,
  type TransportRequest
} from "./transportPlacement.js"

/** Where a transport of a Mafalda Router lands, and what must be made there first. */
export interface PlacementPlan {
  readonly mafaldaRouter: MafaldaRouterId
  readonly workerSettings: SettingsKey
  readonly routerSettings: SettingsKey
  /** The Node it lands on. */
  readonly node: NodeId
  /** The Nodes the request was handed to on its way (`Delegate`), in order; empty when none. */
  readonly delegations: ReadonlyArray<NodeId>
  /** The Worker to use, or null to start one on `node`. */
  readonly worker: WorkerId | null
  /** The Router to use, or null to create one on the Worker. */
  readonly router: RouterId | null
  /** The Mafalda Router does not use the Router yet: it registers it. */
  readonly register: boolean
}

/** How many times one request may be handed to another Node before it is rejected. */
export const maxDelegations = 4

/**
 * Decides where a transport goes and follows `Delegate` to the Node that takes it, on the
 * same snapshot (the Tracker's view of the cluster). A request handed on more than
 * `maxDelegations` times, or back to a Node it already visited, is rejected.
 */
export const planTransportPlacement = (
  snapshot: ClusterSnapshot,
  options: PolicyOptions,
  request: TransportRequest
): Either.Either<PlacementPlan, TransportRejection> => {
  const m = lookup(snapshot.mafaldaRouters, request.mafaldaRouter)
  const delegations: Array<NodeId> = []
  let node = request.node
  for (;;) {
    const d = decideTransportPlacement(snapshot, options, { node, mafaldaRouter: request.mafaldaRouter })
    if (d._tag === "Reject") return Either.left(d)
    // A decision other than Reject implies the Mafalda Router exists.
    const base = {
      mafaldaRouter: request.mafaldaRouter,
      workerSettings: m!.workerSettings,
      routerSettings: m!.routerSettings,
      delegations
    }
    switch (d._tag) {
      case "UseRouter":
        return Either.right({
          ...base,
          node: d.node,
          worker: d.worker,
          router: d.router,
          register: d.register
        })
      case "CreateRouter":
        return Either.right({ ...base, node: d.node, worker: d.worker, router: null, register: true })
      case "CreateWorker":
        return Either.right({ ...base, node: d.node, worker: null, router: null, register: true })
      case "Delegate":
        if (delegations.length >= maxDelegations || d.node === request.node || delegations.includes(d.node)) {
          return Either.left(
            TransportPlacement.Reject({
              reason: "NoRoom",
              message: `no Node took the transport after ${delegations.length + 1} delegations`
            })
          )
        }
        delegations.push(d.node)
        node = d.node
    }
  }
}

/**
 * What the backend has made so far to carry out a plan: the Worker (started, or the plan's
 * own) and, once made or chosen, the Router the transport uses.
 */
export interface Made {
  readonly worker: WorkerId
  readonly router?: RouterId | undefined
}

/**
 * The events that record what a plan made, in order: the Worker started, the Router
 * created, the Router registered with the Mafalda Router (each only when the plan makes it).
 * A shell that records step by step calls it after starting the Worker (`made` without a
 * Router), then with the plan's `worker` set to it once the Router exists; the transport
 * itself is recorded by `TransportCreated` once the backend made it.
 */
export const placementEvents = (plan: PlacementPlan, made: Made, at: number): ReadonlyArray<ClusterEvent> => {
  const events: Array<ClusterEvent> = []
  if (plan.worker === null) {
    events.push({
      _tag: "WorkerStarted",
      worker: made.worker,
      node: plan.node,
      settings: plan.workerSettings,
      at
    })
  }
  if (made.router === undefined) return events
  if (plan.router === null) {
    events.push({
      _tag: "RouterCreated",
      router: made.router,
      worker: made.worker,
      settings: plan.routerSettings,
      at
    })
  }
  if (plan.register) {
    events.push({ _tag: "RouterRegistered", mafaldaRouter: plan.mafaldaRouter, router: made.router, at })
  }
  return events
}

/**
 * The events of pipes made: one `PipeCreated` each, in order. `pinned` for the pipes an
 * application asked for (`pipeToRouter`), which scale-down never closes.
 */
export const pipeEvents = (
  pipes: ReadonlyArray<PlannedPipe>,
  at: number,
  pinned = false
): ReadonlyArray<ClusterEvent> =>
  pipes.map(
    (p): ClusterEvent =>
      pinned
        ? { _tag: "PipeCreated", producer: p.producer, from: p.from, to: p.to, pinned, at }
        : { _tag: "PipeCreated", producer: p.producer, from: p.from, to: p.to, at }
  )

/** The event that records a scale-down action carried out. */
export const scaleDownEvent = (action: ScaleDownAction, at: number): ClusterEvent => {
  switch (action._tag) {
    case "ClosePipe":
      return { _tag: "PipeClosed", producer: action.producer, to: action.router, at }
    case "CloseRouter":
      return { _tag: "RouterClosed", router: action.router, at }
    case "CloseWorker":
      return { _tag: "WorkerClosed", worker: action.worker, at }
  }
}

/** The settings of the Worker an action is about (its placement lock), while it is there. */
export const settingsOfAction = (
  snapshot: ClusterSnapshot,
  action: ScaleDownAction
): SettingsKey | undefined => {
  const worker =
    action._tag === "CloseWorker" ? action.worker : lookup(snapshot.routers, action.router)?.worker
  return worker === undefined ? undefined : lookup(snapshot.workers, worker)?.settings
}
