/**
 * Placement decisions per second against clusters of 1,000, 10,000 and 100,000 Workers, drawn
 * from a realistic mix of requests (see `placementCluster.ts` for the clusters):
 *
 *  - 45 % transport placements (`decideTransportPlacement`) for a random room, on its home
 *    Node (70 %) or on any Node (30 %);
 *  - 50 % consumer placements (`decideConsumerPlacement`) of a random producer on one of its
 *    room's Routers (2 % of them for a producer closed meanwhile);
 *  - 5 % `pipeToRouter` decisions (`decidePipeToRouter`) of a random producer to another room;
 *
 * 80 % of them on the `day` snapshot, 20 % on the `peak` one. 16,384 requests are drawn per
 * size; the timed loop cycles through them for 200,000 decisions or 30 s, whichever comes
 * first (but at least one pass). The mix of outcomes is printed next to the speed (every
 * decision made in the timed loop counted), with the time per decision of each outcome
 * (timed on its own) and its share of the total time; then the time of one scale-down sweep
 * (`decideScaleDown`) over the whole `day` cluster.
 *
 *   npm run bench:placement            tables
 *   npm run bench:placement -- --json  one JSON object per size
 *   SIZES=1000,10000 npm run bench:placement
 */
import { performance } from "node:perf_hooks"
import {
  type ClusterSnapshot,
  type ConsumerPlacement,
  type ConsumerRequest,
  decideConsumerPlacement,
  decidePipeToRouter,
  decideScaleDown,
  decideTransportPlacement,
  defaultPolicyOptions,
  lookup,
  type PipeToRouterDecision,
  type PipeToRouterRequest,
  type ProducerId,
  type RouterId,
  type TransportPlacement,
  type TransportRequest
} from "../src/core/index.js"
import { Prng } from "../src/sim/Prng.js"
import { buildPlacementCluster, type PlacementCluster } from "./placementCluster.js"

const json = process.argv.includes("--json")
const sizes = (process.env.SIZES ?? "1000,10000,100000").split(",").map(Number)
const options = defaultPolicyOptions
/** Distinct requests per size; the timed loop cycles through them. */
const SCHEDULE = 16_384
/** Decisions timed per size, at most ... */
const ITERATIONS = 200_000
/** ... and for at most this long (a rejected transport scans every Node: see the mix). */
const BUDGET_SECONDS = 30
/** Per outcome: at most this many decisions timed, for at most this long (at least 3). */
const PER_OUTCOME = 4_000
const PER_OUTCOME_SECONDS = 0.5

type Request =
  | { readonly kind: "transport"; readonly snapshot: ClusterSnapshot; readonly request: TransportRequest }
  | { readonly kind: "consumer"; readonly snapshot: ClusterSnapshot; readonly request: ConsumerRequest }
  | {
      readonly kind: "pipeToRouter"
      readonly snapshot: ClusterSnapshot
      readonly request: PipeToRouterRequest
    }
type Kind = Request["kind"]
const kinds: ReadonlyArray<Kind> = ["transport", "consumer", "pipeToRouter"]

const decide = (r: Request): TransportPlacement | ConsumerPlacement | PipeToRouterDecision => {
  switch (r.kind) {
    case "transport":
      return decideTransportPlacement(r.snapshot, options, r.request)
    case "consumer":
      return decideConsumerPlacement(r.snapshot, options, r.request)
    case "pipeToRouter":
      return decidePipeToRouter(r.snapshot, options, r.request)
  }
}

/** The requests of one size, deterministic for the size. */
const drawRequests = (cluster: PlacementCluster, rand: Prng): Array<Request> => {
  const pickOf = <A>(xs: ReadonlyArray<A>): A => xs[Math.floor(rand.next() * xs.length)]!
  const out: Array<Request> = []
  for (let i = 0; i < SCHEDULE; i++) {
    const snapshot = rand.next() < 0.8 ? cluster.day : cluster.peak
    const k = rand.next()
    if (k < 0.45) {
      const room = pickOf(cluster.rooms)
      const node = rand.next() < 0.7 ? room.home : pickOf(cluster.nodes)
      out.push({ kind: "transport", snapshot, request: { node, mafaldaRouter: room.id } })
    } else if (k < 0.95) {
      const live = rand.next() >= 0.02 || cluster.closedProducers.length === 0
      const producer = live ? pickOf(cluster.producers) : undefined
      const request =
        producer === undefined
          ? { producer: pickOf(cluster.closedProducers), router: pickOf(pickOf(cluster.rooms).routers) }
          : { producer: producer.id, router: pickOf(producer.room.routers) }
      out.push({ kind: "consumer", snapshot, request })
    } else {
      const producer = pickOf(cluster.producers)
      const to = pickOf(cluster.rooms)
      const request = { producer: producer.id, from: producer.room.id, to: to.id, node: to.home }
      out.push({ kind: "pipeToRouter", snapshot, request })
    }
  }
  return out
}

