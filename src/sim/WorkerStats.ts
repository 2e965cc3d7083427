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
import type { ProducerId, WorkerId } from "../core/Ids.js"
import { type Costs, kindCosts } from "../core/PolicyOptions.js"
import {
  type ClusterRouter,
  type ClusterSnapshot,
  type ClusterWorker,
  lookup,
  type MediaKind,
  type StreamTree
} from "../core/Snapshot.js"

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

/**
 * What one Router carries: counts, and the terms of its media and pipe load in the order a
 * count walks them (`carried`, in the set's order), so that summing them over a Worker's
 * Routers adds the same numbers in the same order as a count of the whole Worker.
 */
export interface RouterCount {
  readonly transports: number
  readonly producers: number
  readonly consumers: number
  readonly pipesIn: number
  readonly pipesOut: number
  readonly carried: number
  /** Non-zero terms of the media load (producers, consumers), in order. */
  readonly media: ReadonlyArray<number>
  /** Non-zero terms of the pipe load (pipes in, pipes out), in order. */
  readonly pipes: ReadonlyArray<number>
}

/** Sums the counts of a Worker's Routers into `into` (see `countRouterCached`). */
const sumWorker = (
  snapshot: ClusterSnapshot,
  worker: ClusterWorker,
  costs: Costs,
  count: (router: ClusterRouter) => RouterCount,
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
    const rc = count(router)
    transports += rc.transports
    producers += rc.producers
    consumers += rc.consumers
    pipesIn += rc.pipesIn
    pipesOut += rc.pipesOut
    carried += rc.carried
    for (const x of rc.media) media += x
    for (const x of rc.pipes) pipeLoad += x
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

/**
 * A producer a Router carries, as a count last saw it: its stream tree (the snapshot's
 * record) and, while that record is the same, the producer's kind (or undefined when the
 * snapshot had no such producer). `applyEvent` creates and removes a producer and its tree
 * together, and a producer's kind never changes, so an unchanged tree record means an
 * unchanged producer.
 */
interface CarriedEntry {
  readonly id: ProducerId
  tree: StreamTree | undefined
  kind: MediaKind | undefined
}

/**
 * Counts a Router over its carried producers' entries (in the set's order), keeping in each
 * what does not change between two counts: the producer's kind, while its tree record is the
 * same (`WorkerStatsCache` keeps the entries per set record: the same record iterates the
 * same way).
 */
const countRouterCached = (
  snapshot: ClusterSnapshot,
  router: ClusterRouter,
  entries: ReadonlyArray<CarriedEntry>,
  costs: Costs,
  factors: KindFactors
): RouterCount => {
  const rid = router.id
  let producers = 0
  let consumers = 0
  let pipesIn = 0
  let pipesOut = 0
  let carried = 0
  const media: Array<number> = []
  const pipes: Array<number> = []
  for (const entry of entries) {
    carried++
    const tree = lookup(snapshot.trees, entry.id)
    if (tree !== entry.tree) {
      entry.tree = tree
      entry.kind = lookup(snapshot.producers, entry.id)?.kind
    }
    const kind = entry.kind
    const hop = tree === undefined ? undefined : lookup(tree, rid)
    if (kind === undefined || hop === undefined) continue
    const f = factors[kind]
    const c = kindCosts(costs, kind)
    // Adding a zero (+0 or -0) changes no sum that starts at +0 (it is never -0): left out.
    if (hop.parent === null) {
      producers++
      const x = c.producer * f
      if (x !== 0) media.push(x)
    } else {
      pipesIn++
      const x = c.pipe * f
      if (x !== 0) pipes.push(x)
    }
    consumers += hop.consumers
    const xc = hop.consumers * c.consumer * f
    if (xc !== 0) media.push(xc)
    pipesOut += hop.children
    const xp = hop.children * c.pipe * f
    if (xp !== 0) pipes.push(xp)
  }
  return {
    transports: HashSet.size(router.transports),
    producers,
    consumers,
    pipesIn,
    pipesOut,
    carried,
    media,
    pipes
  }
}

/**
 * A cache of `WorkerStat` per Worker, recounted when the Worker's record changed; and of
 * `RouterCount` per Router record, so that recounting a Worker only walks the Routers that
 * changed. A Router's record is replaced whenever what a count reads of it changes: its
 * transports and carried producers are in it, and every change of a hop's consumers or
 * pipes on it also changes the room's share there (`rooms`, see the core's `applyEvent`).
 * A Router's carried set, walked once per set record, is kept as a list of entries, one
 * per producer shared by every list it is in (see `countRouterCached`).
 */
export class WorkerStatsCache {
  private readonly cache = new Map<WorkerId, WorkerStat>()
  private readonly routers = new WeakMap<ClusterRouter, RouterCount>()
  private readonly carried = new WeakMap<HashSet.HashSet<ProducerId>, ReadonlyArray<CarriedEntry>>()
  /** One entry per producer, shared by the lists of every Router that carries it. */
  private readonly producers = new Map<ProducerId, CarriedEntry>()

  private entry(id: ProducerId): CarriedEntry {
    let entry = this.producers.get(id)
    if (entry === undefined) {
      entry = { id, tree: undefined, kind: undefined }
      this.producers.set(id, entry)
    }
    return entry
  }

  constructor(
    private readonly costs: Costs,
    private readonly factors: KindFactors
  ) {}

  get(snapshot: ClusterSnapshot, worker: ClusterWorker): WorkerStat {
    let stat = this.cache.get(worker.id)
    if (stat === undefined) {
      stat = this.count(snapshot, worker, {
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
      this.count(snapshot, worker, stat)
    }
    return stat
  }

  private count(snapshot: ClusterSnapshot, worker: ClusterWorker, into: WorkerStat): WorkerStat {
    return sumWorker(
      snapshot,
      worker,
      this.costs,
      (router) => {
        let rc = this.routers.get(router)
        if (rc === undefined) {
          let entries = this.carried.get(router.carried)
          if (entries === undefined) {
            entries = Array.from(router.carried, (id) => this.entry(id))
            this.carried.set(router.carried, entries)
          }
          rc = countRouterCached(snapshot, router, entries, this.costs, this.factors)
          this.routers.set(router, rc)
        }
        return rc
      },
      into
    )
  }

  /** The Worker's record changed without a change of what it carries (a load report). */
  rebase(worker: ClusterWorker): void {
    const stat = this.cache.get(worker.id)
    if (stat !== undefined) stat.ref = worker
  }

  /** Forgets Workers that are gone (and, now and then, producers that are). */
  prune(snapshot: ClusterSnapshot): void {
    for (const id of this.cache.keys()) if (!HashMap.has(snapshot.workers, id)) this.cache.delete(id)
    if (this.producers.size > 2 * HashMap.size(snapshot.producers) + 1024) {
      for (const id of this.producers.keys())
        if (!HashMap.has(snapshot.producers, id)) this.producers.delete(id)
    }
  }
}
