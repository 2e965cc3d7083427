/**
 * Placement decisions per second against cluster snapshots of 1,000, 10,000 and 100,000
 * Workers (Nodes of 16 CPUs, one Router per Worker, loads spread between 0 and 90 %).
 *
 *   npm run bench:placement            a table
 *   npm run bench:placement -- --json  one JSON object per line
 *
 * Each decision is a transport placement for a Mafalda Router on a random Node (about one
 * in ten Nodes is full, so some decisions delegate to another Node), followed by a
 * consumer placement for one of the cluster's producers on the chosen Router.
 */
import { Either } from "effect"
import {
  applyEvents,
  type ClusterEvent,
  type ClusterSnapshot,
  decideConsumerPlacement,
  decideTransportPlacement,
  defaultPolicyOptions,
  emptySnapshot,
  MafaldaRouterId,
  NodeId,
  ProducerId,
  RouterId,
  SettingsKey,
  TransportId,
  WorkerId
} from "../src/core/index.js"

const json = process.argv.includes("--json")
const sizes = (process.env.SIZES ?? "1000,10000,100000").split(",").map(Number)
const CPUS = 16
const options = defaultPolicyOptions
const costs = options.costs
const ws = SettingsKey.make("worker-default")
const rs = SettingsKey.make("router-default")

/** A small deterministic PRNG (mulberry32), so every run builds the same cluster. */
const random = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const buildCluster = (workers: number, rand: () => number) => {
  const events: Array<ClusterEvent> = []
  const nodes = Math.ceil(workers / CPUS)
  const mafaldaRouters: Array<MafaldaRouterId> = []
  const producers: Array<ProducerId> = []
  const routers: Array<RouterId> = []
  for (let n = 0; n < nodes; n++) {
    const node = NodeId.make(`node-${n}`)
    events.push({ _tag: "NodeUp", node, cpus: CPUS, address: `10.0.${n >> 8}.${n & 255}`, at: 0 })
    const full = n % 10 === 9
    for (let c = 0; c < CPUS && n * CPUS + c < workers; c++) {
      const worker = WorkerId.make(`w-${n}-${c}`)
      const router = RouterId.make(`r-${n}-${c}`)
      routers.push(router)
      events.push(
        { _tag: "WorkerStarted", worker, node, settings: ws, at: 0 },
        { _tag: "RouterCreated", router, worker, settings: rs, at: 0 },
        { _tag: "LoadReported", worker, load: full ? 75 + rand() * 20 : rand() * 90, at: 1 }
      )
    }
    // One Mafalda Router per Node, using its first Router, with one producer.
    const mafaldaRouter = MafaldaRouterId.make(`room-${n}`)
    mafaldaRouters.push(mafaldaRouter)
    const transport = TransportId.make(`t-${n}`)
    const producer = ProducerId.make(`p-${n}`)
    producers.push(producer)
    events.push(
      { _tag: "MafaldaRouterCreated", mafaldaRouter, workerSettings: ws, routerSettings: rs, at: 1 },
      {
        _tag: "TransportCreated",
        transport,
        kind: "webrtc",
        router: RouterId.make(`r-${n}-0`),
        mafaldaRouter,
        at: 2
      },
      { _tag: "ProducerCreated", producer, kind: "video", transport, at: 2 }
    )
  }
  return {
    snapshot: Either.getOrThrow(applyEvents(emptySnapshot, events, costs)),
    nodes,
    mafaldaRouters,
    producers,
    routers
  }
}

const measure = (workers: number) => {
  const rand = random(workers)
  const built = performance.now()
  const cluster = buildCluster(workers, rand)
  const buildMs = performance.now() - built
  const snapshot: ClusterSnapshot = cluster.snapshot
  // Pre-draw the requests so that the timed loop measures the decisions only.
  const requests = Array.from({ length: 4096 }, () => {
    const n = Math.floor(rand() * cluster.nodes)
    return {
      node: NodeId.make(`node-${n}`),
      mafaldaRouter: cluster.mafaldaRouters[Math.floor(rand() * cluster.mafaldaRouters.length)]!,
      producer: cluster.producers[Math.floor(rand() * cluster.producers.length)]!,
      router: cluster.routers[Math.floor(rand() * cluster.routers.length)]!
    }
  })
  const tally = { transport: 0, consumer: 0 }
  const outcomes: Record<string, number> = {}
  const run = (count: number) => {
    for (let i = 0; i < count; i++) {
      const r = requests[i & 4095]!
      const placement = decideTransportPlacement(snapshot, options, r)
      outcomes[placement._tag] = (outcomes[placement._tag] ?? 0) + 1
      tally.transport++
      const consumer = decideConsumerPlacement(snapshot, options, { producer: r.producer, router: r.router })
      outcomes[consumer._tag] = (outcomes[consumer._tag] ?? 0) + 1
      tally.consumer++
    }
  }
  run(20_000) // warm-up
  tally.transport = 0
  tally.consumer = 0
  for (const k of Object.keys(outcomes)) delete outcomes[k]
  const iterations = 200_000
  const start = performance.now()
  run(iterations)
  const seconds = (performance.now() - start) / 1000
  const decisions = tally.transport + tally.consumer
  return {
    workers,
    nodes: cluster.nodes,
    decisionsPerSecond: Math.round(decisions / seconds),
    transportPlacementsPerSecond: Math.round(tally.transport / seconds),
    consumerPlacementsPerSecond: Math.round(tally.consumer / seconds),
    microsecondsPerDecision: Number(((seconds * 1e6) / decisions).toFixed(3)),
    decisions,
    outcomes,
    snapshotBuildMs: Math.round(buildMs),
    heapUsedBytes: process.memoryUsage().heapUsed
  }
}

const results = sizes.map(measure)
if (json) {
  for (const r of results) console.log(JSON.stringify(r))
} else {
  console.log("workers  nodes  decisions/s  transport/s  consumer/s  µs/decision  build ms")
  for (const r of results) {
    console.log(
      [
        String(r.workers).padStart(7),
        String(r.nodes).padStart(6),
        String(r.decisionsPerSecond).padStart(12),
        String(r.transportPlacementsPerSecond).padStart(12),
        String(r.consumerPlacementsPerSecond).padStart(11),
        String(r.microsecondsPerDecision).padStart(12),
        String(r.snapshotBuildMs).padStart(9)
      ].join(" ")
    )
  }
}
