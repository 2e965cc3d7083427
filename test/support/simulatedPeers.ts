/**
 * Other Mafalda Nodes, in memory, for the cluster's own `Delegation`
 * (`src/cluster/ClusterDelegation.ts`) to delegate to in a test: each Node is a simulated
 * `WorkerService` (`layerSimulated`), reached through a `NodeClients` whose clients answer
 * the calls `ClusterDelegation` makes of a Node (`StartWorker` and `CreateRouter` for
 * `carryOutRemotely`, `PipeFrom` for a pipe, `CloseRouter` and `ClosePipe` for scale-down)
 * with that Node's simulated Workers, and listed by a `NodeRegistry` that says they are up
 * with their CPUs and Workers.
 *
 * The registry reports no load (each Worker at 0 %, reported at time 0, never later than the
 * snapshot's news of it): `registryEvents` then sends no `LoadReported`, so the snapshot of
 * the Node under test keeps the loads the cost model charges for what it placed there. Any
 * other call of the RPC API dies: the test does not expect it.
 *
 * @module
 */
import { Context, Effect, Layer, Queue, Stream } from "effect"
import * as ClusterDelegation from "../../src/cluster/ClusterDelegation.js"
import { NodeClients } from "../../src/cluster/NodeClients.js"
import { NodeId, type ProducerId, type RouterId, type WorkerId } from "../../src/core/Ids.js"
import type { Costs } from "../../src/core/PolicyOptions.js"
import { layerSimulated } from "../../src/layers/WorkerService.js"
import type { NodeClient } from "../../src/rpc/transport.js"
import { Delegation } from "../../src/services/Delegation.js"
import { type NodeGone, type NodeRecord, NodeRegistry } from "../../src/services/NodeRegistry.js"
import { WorkerService, type WorkerServiceShape } from "../../src/services/WorkerService.js"

/** One other Node: its id and CPUs. */
export interface PeerSpec {
  readonly node: string
  readonly cpus: number
}

/** A call a Node's client answered, in order. */
export type PeerCall =
  | { readonly call: "StartWorker"; readonly node: NodeId; readonly worker: WorkerId }
  | {
      readonly call: "CreateRouter"
      readonly node: NodeId
      readonly worker: WorkerId
      readonly router: RouterId
    }
  | {
      readonly call: "PipeFrom"
      readonly node: NodeId
      readonly producer: ProducerId
      readonly origin: NodeId
      readonly from: RouterId
      readonly to: RouterId
    }
  | { readonly call: "CloseRouter"; readonly node: NodeId; readonly router: RouterId }
  | {
      readonly call: "ClosePipe"
      readonly node: NodeId
      readonly producer: ProducerId
      readonly router: RouterId
    }

export interface SimulatedPeersShape {
  /** The other Nodes' Workers (and, under the id of the Node under test, its own). */
  readonly services: ReadonlyMap<NodeId, WorkerServiceShape>
  /** The calls the Nodes' clients answered, in order. */
  readonly calls: ReadonlyArray<PeerCall>
}

/** The simulated other Nodes, for assertions. */
export class SimulatedPeers extends Context.Tag("test/SimulatedPeers")<
  SimulatedPeers,
  SimulatedPeersShape
>() {}

const unexpected = (what: string) => () => Effect.die(new Error(`simulated peers: ${what} was not expected`))

/**
 * A Node's registry record: up, with its CPUs and these Workers, each at 0 %, registered and
 * reported at time 0 (see the module's documentation).
 */
export const peerRecord = (
  node: NodeId,
  cpus: number,
  workers: ReadonlyArray<{
    readonly id: WorkerId
    readonly settings: NodeRecord["workers"][number]["settings"]
  }>,
  maxWorkerProcesses?: number
): NodeRecord => ({
  node,
  address: `${node}:4000`,
  announcedIp: "127.0.0.1",
  cpus,
  ...(maxWorkerProcesses === undefined ? {} : { maxWorkerProcesses }),
  state: "up",
  workers: workers.map((w) => ({ worker: w.id, settings: w.settings, load: 0 })),
  registeredAt: 0,
  reportedAt: 0
})

/** A registry that lists the Nodes `records` gives and answers nothing else (that dies). */
export const listingRegistry = (records: Effect.Effect<ReadonlyArray<NodeRecord>>) =>
  NodeRegistry.of({
    register: unexpected("register"),
    report: unexpected("report"),
    setState: unexpected("setState"),
    deregister: unexpected("deregister"),
    nodes: records,
    node: unexpected("node"),
    pick: unexpected("pick"),
    reap: Effect.succeed([]),
    gone: Stream.die(new Error("simulated peers: gone was not expected")),
    subscribe: Queue.unbounded<NodeGone>()
  })

