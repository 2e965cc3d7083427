/**
 * What a simulation measures, accumulated as it goes without keeping per-consumer history:
 * histograms with fixed bins (CPU %, tree depth), counters, and one time series point per
 * load-report tick.
 */

/** CPU % histogram: 0.1 % bins up to 400 %, then one overflow bin. */
const BINS = 4000
const BIN_WIDTH = 0.1

export class LoadHistogram {
  private readonly bins = new Float64Array(BINS + 1)
  count = 0
  sum = 0
  max = 0

  add(load: number): void {
    const i = Math.min(BINS, Math.max(0, Math.floor(load / BIN_WIDTH)))
    this.bins[i]! += 1
    this.count++
    this.sum += load
    if (load > this.max) this.max = load
  }

  mean(): number {
    return this.count === 0 ? 0 : this.sum / this.count
  }

  /** The upper edge of the bin holding quantile `q` (an over-estimate by at most 0.1 %). */
  quantile(q: number): number {
    if (this.count === 0) return 0
    const target = q * this.count
    let seen = 0
    for (let i = 0; i <= BINS; i++) {
      seen += this.bins[i]!
      if (seen >= target) return i === BINS ? this.max : Math.min(this.max, (i + 1) * BIN_WIDTH)
    }
    return this.max
  }
}

export interface SeriesPoint {
  /** Seconds since the start. */
  readonly t: number
  readonly workersInUse: number
  readonly workersRunning: number
  readonly nodesInUse: number
  /** Fewest Workers that carry the placed demand at the watermark. */
  readonly workersLowerBound: number
  readonly meanLoad: number
  readonly maxLoad: number
  readonly consumers: number
  readonly pipes: number
}

/** One hop of a drawn stream tree. */
export interface TreeDrawingHop {
  readonly router: string
  readonly parent: string | null
  readonly depth: number
  readonly consumers: number
  readonly worker: string
  readonly node: string
  readonly load: number
}

export interface TreeDrawing {
  readonly producer: string
  readonly kind: string
  readonly atSeconds: number
  readonly hops: ReadonlyArray<TreeDrawingHop>
}

export interface SimResult {
  readonly scenario: string
  readonly policy: string
  readonly seed: number
  readonly simulatedSeconds: number
  readonly peakWorkers: number
  readonly peakWorkersRunning: number
  readonly peakNodes: number
  /** Fewest Workers that could carry the peak demand at the watermark. */
  readonly workersLowerBound: number
  /** Worker-seconds in use (the cost over time). */
  readonly workerSeconds: number
  readonly cpu: { readonly mean: number; readonly p95: number; readonly max: number }
  /** Times a Worker went over 100 % CPU. */
  readonly overloadEvents: number
  /** Worker-seconds spent over 100 % CPU. */
  readonly overloadedWorkerSeconds: number
  /** Peak number of pipes (pipe consumers) alive at once. */
  readonly pipeConsumers: number
  /** Fewest pipes the trees needed at that time. */
  readonly pipesLowerBound: number
  readonly pipesCreated: number
  readonly maxDepth: number
  readonly meanDepth: number
  /** Consumers created, by depth of their Router in the producer's tree. */
  readonly depthHistogram: ReadonlyArray<number>
  readonly joins: number
  readonly rejected: number
  readonly rejectedConsumers: number
  readonly reconnects: number
  readonly consumersCreated: number
  readonly peakConsumers: number
  readonly events: number
  readonly decisions: number
  readonly decisionsPerSecond: number
  readonly meanDecisionMicros: number
  readonly wallSeconds: number
  readonly peakRssBytes: number
  readonly series: ReadonlyArray<SeriesPoint>
  readonly tree: TreeDrawing | null
}
