/**
 * Mafalda's metrics, as `effect/Metric`s in Effect's global registry, and their
 * Prometheus text exposition.
 *
 * - Gauges are derived from the cluster snapshot (`refreshGauges`, called before each
 *   scrape and on an interval by the live view's layer): Nodes, Workers, Routers, rooms
 *   (Mafalda Routers), transports, producers, consumers, pipes, stream trees, the deepest
 *   tree, and per Worker its load and consumers.
 * - Counters and the decision-latency histogram are fed by the shell as things happen (see
 *   `observe.ts`): Workers started, exited and died, placements by outcome, pipes made and
 *   closed, scale-down actions by kind, relocations.
 *
 * The registry is per process: with several Mafalda instances in one process the counters
 * add up, while the gauges describe the instance last refreshed.
 *
 * @module
 */
import {
  HashMap,
  HashSet,
  Metric,
  MetricBoundaries,
  MetricKeyType,
  MetricLabel,
  MetricState,
  Option
} from "effect"
import type { MetricPair } from "effect/MetricPair"
import { type ClusterSnapshot, effectiveLoad, lookup, treeDepth } from "../core/Snapshot.js"

// --- Counters (fed by the shell) -------------------------------------------------------

export const workersStarted = Metric.counter("mafalda_workers_started_total", {
  description: "Workers started",
  incremental: true
})
export const workersExited = Metric.counter("mafalda_workers_exited_total", {
  description: "Workers closed by Mafalda (scale-down or shutdown) whose process exited",
  incremental: true
})
export const workerDeaths = Metric.counter("mafalda_worker_deaths_total", {
  description: "Worker processes that died on their own",
  incremental: true
})
/** Tagged `outcome`: `existing_router`, `new_router`, `new_worker`, `delegated`, `rejected`. */
export const placements = Metric.counter("mafalda_placements_total", {
  description: "Transport placements, by outcome",
  incremental: true
})
export const pipesCreated = Metric.counter("mafalda_pipes_created_total", {
  description: "Pipes made (a producer piped into another Router)",
  incremental: true
})
export const pipesClosed = Metric.counter("mafalda_pipes_closed_total", {
  description: "Pipes closed",
  incremental: true
})
/** Tagged `action`: `close_pipe`, `close_router`, `close_worker`. */
export const scaleDownActions = Metric.counter("mafalda_scale_down_actions_total", {
  description: "Idle pipes, Routers and Workers closed by scale-down, by action",
  incremental: true
})
/** Tagged `outcome` by whoever relocates (e.g. `done`, `failed`). */
export const relocations = Metric.counter("mafalda_relocations_total", {
  description: "Relocations of consumers or pipes to other Routers, by outcome",
  incremental: true
})
/** Tagged `decision`: `transport`, `consumer`. */
export const decisionSeconds = Metric.histogram(
  "mafalda_decision_seconds",
  MetricBoundaries.exponential({ start: 1e-6, factor: 2, count: 20 }),
  "Time the core took to decide a placement, in seconds"
)

// --- Gauges (derived from the snapshot) ------------------------------------------------

const gauge = (name: string, description: string) => Metric.gauge(name, { description })

export const gauges = {
  nodes: gauge("mafalda_nodes", "Nodes in the cluster snapshot"),
  workers: gauge("mafalda_workers", "Live Workers"),
  routers: gauge("mafalda_routers", "mediasoup Routers"),
  rooms: gauge("mafalda_rooms", "Mafalda Routers (rooms)"),
  transports: gauge("mafalda_transports", "Transports"),
  producers: gauge("mafalda_producers", "Producers"),
  consumers: gauge("mafalda_consumers", "Consumers (pipe consumers not included)"),
  pipes: gauge("mafalda_pipes", "Pipes (edges of the stream trees)"),
  trees: gauge("mafalda_trees", "Stream trees (one per producer)"),
  treeDepthMax: gauge("mafalda_tree_depth_max", "Deepest stream tree, in pipe hops"),
  workerLoad: gauge(
    "mafalda_worker_load_percent",
    "A Worker's load: last CPU % reported plus placements since"
  ),
  workerReportedLoad: gauge("mafalda_worker_reported_load_percent", "A Worker's last reported CPU %"),
  workerConsumers: gauge("mafalda_worker_consumers", "Consumers on a Worker"),
  workerRouters: gauge("mafalda_worker_routers", "Routers on a Worker")
} as const

