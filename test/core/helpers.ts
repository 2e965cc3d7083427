/**
 * Shared test helpers for the functional core: id and event builders, snapshot building,
 * a canonical (order-independent) form of snapshots, effective loads, and the structural
 * and index invariants every snapshot produced by `applyEvent` must satisfy.
 */
import { Chunk, Either, HashMap, HashSet } from "effect"
import {
  applyEvent,
  type ClusterEvent,
  type ClusterSnapshot,
  ConsumerId,
  type Costs,
  decodeSnapshot,
  defaultPolicyOptions,
  effectiveLoad,
  emptySnapshot,
  encodeSnapshot,
  type InvalidEvent,
  lookup,
  MafaldaRouterId,
  NodeId,
  nodesWithSpareCpu,
  type PolicyOptions,
  ProducerId,
  RouterId,
  RtpObserverId,
  SettingsKey,
  sumReservations,
  TransportId,
  type TransportKind,
  WorkerId,
  workersUnder
} from "../../src/core/index.js"

// --- Ids -----------------------------------------------------------------------------

export const nid = (s: string): NodeId => NodeId.make(s)
export const wid = (s: string): WorkerId => WorkerId.make(s)
export const rid = (s: string): RouterId => RouterId.make(s)
export const mid = (s: string): MafaldaRouterId => MafaldaRouterId.make(s)
export const tid = (s: string): TransportId => TransportId.make(s)
export const pid = (s: string): ProducerId => ProducerId.make(s)
export const cid = (s: string): ConsumerId => ConsumerId.make(s)

/** Two sets of worker settings and two of router settings. */
export const WS = SettingsKey.make("ws-default")
export const WS2 = SettingsKey.make("ws-other")
export const RS = SettingsKey.make("rs-default")
export const RS2 = SettingsKey.make("rs-other")

// --- Events ----------------------------------------------------------------------------

export const ev = {
  nodeUp: (node: string, cpus = 4, at = 0, maxWorkerProcesses?: number): ClusterEvent => ({
    _tag: "NodeUp",
    node: nid(node),
    cpus,
    ...(maxWorkerProcesses === undefined ? {} : { maxWorkerProcesses }),
    address: `${node}.local`,
    at
  }),
  nodeDraining: (node: string, at = 0): ClusterEvent => ({ _tag: "NodeDraining", node: nid(node), at }),
  nodeDown: (node: string, at = 0): ClusterEvent => ({ _tag: "NodeDown", node: nid(node), at }),
  nodeLeft: (node: string, at = 0): ClusterEvent => ({ _tag: "NodeLeft", node: nid(node), at }),
  workerStarted: (worker: string, node: string, settings: SettingsKey = WS, at = 0): ClusterEvent => ({
    _tag: "WorkerStarted",
    worker: wid(worker),
    node: nid(node),
    settings,
    at
  }),
  workerDied: (worker: string, at = 0): ClusterEvent => ({ _tag: "WorkerDied", worker: wid(worker), at }),
  workerClosed: (worker: string, at = 0): ClusterEvent => ({ _tag: "WorkerClosed", worker: wid(worker), at }),
  load: (worker: string, load: number, at = 0): ClusterEvent => ({
    _tag: "LoadReported",
    worker: wid(worker),
    load,
    at
  }),
  routerCreated: (router: string, worker: string, settings: SettingsKey = RS, at = 0): ClusterEvent => ({
    _tag: "RouterCreated",
    router: rid(router),
    worker: wid(worker),
    settings,
    at
  }),
  routerClosed: (router: string, at = 0): ClusterEvent => ({ _tag: "RouterClosed", router: rid(router), at }),
  mafaldaRouter: (
    mafaldaRouter: string,
    workerSettings: SettingsKey = WS,
    routerSettings: SettingsKey = RS,
    at = 0
  ): ClusterEvent => ({
    _tag: "MafaldaRouterCreated",
    mafaldaRouter: mid(mafaldaRouter),
    workerSettings,
    routerSettings,
    at
  }),
  mafaldaRouterClosed: (mafaldaRouter: string, at = 0): ClusterEvent => ({
    _tag: "MafaldaRouterClosed",
    mafaldaRouter: mid(mafaldaRouter),
    at
  }),
  registered: (mafaldaRouter: string, router: string, at = 0): ClusterEvent => ({
    _tag: "RouterRegistered",
    mafaldaRouter: mid(mafaldaRouter),
    router: rid(router),
    at
  }),
  transport: (
    transport: string,
    router: string,
    mafaldaRouter: string,
    at = 0,
    kind: TransportKind = "webrtc"
  ): ClusterEvent => ({
    _tag: "TransportCreated",
    transport: tid(transport),
    kind,
    router: rid(router),
    mafaldaRouter: mid(mafaldaRouter),
    at
  }),
  transportClosed: (transport: string, at = 0): ClusterEvent => ({
    _tag: "TransportClosed",
    transport: tid(transport),
    at
  }),
  producer: (
    producer: string,
    transport: string,
    at = 0,
    kind: "audio" | "video" = "video"
  ): ClusterEvent => ({
    _tag: "ProducerCreated",
    producer: pid(producer),
    kind,
    transport: tid(transport),
    at
  }),
  producerClosed: (producer: string, at = 0): ClusterEvent => ({
    _tag: "ProducerClosed",
    producer: pid(producer),
    at
  }),
  consumer: (consumer: string, producer: string, transport: string, at = 0): ClusterEvent => ({
    _tag: "ConsumerCreated",
    consumer: cid(consumer),
    producer: pid(producer),
    transport: tid(transport),
    at
  }),
  consumerClosed: (consumer: string, at = 0): ClusterEvent => ({
    _tag: "ConsumerClosed",
    consumer: cid(consumer),
    at
  }),
  pipe: (producer: string, from: string, to: string, at = 0, pinned?: boolean): ClusterEvent => ({
    _tag: "PipeCreated",
    producer: pid(producer),
    from: rid(from),
    to: rid(to),
    ...(pinned === undefined ? {} : { pinned }),
    at
  }),
  observer: (observer: string, router: string, at = 0): ClusterEvent => ({
    _tag: "RtpObserverCreated",
    observer: RtpObserverId.make(observer),
    router: rid(router),
    at
  }),
  observerClosed: (observer: string, router: string, at = 0): ClusterEvent => ({
    _tag: "RtpObserverClosed",
    observer: RtpObserverId.make(observer),
    router: rid(router),
    at
  }),
  pipeClosed: (producer: string, to: string, at = 0): ClusterEvent => ({
    _tag: "PipeClosed",
    producer: pid(producer),
    to: rid(to),
    at
  })
}

