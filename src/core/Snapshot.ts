/**
 * The immutable cluster snapshot: everything the placement policy knows about Nodes,
 * Workers, Routers, Mafalda Routers, transports, producers, consumers and the stream
 * trees that pipe each producer from its origin Router to the Routers consuming it.
 *
 * Collections are Effect's persistent `HashMap`/`HashSet`, so applying an event returns a
 * new snapshot that shares almost everything with the old one, and the old one is never
 * touched. A few fields are indexes kept in step by `applyEvent` (a Node's Workers, a
 * Worker's Routers, a Router's transports, hop counters) so that decisions never scan the
 * whole cluster.
 */
import {
  type Chunk,
  Either,
  Equal,
  Hash,
  HashMap,
  HashSet,
  Option,
  type Order,
  RedBlackTree,
  Schema
} from "effect"
import {
  ConsumerId,
  MafaldaRouterId,
  NodeId,
  ProducerId,
  RouterId,
  RtpObserverId,
  SettingsKey,
  TransportId,
  WorkerId
} from "./Ids.js"

/** `up` takes new work; `draining` keeps what it has and takes nothing new; `down` has nothing. */
export const NodeState = Schema.Literal("up", "draining", "down")
export type NodeState = typeof NodeState.Type

export const ClusterNode = Schema.Struct({
  id: NodeId,
  cpus: Schema.Int.pipe(Schema.positive()),
  /**
   * The most Worker processes the Node runs, whatever their settings (its
   * `maxWorkerProcesses`); absent: no cap but one Worker per CPU and set of settings.
   */
  maxWorkerProcesses: Schema.optional(Schema.Int.pipe(Schema.positive())),
  state: NodeState,
  /** Where other Nodes and clients reach it (host or URL); informative for the core. */
  address: Schema.String,
  /** Index: the Workers on this Node (a few; a plain array is fastest to walk). */
  workers: Schema.Array(WorkerId)
})
export type ClusterNode = typeof ClusterNode.Type

/** A placement decided but not yet visible in a load report: `cost` CPU % charged at `at`. */
export const Reservation = Schema.Struct({ at: Schema.Number, cost: Schema.Number })
export type Reservation = typeof Reservation.Type

export const ClusterWorker = Schema.Struct({
  id: WorkerId,
  node: NodeId,
  settings: SettingsKey,
  /** CPU % in the last load report. */
  load: Schema.Number,
  /** When the last load report was sampled (milliseconds on the cluster's clock). */
  reportedAt: Schema.Number,
  /** `false` once the Worker is known dead; a dead Worker is dropped with everything on it. */
  alive: Schema.Boolean,
  /** Placements since the last report, and their sum. */
  reservations: Schema.Chunk(Reservation),
  reserved: Schema.Number,
  /** What the cost model says the things on this Worker cost now (CPU %). */
  modeled: Schema.Number,
  /**
   * Measured over modeled load at the last report that had enough modeled load to tell
   * (1 until then): how much the cost model under- or over-estimates this Worker's media.
   * Reservations and projected growth are scaled by it.
   */
  ratio: Schema.Number,
  /** Since when the Worker has had no Router, or null while it has one. */
  idleSince: Schema.NullOr(Schema.Number),
  /** Index: the Routers on this Worker, with their settings (one Router per set of settings). */
  routers: Schema.Array(Schema.Struct({ id: RouterId, settings: SettingsKey }))
})
export type ClusterWorker = typeof ClusterWorker.Type

/** A count per media kind. */
export const KindCounts = Schema.Struct({ audio: Schema.Int, video: Schema.Int })
export type KindCounts = typeof KindCounts.Type
export const noKindCounts: KindCounts = { audio: 0, video: 0 }

/**
 * What one Mafalda Router (a room) has on one Router: what its growth on that Router is
 * projected from (see `projection.ts`). Consumers count under the room of their transport;
 * producers, and pipes of them, under the room of the producer.
 */
