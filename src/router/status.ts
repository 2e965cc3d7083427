/**
 * The cluster as plain JSON-able data: per Worker its Routers, consumers and load, and per
 * producer its stream tree and pipes.
 *
 * @module
 */
import { HashMap, HashSet } from "effect"
import { type ClusterSnapshot, effectiveLoad, lookup } from "../core/Snapshot.js"

export interface WorkerStatus {
  readonly id: string
  readonly pid: number | undefined
  readonly settings: string
  /** Last reported CPU % plus what has been placed since. */
  readonly load: number
  readonly reportedLoad: number
  readonly routers: ReadonlyArray<string>
  readonly transports: number
  readonly consumers: number
  readonly producers: number
}

export interface PipeStatus {
  readonly producer: string
  readonly from: string
  readonly to: string
}

export interface TreeHopStatus {
  readonly router: string
  readonly worker: string | undefined
  readonly parent: string | null
  readonly depth: number
  readonly consumers: number
}

export interface ClusterStatus {
  readonly node: string
  readonly workers: ReadonlyArray<WorkerStatus>
  readonly trees: ReadonlyArray<{ readonly producer: string; readonly hops: ReadonlyArray<TreeHopStatus> }>
  readonly pipes: ReadonlyArray<PipeStatus>
}

export const clusterStatus = (
  snapshot: ClusterSnapshot,
  node: string,
  pidOf: (worker: string) => number | undefined
): ClusterStatus => {
  const perWorker = new Map<string, { transports: number; consumers: number; producers: number }>()
  for (const t of HashMap.values(snapshot.transports)) {
    const worker = lookup(snapshot.routers, t.router)?.worker
    if (worker === undefined) continue
    const counts = perWorker.get(worker) ?? { transports: 0, consumers: 0, producers: 0 }
    counts.transports++
    counts.consumers += HashSet.size(t.consumers)
    counts.producers += HashSet.size(t.producers)
    perWorker.set(worker, counts)
  }
  const workers: Array<WorkerStatus> = Array.from(HashMap.values(snapshot.workers))
    .sort((a, b) => (a.id < b.id ? -1 : 1))
    .map((w) => {
      const counts = perWorker.get(w.id) ?? { transports: 0, consumers: 0, producers: 0 }
      return {
        id: w.id,
        pid: pidOf(w.id),
        settings: w.settings,
        load: Math.round(effectiveLoad(w) * 100) / 100,
        reportedLoad: Math.round(w.load * 100) / 100,
        routers: w.routers.map((r) => r.id),
        ...counts
      }
    })
  const trees: Array<{ producer: string; hops: Array<TreeHopStatus> }> = []
  const pipes: Array<PipeStatus> = []
  for (const [producer, tree] of snapshot.trees) {
    const hops = Array.from(HashMap.values(tree))
      .sort((a, b) => a.depth - b.depth || (a.router < b.router ? -1 : 1))
      .map((hop) => ({
        router: hop.router,
        worker: lookup(snapshot.routers, hop.router)?.worker,
        parent: hop.parent,
        depth: hop.depth,
        consumers: hop.consumers
      }))
    trees.push({ producer, hops })
    for (const hop of hops)
      if (hop.parent !== null) pipes.push({ producer, from: hop.parent, to: hop.router })
  }
  return { node, workers, trees, pipes }
}