/** A Worker with a Router of the default settings: `w` on `node`, Router `r`. */
export const workerWithRouter = (
  worker: string,
  router: string,
  node: string,
  settings: { readonly worker?: SettingsKey; readonly router?: SettingsKey } = {},
  at = 0
): Array<ClusterEvent> => [
  ev.workerStarted(worker, node, settings.worker ?? WS, at),
  ev.routerCreated(router, worker, settings.router ?? RS, at)
]

// --- Applying ----------------------------------------------------------------------------

export const costs0: Costs = defaultPolicyOptions.costs

/** Applies events in order; throws with the reason if one is invalid. */
export const apply = (
  snapshot: ClusterSnapshot,
  events: ClusterEvent | ReadonlyArray<ClusterEvent>,
  costs: Costs = costs0
): ClusterSnapshot => {
  let s = snapshot
  for (const e of Array.isArray(events) ? events : [events as ClusterEvent]) {
    const r = applyEvent(s, e, costs)
    if (Either.isLeft(r)) throw new Error(`unexpected InvalidEvent: ${r.left.message}`)
    s = r.right
  }
  return s
}

/** Decodes an encoded snapshot (e.g. parsed JSON); throws with the parse error if it is not one. */
export const decodeOrThrow = (u: unknown): ClusterSnapshot => {
  const r = decodeSnapshot(u)
  if (r._tag === "Left") throw new Error(`not a snapshot: ${r.left.message}`)
  return r.right
}

/** The snapshot through encodeSnapshot, JSON text, and back. */
export const throughJson = (s: ClusterSnapshot): ClusterSnapshot =>
  decodeOrThrow(JSON.parse(JSON.stringify(encodeSnapshot(s))))

export const build = (events: ReadonlyArray<ClusterEvent>, costs: Costs = costs0): ClusterSnapshot =>
  apply(emptySnapshot, events, costs)