export const RoomShare = Schema.Struct({
  /** Transports of the room on this Router. */
  transports: Schema.Int,
  /** Producers of the room created on this Router (their stream trees' origin). */
  origins: KindCounts,
  /** Consumers on the room's transports here, by the kind of what they consume. */
  consumers: KindCounts,
  /** Producers of the room piped into this Router. */
  pipedIn: KindCounts,
  /** Pipes out of this Router of producers of the room. */
  pipedOut: KindCounts
})
export type RoomShare = typeof RoomShare.Type
export const emptyRoomShare: RoomShare = {
  transports: 0,
  origins: noKindCounts,
  consumers: noKindCounts,
  pipedIn: noKindCounts,
  pipedOut: noKindCounts
}

export const ClusterRouter = Schema.Struct({
  id: RouterId,
  worker: WorkerId,
  settings: SettingsKey,
  /** The Mafalda Routers that use this Router (M:N). */
  mafaldaRouters: Schema.HashSet(MafaldaRouterId),
  /** Index: the transports on this Router. */
  transports: Schema.HashSet(TransportId),
  /** The producers this Router carries (as origin or through a pipe). */
  carried: Schema.HashSet(ProducerId),
  /** The RTP observers on this Router. */
  observers: Schema.HashSet(RtpObserverId),
  /** Since when the Router has had no transport, no observer and carried nothing, or null. */
  idleSince: Schema.NullOr(Schema.Number),
  /** Index: what each room has here (rooms with nothing here have no entry). */
  rooms: Schema.HashMap({ key: MafaldaRouterId, value: RoomShare })
})
export type ClusterRouter = typeof ClusterRouter.Type

/**
 * What the application says a room will grow to, when it knows: the participants it
 * expects (its capacity, say) and how many of them publish (all, when not said).
 */
export const RoomHint = Schema.Struct({
  participants: Schema.Int.pipe(Schema.positive()),
  publishers: Schema.NullOr(Schema.Int.pipe(Schema.nonNegative()))
})
export type RoomHint = typeof RoomHint.Type

/** A room's size: transports, those that publish, and live producers by kind. */
export const RoomSize = Schema.Struct({ transports: Schema.Int, publishers: Schema.Int, media: KindCounts })
export type RoomSize = typeof RoomSize.Type
export const emptyRoomSize: RoomSize = { transports: 0, publishers: 0, media: noKindCounts }

export const MafaldaRouter = Schema.Struct({
  id: MafaldaRouterId,
  workerSettings: SettingsKey,
  routerSettings: SettingsKey,
  /** The underlying Routers this Mafalda Router has registered. */
  routers: Schema.HashSet(RouterId),
  /** How many live producers were made on its transports. */
  producers: Schema.Int,
  /** The room's size now. */
  size: RoomSize,
  /**
   * The room's recent high: the largest size seen since it last shrank for longer than the
   * hold time (see `applyEvent`), so that a room whose clients are reconnecting after a
   * failure is still projected at the size it had.
   */
  peak: RoomSize,
  /** When `peak` was last reached. */
  peakAt: Schema.Number,
  /** What the application said the room will grow to, if anything. */
  hint: Schema.NullOr(RoomHint)
})
export type MafaldaRouter = typeof MafaldaRouter.Type

export const TransportKind = Schema.Literal("webrtc", "plain", "pipe", "direct")
export type TransportKind = typeof TransportKind.Type

export const ClusterTransport = Schema.Struct({
  id: TransportId,
  kind: TransportKind,
  router: RouterId,
  mafaldaRouter: MafaldaRouterId,
  producers: Schema.HashSet(ProducerId),
  consumers: Schema.HashSet(ConsumerId)
})
export type ClusterTransport = typeof ClusterTransport.Type

export const MediaKind = Schema.Literal("audio", "video")
export type MediaKind = typeof MediaKind.Type

export const ClusterProducer = Schema.Struct({
  id: ProducerId,
  kind: MediaKind,
  transport: TransportId,
  /** The Router the producer was created on: the root of its stream tree. */
  origin: RouterId,
  mafaldaRouter: MafaldaRouterId
})
export type ClusterProducer = typeof ClusterProducer.Type

export const ClusterConsumer = Schema.Struct({
  id: ConsumerId,
  producer: ProducerId,
  transport: TransportId,
  router: RouterId
})
export type ClusterConsumer = typeof ClusterConsumer.Type

/**
 * One Router in a producer's stream tree. The origin has `parent: null` and depth 0; every
 * other hop is a pipe from `parent` (one level shallower) to `router`.
 */
