/**
 * `Delegation`: what a Mafalda Router needs to carry out the core's `Delegate`, placing a
 * transport on another Mafalda Node. `Placement` and the Mafalda Router depend on this small
 * interface only; which implementation is in the context decides the mode:
 *
 * - `embedded` (the default, no layer needed: `Placement`, `ScaleDown` and `Mafalda` fall
 *   back to it when the context has no `Delegation`): one process, no other Node. It never
 *   delegates: `peerEvents` is empty, so the snapshot knows no other Node and the core never
 *   chooses one; should a plan name another Node anyway, `carryOut` fails with
 *   `NoCapacityError` (today's behaviour). Nothing of its is on another Node, so
 *   `closeRouter` and `closePipe` have nothing to close.
 * - the cluster implementation (`src/cluster/ClusterDelegation.ts`, loaded by the cluster entry
 *   only): other Nodes from the `NodeRegistry`, Workers, Routers, transports and pipes made
 *   on them over RPC (`NodeClients`), transports returned as objects with mediasoup's API.
 *
 * Nothing here imports the cluster's engines (Redis, RPC): the embedded path stays free of
 * them.
 *
 * @module
 */
import { Context, Effect } from "effect"
import type { types } from "mediasoup"
import type { ClusterEvent } from "../core/ClusterEvent.js"
import type { MafaldaRouterId, NodeId, ProducerId, RouterId, WorkerId } from "../core/Ids.js"
import type { PlacementPlan } from "../core/interpret.js"
import type { ClusterSnapshot, TransportKind } from "../core/Snapshot.js"
import { NoCapacityError, WorkerServiceError } from "./errors.js"
import type { RouterSettings, WorkerSettings } from "./SettingsKeys.js"
import type { PipeInfo } from "./WorkerService.js"

/** What a delegated plan made on its Node, and the events that record it (in order). */
export interface DelegatedPlacement {
  readonly node: NodeId
  readonly worker: WorkerId
  readonly router: RouterId
  /** The Mafalda Router did not use the Router before (the plan registers it). */
  readonly added: boolean
  /**
   * The plan gave this process a hold on the Router there that it did not have (it asked for
   * the Router, and the Node did not say this process held it already): `closeRouter` undoes
   * just that.
   */
  readonly newHold: boolean
  readonly events: ReadonlyArray<ClusterEvent>
}

/** A transport to make on a Router of another Node. */
export interface RemoteTransportRequest {
  readonly node: NodeId
  readonly worker: WorkerId
  readonly router: RouterId
  readonly mafaldaRouter: MafaldaRouterId
  readonly kind: TransportKind
  /** mediasoup's options of the transport (checked by the Mafalda Router already). */
  readonly options: unknown
}

/** One end of a pipe: a Router and its Node. */
export interface PipeEndpoint {
  readonly node: NodeId
  readonly router: RouterId
}

export type DelegationError = NoCapacityError | WorkerServiceError

export interface DelegationShape {
  /** Whether this implementation may place on other Nodes (false: embedded). */
  readonly delegates: boolean
  /**
   * The events that bring `current()`'s view of the other Nodes in line with the cluster
   * (Nodes, their state, Workers and loads, pipes into them that closed), computed on the
   * snapshot at the moment they are returned (`current()` read after any I/O), dated `at`.
   * `Placement` applies them now and then (embedded: none, ever).
   */
  readonly peerEvents: (current: () => ClusterSnapshot) => Effect.Effect<ReadonlyArray<ClusterEvent>>
  /** How often `Placement` asks for `peerEvents` (ms); undefined: never (embedded). */
  readonly syncMillis: number | undefined
  /**
   * Carries out a plan on another Node (its Worker and Router made there), with the Mafalda
   * Router's settings; returns what was made and the events to record.
   */
  readonly carryOut: (
    plan: PlacementPlan,
    settings: { readonly worker: WorkerSettings; readonly router: RouterSettings }
  ) => Effect.Effect<DelegatedPlacement, DelegationError>
  /** Makes a transport on a Router of another Node: an object with mediasoup's Transport API. */
  readonly createTransport: (
    request: RemoteTransportRequest
  ) => Effect.Effect<types.Transport, DelegationError>
  /**
   * Pipes `producer` from one Router to another where at least one is on another Node (the
   * RPC pipe handshake, SRTP on), driven by the destination's Node.
   */
  readonly pipe: (
    producer: ProducerId,
    from: PipeEndpoint,
    to: PipeEndpoint
  ) => Effect.Effect<PipeInfo, WorkerServiceError>
  /**
   * Scale-down of a Router this Node's Mafalda Routers made on another Node (`carryOut`):
   * closes it there. Never fails: a Node that does not answer is logged (a Node that died
   * took the Router with it).
   */
  readonly closeRouter: (node: NodeId, router: RouterId) => Effect.Effect<void>
  /**
   * Scale-down of a pipe of `producer` into `to` where one end is on another Node: closed by
   * the destination's Node (`to.node`, possibly this one: it holds the pipes made by the
   * handshake); the origin's end goes with it. Never fails, as `closeRouter`.
   */
  readonly closePipe: (producer: ProducerId, to: PipeEndpoint) => Effect.Effect<void>
}

export class Delegation extends Context.Tag("mafalda/Delegation")<Delegation, DelegationShape>() {}

const nowhere = (what: string) =>
  Effect.fail(new NoCapacityError({ message: `no room on this Node (${what} needs another Node)` }))

/** One process, no other Node: never delegates (today's embedded behaviour). */
export const embedded: DelegationShape = {
  delegates: false,
  peerEvents: () => Effect.succeed([]),
  syncMillis: undefined,
  carryOut: (plan) =>
    Effect.fail(new NoCapacityError({ message: `no room on this Node (Node ${plan.node} has some)` })),
  createTransport: (request) => nowhere(`a transport on Node ${request.node}`),
  pipe: (producer, from, to) =>
    Effect.fail(
      new WorkerServiceError({
        operation: "pipe",
        message: `cannot pipe ${producer} from Node ${from.node} to Node ${to.node}: no other Node here`
      })
    ),
  // Nothing is ever made on another Node here.
  closeRouter: () => Effect.void,
  closePipe: () => Effect.void
}

/** The `Delegation` in the context, or `embedded` when there is none. */
export const delegationOrEmbedded: Effect.Effect<DelegationShape> = Effect.map(
  Effect.serviceOption(Delegation),
  (found) => (found._tag === "Some" ? found.value : embedded)
)