/** The gauges with a `worker` label, whose series go when the Worker goes. */
const perWorker: ReadonlySet<string> = new Set([
  "mafalda_worker_load_percent",
  "mafalda_worker_reported_load_percent",
  "mafalda_worker_consumers",
  "mafalda_worker_routers"
])

/** The totals of a snapshot, as the gauges report them. */
export interface ClusterCounts {
  readonly nodes: number
  readonly workers: number
  readonly routers: number
  readonly rooms: number
  readonly transports: number
  readonly producers: number
  readonly consumers: number
  readonly pipes: number
  readonly trees: number
  readonly treeDepthMax: number
}

export const clusterCounts = (s: ClusterSnapshot): ClusterCounts => {
  let workers = 0
  for (const w of HashMap.values(s.workers)) if (w.alive) workers++
  let pipes = 0
  let treeDepthMax = 0
  for (const tree of HashMap.values(s.trees)) {
    pipes += HashMap.size(tree) - 1
    treeDepthMax = Math.max(treeDepthMax, treeDepth(tree))
  }
  return {
    nodes: HashMap.size(s.nodes),
    workers,
    routers: HashMap.size(s.routers),
    rooms: HashMap.size(s.mafaldaRouters),
    transports: HashMap.size(s.transports),
    producers: HashMap.size(s.producers),
    consumers: HashMap.size(s.consumers),
    pipes,
    trees: HashMap.size(s.trees),
    treeDepthMax
  }
}

const label = (key: string, value: string) => [MetricLabel.make(key, value)]

/** Sets every gauge from a snapshot (synchronously: a scrape reads one consistent state). */
export const refreshGauges = (s: ClusterSnapshot): ClusterCounts => {
  const counts = clusterCounts(s)
  for (const key of Object.keys(counts) as Array<keyof ClusterCounts>) {
    gauges[key].unsafeUpdate(counts[key], [])
  }
  const consumersOf = new Map<string, number>()
  for (const t of HashMap.values(s.transports)) {
    const worker = lookup(s.routers, t.router)?.worker
    if (worker !== undefined)
      consumersOf.set(worker, (consumersOf.get(worker) ?? 0) + HashSet.size(t.consumers))
  }
  for (const w of HashMap.values(s.workers)) {
    if (!w.alive) continue
    const tag = label("worker", w.id)
    gauges.workerLoad.unsafeUpdate(effectiveLoad(w), tag)
    gauges.workerReportedLoad.unsafeUpdate(w.load, tag)
    gauges.workerConsumers.unsafeUpdate(consumersOf.get(w.id) ?? 0, tag)
    gauges.workerRouters.unsafeUpdate(w.routers.length, tag)
  }
  return counts
}

/** Counts one more of a counter, with labels, from synchronous code. */
export const count = (counter: Metric.Metric.Counter<number>, labels: Record<string, string> = {}, by = 1) =>
  counter.unsafeUpdate(
    by,
    Object.entries(labels).map(([k, v]) => MetricLabel.make(k, v))
  )

/** Runs a (pure, synchronous) decision and records how long it took. */
export const timed = <A>(decision: "transport" | "consumer", decide: () => A): A => {
  const start = performance.now()
  const result = decide()
  decisionSeconds.unsafeUpdate((performance.now() - start) / 1000, label("decision", decision))
  return result
}

// --- Prometheus text exposition (format 0.0.4) -----------------------------------------

/** The content type of the Prometheus text format. */
export const prometheusContentType = "text/plain; version=0.0.4; charset=utf-8"

const metricName = (name: string) => name.replace(/[^a-zA-Z0-9_:]/g, "_").replace(/^([0-9])/, "_$1")
const labelName = (name: string) => name.replace(/[^a-zA-Z0-9_]/g, "_").replace(/^([0-9])/, "_$1")
const escapeValue = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"')
const escapeHelp = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")
const num = (n: number | bigint): string =>
  typeof n === "bigint"
    ? n.toString()
    : Number.isNaN(n)
      ? "NaN"
      : n === Number.POSITIVE_INFINITY
        ? "+Inf"
        : n === Number.NEGATIVE_INFINITY
          ? "-Inf"
          : String(n)