export const TreeHop = Schema.Struct({
  router: RouterId,
  parent: Schema.NullOr(RouterId),
  depth: Schema.Int,
  /** Consumers of the producer on this Router (pipe consumers not included). */
  consumers: Schema.Int,
  /** Pipes from this Router to deeper ones. */
  children: Schema.Int,
  /** A pipe the application asked for (`pipeToRouter`): never closed for being idle. */
  pinned: Schema.Boolean,
  /** Since when the hop has had no consumer and no child, or null. */
  idleSince: Schema.NullOr(Schema.Number)
})
export type TreeHop = typeof TreeHop.Type

/** A producer's stream tree: the Routers that receive it, keyed by Router. */
export const StreamTree = Schema.HashMap({ key: RouterId, value: TreeHop })
export type StreamTree = typeof StreamTree.Type

/** The data of a snapshot: what is serialised, validated and generated. */
export const ClusterSnapshotData = Schema.Struct({
  nodes: Schema.HashMap({ key: NodeId, value: ClusterNode }),
  workers: Schema.HashMap({ key: WorkerId, value: ClusterWorker }),
  routers: Schema.HashMap({ key: RouterId, value: ClusterRouter }),
  mafaldaRouters: Schema.HashMap({ key: MafaldaRouterId, value: MafaldaRouter }),
  transports: Schema.HashMap({ key: TransportId, value: ClusterTransport }),
  producers: Schema.HashMap({ key: ProducerId, value: ClusterProducer }),
  consumers: Schema.HashMap({ key: ConsumerId, value: ClusterConsumer }),
  trees: Schema.HashMap({ key: ProducerId, value: StreamTree }),
  /** The time of the latest event applied (milliseconds on the cluster's clock). */
  now: Schema.Number
})
export type ClusterSnapshotData = typeof ClusterSnapshotData.Type

/** A Worker's place in the load index: effective load, then id. */
export type LoadKey = readonly [load: number, worker: WorkerId]
/** A Node's place in the spare-CPU index: share of its CPUs in use, then id. */
export type SpareKey = readonly [used: number, node: NodeId]

// Ascending load, and among equal loads descending id, so that walking the tree backwards
// meets the busiest Worker first and, among equals, the smallest id first. Written out, it
// is `Order.combine(Order.mapInput(Order.number, k => k[0]), Order.mapInput(Order.reverse(
// Order.string), k => k[1]))`, result for result, without the closures (every placement
// moves a Worker in this tree).
const pairOrder = <K extends readonly [number, string]>(a: K, b: K): -1 | 0 | 1 => {
  if (a === b) return 0
  const x = a[0]
  const y = b[0]
  if (x !== y) return x < y ? -1 : 1
  const i = a[1]
  const j = b[1]
  return i === j ? 0 : j < i ? -1 : 1
}
const loadOrder: Order.Order<LoadKey> = pairOrder
const spareOrder: Order.Order<SpareKey> = pairOrder

/** Index: the consumers of each producer, by the Router they are on. */
export type HopConsumers = HashMap.HashMap<ProducerId, HashMap.HashMap<RouterId, HashSet.HashSet<ConsumerId>>>

/**
 * The cluster snapshot: its data plus indexes, derived from the data and kept in step by
 * the setters below, that answer questions without scanning the cluster:
 *  - `byLoad`: for each set of worker settings, the live Workers ordered by effective load;
 *  - `spare`: the `up` Nodes that run fewer Workers than they have CPUs, by share in use;
 *  - `hopConsumers`: the consumers of each producer on each Router (only producers and
 *    Routers that have some), so that closing a hop of a stream tree finds its consumers
 *    without walking every consumer of every transport on the Router.
 */
export interface ClusterSnapshot extends ClusterSnapshotData {
  readonly byLoad: HashMap.HashMap<SettingsKey, RedBlackTree.RedBlackTree<LoadKey, WorkerId>>
  readonly spare: RedBlackTree.RedBlackTree<SpareKey, NodeId>
  readonly hopConsumers: HopConsumers
}

