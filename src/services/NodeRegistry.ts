/**
 * `NodeRegistry`: the cluster-level role of the Tracker. Every Mafalda Node registers here
 * with a lease and reports its Workers' loads; anyone asks "which Node has room?".
 *
 * - A Node's record holds its RPC address, its CPUs, its state (`up` or `draining`) and the
 *   last load of each of its Workers. The Node refreshes its lease with every report (once a
 *   second by default); a Node whose lease runs out (a few seconds) is evicted, with its
 *   Index entries, and its death is published.
 * - `pick` answers "which Node has room?" atomically, and charges a provisional
 *   reservation on the Worker (or the new Worker) it chose, so that a burst of requests
 *   between two reports does not pile onto one Node. The next report replaces the
 *   reservations with measured loads.
 *
 * The per-process `TrackerService` samples the local Workers; a Node's agent
 * (`src/cluster/NodeAgent.ts`) turns those samples into reports here.
 *
 * Backends: `layerMemory` in `src/layers/NodeRegistry.ts` (one process, Effect's `Clock`)
 * and `layerRedis` in `src/layers/NodeRegistryRedis.ts` (Redis; one Lua script per
 * change, so every change is atomic across processes).
 *
 * @module
 */
import { Context, type Effect, type Option, type Queue, Schema, type Scope, type Stream } from "effect"
import { NodeId, SettingsKey, WorkerId } from "../core/Ids.js"

/** The cluster store (Redis) could not be reached or answered something unexpected. */
export class ClusterStoreError extends Schema.TaggedError<ClusterStoreError>()("ClusterStoreError", {
  operation: Schema.String,
  message: Schema.String
}) {}

export const NodeState = Schema.Literal("up", "draining")
export type NodeState = typeof NodeState.Type

/** The last load of one Worker of a Node, as the Node reported it. */
export const WorkerLoad = Schema.Struct({
  worker: WorkerId,
  settings: SettingsKey,
  /** CPU % of one core. */
  load: Schema.Number.pipe(Schema.nonNegative())
})
export type WorkerLoad = typeof WorkerLoad.Type

/** What a Node says about itself when it registers. */
export const NodeRegistration = Schema.Struct({
  node: NodeId,
  /** Where its RPC server listens (`host:port`). */
  address: Schema.String,
  /** The IP that media (PipeTransports) is announced on. */
  announcedIp: Schema.String,
  cpus: Schema.Int.pipe(Schema.positive()),
  /** Its cap on Worker processes whatever their settings (`maxWorkerProcesses`), if any. */
  maxWorkerProcesses: Schema.optional(Schema.Int.pipe(Schema.positive()))
})
export type NodeRegistration = typeof NodeRegistration.Type

/**
 * An array as the stores keep it: Redis' Lua `cjson` encodes an empty array as `{}`, so an
 * empty object is read as an empty array.
 */
const ArrayFromStore = <A, I>(item: Schema.Schema<A, I>) =>
  Schema.transform(
    Schema.Union(Schema.Array(item), Schema.Struct({})),
    Schema.Array(Schema.typeSchema(item)),
    {
      strict: false,
      decode: (u) => (Array.isArray(u) ? u : []),
      encode: (a) => a
    }
  )

/** A Node as the registry knows it. */
export const NodeRecord = Schema.Struct({
  ...NodeRegistration.fields,
  state: NodeState,
  workers: ArrayFromStore(WorkerLoad),
  /** When it registered and when it last reported (ms, the store's clock). */
  registeredAt: Schema.Number,
  reportedAt: Schema.Number
})
export type NodeRecord = typeof NodeRecord.Type

