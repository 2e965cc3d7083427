/**
 * `room-per-node`, as LiveKit: a room lives on one Node, chosen when the room opens as the
 * Node with the lowest reported CPU (mean over its CPUs, load reports only: what the
 * Node's last stats said), preferring Nodes under 90 %. Inside the Node the core's own
 * decisions place transports and pipes, on a snapshot that shows only that Node: a full
 * Node rejects, it never delegates.
 */
import { Either, HashMap, Order, RedBlackTree } from "effect"
import { decideConsumerPlacement } from "../../core/consumerPlacement.js"
import type { NodeId, SettingsKey } from "../../core/Ids.js"
import { planTransportPlacement } from "../../core/interpret.js"
import type { ClusterNode, SpareKey } from "../../core/Snapshot.js"
import { lookup } from "../../core/Snapshot.js"
import type { PolicyCluster } from "../Cluster.js"
import { mafaldaPolicy } from "./mafalda.js"
import type { SimPolicy } from "./Policy.js"

const ROUTER_SETTINGS = "r" as SettingsKey

export const roomPerNodePolicy = (cluster: PolicyCluster): SimPolicy => {
  const options = cluster.options
  const housekeeping = mafaldaPolicy(cluster)

  const reportedLoad = (id: NodeId): number => {
    const node = lookup(cluster.snapshot.nodes, id)
    if (node === undefined) return Number.POSITIVE_INFINITY
    let sum = 0
    for (const wid of node.workers) sum += lookup(cluster.snapshot.workers, wid)?.load ?? 0
    return sum / node.cpus
  }

  const chooseNode = (): NodeId | undefined => {
    let best: { id: NodeId; load: number; under: boolean } | undefined
    for (const n of cluster.nodes) {
      if (!cluster.nodeUp(n.id)) continue
      const load = reportedLoad(n.id)
      const under = load < 90
      if (best === undefined || (under && !best.under) || (under === best.under && load < best.load))
        best = { id: n.id, load, under }
    }
    return best?.id
  }

  return {
    name: "room-per-node",
    openRoom(room) {
      cluster.openMafaldaRouter(room, ROUTER_SETTINGS)
    },
    join(p) {
      const room = p.room
      if (room.entry === null || !cluster.nodeUp(room.entry)) {
        const node = chooseNode()
        if (node === undefined) return false
        room.entry = node
      }
      const node = room.entry
      const only = lookup(cluster.snapshot.nodes, node)!
      // This Node alone: no other Node, and no cluster-wide index to delegate with.
      const snapshot = {
        ...cluster.snapshot,
        nodes: HashMap.make([node, only] as [NodeId, ClusterNode]),
        byLoad: HashMap.empty(),
        spare: RedBlackTree.empty<SpareKey, NodeId>(Order.tuple(Order.number, Order.string) as never)
      }
      const plan = cluster.decide(() =>
        planTransportPlacement(snapshot, options, { node, mafaldaRouter: room.id })
      )
      if (Either.isLeft(plan)) return false
      const router = cluster.carryOut(plan.right)
      p.transport = cluster.createTransport(room, router)
      p.router = router
      room.nodes.add(node)
      return true
    },
    produce: (p, kind) => cluster.createProducer(p, kind),
    consume(p, producer) {
      if (p.transport === null || p.router === null) return false
      const router = p.router
      const snapshot = cluster.snapshot
      const d = cluster.decide(() =>
        decideConsumerPlacement(snapshot, options, { producer: producer.id, router })
      )
      if (d._tag === "Reject") return false
      if (d._tag === "PipeThenConsume") cluster.pipes(d.pipes)
      cluster.createConsumer(p, p.transport, router, producer)
      return true
    },
    connected: (p) => cluster.hasTransport(p.transport),
    closeRoom: (room) => cluster.closeMafaldaRouter(room, false),
    tick: (now) => housekeeping.tick(now)
  }
}
