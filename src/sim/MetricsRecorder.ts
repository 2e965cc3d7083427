/**
 * The metrics of a run, taken at each load-report tick: every live Worker's true load is
 * sampled (histograms, peaks, overload, one time-series point), the loads that changed are
 * handed back as the load reports the policy will see, and the largest stream tree is
 * drawn now and then. A sample stands for the time since the previous one (Worker-seconds
 * in use and over 100 %, the CPU histogram). At the end, everything counted becomes the
 * `SimResult`, with the scenario's lower bounds (`Demand`).
 */
import { HashMap } from "effect"
import type { ProducerId } from "../core/Ids.js"
import type { RelocationReason } from "../core/relocation.js"
import { lookup, workerOfRouter } from "../core/Snapshot.js"
import type { LoadReport, SimCluster } from "./Cluster.js"
import { type Demand, workersFor } from "./Demand.js"
import {
  AFTER_PEAK_FLOOR,
  AFTER_PEAK_MIN,
  type AfterPeak,
  LoadHistogram,
  type SeriesPoint,
  type SimResult,
  type TreeDrawing
} from "./Metrics.js"
import type { Scenario } from "./Scenario.js"

/** What the workload counted. */
export interface JoinCounts {
  readonly joins: number
  readonly rejected: number
  readonly rejectedConsumers: number
  readonly reconnects: number
  readonly relocationsByReason: Readonly<Record<RelocationReason, number>>
}

/** Workers in use against the bound at the watermark of the moment, from the bound's peak on (see `AfterPeak`). */
export const afterPeak = (series: ReadonlyArray<SeriesPoint>): AfterPeak => {
  let peak = 0
  let from = -1
  series.forEach((p, i) => {
    if (p.lowerBoundAtWatermark > peak) {
      peak = p.lowerBoundAtWatermark
      from = i
    }
  })
  const floor = Math.max(AFTER_PEAK_MIN, Math.ceil(AFTER_PEAK_FLOOR * peak))
  let maxRatio: number | null = null
  let atSeconds: number | null = null
  let samples = 0
  for (let i = Math.max(0, from); i < series.length; i++) {
    const p = series[i]!
    if (p.lowerBoundAtWatermark < floor) continue
    samples++
    const ratio = p.workersInUse / p.lowerBoundAtWatermark
    if (maxRatio === null || ratio > maxRatio) {
      maxRatio = ratio
      atSeconds = p.t
    }
  }
  return {
    maxRatio,
    atSeconds,
    peakBound: peak,
    peakAtSeconds: from < 0 ? 0 : series[from]!.t,
    floor,
    samples
  }
}

export class MetricsRecorder {
  private readonly loadHist = new LoadHistogram()
  private readonly series: Array<SeriesPoint> = []
  private peakWorkers = 0
  private peakWorkersRunning = 0
  private peakNodes = 0
  private peakPlacedBound = 0
  private peakPipes = 0
  private peakConsumers = 0
  private workerSeconds = 0
  private overloadEvents = 0
  private overloadedWorkerSeconds = 0
  private peakRss = 0
  private tree: TreeDrawing | null = null
  private treeCapturedAt = 0
  private nodeMark = new Uint8Array(64)
  /** When the last sample was taken (ms). */
  lastSampleAt = 0

  constructor(
    private readonly scenario: Scenario,
    private readonly cluster: SimCluster,
    private readonly demand: Demand
  ) {}

  /** Samples every live Worker at `now`; returns the load reports due to the policy. */
  sample(now: number): Array<LoadReport> {
    const cluster = this.cluster
    const snapshot = cluster.snapshot
    const dt = (now - this.lastSampleAt) / 1000
    this.lastSampleAt = now
    const watermark = cluster.options.watermark
    const reports: Array<LoadReport> = []
    let inUse = 0
    let running = 0
    let demand = 0
    let pipes = 0
    let consumers = 0
    let maxLoad = 0
    let sumLoad = 0
    let nodesInUse = 0
    let overloaded = 0
    if (this.nodeMark.length < cluster.nodes.length) this.nodeMark = new Uint8Array(cluster.nodes.length * 2)
    this.nodeMark.fill(0)
    for (const w of HashMap.values(snapshot.workers)) {
      if (!w.alive) continue
      running++
      const st = cluster.stats.get(snapshot, w)
      demand += st.demand
      pipes += st.pipesIn
      consumers += st.consumers
      if (st.inUse) {
        inUse++
        this.loadHist.add(st.load, dt)
        sumLoad += st.load
        if (st.load > maxLoad) maxLoad = st.load
        const n = cluster.nodeByIdMap.get(w.node)
        if (n !== undefined && this.nodeMark[n.index] === 0) {
          this.nodeMark[n.index] = 1
          nodesInUse++
        }
      }
      const over = st.load > 100
      if (over) {
        if (!st.over) this.overloadEvents++
        overloaded++
      }
      st.over = over
      if (st.load !== w.load || w.reserved !== 0) reports.push({ worker: w.id, load: st.load, at: now })
    }
    const placedBound = workersFor(demand, watermark)
    this.workerSeconds += inUse * dt
    this.overloadedWorkerSeconds += overloaded * dt
    if (inUse > this.peakWorkers) this.peakWorkers = inUse
    if (running > this.peakWorkersRunning) this.peakWorkersRunning = running
    if (nodesInUse > this.peakNodes) this.peakNodes = nodesInUse
    if (placedBound > this.peakPlacedBound) this.peakPlacedBound = placedBound
    if (pipes > this.peakPipes) this.peakPipes = pipes
    if (consumers > this.peakConsumers) {
      this.peakConsumers = consumers
      if (consumers >= this.treeCapturedAt * 1.25 || this.tree === null) {
        this.treeCapturedAt = consumers
        this.captureTree(now)
      }
    }
    const scenarioDemand = this.demand
    const bound = scenarioDemand.workersNow()
    const demandOnly = scenarioDemand.demandOnlyNow()
    this.series.push({
      t: now / 1000,
      workersInUse: inUse,
      workersRunning: running,
      nodesInUse,
      workersOverloaded: overloaded,
      participants: scenarioDemand.present,
      lowerBoundAtWatermark: bound.atWatermark,
      lowerBoundAt100: bound.at100,
      demandOnlyAt100: demandOnly.at100,
      meanLoad: inUse === 0 ? 0 : sumLoad / inUse,
      maxLoad,
      consumers,
      pipes
    })
    const rss = process.memoryUsage.rss()
    if (rss > this.peakRss) this.peakRss = rss
    return reports
  }