/** "Which Node has room?" for a transport of a Mafalda Router with these Worker settings. */
export const PickRequest = Schema.Struct({
  workerSettings: SettingsKey,
  /** The CPU % the transport is expected to bring (its own cost and what it will consume). */
  cost: Schema.Number.pipe(Schema.nonNegative()),
  /** CPU % above which a Worker takes nothing new. */
  watermark: Schema.Number.pipe(Schema.positive()),
  /** The most Workers with one set of settings per Node (default: its CPUs). */
  maxWorkersPerNode: Schema.optional(Schema.Int.pipe(Schema.positive())),
  /** Nodes not to choose (the asking Node, Nodes that already refused). */
  exclude: Schema.optionalWith(Schema.Array(NodeId), { default: () => [] })
})
export type PickRequest = typeof PickRequest.Encoded

/** The Node chosen, and its Worker with room (or `null`: start a Worker there). */
export const Picked = Schema.Struct({
  node: NodeId,
  address: Schema.String,
  announcedIp: Schema.String,
  worker: Schema.NullOr(WorkerId)
})
export type Picked = typeof Picked.Type

/** A Node left the registry: its lease expired, or it deregistered. */
export const NodeGone = Schema.Struct({
  node: NodeId,
  reason: Schema.Literal("expired", "left"),
  /** When it was evicted (ms, the store's clock). */
  at: Schema.Number
})
export type NodeGone = typeof NodeGone.Type

export interface NodeRegistryShape {
  /**
   * Registers (or re-registers) a Node, `up`, with a fresh lease and no Worker loads. A
   * Node that registers again keeps nothing of its previous record.
   */
  readonly register: (registration: NodeRegistration) => Effect.Effect<void, ClusterStoreError>
  /**
   * Reports a Node's Worker loads and refreshes its lease; clears its reservations. False
   * when the Node is not registered (it was evicted): it must register again.
   */
  readonly report: (
    node: NodeId,
    workers: ReadonlyArray<WorkerLoad>
  ) => Effect.Effect<boolean, ClusterStoreError>
  /** Sets a Node's state; false when it is not registered. */
  readonly setState: (node: NodeId, state: NodeState) => Effect.Effect<boolean, ClusterStoreError>
  /** Removes a Node (with its Index entries) and publishes `left`. Unknown Nodes are ignored. */
  readonly deregister: (node: NodeId) => Effect.Effect<void, ClusterStoreError>
  /** The registered Nodes whose lease runs. */
  readonly nodes: Effect.Effect<ReadonlyArray<NodeRecord>, ClusterStoreError>
  readonly node: (node: NodeId) => Effect.Effect<Option.Option<NodeRecord>, ClusterStoreError>
  /**
   * "Which Node has room?", answered atomically with a reservation of `cost` on the choice.
   * In order: the Node with the busiest Worker with these settings that stays under the
   * watermark with `cost`; then a Node that may start a Worker with these settings, the
   * fullest first among those with an idle CPU, then among the others. Only `up` Nodes
   * whose lease runs, never an excluded one. `None` when no Node has room.
   */
  readonly pick: (request: PickRequest) => Effect.Effect<Option.Option<Picked>, ClusterStoreError>
  /** Evicts the Nodes whose lease ran out, now (a reaper does this on its own). */
  readonly reap: Effect.Effect<ReadonlyArray<NodeId>, ClusterStoreError>
  /** Nodes evicted or gone, from every process (from when the stream starts). */
  readonly gone: Stream.Stream<NodeGone>
  /** A subscription to `gone`, made now and ended with the scope. */
  readonly subscribe: Effect.Effect<Queue.Dequeue<NodeGone>, never, Scope.Scope>
}

export class NodeRegistry extends Context.Tag("mafalda/NodeRegistry")<NodeRegistry, NodeRegistryShape>() {}

/** Lease and reaping of the registry layers. */
export interface NodeRegistryOptions {
  /** How long a Node stays registered without a report (default 3 seconds). */
  readonly leaseMillis?: number | undefined
  /** How often expired leases are looked for (default 250 ms). */
  readonly reapMillis?: number | undefined
}

export const defaultLeaseMillis = 3000
export const defaultReapMillis = 250