const hopDepth = (snapshot: ClusterSnapshot, producer: ProducerId, router: RouterId): string => {
  const tree = lookup(snapshot.trees, producer)
  const hop = tree === undefined ? undefined : lookup(tree, router)
  return hop === undefined ? "?" : String(hop.depth)
}

const transportOutcome = (d: TransportPlacement): string =>
  d._tag === "UseRouter"
    ? `UseRouter (${d.register ? "register" : "already used"})`
    : d._tag === "Reject"
      ? `Reject (${d.reason})`
      : d._tag

/** The outcome of a request, as a label of the mix ("transport UseRouter (register)"...). */
const outcomeOf = (r: Request): string => {
  switch (r.kind) {
    case "transport":
      return `transport ${transportOutcome(decideTransportPlacement(r.snapshot, options, r.request))}`
    case "consumer": {
      const d = decideConsumerPlacement(r.snapshot, options, r.request)
      if (d._tag === "ConsumeHere")
        return `consumer ConsumeHere (hop depth ${hopDepth(r.snapshot, r.request.producer, d.router)})`
      if (d._tag === "PipeThenConsume") {
        const from = d.pipes[0]!.from
        return `consumer PipeThenConsume (parent depth ${hopDepth(r.snapshot, r.request.producer, from)})`
      }
      return `consumer Reject (${d.reason})`
    }
    case "pipeToRouter": {
      const d = decidePipeToRouter(r.snapshot, options, r.request)
      if (d._tag === "Share") return `pipeToRouter Share (${d.register ? "register" : "already used"})`
      if (d._tag === "Pipe") {
        const { plan } = d
        const where =
          plan.worker === null ? "new Worker" : plan.router === null ? "new Router" : "existing Router"
        return `pipeToRouter Pipe (to ${where}${plan.delegations.length > 0 ? ", delegated" : ""})`
      }
      return `pipeToRouter Reject (${d.reason})`
    }
  }
}

/**
 * Makes the decisions of `requests` in order, cycling, until `count` are made or `budget`
 * seconds have passed (looking at the clock every 16 decisions; at least `least`).
 * Returns how many were made and how long they took.
 */
let sink = 0
const time = (requests: ReadonlyArray<Request>, count: number, budget: number, least: number) => {
  const n = requests.length
  const start = performance.now()
  const deadline = start + budget * 1000
  let made = 0
  while (made < count) {
    sink ^= decide(requests[made % n]!)._tag.length
    made++
    if ((made & 15) === 0 && made >= least && performance.now() > deadline) break
    if (made === least && least < 16 && performance.now() > deadline) break
  }
  return { made, seconds: (performance.now() - start) / 1000 }
}

const round = (x: number, digits: number) => Number(x.toFixed(digits))

