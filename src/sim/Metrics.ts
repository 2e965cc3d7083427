/**
 * What a simulation measures, accumulated as it goes without keeping per-consumer history:
 * histograms with fixed bins (CPU %, tree depth), counters, and one time series point per
 * load-report tick. Figures over time are sampled at each load-report tick, a sample
 * standing for the time since the previous one.
 */
import type { RelocationReason } from "../core/relocation.js"
import type { LowerBounds } from "./Demand.js"

/** CPU % histogram, weighted (by Worker-seconds): 0.1 % bins up to 400 %, then one overflow bin. */
const BINS = 4000
const BIN_WIDTH = 0.1

export class LoadHistogram {
  private readonly bins = new Float64Array(BINS + 1)
  /** Total weight. */
  count = 0
  sum = 0
  max = 0

  add(load: number, weight = 1): void {
    const i = Math.min(BINS, Math.max(0, Math.floor(load / BIN_WIDTH)))
    this.bins[i]! += weight
    this.count += weight
    this.sum += load * weight
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
  /** Workers over 100 % CPU. */
  readonly workersOverloaded: number
  /** Participants present (placed or not): the scenario's, the same for every policy. */
  readonly participants: number
  /**
   * Fewest Workers the scenario's rooms of now need at the watermark, their pipes counted
   * (every policy alike; see `Demand`).
   */
  readonly lowerBoundAtWatermark: number
  /** The same with Workers filled to 100 %. */
  readonly lowerBoundAt100: number
  /** Fewest Workers that carry the demand of now at 100 %, pipes left out (valid for any placement). */
  readonly demandOnlyAt100: number
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

/** The bound under which samples are left out of `AfterPeak`: this share of its peak, and at least `AFTER_PEAK_MIN`. */
export const AFTER_PEAK_FLOOR = 0.1
export const AFTER_PEAK_MIN = 2

/**
 * How closely the Workers in use followed the lower bound of the moment (at the watermark)
 * from the bound's peak on: the largest ratio of Workers in use to that bound over the
 * samples from the first one at the bound's peak to the end, leaving out the samples where
 * the bound is under `floor` (10 % of its peak, and at least 2 Workers).
 */
export interface AfterPeak {
  /** The largest ratio, or null when no sample counts. */
  readonly maxRatio: number | null
  /** When it was reached (seconds), or null. */
  readonly atSeconds: number | null
  /** The bound's peak over the samples, and when it was first reached. */
  readonly peakBound: number
  readonly peakAtSeconds: number
  readonly floor: number
  /** Samples counted. */
  readonly samples: number
}

export interface SimResult {
  readonly scenario: string
  readonly policy: string
  readonly seed: number
  readonly simulatedSeconds: number
  /**
   * From the scenario's demand (everyone present, as if placed): the same for every policy.
   * See `Demand`.
   */
  readonly lowerBounds: LowerBounds
  readonly peakWorkers: number
  /** Workers in use against the bound of the moment, from the bound's peak on (the way down). */
  readonly workersOverBoundAfterPeak: AfterPeak
  readonly peakWorkersRunning: number
  readonly peakNodes: number
  /**
   * Fewest Workers that would carry, at the watermark, the demand this policy placed (peak
   * over the ticks): what its own packing could reach; below `lowerBounds` when it rejects.
   */
  readonly workersForPlacedDemand: number
  /** Worker-seconds in use (the cost over time). */
  readonly workerSeconds: number
  /** Worker-seconds spent over 100 % CPU (the harm overload does). */
  readonly overloadedWorkerSeconds: number
  /** `overloadedWorkerSeconds` / `workerSeconds`: the share of the time in use spent over 100 %. */
  readonly overloadedShare: number
  /** Times a Worker went over 100 % CPU (crossings: a Worker that stays over counts once). */
  readonly overloadEvents: number
  /** CPU % of the Workers in use, over their Worker-seconds. */
  readonly cpu: { readonly mean: number; readonly p95: number; readonly max: number }
  /** Peak number of pipes (pipe consumers) alive at once. */
  readonly pipeConsumers: number
  readonly pipesCreated: number
  readonly maxDepth: number
  readonly meanDepth: number
  /** Consumers created, by depth of their Router in the producer's tree. */
  readonly depthHistogram: ReadonlyArray<number>
  /** Joins and rejoins after failures. */
  readonly joins: number
  /** Joins the policy rejected. */
  readonly rejected: number
  /** Consumers the policy could not create for placed participants. */
  readonly rejectedConsumers: number
  readonly reconnects: number
  /**
   * Transports moved by relocation (each a reconnect for a user: its transport closed, a new
   * one opened elsewhere, its media consumed and published again), in all and by reason.
   */
  readonly relocations: number
  readonly relocationsByReason: Readonly<Record<RelocationReason, number>>
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