/** A snapshot of a cluster with nothing in it. */
export const emptySnapshot: ClusterSnapshot = {
  nodes: HashMap.empty(),
  workers: HashMap.empty(),
  routers: HashMap.empty(),
  mafaldaRouters: HashMap.empty(),
  transports: HashMap.empty(),
  producers: HashMap.empty(),
  consumers: HashMap.empty(),
  trees: HashMap.empty(),
  now: 0,
  byLoad: HashMap.empty(),
  spare: RedBlackTree.empty(spareOrder),
  hopConsumers: HashMap.empty()
}

// --- Setters that keep the indexes in step -------------------------------------------

// The trees find an entry to remove by `Equal.equals` on keys, so keys are compared by value:
// two pairs are equal when both their parts are (`===`, as for a `Data.tuple`). They are never
// put in a hashed collection, so all share one hash, and equality costs two comparisons where
// a `Data.tuple` hashes both of its parts first.
const pairProto = {
  [Equal.symbol](this: readonly [unknown, unknown], that: unknown): boolean {
    return (
      typeof that === "object" &&
      that !== null &&
      Equal.symbol in that &&
      (that as { readonly [Equal.symbol]: unknown })[Equal.symbol] === pairProto[Equal.symbol] &&
      this[0] === (that as readonly [unknown, unknown])[0] &&
      this[1] === (that as readonly [unknown, unknown])[1]
    )
  },
  [Hash.symbol](): number {
    return 0
  }
}
const pair = <K extends readonly [number, string]>(first: K[0], second: K[1]): K => {
  const key = Object.create(pairProto) as { 0: K[0]; 1: K[1]; length: 2 }
  key[0] = first
  key[1] = second
  key.length = 2
  return key as unknown as K
}
const loadKey = (w: ClusterWorker): LoadKey => pair<LoadKey>(w.load + w.reserved, w.id)
const spareKey = (n: ClusterNode): SpareKey => pair<SpareKey>(n.workers.length / n.cpus, n.id)
const hasSpare = (n: ClusterNode): boolean =>
  n.state === "up" && n.workers.length < n.cpus && underProcessCap(n)

/** Whether Node `n` may start one more Worker process as far as its cap on them goes. */
export const underProcessCap = (n: ClusterNode): boolean =>
  n.maxWorkerProcesses === undefined || n.workers.length < n.maxWorkerProcesses

const updateLoadTree = (
  s: ClusterSnapshot,
  settings: SettingsKey,
  f: (t: RedBlackTree.RedBlackTree<LoadKey, WorkerId>) => RedBlackTree.RedBlackTree<LoadKey, WorkerId>
): ClusterSnapshot["byLoad"] => {
  const tree = Option.getOrElse(HashMap.get(s.byLoad, settings), () =>
    RedBlackTree.empty<LoadKey, WorkerId>(loadOrder)
  )
  const next = f(tree)
  return RedBlackTree.size(next) === 0
    ? HashMap.remove(s.byLoad, settings)
    : HashMap.set(s.byLoad, settings, next)
}

/** Adds or replaces a Worker. */
export const setWorker = (s: ClusterSnapshot, w: ClusterWorker): ClusterSnapshot =>
  replaceWorker(s, Option.getOrUndefined(HashMap.get(s.workers, w.id)), w)

/**
 * `setWorker` when the caller has the Worker's current record at hand: `old` must be what
 * `s.workers` holds under `w.id` (undefined when nothing).
 */
export const replaceWorker = (
  s: ClusterSnapshot,
  old: ClusterWorker | undefined,
  w: ClusterWorker
): ClusterSnapshot => {
  const workers = HashMap.set(s.workers, w.id, w)
  if (old !== undefined && old.alive === w.alive && old.load + old.reserved === w.load + w.reserved) {
    return { ...s, workers }
  }
  const byLoad = updateLoadTree(s, w.settings, (t) => {
    const without = old === undefined || !old.alive ? t : RedBlackTree.removeFirst(t, loadKey(old))
    return w.alive ? RedBlackTree.insert(without, loadKey(w), w.id) : without
  })
  return { ...s, workers, byLoad }
}

/** Removes a Worker (not the things on it). */
export const deleteWorker = (s: ClusterSnapshot, id: WorkerId): ClusterSnapshot => {
  const old = Option.getOrUndefined(HashMap.get(s.workers, id))
  if (old === undefined) return s
  const byLoad = old.alive
    ? updateLoadTree(s, old.settings, (t) => RedBlackTree.removeFirst(t, loadKey(old)))
    : s.byLoad
  return { ...s, workers: HashMap.remove(s.workers, id), byLoad }
}

