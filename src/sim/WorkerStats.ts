/**
 * What a Worker actually carries, counted from the snapshot, and its "true" CPU load
 * under the cost model (each media kind at its own costs, optionally scaled by bitrate). Counting walks a
 * Worker's Routers and, for each producer a Router carries, the producer's tree hop there
 * (consumers and child pipes are counters on the hop): no per-consumer work.
 *
 * A Worker's record in the snapshot is replaced whenever anything placed on it changes
 * (every placement and removal charges a reservation to it), so results are cached by
 * object identity and recounted only for Workers that changed.
 */
import { HashMap, HashSet } from "effect"
import type { WorkerId } from "../core/Ids.js"
import { type Costs, kindCosts } from "../core/PolicyOptions.js"
import { type ClusterSnapshot, type ClusterWorker, lookup, type MediaKind } from "../core/Snapshot.js"

export interface WorkerStat {
  /** The snapshot record these figures were counted from. */
  ref: ClusterWorker
  /** True CPU % under the cost model. */
  load: number
  /** The part of `load` that is demand (transports, producers, consumers), without pipes. */
  demand: number
  transports: number
  producers: number
  consumers: number
  pipesIn: number
  pipesOut: number
  /** Carries at least one transport or producer. */
  inUse: boolean
  /** Over 100 % at the last sample (for counting overload events). */
  over: boolean
}

export type KindFactors = Readonly<Record<MediaKind, number>>

export const countWorker = (
  snapshot: ClusterSnapshot,
  worker: ClusterWorker,
  costs: Costs,
  factors: KindFactors,
  into: WorkerStat
): WorkerStat => {
  let transports = 0
  let producers = 0
  let consumers = 0
  let pipesIn = 0
  let pipesOut = 0
  let media = 0
  let pipeLoad = 0
  let carried = 0
  for (const { id: rid } of worker.routers) {
    const router = lookup(snapshot.routers, rid)
    if (router === undefined) continue
    transports += HashSet.size(router.transports)
    for (const pid of router.carried) {
      carried++
      const producer = lookup(snapshot.producers, pid)
      const tree = lookup(snapshot.trees, pid)
      const hop = tree === undefined ? undefined : lookup(tree, rid)
      if (producer === undefined || hop === undefined) continue
      const f = factors[producer.kind]
      const c = kindCosts(costs, producer.kind)
      if (hop.parent === null) {
        producers++
        media += c.producer * f
      } else {
        pipesIn++
        pipeLoad += c.pipe * f
      }
      consumers += hop.consumers
      media += hop.consumers * c.consumer * f
      pipesOut += hop.children
      pipeLoad += hop.children * c.pipe * f
    }
  }
  const demand = transports * costs.transport + media
  into.ref = worker
  into.load = demand + pipeLoad
  into.demand = demand
  into.transports = transports
  into.producers = producers
  into.consumers = consumers
  into.pipesIn = pipesIn
  into.pipesOut = pipesOut
  into.inUse = transports > 0 || carried > 0
  return into
}

/** A cache of `WorkerStat` per Worker, recounted when the Worker's record changed. */
export class WorkerStatsCache {
  private readonly cache = new Map<WorkerId, WorkerStat>()

  constructor(
    private readonly costs: Costs,
    private readonly factors: KindFactors
  ) {}

  get(snapshot: ClusterSnapshot, worker: ClusterWorker): WorkerStat {
    let stat = this.cache.get(worker.id)
    if (stat === undefined) {
      stat = countWorker(snapshot, worker, this.costs, this.factors, {
        ref: worker,
        load: 0,
        demand: 0,
        transports: 0,
        producers: 0,
        consumers: 0,
        pipesIn: 0,
        pipesOut: 0,
        inUse: false,
        over: false
      })
      this.cache.set(worker.id, stat)
    } else if (stat.ref !== worker) {
      countWorker(snapshot, worker, this.costs, this.factors, stat)
    }
    return stat
  }

  /** The Worker's record changed without a change of what it carries (a load report). */
  rebase(worker: ClusterWorker): void {
    const stat = this.cache.get(worker.id)
    if (stat !== undefined) stat.ref = worker
  }

  /** Forgets Workers that are gone. */
  prune(snapshot: ClusterSnapshot): void {
    for (const id of this.cache.keys()) if (!HashMap.has(snapshot.workers, id)) this.cache.delete(id)
  }
}