/** Applies one event that must be invalid, and returns the error. */
export const applyInvalid = (
  snapshot: ClusterSnapshot,
  event: ClusterEvent,
  costs: Costs = costs0
): InvalidEvent => {
  const r = applyEvent(snapshot, event, costs)
  if (Either.isRight(r)) throw new Error(`expected ${event._tag} to be invalid`)
  return r.left
}

// --- Reading -------------------------------------------------------------------------------

export const get = <K, V>(map: HashMap.HashMap<K, V>, key: K): V => {
  const v = lookup(map, key)
  if (v === undefined) throw new Error(`missing ${String(key)}`)
  return v
}

/**
 * The ids in an index collection, whether the core keeps it as a HashSet or an array of
 * ids, or as an array of entries with an `id` (e.g. a Worker's Routers with their settings).
 */
export const idsOf = <A extends string>(collection: Iterable<A | { readonly id: A }>): Array<A> => {
  const out: Array<A> = []
  for (const x of collection) out.push(typeof x === "string" ? x : x.id)
  return out
}
export const count = (collection: Iterable<unknown>): number => {
  let n = 0
  for (const _ of collection) n++
  return n
}
export const contains = <A extends string>(collection: Iterable<A | { readonly id: A }>, id: A): boolean => {
  for (const x of collection) if ((typeof x === "string" ? x : x.id) === id) return true
  return false
}

export const sortedIds = <A extends string>(collection: Iterable<A | { readonly id: A }>): Array<A> =>
  idsOf(collection).sort()

export const keysOf = <K extends string, V>(map: HashMap.HashMap<K, V>): Array<K> =>
  [...HashMap.keys(map)].sort()

/** Every Worker's effective load, by id. */
export const loads = (s: ClusterSnapshot): Record<string, number> => {
  const out: Record<string, number> = {}
  for (const w of HashMap.values(s.workers)) out[w.id] = effectiveLoad(w)
  return out
}

export const loadOf = (s: ClusterSnapshot, worker: string): number =>
  effectiveLoad(get(s.workers, wid(worker)))

/** Differences larger than `eps` between two load tables (missing Workers count). */
export const loadDiffs = (
  a: Record<string, number>,
  b: Record<string, number>,
  eps = 1e-9
): Array<string> => {
  const out: Array<string> = []
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const x = a[k]
    const y = b[k]
    if (x === undefined || y === undefined || Math.abs(x - y) > eps) out.push(`${k}: ${x} vs ${y}`)
  }
  return out
}

/** The data fields of a snapshot (anything else on it is a derived index). */
export const dataFields = [
  "nodes",
  "workers",
  "routers",
  "mafaldaRouters",
  "transports",
  "producers",
  "consumers",
  "trees"
] as const

/**
 * A canonical plain form of a snapshot's data: HashMaps become arrays of entries sorted by
 * key, HashSets sorted arrays, Chunks arrays, objects keep their fields. Iteration order of
 * HashMaps and HashSets is an implementation detail, so two snapshots with the same
 * content have deeply equal canonical forms. Derived indexes are left out.
 */
export const canonical = (s: ClusterSnapshot): unknown => {
  const out: Record<string, unknown> = {}
  for (const k of dataFields) out[k] = plain(s[k])
  return out
}

const plain = (x: unknown): unknown => {
  if (HashMap.isHashMap(x)) {
    return [...(x as HashMap.HashMap<unknown, unknown>)]
      .map(([k, v]) => [k, plain(v)] as const)
      .sort((a, b) => compareKeys(a[0], b[0]))
  }
  if (HashSet.isHashSet(x)) return [...(x as HashSet.HashSet<unknown>)].sort(compareKeys)
  if (Chunk.isChunk(x)) return Chunk.toReadonlyArray(x as Chunk.Chunk<unknown>).map(plain)
  // Arrays of ids (or of entries with an id) are sets too: the core may keep an index as an array.
  if (Array.isArray(x)) {
    const items = x.map(plain)
    const idOf = (i: unknown) => (typeof i === "string" ? i : (i as { id?: unknown } | null)?.id)
    return items.every((i) => typeof idOf(i) === "string")
      ? items.sort((a, b) => compareKeys(idOf(a), idOf(b)))
      : items
  }
  if (x !== null && typeof x === "object") {
    const out: Record<string, unknown> = {}
    for (const k of Object.keys(x).sort()) out[k] = plain((x as Record<string, unknown>)[k])
    return out
  }
  return x
}

