/**
 * The core's `Delegate` in multi-machine mode, as far as it goes today.
 *
 * The core decides on a snapshot of the cluster; a Mafalda Router's snapshot knows only its
 * own Node unless it is told about the others. `registryEvents` tells it: the cluster events
 * that bring the snapshot's view of the other Nodes in line with the `NodeRegistry` (the
 * Nodes, their state, their Workers and the loads they reported). On such a snapshot
 * `planTransportPlacement` (the core's one interpreter) follows `Delegate` to a real Node.
 * `carryOutRemotely` then makes on that Node, over its RPC API, what the plan asks for (a
 * Worker, a Router) and returns the events that record it, as `Placement` does for a plan
 * on its own Node.
 *
 * Not here yet: the transport itself as an object with mediasoup's Transport API backed by
 * RPC (the app makes it through the Node API), and the shell of the Mafalda Router calling
 * this instead of failing with `NoCapacityError`.
 *
 * @module
 */
import { Clock, Effect, HashMap } from "effect"
import type { ClusterEvent } from "../core/ClusterEvent.js"
import type { NodeId, RouterId, WorkerId } from "../core/Ids.js"
import { type PlacementPlan, placementEvents } from "../core/interpret.js"
import { type ClusterSnapshot, lookup } from "../core/Snapshot.js"
import type { NodeRecord } from "../services/NodeRegistry.js"
import type { RouterSettings, WorkerSettings } from "../services/SettingsKeys.js"
import { NodeClients } from "./NodeClients.js"

/**
 * How much later than the snapshot's news of a Worker a report must be made to say that
 * the Worker is gone when it leaves it out.
 */
export const defaultWorkerGraceMillis = 1000

/**
 * The events that make `snapshot`'s view of the Nodes other than `self` what the registry
 * says (`records`: the registered Nodes whose lease runs): a Node new to it comes `up`; one
 * the registry marks draining drains, and comes back `up` when it is up again; a Worker
 * new to it starts; a Worker's load reported since the snapshot's is reported; a Worker the Node no longer
 * reports in a report made `graceMillis` after the snapshot learnt of it closes; a Node gone from the
 * registry goes down and leaves. `self` is left alone: its own events come from its
 * Workers. Loads are dated by the Node's report (the store's clock, which is taken to agree
 * with `at`'s: one machine, or clocks kept in step). Pure; applying the events to `snapshot`
 * succeeds.
 */
export const registryEvents = (
  snapshot: ClusterSnapshot,
  records: ReadonlyArray<NodeRecord>,
  self: NodeId,
  at: number,
  graceMillis: number = defaultWorkerGraceMillis
): ReadonlyArray<ClusterEvent> => {
  const events: Array<ClusterEvent> = []
  const registered = new Set<NodeId>()
  for (const record of records) {
    if (record.node === self) continue
    registered.add(record.node)
    const known = lookup(snapshot.nodes, record.node)
    const up = (): ClusterEvent => ({
      _tag: "NodeUp",
      node: record.node,
      cpus: record.cpus,
      ...(record.maxWorkerProcesses === undefined ? {} : { maxWorkerProcesses: record.maxWorkerProcesses }),
      address: record.address,
      at
    })
    if (known === undefined || known.state === "down") events.push(up())
    else if (record.state === "up" && known.state === "draining") events.push(up())
    // Registered again with other CPUs or another cap on Worker processes.
    else if (
      known.state === "up" &&
      (known.cpus !== record.cpus || known.maxWorkerProcesses !== record.maxWorkerProcesses)
    )
      events.push(up())
    if (record.state === "draining" && known?.state !== "draining") {
      events.push({ _tag: "NodeDraining", node: record.node, at })
    }
    // The load as sampled when the Node reported (the store's clock, never later than `at`):
    // reservations the snapshot charged after that report stay charged.
    const reportedAt = Math.min(record.reportedAt, at)
    const reported = new Set<WorkerId>()
    for (const w of record.workers) {
      reported.add(w.worker)
      const worker = lookup(snapshot.workers, w.worker)
      if (worker === undefined) {
        events.push({
          _tag: "WorkerStarted",
          worker: w.worker,
          node: record.node,
          settings: w.settings,
          at: reportedAt
        })
      } else if (worker.node !== record.node || reportedAt <= worker.reportedAt) continue
      events.push({ _tag: "LoadReported", worker: w.worker, load: Math.max(0, w.load), at: reportedAt })
    }
    for (const worker of known?.workers ?? []) {
      // Only a report made well after the snapshot learnt of the Worker tells that it is
      // gone (one just started there by `carryOutRemotely` may be in no report yet).
      const w = lookup(snapshot.workers, worker)
      if (!reported.has(worker) && w !== undefined && record.reportedAt > w.reportedAt + graceMillis) {
        events.push({ _tag: "WorkerClosed", worker, at })
      }
    }
  }
  for (const node of HashMap.values(snapshot.nodes)) {
    if (node.id === self || registered.has(node.id)) continue
    if (node.state !== "down") events.push({ _tag: "NodeDown", node: node.id, at })
    events.push({ _tag: "NodeLeft", node: node.id, at })
  }
  return events
}

/** What `carryOutRemotely` made on the Node of the plan, and the events that record it. */
export interface RemotePlacement {
  readonly node: NodeId
  readonly worker: WorkerId
  readonly router: RouterId
  /** The Mafalda Router does not use the Router yet (the plan registers it). */
  readonly added: boolean
  /** `CreateRouter` gave this process a hold on the Router it did not have (`DelegatedPlacement`). */
  readonly newHold: boolean
  /** To apply, in order, to the snapshot the plan was made on. */
  readonly events: ReadonlyArray<ClusterEvent>
}

/**
 * Carries out a plan on its Node over RPC: starts the Worker the plan needs there (with the
 * Mafalda Router's Worker settings), creates the Router (with its Router settings), and
 * returns them with the events that record them (`placementEvents`, the core's), dated
 * when each was made (Effect's `Clock`). Fails
 * with the Node's errors (e.g. `NodeDrainingError` when it started draining meanwhile).
 */
export const carryOutRemotely = (
  plan: PlacementPlan,
  settings: { readonly worker: WorkerSettings; readonly router: RouterSettings }
) =>
  Effect.gen(function* () {
    const client = yield* (yield* NodeClients).get(plan.node)
    const now = Clock.currentTimeMillis
    const events: Array<ClusterEvent> = []
    let worker = plan.worker
    if (worker === null) {
      worker = (yield* client.StartWorker({ settings: settings.worker as never })).id
      events.push(...placementEvents(plan, { worker }, yield* now))
    }
    const made =
      plan.router === null
        ? yield* client.CreateRouter({ worker, settings: settings.router as never })
        : undefined
    const router = made?.id ?? (plan.router as RouterId)
    events.push(...placementEvents({ ...plan, worker }, { worker, router }, yield* now))
    const placed: RemotePlacement = {
      node: plan.node,
      worker,
      router,
      added: plan.register,
      newHold: made !== undefined && made.heldBefore !== true,
      events
    }
    return placed
  })