const measure = (workers: number) => {
  const built = performance.now()
  const cluster = buildPlacementCluster(workers, workers)
  const buildMs = performance.now() - built
  const requests = drawRequests(cluster, new Prng(workers + 1))
  // Classify every request once (this is also the warm-up): decisions are pure, so a request
  // has the same outcome each time the timed loop makes it.
  const labels = requests.map(outcomeOf)
  const timed = time(requests, ITERATIONS, BUDGET_SECONDS, requests.length)
  const outcomes: Record<string, number> = {}
  for (let i = 0; i < timed.made; i++) {
    const label = labels[i % requests.length]!
    outcomes[label] = (outcomes[label] ?? 0) + 1
  }
  // The time of each kind of decision, and of each outcome, on its own.
  const groups = new Map<string, Array<Request>>()
  requests.forEach((r, i) => {
    for (const key of [r.kind, labels[i]!]) {
      const group = groups.get(key) ?? []
      group.push(r)
      groups.set(key, group)
    }
  })
  const microseconds = (key: string): number | null => {
    const group = groups.get(key)
    if (group === undefined) return null
    const { made, seconds } = time(group, Math.max(PER_OUTCOME, group.length), PER_OUTCOME_SECONDS, 3)
    return round((seconds * 1e6) / made, 3)
  }
  const byKind = Object.fromEntries(kinds.map((k) => [k, microseconds(k)]))
  const byOutcome = Object.fromEntries(
    Object.keys(outcomes)
      .sort()
      .map((k) => [k, microseconds(k)])
  )
  // Each outcome's share of the time, from its count and its time per decision.
  const total = Object.entries(outcomes).reduce((sum, [k, n]) => sum + n * (byOutcome[k] ?? 0), 0)
  const timeShare = Object.fromEntries(
    Object.entries(outcomes).map(([k, n]) => [k, round((100 * n * (byOutcome[k] ?? 0)) / total, 2)])
  )
  // Scale-down sweeps over the whole day cluster, once every grace period has passed.
  const now = cluster.dayAt + options.idleGraceMillis
  const sweeps: Array<number> = []
  let actions = 0
  const sweepsStart = performance.now()
  while (sweeps.length < 3 && (sweeps.length === 0 || performance.now() - sweepsStart < 10_000)) {
    const t0 = performance.now()
    actions = decideScaleDown(cluster.day, options, now).length
    sweeps.push(performance.now() - t0)
  }
  sweeps.sort((a, b) => a - b)
  return {
    workers,
    nodes: cluster.counts.nodes,
    cluster: cluster.counts,
    decisions: timed.made,
    distinctRequests: requests.length,
    decisionsPerSecond: Math.round(timed.made / timed.seconds),
    microsecondsPerDecision: round((timed.seconds * 1e6) / timed.made, 3),
    microsecondsByKind: byKind,
    outcomes,
    microsecondsByOutcome: byOutcome,
    timeSharePercent: timeShare,
    scaleDownSweep: {
      milliseconds: round(sweeps[Math.floor(sweeps.length / 2)]!, 1),
      sweeps: sweeps.length,
      actions
    },
    snapshotBuildMs: Math.round(buildMs),
    heapUsedBytes: process.memoryUsage().heapUsed,
    sink: sink & 1
  }
}

const results = sizes.map(measure)
if (json) {
  for (const r of results) console.log(JSON.stringify(r))
} else {
  const pad = (x: unknown, n: number) => String(x).padStart(n)
  console.log(
    "workers  nodes  timed decisions  decisions/s  µs/decision  transport µs  consumer µs  pipeToRouter µs  build ms"
  )
  for (const r of results) {
    const k = r.microsecondsByKind
    console.log(
      [
        pad(r.workers, 7),
        pad(r.nodes, 6),
        pad(r.decisions, 16),
        pad(r.decisionsPerSecond, 12),
        pad(r.microsecondsPerDecision, 12),
        pad(k.transport, 13),
        pad(k.consumer, 12),
        pad(k.pipeToRouter, 16),
        pad(r.snapshotBuildMs, 9)
      ].join(" ")
    )
  }
  const labels = [...new Set(results.flatMap((r) => Object.keys(r.outcomes)))].sort()
  const width = Math.max(...labels.map((l) => l.length))
  console.log("\nmix of outcomes: share of the decisions timed, µs per decision, share of the time")
  console.log(`${"".padEnd(width)}${results.map((r) => pad(`${r.workers} Workers`, 34)).join("")}`)
  for (const label of labels) {
    const cells = results.map((r) => {
      const n = r.outcomes[label] ?? 0
      const us = r.microsecondsByOutcome[label] ?? "-"
      const share = r.timeSharePercent[label] ?? 0
      return pad(`${((100 * n) / r.decisions).toFixed(2)} %  ${us} µs  ${share} %`, 34)
    })
    console.log(`${label.padEnd(width)}${cells.join("")}`)
  }
  console.log(
    `\nscale-down sweep over the day cluster: ${results
      .map(
        (r) =>
          `${r.workers} Workers ${r.scaleDownSweep.milliseconds} ms (${r.scaleDownSweep.actions} actions)`
      )
      .join(", ")}`
  )
}