const compareKeys = (a: unknown, b: unknown): number => {
  const x = String(a)
  const y = String(b)
  return x < y ? -1 : x > y ? 1 : 0
}

// --- Invariants --------------------------------------------------------------------------

const sameSet = (a: Iterable<string>, b: Iterable<string>): boolean => {
  const x = [...a].sort()
  const y = [...b].sort()
  return x.length === y.length && x.every((v, i) => v === y[i])
}

/**
 * Checks the structural and index invariants of a snapshot; returns the violations (empty
 * when the snapshot is consistent).
 */
export const invariantViolations = (s: ClusterSnapshot, options: PolicyOptions): Array<string> => {
  const out: Array<string> = []
  const bad = (m: string) => out.push(m)

  // Nodes <-> Workers
  for (const [id, n] of s.nodes) {
    if (n.id !== id) bad(`node key ${id} holds ${n.id}`)
    if (n.state === "down" && count(n.workers) > 0) bad(`down node ${id} has workers`)
    for (const w of idsOf(n.workers)) {
      const worker = lookup(s.workers, w)
      if (worker === undefined) bad(`node ${id} lists missing worker ${w}`)
      else if (worker.node !== id) bad(`node ${id} lists worker ${w} of node ${worker.node}`)
    }
  }
  for (const [id, w] of s.workers) {
    if (w.id !== id) bad(`worker key ${id} holds ${w.id}`)
    if (!w.alive) bad(`dead worker ${id} kept`)
    const n = lookup(s.nodes, w.node)
    if (n === undefined || !contains(n.workers, id)) bad(`worker ${id} not indexed by node ${w.node}`)
    if (Math.abs(w.reserved - sumReservations(w.reservations)) > 1e-9)
      bad(`worker ${id} reserved out of sync`)
    for (const r of w.reservations)
      if (r.at < w.reportedAt) bad(`worker ${id} keeps a reservation at ${r.at} < report ${w.reportedAt}`)
    if ((w.idleSince === null) !== count(w.routers) > 0) bad(`worker ${id} idleSince out of sync`)
    const settings = new Set<string>()
    for (const entry of w.routers as Iterable<unknown>) {
      // An entry may carry the Router's settings along with its id: they must agree.
      const e = entry as string | { readonly id: RouterId; readonly settings?: unknown }
      const r = typeof e === "string" ? (e as RouterId) : e.id
      const router = lookup(s.routers, r)
      if (typeof e !== "string" && "settings" in e && router !== undefined && e.settings !== router.settings)
        bad(`worker ${id} lists router ${r} with settings ${String(e.settings)}, it has ${router.settings}`)
      if (router === undefined) bad(`worker ${id} lists missing router ${r}`)
      else {
        if (router.worker !== id) bad(`worker ${id} lists router ${r} of worker ${router.worker}`)
        if (settings.has(router.settings))
          bad(`worker ${id} has two routers with settings ${router.settings}`)
        settings.add(router.settings)
      }
    }
  }

  // Routers
  const carriedBy = new Map<string, Array<string>>()
  for (const [p, tree] of s.trees)
    for (const r of HashMap.keys(tree)) carriedBy.set(r, [...(carriedBy.get(r) ?? []), p])
  for (const [id, r] of s.routers) {
    if (r.id !== id) bad(`router key ${id} holds ${r.id}`)
    const w = lookup(s.workers, r.worker)
    if (w === undefined || !contains(w.routers, id)) bad(`router ${id} not indexed by worker ${r.worker}`)
    for (const t of r.transports) {
      const transport = lookup(s.transports, t)
      if (transport === undefined || transport.router !== id) bad(`router ${id} lists transport ${t} wrongly`)
    }
    for (const m of r.mafaldaRouters) {
      const mr = lookup(s.mafaldaRouters, m)
      if (mr === undefined || !contains(mr.routers, id)) bad(`router ${id} lists Mafalda Router ${m} wrongly`)
    }
    const carried = carriedBy.get(id) ?? []
    if (!sameSet(r.carried, carried))
      bad(`router ${id} carried ${sortedIds(r.carried)} but trees say ${carried}`)
    // RTP observers keep a Router busy too, when the core tracks them.
    const observers = (r as { readonly observers?: Iterable<unknown> }).observers ?? []
    const idle = count(r.transports) === 0 && count(r.carried) === 0 && count(observers) === 0
    if ((r.idleSince !== null) !== idle) bad(`router ${id} idleSince out of sync`)
  }

  // Mafalda Routers
  for (const [id, m] of s.mafaldaRouters) {
    for (const r of idsOf(m.routers)) {
      const router = lookup(s.routers, r)
      if (router === undefined) bad(`Mafalda Router ${id} lists missing router ${r}`)
      else {
        if (!contains(router.mafaldaRouters, id)) bad(`Mafalda Router ${id} / router ${r} not mutual`)
        if (router.settings !== m.routerSettings)
          bad(`Mafalda Router ${id} uses router ${r} of other settings`)
        if (lookup(s.workers, router.worker)?.settings !== m.workerSettings)
          bad(`Mafalda Router ${id} uses router ${r} on a worker of other settings`)
      }
    }
  }

  // Transports
  for (const [id, t] of s.transports) {
    const router = lookup(s.routers, t.router)
    if (router === undefined || !contains(router.transports, id)) bad(`transport ${id} not indexed by router`)
    const m = lookup(s.mafaldaRouters, t.mafaldaRouter)
    if (m === undefined || !contains(m.routers, t.router))
      bad(`transport ${id} on a router its Mafalda Router ${t.mafaldaRouter} does not use`)
    for (const p of t.producers)
      if (lookup(s.producers, p)?.transport !== id) bad(`transport ${id} lists producer ${p} wrongly`)
    for (const c of t.consumers)
      if (lookup(s.consumers, c)?.transport !== id) bad(`transport ${id} lists consumer ${c} wrongly`)
  }

  // Producers
  for (const [id, p] of s.producers) {
    const t = lookup(s.transports, p.transport)
    if (t === undefined || !contains(t.producers, id)) bad(`producer ${id} not indexed by its transport`)
    else {
      if (t.router !== p.origin) bad(`producer ${id} origin ${p.origin} is not its transport's router`)
      if (t.mafaldaRouter !== p.mafaldaRouter) bad(`producer ${id} Mafalda Router mismatch`)
    }
    if (!HashMap.has(s.trees, id)) bad(`producer ${id} has no tree`)
  }

  // Consumers
  const consumersAt = new Map<string, number>()
  for (const [id, c] of s.consumers) {
    const t = lookup(s.transports, c.transport)
    if (t === undefined || !contains(t.consumers, id)) bad(`consumer ${id} not indexed by its transport`)
    else if (t.router !== c.router) bad(`consumer ${id} router ${c.router} is not its transport's`)
    if (!HashMap.has(s.producers, c.producer)) bad(`consumer ${id} of missing producer ${c.producer}`)
    const tree = lookup(s.trees, c.producer)
    if (tree === undefined || !HashMap.has(tree, c.router))
      bad(`consumer ${id} on a router without its producer`)
    const key = `${c.producer}|${c.router}`
    consumersAt.set(key, (consumersAt.get(key) ?? 0) + 1)
  }

  // Trees
  for (const [p, tree] of s.trees) {
    const producer = lookup(s.producers, p)
    if (producer === undefined) {
      bad(`tree of missing producer ${p}`)
      continue
    }
    const origin = lookup(tree, producer.origin)
    if (origin === undefined || origin.parent !== null || origin.depth !== 0)
      bad(`tree of ${p}: origin hop missing or not a root at depth 0`)
    const children = new Map<string, number>()
    for (const [r, hop] of tree) {
      if (hop.router !== r) bad(`tree of ${p}: key ${r} holds hop ${hop.router}`)
      if (!HashMap.has(s.routers, r)) bad(`tree of ${p}: hop on missing router ${r}`)
      if (hop.depth > options.maxTreeDepth) bad(`tree of ${p}: hop ${r} at depth ${hop.depth}`)
      if (hop.parent === null) {
        if (r !== producer.origin) bad(`tree of ${p}: second root ${r}`)
      } else {
        const parent = lookup(tree, hop.parent)
        if (parent === undefined) bad(`tree of ${p}: hop ${r} has missing parent ${hop.parent}`)
        else if (hop.depth !== parent.depth + 1)
          bad(`tree of ${p}: hop ${r} depth ${hop.depth} != parent + 1`)
        children.set(hop.parent, (children.get(hop.parent) ?? 0) + 1)
        // Following parents must reach the origin (no cycle).
        let cur = hop
        let steps = 0
        while (cur.parent !== null && steps <= HashMap.size(tree)) {
          const next = lookup(tree, cur.parent)
          if (next === undefined) break
          cur = next
          steps++
        }
        if (cur.router !== producer.origin) bad(`tree of ${p}: hop ${r} does not lead to the origin`)
      }
      const consumers = consumersAt.get(`${p}|${r}`) ?? 0
      if (hop.consumers !== consumers)
        bad(`tree of ${p}: hop ${r} counts ${hop.consumers} consumers, has ${consumers}`)
    }
    for (const [r, hop] of tree) {
      const n = children.get(r) ?? 0
      if (hop.children !== n) bad(`tree of ${p}: hop ${r} counts ${hop.children} children, has ${n}`)
      // A pinned hop (a pipe the application asked for) is never idle, when the core has them.
      const pinned = (hop as { readonly pinned?: boolean }).pinned === true
      const idle = hop.parent !== null && !pinned && hop.consumers === 0 && hop.children === 0
      if ((hop.idleSince !== null) !== idle) bad(`tree of ${p}: hop ${r} idleSince out of sync`)
    }
  }
  return out
}