const labelsText = (labels: ReadonlyArray<readonly [string, string]>): string =>
  labels.length === 0 ? "" : `{${labels.map(([k, v]) => `${labelName(k)}="${escapeValue(v)}"`).join(",")}}`

const typeOf = (pair: MetricPair.Untyped): string => {
  const t = pair.metricKey.keyType
  if (MetricKeyType.isCounterKey(t)) return "counter"
  if (MetricKeyType.isGaugeKey(t)) return "gauge"
  if (MetricKeyType.isHistogramKey(t)) return "histogram"
  if (MetricKeyType.isSummaryKey(t)) return "summary"
  return "counter" // a frequency: one counter per value
}

const samples = (pair: MetricPair.Untyped): Array<string> => {
  const name = metricName(pair.metricKey.name)
  const tags = pair.metricKey.tags.map((l) => [l.key, l.value] as const)
  const state = pair.metricState
  if (MetricState.isCounterState(state)) return [`${name}${labelsText(tags)} ${num(state.count)}`]
  if (MetricState.isGaugeState(state)) return [`${name}${labelsText(tags)} ${num(state.value)}`]
  if (MetricState.isHistogramState(state)) {
    const out = state.buckets.map(
      ([le, n]) => `${name}_bucket${labelsText([...tags, ["le", num(le)]])} ${num(n)}`
    )
    out.push(
      `${name}_bucket${labelsText([...tags, ["le", "+Inf"]])} ${num(state.count)}`,
      `${name}_sum${labelsText(tags)} ${num(state.sum)}`,
      `${name}_count${labelsText(tags)} ${num(state.count)}`
    )
    return out
  }
  if (MetricState.isSummaryState(state)) {
    const out = state.quantiles.flatMap(([q, v]) =>
      Option.isSome(v) ? [`${name}${labelsText([...tags, ["quantile", num(q)]])} ${num(v.value)}`] : []
    )
    out.push(
      `${name}_sum${labelsText(tags)} ${num(state.sum)}`,
      `${name}_count${labelsText(tags)} ${num(state.count)}`
    )
    return out
  }
  if (MetricState.isFrequencyState(state)) {
    return Array.from(
      state.occurrences,
      ([key, n]) => `${name}${labelsText([...tags, ["key", key]])} ${num(n)}`
    )
  }
  return []
}

export interface ExpositionOptions {
  /** The live Workers: series of per-Worker gauges of other Workers are left out. */
  readonly liveWorkers?: ReadonlySet<string> | undefined
  /** Only metrics whose name starts with this (default: every metric in the registry). */
  readonly prefix?: string | undefined
}

/**
 * The Prometheus text of metric pairs (`Metric.unsafeSnapshot()`): one `# HELP` and
 * `# TYPE` per metric name, then its samples.
 */
export const prometheusText = (
  pairs: ReadonlyArray<MetricPair.Untyped>,
  options: ExpositionOptions = {}
): string => {
  const byName = new Map<string, { help: string; type: string; lines: Array<string> }>()
  for (const pair of pairs) {
    const { name, description, tags } = pair.metricKey
    if (options.prefix !== undefined && !name.startsWith(options.prefix)) continue
    if (options.liveWorkers !== undefined && perWorker.has(name)) {
      const worker = tags.find((t) => t.key === "worker")?.value
      if (worker === undefined || !options.liveWorkers.has(worker)) continue
    }
    const key = metricName(name)
    let entry = byName.get(key)
    if (entry === undefined) {
      entry = { help: Option.getOrElse(description, () => name), type: typeOf(pair), lines: [] }
      byName.set(key, entry)
    }
    entry.lines.push(...samples(pair))
  }
  const out: Array<string> = []
  for (const [name, entry] of [...byName].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    out.push(
      `# HELP ${name} ${escapeHelp(entry.help)}`,
      `# TYPE ${name} ${entry.type}`,
      ...entry.lines.sort()
    )
  }
  return `${out.join("\n")}\n`
}

/** Refreshes the gauges from a snapshot and returns the Prometheus text of the whole registry. */
export const scrape = (snapshot: ClusterSnapshot, options: Omit<ExpositionOptions, "liveWorkers"> = {}) => {
  refreshGauges(snapshot)
  const live = new Set<string>()
  for (const w of HashMap.values(snapshot.workers)) if (w.alive) live.add(w.id)
  return prometheusText(Metric.unsafeSnapshot(), { ...options, liveWorkers: live })
}