  /** Keeps a drawing of the largest stream tree (most hops, then most consumers). */
  private captureTree(now: number): void {
    const snapshot = this.cluster.snapshot
    let best: { id: ProducerId; size: number; consumers: number } | undefined
    for (const [id, tree] of snapshot.trees) {
      const size = HashMap.size(tree)
      if (best !== undefined && size < best.size) continue
      let consumers = 0
      for (const hop of HashMap.values(tree)) consumers += hop.consumers
      if (best === undefined || size > best.size || consumers > best.consumers) best = { id, size, consumers }
    }
    if (best === undefined) return
    const tree = lookup(snapshot.trees, best.id)!
    const producer = lookup(snapshot.producers, best.id)!
    const hops = []
    for (const hop of HashMap.values(tree)) {
      const w = workerOfRouter(snapshot, hop.router)
      hops.push({
        router: hop.router,
        parent: hop.parent,
        depth: hop.depth,
        consumers: hop.consumers,
        worker: w?.id ?? "?",
        node: w?.node ?? "?",
        load: w === undefined ? 0 : this.cluster.stats.get(snapshot, w).load
      })
    }
    hops.sort((a, b) => a.depth - b.depth || (a.router < b.router ? -1 : 1))
    this.tree = { producer: best.id, kind: producer.kind, atSeconds: now / 1000, hops }
  }

  /** The drawn tree: the one at the end, unless consumers had peaked well above it. */
  finish(now: number): void {
    if (this.series.length > 0 && this.series[this.series.length - 1]!.consumers >= 0.9 * this.peakConsumers)
      this.captureTree(now)
  }

  result(run: {
    readonly policy: string
    readonly seed: number
    readonly wallSeconds: number
    readonly counts: JoinCounts
  }): SimResult {
    const cluster = this.cluster
    const rss = Math.max(this.peakRss, process.memoryUsage.rss())
    let depthCount = 0
    let depthSum = 0
    const depthHistogram: Array<number> = []
    for (let d = 0; d < cluster.depthHist.length; d++) {
      const n = cluster.depthHist[d] ?? 0
      depthHistogram.push(n)
      depthCount += n
      depthSum += n * d
    }
    return {
      scenario: this.scenario.name,
      policy: run.policy,
      seed: run.seed,
      simulatedSeconds: this.scenario.durationSeconds,
      lowerBounds: this.demand.bounds(),
      peakWorkers: this.peakWorkers,
      workersOverBoundAfterPeak: afterPeak(this.series),
      peakWorkersRunning: this.peakWorkersRunning,
      peakNodes: this.peakNodes,
      workersForPlacedDemand: this.peakPlacedBound,
      workerSeconds: this.workerSeconds,
      overloadedWorkerSeconds: this.overloadedWorkerSeconds,
      overloadedShare: this.workerSeconds === 0 ? 0 : this.overloadedWorkerSeconds / this.workerSeconds,
      overloadEvents: this.overloadEvents,
      cpu: { mean: this.loadHist.mean(), p95: this.loadHist.quantile(0.95), max: this.loadHist.max },
      pipeConsumers: this.peakPipes,
      pipesCreated: cluster.pipesCreated,
      maxDepth: depthHistogram.length === 0 ? 0 : depthHistogram.length - 1,
      meanDepth: depthCount === 0 ? 0 : depthSum / depthCount,
      depthHistogram,
      joins: run.counts.joins,
      rejected: run.counts.rejected,
      rejectedConsumers: run.counts.rejectedConsumers,
      reconnects: run.counts.reconnects,
      relocations: Object.values(run.counts.relocationsByReason).reduce((a, b) => a + b, 0),
      relocationsByReason: { ...run.counts.relocationsByReason },
      consumersCreated: cluster.consumersCreated,
      peakConsumers: this.peakConsumers,
      events: cluster.events,
      decisions: cluster.decisions,
      decisionsPerSecond: cluster.decisionMs === 0 ? 0 : cluster.decisions / (cluster.decisionMs / 1000),
      meanDecisionMicros: cluster.decisions === 0 ? 0 : (cluster.decisionMs * 1000) / cluster.decisions,
      wallSeconds: run.wallSeconds,
      peakRssBytes: rss,
      series: this.series,
      tree: this.tree
    }
  }
}