/**
 * Checks the `hopConsumers` index against a recomputation from the snapshot's consumers:
 * the same consumers under each (producer, Router), and no empty entry left behind.
 */
export const hopConsumerViolations = (s: ClusterSnapshot): Array<string> => {
  const out: Array<string> = []
  const expected = new Map<string, Array<string>>()
  for (const c of HashMap.values(s.consumers)) {
    const key = `${c.producer}|${c.router}`
    expected.set(key, [...(expected.get(key) ?? []), c.id])
  }
  const actual = new Map<string, Array<string>>()
  for (const [p, byRouter] of s.hopConsumers) {
    if (HashMap.size(byRouter) === 0) out.push(`hopConsumers: empty entry for producer ${p}`)
    for (const [r, ids] of byRouter) {
      if (HashSet.size(ids) === 0) out.push(`hopConsumers: empty set for ${p} on ${r}`)
      actual.set(`${p}|${r}`, [...ids])
    }
  }
  const flat = (m: Map<string, Array<string>>) =>
    [...m.entries()].map(([k, ids]) => `${k}:${[...ids].sort().join(",")}`).sort()
  const [a, e] = [flat(actual), flat(expected)]
  if (a.join(";") !== e.join(";")) out.push(`hopConsumers = [${a}], data says [${e}]`)
  return out
}