/** Adds, replaces or (with `undefined`) removes a Node. */
export const setNode = (s: ClusterSnapshot, id: NodeId, n: ClusterNode | undefined): ClusterSnapshot => {
  const old = Option.getOrUndefined(HashMap.get(s.nodes, id))
  let spare = s.spare
  if (old !== undefined && hasSpare(old)) spare = RedBlackTree.removeFirst(spare, spareKey(old))
  if (n !== undefined && hasSpare(n)) spare = RedBlackTree.insert(spare, spareKey(n), n.id)
  return { ...s, nodes: n === undefined ? HashMap.remove(s.nodes, id) : HashMap.set(s.nodes, id, n), spare }
}

/** Adds consumer `c` to the `hopConsumers` index, or (`add` false) removes it. */
const indexConsumer = (index: HopConsumers, c: ClusterConsumer, add: boolean): HopConsumers => {
  const byRouter = Option.getOrElse(HashMap.get(index, c.producer), () =>
    HashMap.empty<RouterId, HashSet.HashSet<ConsumerId>>()
  )
  const here = Option.getOrElse(HashMap.get(byRouter, c.router), () => HashSet.empty<ConsumerId>())
  const next = add ? HashSet.add(here, c.id) : HashSet.remove(here, c.id)
  const routers =
    HashSet.size(next) === 0 ? HashMap.remove(byRouter, c.router) : HashMap.set(byRouter, c.router, next)
  return HashMap.size(routers) === 0
    ? HashMap.remove(index, c.producer)
    : HashMap.set(index, c.producer, routers)
}

/** Adds a consumer (a new id). */
export const addConsumer = (s: ClusterSnapshot, c: ClusterConsumer): ClusterSnapshot => ({
  ...s,
  consumers: HashMap.set(s.consumers, c.id, c),
  hopConsumers: indexConsumer(s.hopConsumers, c, true)
})

/** Removes a consumer (not what refers to it). */
export const deleteConsumer = (s: ClusterSnapshot, c: ClusterConsumer): ClusterSnapshot => ({
  ...s,
  consumers: HashMap.remove(s.consumers, c.id),
  hopConsumers: indexConsumer(s.hopConsumers, c, false)
})

/** The consumers of `producer` on `router` (from the `hopConsumers` index). */
export const consumersOnHop = (
  s: ClusterSnapshot,
  producer: ProducerId,
  router: RouterId
): HashSet.HashSet<ConsumerId> | undefined => {
  const byRouter = Option.getOrUndefined(HashMap.get(s.hopConsumers, producer))
  return byRouter === undefined ? undefined : Option.getOrUndefined(HashMap.get(byRouter, router))
}

/** Rebuilds the indexes of snapshot data (after decoding it). */
export const fromData = (data: ClusterSnapshotData): ClusterSnapshot => {
  let s: ClusterSnapshot = { ...emptySnapshot, ...data, nodes: HashMap.empty(), workers: HashMap.empty() }
  for (const n of HashMap.values(data.nodes)) s = setNode(s, n.id, n)
  for (const w of HashMap.values(data.workers)) s = setWorker(s, w)
  let hopConsumers = s.hopConsumers
  for (const c of HashMap.values(data.consumers)) hopConsumers = indexConsumer(hopConsumers, c, true)
  return { ...s, hopConsumers }
}

const encodeData = Schema.encodeSync(ClusterSnapshotData)
const decodeData = Schema.decodeUnknownEither(ClusterSnapshotData)

/** The JSON-safe form of a snapshot (for logs, files and the wire); indexes are left out. */
export const encodeSnapshot = (s: ClusterSnapshot): typeof ClusterSnapshotData.Encoded => {
  const { byLoad: _byLoad, spare: _spare, hopConsumers: _hopConsumers, ...data } = s
  return encodeData(data)
}
/** Validates an encoded snapshot and rebuilds its indexes. */
export const decodeSnapshot = (u: unknown) => decodeData(u).pipe(Either.map(fromData))

