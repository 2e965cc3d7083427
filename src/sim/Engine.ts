/**
 * The simulation engine: wires the four parts of a run and dispatches the items of the
 * event loop to them.
 *
 *  - `EventLoop`: the heap of scheduled items over virtual time, and the clock;
 *  - `Workload`: rooms and participants (arrivals, joins, leaves, repair) and failures;
 *  - `SimCluster`: the cluster adapter policies use (snapshot, ids, the core's plans);
 *  - `MetricsRecorder`: load reports, series, histograms, tree drawing, the result.
 *
 * Load reports are sampled every `reportIntervalSeconds` and reach the policy
 * `reportDelaySeconds` later; once they have, a policy that relocates is asked for moves,
 * which the workload carries out. The policy's scale-down runs every `scaleDownIntervalSeconds`.
 */
import { type LoadReport, SimCluster } from "./Cluster.js"
import { EventLoop } from "./EventLoop.js"
import type { SimResult } from "./Metrics.js"
import { MetricsRecorder } from "./MetricsRecorder.js"
import { Prng } from "./Prng.js"
import type { SimPolicy } from "./policies/Policy.js"
import type { Scenario } from "./Scenario.js"
import type { VirtualClock } from "./VirtualClock.js"
import type { KindFactors } from "./WorkerStats.js"
import { Workload, type WorkloadItem } from "./Workload.js"

export type { PolicyName } from "./policies/Policy.js"

type Item =
  | WorkloadItem
  | { readonly k: "report" }
  | { readonly k: "deliver"; readonly reports: ReadonlyArray<LoadReport> }
  | { readonly k: "scaleDown" }

/** The true cost of media relative to the cost model's, per kind (bitrate / reference). */
export const kindFactors = (scenario: Scenario): KindFactors => {
  const ref = scenario.referenceBitrateKbps
  return ref === undefined
    ? { audio: 1, video: 1 }
    : { audio: scenario.bitratesKbps.audio / ref, video: scenario.bitratesKbps.video / ref }
}

export interface EngineOptions {
  readonly seed?: number
  readonly onProgress?: (fraction: number) => void
}

export class Engine {
  readonly loop: EventLoop<Item>
  readonly cluster: SimCluster
  readonly workload: Workload
  readonly metrics: MetricsRecorder
  private readonly seed: number
  private policy: SimPolicy | undefined

  constructor(
    readonly scenario: Scenario,
    clock: VirtualClock,
    private readonly engineOptions: EngineOptions = {}
  ) {
    this.seed = engineOptions.seed ?? scenario.seed
    this.loop = new EventLoop<Item>(clock, scenario.durationSeconds * 1000)
    this.cluster = new SimCluster(scenario.policy, kindFactors(scenario), clock)
    this.workload = new Workload(scenario, this.cluster, this.loop, new Prng(this.seed))
    this.metrics = new MetricsRecorder(scenario, this.cluster, this.workload.demand)
  }

  run(policy: SimPolicy): SimResult {
    const s = this.scenario
    const loop = this.loop
    this.cluster.policyName = policy.name
    this.workload.playAgainst(policy)
    this.policy = policy
    const wall0 = performance.now()
    for (let i = 0; i < s.nodes.count; i++) this.cluster.addNode(s.nodes.cpus)
    this.workload.scheduleRooms()
    const interval = s.reportIntervalSeconds * 1000
    const every = s.scaleDownIntervalSeconds * 1000
    loop.schedule(interval, { k: "report" })
    loop.schedule(every, { k: "scaleDown" })
    this.workload.scheduleFailures()
    loop.run((item) => {
      switch (item.k) {
        case "report":
          this.report()
          loop.repeat(interval, item)
          break
        case "deliver":
          this.cluster.applyLoadReports(item.reports)
          this.relocate(policy)
          break
        case "scaleDown":
          policy.tick(loop.now)
          loop.repeat(every, item)
          break
        default:
          this.workload.handle(item)
      }
    }, this.engineOptions.onProgress)
    // The end, unless the last tick fell on it.
    if (loop.now > this.metrics.lastSampleAt) this.report()
    this.metrics.finish(loop.now)
    this.engineOptions.onProgress?.(1)
    const wallSeconds = (performance.now() - wall0) / 1000
    return this.metrics.result({ policy: policy.name, seed: this.seed, wallSeconds, counts: this.workload })
  }

  /** Samples the Workers; their loads reach the policy now or `reportDelaySeconds` later. */
  private report(): void {
    const now = this.loop.now
    const reports = this.metrics.sample(now)
    const delay = this.scenario.reportDelaySeconds
    if (delay === 0) {
      this.cluster.applyLoadReports(reports)
      if (this.policy !== undefined) this.relocate(this.policy)
    } else if (reports.length > 0) this.loop.schedule(now + delay * 1000, { k: "deliver", reports })
  }

  /** The policy's moves, if it relocates, carried out by the workload. */
  private relocate(policy: SimPolicy): void {
    if (policy.relocate === undefined) return
    const moves = policy.relocate(this.loop.now)
    if (moves.length > 0) this.workload.relocate(moves)
  }
}