/**
 * Checks the snapshot's derived indexes against its data: `workersUnder` must list the live
 * Workers of each set of settings under the watermark, busiest first (ties: smaller id),
 * `nodesWithSpareCpu` the up Nodes running fewer Workers than CPUs, fullest first (ties:
 * smaller id), and `hopConsumers` the consumers of each producer on each Router. Returns the
 * differences.
 */
export const indexViolations = (s: ClusterSnapshot, watermark: number): Array<string> => {
  const out: Array<string> = [...hopConsumerViolations(s)]
  const byId = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)
  const settings = new Set([...HashMap.values(s.workers)].map((w) => w.settings))
  for (const key of settings) {
    const expected = [...HashMap.values(s.workers)]
      .filter((w) => w.alive && w.settings === key && effectiveLoad(w) < watermark)
      .sort((a, b) => effectiveLoad(b) - effectiveLoad(a) || byId(a.id, b.id))
      .map((w) => w.id)
    const actual = [...workersUnder(s, key, watermark)].map((w) => w.id)
    if (actual.join() !== expected.join())
      out.push(`workersUnder(${key}, ${watermark}) = [${actual}], data says [${expected}]`)
  }
  const spare = [...HashMap.values(s.nodes)]
    .filter(
      (n) =>
        n.state === "up" &&
        count(n.workers) < n.cpus &&
        (n.maxWorkerProcesses === undefined || count(n.workers) < n.maxWorkerProcesses)
    )
    .sort((a, b) => count(b.workers) / b.cpus - count(a.workers) / a.cpus || byId(a.id, b.id))
    .map((n) => n.id)
  const actual = [...nodesWithSpareCpu(s)].map((n) => n.id)
  if (actual.join() !== spare.join()) out.push(`nodesWithSpareCpu = [${actual}], data says [${spare}]`)
  return out
}