/**
 * The live Workers with these settings whose effective load is under `watermark`, busiest
 * first (ties: smaller id first).
 */
export function* workersUnder(
  s: ClusterSnapshot,
  settings: SettingsKey,
  watermark: number
): Generator<ClusterWorker> {
  const tree = Option.getOrUndefined(HashMap.get(s.byLoad, settings))
  if (tree === undefined) return
  for (const [key, id] of RedBlackTree.lessThanReversed(tree, [watermark, "\uffff" as WorkerId])) {
    if (key[0] >= watermark) continue
    const w = Option.getOrUndefined(HashMap.get(s.workers, id))
    if (w !== undefined) yield w
  }
}

/**
 * The `up` Nodes with a CPU not running any Worker and under their cap on Worker processes
 * (`underProcessCap`), fullest first (ties: smaller id). A Node
 * whose CPUs all run Workers of other settings may still start one of yours: see
 * `transportPlacement`, which looks at those only when this yields nothing.
 */
export function* nodesWithSpareCpu(s: ClusterSnapshot): Generator<ClusterNode> {
  for (const [, id] of RedBlackTree.reversed(s.spare)) {
    const n = Option.getOrUndefined(HashMap.get(s.nodes, id))
    if (n !== undefined) yield n
  }
}

// --- Reading -------------------------------------------------------------------------

/** The load decisions use: the last reported CPU % plus everything reserved since. */
export const effectiveLoad = (worker: ClusterWorker): number => worker.load + worker.reserved

/** Looks a thing up; `undefined` when it is not there (hot paths avoid `Option` here). */
export const lookup = <K, V>(map: HashMap.HashMap<K, V>, key: K): V | undefined =>
  Option.getOrUndefined(HashMap.get(map, key))

export const workerOfRouter = (snapshot: ClusterSnapshot, router: RouterId): ClusterWorker | undefined => {
  const r = lookup(snapshot.routers, router)
  return r === undefined ? undefined : lookup(snapshot.workers, r.worker)
}

/** The live Workers with the given settings on a Node. */
export const workersOn = (
  snapshot: ClusterSnapshot,
  node: NodeId,
  settings: SettingsKey
): Array<ClusterWorker> => {
  const n = lookup(snapshot.nodes, node)
  const out: Array<ClusterWorker> = []
  if (n === undefined) return out
  for (const id of n.workers) {
    const w = lookup(snapshot.workers, id)
    if (w?.alive && w.settings === settings) out.push(w)
  }
  return out
}

/** The id of the Router with the given settings on a Worker, if any (at most one exists). */
export const routerIdOn = (worker: ClusterWorker, settings: SettingsKey): RouterId | undefined => {
  for (const r of worker.routers) if (r.settings === settings) return r.id
  return undefined
}

/** The depth of the deepest hop of a producer's tree (0 when it is not piped anywhere). */
export const treeDepth = (tree: StreamTree): number => {
  let depth = 0
  for (const hop of HashMap.values(tree)) depth = Math.max(depth, hop.depth)
  return depth
}

/** The pipes of a producer's tree as (from, to) pairs. */
export const treePipes = (tree: StreamTree): Array<{ readonly from: RouterId; readonly to: RouterId }> => {
  const out: Array<{ from: RouterId; to: RouterId }> = []
  for (const hop of HashMap.values(tree))
    if (hop.parent !== null) out.push({ from: hop.parent, to: hop.router })
  return out
}

/** Sum of all reservations of a Worker (what `reserved` caches). */
export const sumReservations = (reservations: Chunk.Chunk<Reservation>): number => {
  let sum = 0
  for (const r of reservations) sum += r.cost
  return sum
}

/** The Mafalda Routers that use a Router on any of these Workers (sorted by id). */
export const mafaldaRoutersOnWorkers = (
  snapshot: ClusterSnapshot,
  workers: Iterable<WorkerId>
): Array<MafaldaRouterId> => {
  const out = new Set<MafaldaRouterId>()
  for (const worker of workers) {
    for (const { id } of lookup(snapshot.workers, worker)?.routers ?? []) {
      for (const m of lookup(snapshot.routers, id)?.mafaldaRouters ?? []) out.add(m)
    }
  }
  return Array.from(out).sort()
}