/**
 * `NodeClients` and `NodeRegistry` over simulated Nodes `peers` (and the Node under test, the
 * `WorkerService` in the context, whose client only ever gets `PipeFrom`: the destination's
 * Node drives a pipe, this one's own included). Workers are charged nothing: loads come from
 * the cost model of the snapshot under test.
 */
export const layer = (
  peers: ReadonlyArray<PeerSpec>,
  costs: Costs
): Layer.Layer<NodeClients | NodeRegistry | SimulatedPeers, never, WorkerService> =>
  Layer.scopedContext(
    Effect.gen(function* () {
      const own = yield* WorkerService
      const services = new Map<NodeId, WorkerServiceShape>([[own.node, own]])
      for (const peer of peers) {
        const built = yield* Layer.build(layerSimulated({ node: peer.node, cpus: peer.cpus, costs }))
        services.set(NodeId.make(peer.node), Context.get(built, WorkerService))
      }
      const calls: Array<PeerCall> = []

      const clientOf = (node: NodeId, ws: WorkerServiceShape): NodeClient => {
        const client = {
          StartWorker: ({ settings }: { settings: never }) =>
            Effect.map(ws.startWorker(settings), (info) => {
              calls.push({ call: "StartWorker", node, worker: info.id })
              return info
            }),
          CreateRouter: ({ worker, settings }: { worker: WorkerId; settings: never }) =>
            Effect.map(ws.createRouter(worker, settings), (info) => {
              calls.push({ call: "CreateRouter", node, worker, router: info.id })
              return { ...info, rtpCapabilities: {} }
            }),
          PipeFrom: (p: { producer: ProducerId; origin: NodeId; from: RouterId; to: RouterId }) =>
            Effect.sync(() => {
              calls.push({ call: "PipeFrom", node, ...p })
              return {
                producer: p.producer,
                from: p.from,
                to: p.to,
                pipeConsumer: `pipe-consumer-${calls.length}`,
                pipeProducer: p.producer,
                srtp: true
              }
            }),
          CloseRouter: ({ router }: { router: RouterId }) =>
            Effect.zipRight(
              Effect.sync(() => calls.push({ call: "CloseRouter", node, router })),
              ws.closeRouter(router)
            ),
          ClosePipe: ({ producer, router }: { producer: ProducerId; router: RouterId }) =>
            Effect.zipRight(
              Effect.sync(() => calls.push({ call: "ClosePipe", node, producer, router })),
              ws.closePipe(producer, router)
            ),
          Notices: unexpected("Notices")
        }
        return client as unknown as NodeClient
      }
      const clients = new Map(Array.from(services, ([node, ws]) => [node, clientOf(node, ws)] as const))

      const records = Effect.forEach(peers, (peer) => {
        const node = NodeId.make(peer.node)
        return Effect.map(
          services.get(node)!.workers,
          (workers): NodeRecord => peerRecord(node, peer.cpus, workers)
        )
      })

      const registry = listingRegistry(records)
      const nodeClients = NodeClients.of({
        get: (node) => {
          const client = clients.get(node)
          return client === undefined
            ? Effect.die(new Error(`simulated peers: no Node ${node}`))
            : Effect.succeed(client)
        },
        drop: () => Effect.void
      })
      return Context.make(NodeClients, nodeClients).pipe(
        Context.add(NodeRegistry, registry),
        Context.add(SimulatedPeers, { services, calls })
      )
    })
  )

/**
 * This process' cluster `Delegation` (`ClusterDelegation`, over a simulated own Node `n0`)
 * talking to one other Node through `client` (every Node's client), with the registry listing
 * `records`; built in the caller's scope.
 */
export const delegationTo = (client: NodeClient, records: Effect.Effect<ReadonlyArray<NodeRecord>>) =>
  Effect.map(
    Layer.build(
      ClusterDelegation.layer({}).pipe(
        Layer.provide(
          Layer.succeed(
            NodeClients,
            NodeClients.of({ get: () => Effect.succeed(client), drop: () => Effect.void })
          )
        ),
        Layer.provide(Layer.succeed(NodeRegistry, listingRegistry(records))),
        Layer.provide(layerSimulated({ node: "n0", cpus: 1 }))
      )
    ),
    (built) => Context.get(built, Delegation)
  )
