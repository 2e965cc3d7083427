/**
 * `applyEvent(snapshot, event, costs)`: the one way a snapshot changes. Pure: it returns a
 * new snapshot (or an `InvalidEvent` error naming what is wrong) and never touches the
 * old one. Closing a thing closes what depends on it, as mediasoup does: a Router's
 * transports, a transport's producers and consumers, a producer's stream tree.
 *
 * Every placement charges its estimated cost to its Worker as a reservation, and every
 * removal charges the opposite, so the load the policy sees moves at once, without waiting
 * for the next load report (which then absorbs the reservations made before it).
 */
import { Chunk, Data, Either, HashMap, HashSet } from "effect"
import type { ClusterEvent } from "./ClusterEvent.js"
import type {
  ConsumerId,
  MafaldaRouterId,
  NodeId,
  ProducerId,
  RouterId,
  TransportId,
  WorkerId
} from "./Ids.js"
import { type Costs, kindCosts } from "./PolicyOptions.js"
import {
  addConsumer,
  type ClusterRouter,
  type ClusterSnapshot,
  type ClusterWorker,
  consumersOnHop,
  deleteConsumer,
  deleteWorker,
  emptyRoomShare,
  emptyRoomSize,
  type KindCounts,
  lookup,
  type MediaKind,
  type Reservation,
  type RoomShare,
  type RoomSize,
  replaceWorker,
  routerIdOn,
  type StreamTree,
  setNode,
  setWorker,
  sumReservations,
  type TreeHop
} from "./Snapshot.js"

/** An event that does not fit the snapshot (unknown or duplicate id, wrong settings...). */
export class InvalidEvent extends Data.TaggedError("InvalidEvent")<{
  readonly event: ClusterEvent["_tag"]
  readonly reason: string
}> {
  override get message(): string {
    return `${this.event}: ${this.reason}`
  }
}

type Result = Either.Either<ClusterSnapshot, InvalidEvent>

// --- Small immutable updates ---------------------------------------------------------

const putWorker = setWorker

const putRouter = (s: ClusterSnapshot, r: ClusterRouter): ClusterSnapshot => ({
  ...s,
  routers: HashMap.set(s.routers, r.id, r)
})

/**
 * The most reservations a Worker keeps between two load reports. A Worker that reports
 * rarely (or never: its Node is gone quiet) and places often would otherwise keep one entry
 * per placement. Past this, the two oldest are merged into one stamped with the later time:
 * a report between them then keeps the older one's cost a little longer (until the next
 * report), which errs towards a fuller Worker, never an emptier one.
 */
export const maxReservations = 16

const addReservation = (
  reservations: Chunk.Chunk<Reservation>,
  at: number,
  cost: number
): Chunk.Chunk<Reservation> => {
  const list = Chunk.toReadonlyArray(reservations)
  const last = list[list.length - 1]
  // Same time as the last one: one entry, exactly the same sums and the same absorption.
  if (last !== undefined && last.at === at) {
    return Chunk.unsafeFromArray([...list.slice(0, -1), { at, cost: last.cost + cost }])
  }
  if (list.length < maxReservations) return Chunk.append(reservations, { at, cost })
  const [first, second] = [list[0]!, list[1]!]
  return Chunk.unsafeFromArray([
    { at: second.at, cost: first.cost + second.cost },
    ...list.slice(2),
    { at, cost }
  ])
}

/**
 * Charges `cost` CPU % (the cost model's figure; negative when something is removed) to a
 * Worker now: its modeled load and its effective load move by `cost`.
 */
const reserve = (s: ClusterSnapshot, worker: WorkerId, cost: number, at: number): ClusterSnapshot => {
  const w = lookup(s.workers, worker)
  if (w === undefined || cost === 0) return s
  return replaceWorker(s, w, {
    ...w,
    modeled: w.modeled + cost,
    reservations: addReservation(w.reservations, at, cost),
    reserved: w.reserved + cost
  })
}

/** Below this modeled load (CPU %), a report says too little about the model to rescale it. */
export const minModeledForRatio = 5
/** The most the measured load of a Worker is taken to differ from the model, either way. */
export const maxModelRatio = 4

/**
 * How long a room's recent high (`peak`) holds after it was last reached: long enough for
 * the clients of a failed Worker or Node to reconnect.
 */
export const peakHoldMillis = 60_000

// --- Rooms: their size, and their share of each Router --------------------------------

const addCounts = (a: KindCounts, kind: MediaKind, delta: number): KindCounts =>
  kind === "audio" ? { audio: a.audio + delta, video: a.video } : { audio: a.audio, video: a.video + delta }

const shareIsEmpty = (x: RoomShare): boolean =>
  x.transports === 0 &&
  x.origins.audio + x.origins.video === 0 &&
  x.consumers.audio + x.consumers.video === 0 &&
  x.pipedIn.audio + x.pipedIn.video === 0 &&
  x.pipedOut.audio + x.pipedOut.video === 0

/** Changes what room `room` has on Router `router`. */
const updateShare = (
  s: ClusterSnapshot,
  router: RouterId,
  room: MafaldaRouterId,
  f: (share: RoomShare) => RoomShare
): ClusterSnapshot => updateShareOf(s, lookup(s.routers, router), room, f)

/** `updateShare` when the caller has the Router's current record at hand (`s.routers` holds `r`). */
const updateShareOf = (
  s: ClusterSnapshot,
  r: ClusterRouter | undefined,
  room: MafaldaRouterId,
  f: (share: RoomShare) => RoomShare
): ClusterSnapshot => {
  if (r === undefined) return s
  const next = f(lookup(r.rooms, room) ?? emptyRoomShare)
  const rooms = shareIsEmpty(next) ? HashMap.remove(r.rooms, room) : HashMap.set(r.rooms, room, next)
  return putRouter(s, { ...r, rooms })
}

/** Changes a room's size, keeping its recent high (`peak`) up to date. */
const resize = (
  s: ClusterSnapshot,
  room: MafaldaRouterId,
  f: (size: RoomSize) => RoomSize,
  at: number
): ClusterSnapshot => {
  const m = lookup(s.mafaldaRouters, room)
  if (m === undefined) return s
  const size = f(m.size)
  // A high older than the hold time no longer counts: the room restarts from its size now.
  const held = at - m.peakAt <= peakHoldMillis ? m.peak : size
  const reached =
    size.transports >= held.transports &&
    size.publishers >= held.publishers &&
    size.media.audio >= held.media.audio &&
    size.media.video >= held.media.video
  const peak = {
    transports: Math.max(held.transports, size.transports),
    publishers: Math.max(held.publishers, size.publishers),
    media: {
      audio: Math.max(held.media.audio, size.media.audio),
      video: Math.max(held.media.video, size.media.video)
    }
  }
  const peakAt = reached || held === size ? at : m.peakAt
  return { ...s, mafaldaRouters: HashMap.set(s.mafaldaRouters, room, { ...m, size, peak, peakAt }) }
}

const reserveOnRouter = (s: ClusterSnapshot, router: RouterId, cost: number, at: number): ClusterSnapshot => {
  const r = lookup(s.routers, router)
  return r === undefined ? s : reserve(s, r.worker, cost, at)
}

const routerIdle = (r: ClusterRouter, at: number): ClusterRouter => {
  const idle =
    HashSet.size(r.transports) === 0 && HashSet.size(r.carried) === 0 && HashSet.size(r.observers) === 0
  if (idle) return r.idleSince === null ? { ...r, idleSince: at } : r
  return r.idleSince === null ? r : { ...r, idleSince: null }
}

const updateRouter = (
  s: ClusterSnapshot,
  id: RouterId,
  f: (r: ClusterRouter) => ClusterRouter,
  at: number
): ClusterSnapshot => {
  const r = lookup(s.routers, id)
  return r === undefined ? s : putRouter(s, routerIdle(f(r), at))
}

const hopIdle = (hop: TreeHop, at: number): TreeHop => {
  const idle = hop.parent !== null && !hop.pinned && hop.consumers === 0 && hop.children === 0
  if (idle) return hop.idleSince === null ? { ...hop, idleSince: at } : hop
  return hop.idleSince === null ? hop : { ...hop, idleSince: null }
}

const updateHop = (
  s: ClusterSnapshot,
  producer: ProducerId,
  router: RouterId,
  f: (hop: TreeHop) => TreeHop,
  at: number
): ClusterSnapshot => {
  const tree = lookup(s.trees, producer)
  const hop = tree === undefined ? undefined : lookup(tree, router)
  if (tree === undefined || hop === undefined) return s
  return { ...s, trees: HashMap.set(s.trees, producer, HashMap.set(tree, router, hopIdle(f(hop), at))) }
}

const countProducer = (s: ClusterSnapshot, id: MafaldaRouterId, delta: number): ClusterSnapshot => {
  const m = lookup(s.mafaldaRouters, id)
  if (m === undefined) return s
  return { ...s, mafaldaRouters: HashMap.set(s.mafaldaRouters, id, { ...m, producers: m.producers + delta }) }
}

// --- Removals, which cascade -----------------------------------------------------------

const removeConsumer = (s: ClusterSnapshot, id: ConsumerId, costs: Costs, at: number): ClusterSnapshot => {
  const c = lookup(s.consumers, id)
  if (c === undefined) return s
  const kind = lookup(s.producers, c.producer)?.kind ?? "video"
  let next: ClusterSnapshot = deleteConsumer(s, c)
  // The consumer's Router: the same record until `updateShareOf` replaces it, and the same
  // Worker after (what `reserveOnRouter` would look up at the end).
  const r = lookup(next.routers, c.router)
  const t = lookup(next.transports, c.transport)
  if (t !== undefined) {
    next = {
      ...next,
      transports: HashMap.set(next.transports, t.id, { ...t, consumers: HashSet.remove(t.consumers, id) })
    }
    next = updateShareOf(next, r, t.mafaldaRouter, (x) => ({
      ...x,
      consumers: addCounts(x.consumers, kind, -1)
    }))
  }
  next = updateHop(next, c.producer, c.router, (h) => ({ ...h, consumers: h.consumers - 1 }), at)
  return r === undefined ? next : reserve(next, r.worker, -kindCosts(costs, kind).consumer, at)
}

/** The consumers of `producer` on `router` (the snapshot's `hopConsumers` index). */
const consumersOf = (s: ClusterSnapshot, producer: ProducerId, router: RouterId): Iterable<ConsumerId> =>
  consumersOnHop(s, producer, router) ?? []

/** Removes a non-origin hop of a tree: its subtree first, its consumers, then the pipe into it. */
const removeHop = (
  s: ClusterSnapshot,
  producer: ProducerId,
  router: RouterId,
  costs: Costs,
  at: number
): ClusterSnapshot => {
  const tree = lookup(s.trees, producer)
  const hop = tree === undefined ? undefined : lookup(tree, router)
  if (tree === undefined || hop === undefined || hop.parent === null) return s
  let next = s
  for (const child of HashMap.values(tree)) {
    if (child.parent === router) next = removeHop(next, producer, child.router, costs, at)
  }
  for (const cid of consumersOf(next, producer, router)) next = removeConsumer(next, cid, costs, at)
  const current = lookup(next.trees, producer)
  if (current === undefined) return next
  next = { ...next, trees: HashMap.set(next.trees, producer, HashMap.remove(current, router)) }
  next = updateHop(next, producer, hop.parent, (h) => ({ ...h, children: h.children - 1 }), at)
  next = updateRouter(next, router, (r) => ({ ...r, carried: HashSet.remove(r.carried, producer) }), at)
  const p = lookup(next.producers, producer)
  const kind = p?.kind ?? "video"
  if (p !== undefined) {
    next = updateShare(next, router, p.mafaldaRouter, (x) => ({
      ...x,
      pipedIn: addCounts(x.pipedIn, kind, -1)
    }))
    next = updateShare(next, hop.parent, p.mafaldaRouter, (x) => ({
      ...x,
      pipedOut: addCounts(x.pipedOut, kind, -1)
    }))
  }
  const pipe = kindCosts(costs, kind).pipe
  next = reserveOnRouter(next, hop.parent, -pipe, at)
  return reserveOnRouter(next, router, -pipe, at)
}

const removeProducer = (s: ClusterSnapshot, id: ProducerId, costs: Costs, at: number): ClusterSnapshot => {
  const p = lookup(s.producers, id)
  if (p === undefined) return s
  let next = s
  const tree = lookup(next.trees, id)
  if (tree !== undefined) {
    for (const hop of HashMap.values(tree)) {
      if (hop.parent === p.origin) next = removeHop(next, id, hop.router, costs, at)
    }
  }
  for (const cid of consumersOf(next, id, p.origin)) next = removeConsumer(next, cid, costs, at)
  next = { ...next, producers: HashMap.remove(next.producers, id), trees: HashMap.remove(next.trees, id) }
  next = countProducer(next, p.mafaldaRouter, -1)
  const t = lookup(next.transports, p.transport)
  let stopsPublishing = false
  if (t !== undefined) {
    const producers = HashSet.remove(t.producers, id)
    stopsPublishing = HashSet.size(producers) === 0 && HashSet.size(t.producers) > 0
    next = { ...next, transports: HashMap.set(next.transports, t.id, { ...t, producers }) }
  }
  next = resize(
    next,
    p.mafaldaRouter,
    (z) => ({
      ...z,
      publishers: z.publishers - (stopsPublishing ? 1 : 0),
      media: addCounts(z.media, p.kind, -1)
    }),
    at
  )
  next = updateShare(next, p.origin, p.mafaldaRouter, (x) => ({
    ...x,
    origins: addCounts(x.origins, p.kind, -1)
  }))
  next = updateRouter(next, p.origin, (r) => ({ ...r, carried: HashSet.remove(r.carried, id) }), at)
  return reserveOnRouter(next, p.origin, -kindCosts(costs, p.kind).producer, at)
}

const removeTransport = (s: ClusterSnapshot, id: TransportId, costs: Costs, at: number): ClusterSnapshot => {
  const t = lookup(s.transports, id)
  if (t === undefined) return s
  let next = s
  for (const cid of t.consumers) next = removeConsumer(next, cid, costs, at)
  for (const pid of t.producers) next = removeProducer(next, pid, costs, at)
  next = { ...next, transports: HashMap.remove(next.transports, id) }
  next = updateShare(next, t.router, t.mafaldaRouter, (x) => ({ ...x, transports: x.transports - 1 }))
  next = resize(next, t.mafaldaRouter, (z) => ({ ...z, transports: z.transports - 1 }), at)
  next = updateRouter(next, t.router, (r) => ({ ...r, transports: HashSet.remove(r.transports, id) }), at)
  return reserveOnRouter(next, t.router, -costs.transport, at)
}

const removeRouter = (s: ClusterSnapshot, id: RouterId, costs: Costs, at: number): ClusterSnapshot => {
  const r = lookup(s.routers, id)
  if (r === undefined) return s
  let next = s
  for (const tid of r.transports) next = removeTransport(next, tid, costs, at)
  // What is left is piped in from elsewhere: close those pipes (and what hangs below them).
  for (const pid of lookup(next.routers, id)?.carried ?? HashSet.empty<ProducerId>()) {
    next = removeHop(next, pid, id, costs, at)
  }
  let mafaldaRouters = next.mafaldaRouters
  for (const mid of r.mafaldaRouters) {
    const m = lookup(mafaldaRouters, mid)
    if (m !== undefined)
      mafaldaRouters = HashMap.set(mafaldaRouters, mid, { ...m, routers: HashSet.remove(m.routers, id) })
  }
  next = { ...next, mafaldaRouters, routers: HashMap.remove(next.routers, id) }
  const w = lookup(next.workers, r.worker)
  if (w === undefined) return next
  const routers = w.routers.filter((r) => r.id !== id)
  return putWorker(next, { ...w, routers, idleSince: routers.length === 0 ? at : null })
}

const removeWorker = (s: ClusterSnapshot, id: WorkerId, costs: Costs, at: number): ClusterSnapshot => {
  const w = lookup(s.workers, id)
  if (w === undefined) return s
  let next = s
  for (const r of w.routers) next = removeRouter(next, r.id, costs, at)
  next = deleteWorker(next, id)
  const n = lookup(next.nodes, w.node)
  if (n === undefined) return next
  return setNode(next, n.id, { ...n, workers: n.workers.filter((x) => x !== id) })
}

const removeWorkersOf = (s: ClusterSnapshot, node: NodeId, costs: Costs, at: number): ClusterSnapshot => {
  let next = s
  for (const wid of lookup(s.nodes, node)?.workers ?? []) {
    next = removeWorker(next, wid, costs, at)
  }
  return next
}

const removeMafaldaRouter = (
  s: ClusterSnapshot,
  id: MafaldaRouterId,
  costs: Costs,
  at: number
): ClusterSnapshot => {
  const m = lookup(s.mafaldaRouters, id)
  if (m === undefined) return s
  let next = s
  for (const rid of m.routers) {
    for (const tid of lookup(next.routers, rid)?.transports ?? HashSet.empty<TransportId>()) {
      if (lookup(next.transports, tid)?.mafaldaRouter === id) next = removeTransport(next, tid, costs, at)
    }
    next = updateRouter(
      next,
      rid,
      (r) => ({ ...r, mafaldaRouters: HashSet.remove(r.mafaldaRouters, id) }),
      at
    )
  }
  return { ...next, mafaldaRouters: HashMap.remove(next.mafaldaRouters, id) }
}

// --- The event dispatcher -------------------------------------------------------------

const ok = Either.right
const invalid = (event: ClusterEvent, reason: string): Result =>
  Either.left(new InvalidEvent({ event: event._tag, reason }))

/** Registers a Router with a Mafalda Router after checking that their settings match. */
const register = (
  s: ClusterSnapshot,
  event: ClusterEvent,
  mafaldaRouter: MafaldaRouterId,
  router: RouterId,
  at: number
): Result => {
  const m = lookup(s.mafaldaRouters, mafaldaRouter)
  const r = lookup(s.routers, router)
  if (m === undefined) return invalid(event, `unknown Mafalda Router ${mafaldaRouter}`)
  if (r === undefined) return invalid(event, `unknown Router ${router}`)
  if (HashSet.has(m.routers, router)) return ok(s)
  const w = lookup(s.workers, r.worker)
  if (r.settings !== m.routerSettings || w?.settings !== m.workerSettings) {
    return invalid(event, `Router ${router} has other settings than Mafalda Router ${mafaldaRouter}`)
  }
  const next: ClusterSnapshot = {
    ...s,
    mafaldaRouters: HashMap.set(s.mafaldaRouters, m.id, { ...m, routers: HashSet.add(m.routers, router) })
  }
  return ok(
    updateRouter(next, router, (x) => ({ ...x, mafaldaRouters: HashSet.add(x.mafaldaRouters, m.id) }), at)
  )
}

const newHop = (
  router: RouterId,
  parent: RouterId | null,
  depth: number,
  pinned: boolean,
  at: number
): TreeHop => ({
  router,
  parent,
  depth,
  consumers: 0,
  children: 0,
  pinned,
  idleSince: parent === null || pinned ? null : at
})

export const applyEvent = (snapshot: ClusterSnapshot, event: ClusterEvent, costs: Costs): Result => {
  const result = applyAt(snapshot, event, costs)
  if (Either.isLeft(result) || result.right.now >= event.at) return result
  return Either.right({ ...result.right, now: event.at })
}

const applyAt = (snapshot: ClusterSnapshot, event: ClusterEvent, costs: Costs): Result => {
  const s = snapshot
  const at = event.at
  switch (event._tag) {
    case "NodeUp": {
      const n = lookup(s.nodes, event.node)
      const node = {
        id: event.node,
        cpus: event.cpus,
        ...(event.maxWorkerProcesses === undefined ? {} : { maxWorkerProcesses: event.maxWorkerProcesses }),
        address: event.address,
        state: "up" as const,
        workers: n?.workers ?? []
      }
      return ok(setNode(s, event.node, node))
    }
    case "NodeDraining": {
      const n = lookup(s.nodes, event.node)
      if (n === undefined) return invalid(event, `unknown Node ${event.node}`)
      return ok(setNode(s, n.id, { ...n, state: "draining" as const }))
    }
    case "NodeDown": {
      const n = lookup(s.nodes, event.node)
      if (n === undefined) return invalid(event, `unknown Node ${event.node}`)
      const next = removeWorkersOf(s, n.id, costs, at)
      return ok(setNode(next, n.id, { ...n, state: "down" as const, workers: [] }))
    }
    case "NodeLeft": {
      if (!HashMap.has(s.nodes, event.node)) return invalid(event, `unknown Node ${event.node}`)
      const next = removeWorkersOf(s, event.node, costs, at)
      return ok(setNode(next, event.node, undefined))
    }
    case "WorkerStarted": {
      const n = lookup(s.nodes, event.node)
      if (n === undefined) return invalid(event, `unknown Node ${event.node}`)
      if (HashMap.has(s.workers, event.worker)) return invalid(event, `Worker ${event.worker} exists already`)
      if (n.state === "down") return invalid(event, `Node ${event.node} is down`)
      const worker: ClusterWorker = {
        id: event.worker,
        node: event.node,
        settings: event.settings,
        load: 0,
        reportedAt: at,
        alive: true,
        reservations: Chunk.empty(),
        reserved: 0,
        modeled: 0,
        ratio: 1,
        idleSince: at,
        routers: []
      }
      return ok(setNode(putWorker(s, worker), n.id, { ...n, workers: [...n.workers, event.worker] }))
    }
    case "WorkerDied":
    case "WorkerClosed":
      if (!HashMap.has(s.workers, event.worker)) return invalid(event, `unknown Worker ${event.worker}`)
      return ok(removeWorker(s, event.worker, costs, at))
    case "LoadReported": {
      const w = lookup(s.workers, event.worker)
      if (w === undefined) return invalid(event, `unknown Worker ${event.worker}`)
      if (at < w.reportedAt) return ok(s) // an older report than the one we have: nothing new
      const reservations = Chunk.filter(w.reservations, (r) => r.at > at)
      const reserved = sumReservations(reservations)
      // What the model said at the time of the report: later reservations are not in it.
      const modeledThen = w.modeled - reserved
      const ratio =
        modeledThen >= minModeledForRatio
          ? Math.min(maxModelRatio, Math.max(1 / maxModelRatio, event.load / modeledThen))
          : w.ratio
      return ok(putWorker(s, { ...w, load: event.load, reportedAt: at, reservations, reserved, ratio }))
    }
    case "RouterCreated": {
      const w = lookup(s.workers, event.worker)
      if (w === undefined) return invalid(event, `unknown Worker ${event.worker}`)
      if (HashMap.has(s.routers, event.router)) return invalid(event, `Router ${event.router} exists already`)
      const existing = routerIdOn(w, event.settings)
      if (existing !== undefined) {
        return invalid(event, `Worker ${w.id} already has Router ${existing} with these settings`)
      }
      const router: ClusterRouter = {
        id: event.router,
        worker: w.id,
        settings: event.settings,
        mafaldaRouters: HashSet.empty(),
        transports: HashSet.empty(),
        carried: HashSet.empty(),
        observers: HashSet.empty(),
        idleSince: at,
        rooms: HashMap.empty()
      }
      return ok(
        putWorker(putRouter(s, router), {
          ...w,
          routers: [...w.routers, { id: router.id, settings: router.settings }],
          idleSince: null
        })
      )
    }
    case "RouterClosed":
      if (!HashMap.has(s.routers, event.router)) return invalid(event, `unknown Router ${event.router}`)
      return ok(removeRouter(s, event.router, costs, at))
    case "MafaldaRouterCreated": {
      if (HashMap.has(s.mafaldaRouters, event.mafaldaRouter)) {
        return invalid(event, `Mafalda Router ${event.mafaldaRouter} exists already`)
      }
      const m = {
        id: event.mafaldaRouter,
        workerSettings: event.workerSettings,
        routerSettings: event.routerSettings,
        routers: HashSet.empty<RouterId>(),
        producers: 0,
        size: emptyRoomSize,
        peak: emptyRoomSize,
        peakAt: at,
        hint: event.hint ?? null
      }
      return ok({ ...s, mafaldaRouters: HashMap.set(s.mafaldaRouters, m.id, m) })
    }
    case "MafaldaRouterClosed":
      if (!HashMap.has(s.mafaldaRouters, event.mafaldaRouter)) {
        return invalid(event, `unknown Mafalda Router ${event.mafaldaRouter}`)
      }
      return ok(removeMafaldaRouter(s, event.mafaldaRouter, costs, at))
    case "RouterRegistered":
      return register(s, event, event.mafaldaRouter, event.router, at)
    case "TransportCreated": {
      if (HashMap.has(s.transports, event.transport))
        return invalid(event, `Transport ${event.transport} exists already`)
      return Either.map(register(s, event, event.mafaldaRouter, event.router, at), (next) => {
        const transport = {
          id: event.transport,
          kind: event.kind,
          router: event.router,
          mafaldaRouter: event.mafaldaRouter,
          producers: HashSet.empty<ProducerId>(),
          consumers: HashSet.empty<ConsumerId>()
        }
        const withTransport = { ...next, transports: HashMap.set(next.transports, transport.id, transport) }
        let placed = updateRouter(
          withTransport,
          event.router,
          (r) => ({ ...r, transports: HashSet.add(r.transports, transport.id) }),
          at
        )
        placed = updateShare(placed, event.router, event.mafaldaRouter, (x) => ({
          ...x,
          transports: x.transports + 1
        }))
        placed = resize(placed, event.mafaldaRouter, (z) => ({ ...z, transports: z.transports + 1 }), at)
        return reserveOnRouter(placed, event.router, costs.transport, at)
      })
    }
    case "TransportClosed":
      if (!HashMap.has(s.transports, event.transport))
        return invalid(event, `unknown Transport ${event.transport}`)
      return ok(removeTransport(s, event.transport, costs, at))
    case "ProducerCreated": {
      const t = lookup(s.transports, event.transport)
      if (t === undefined) return invalid(event, `unknown Transport ${event.transport}`)
      if (HashMap.has(s.producers, event.producer))
        return invalid(event, `Producer ${event.producer} exists already`)
      const producer = {
        id: event.producer,
        kind: event.kind,
        transport: t.id,
        origin: t.router,
        mafaldaRouter: t.mafaldaRouter
      }
      const tree: StreamTree = HashMap.make([t.router, newHop(t.router, null, 0, false, at)])
      let next: ClusterSnapshot = {
        ...s,
        producers: HashMap.set(s.producers, producer.id, producer),
        trees: HashMap.set(s.trees, producer.id, tree),
        transports: HashMap.set(s.transports, t.id, {
          ...t,
          producers: HashSet.add(t.producers, producer.id)
        })
      }
      next = updateRouter(next, t.router, (r) => ({ ...r, carried: HashSet.add(r.carried, producer.id) }), at)
      next = countProducer(next, t.mafaldaRouter, 1)
      const startsPublishing = HashSet.size(t.producers) === 0
      next = resize(
        next,
        t.mafaldaRouter,
        (z) => ({
          ...z,
          publishers: z.publishers + (startsPublishing ? 1 : 0),
          media: addCounts(z.media, event.kind, 1)
        }),
        at
      )
      next = updateShare(next, t.router, t.mafaldaRouter, (x) => ({
        ...x,
        origins: addCounts(x.origins, event.kind, 1)
      }))
      return ok(reserveOnRouter(next, t.router, kindCosts(costs, event.kind).producer, at))
    }
    case "ProducerClosed":
      if (!HashMap.has(s.producers, event.producer))
        return invalid(event, `unknown Producer ${event.producer}`)
      return ok(removeProducer(s, event.producer, costs, at))
    case "ConsumerCreated": {
      const t = lookup(s.transports, event.transport)
      if (t === undefined) return invalid(event, `unknown Transport ${event.transport}`)
      if (HashMap.has(s.consumers, event.consumer))
        return invalid(event, `Consumer ${event.consumer} exists already`)
      const tree = lookup(s.trees, event.producer)
      if (tree === undefined) return invalid(event, `unknown Producer ${event.producer}`)
      const hop = lookup(tree, t.router)
      if (hop === undefined) {
        return invalid(event, `Router ${t.router} does not receive Producer ${event.producer}: pipe it first`)
      }
      const consumer = { id: event.consumer, producer: event.producer, transport: t.id, router: t.router }
      // What `updateHop` does, with the tree and hop at hand (nothing before changes the trees).
      let next: ClusterSnapshot = {
        ...addConsumer(s, consumer),
        transports: HashMap.set(s.transports, t.id, {
          ...t,
          consumers: HashSet.add(t.consumers, consumer.id)
        }),
        trees: HashMap.set(
          s.trees,
          event.producer,
          HashMap.set(tree, t.router, hopIdle({ ...hop, consumers: hop.consumers + 1 }, at))
        )
      }
      const kind = lookup(s.producers, event.producer)?.kind ?? "video"
      // The Router: looked up once, for the room's share and (its Worker) the reservation.
      const r = lookup(next.routers, t.router)
      next = updateShareOf(next, r, t.mafaldaRouter, (x) => ({
        ...x,
        consumers: addCounts(x.consumers, kind, 1)
      }))
      return ok(r === undefined ? next : reserve(next, r.worker, kindCosts(costs, kind).consumer, at))
    }
    case "ConsumerClosed":
      if (!HashMap.has(s.consumers, event.consumer))
        return invalid(event, `unknown Consumer ${event.consumer}`)
      return ok(removeConsumer(s, event.consumer, costs, at))
    case "PipeCreated": {
      const tree = lookup(s.trees, event.producer)
      if (tree === undefined) return invalid(event, `unknown Producer ${event.producer}`)
      const from = lookup(tree, event.from)
      if (from === undefined)
        return invalid(event, `Router ${event.from} does not receive Producer ${event.producer}`)
      if (HashMap.has(tree, event.to)) {
        return invalid(event, `Router ${event.to} already receives Producer ${event.producer}`)
      }
      if (!HashMap.has(s.routers, event.to)) return invalid(event, `unknown Router ${event.to}`)
      let next: ClusterSnapshot = {
        ...s,
        trees: HashMap.set(
          s.trees,
          event.producer,
          HashMap.set(
            tree,
            event.to,
            newHop(event.to, from.router, from.depth + 1, event.pinned === true, at)
          )
        )
      }
      next = updateHop(next, event.producer, event.from, (h) => ({ ...h, children: h.children + 1 }), at)
      next = updateRouter(
        next,
        event.to,
        (r) => ({ ...r, carried: HashSet.add(r.carried, event.producer) }),
        at
      )
      const p = lookup(s.producers, event.producer)
      const kind = p?.kind ?? "video"
      if (p !== undefined) {
        next = updateShare(next, event.to, p.mafaldaRouter, (x) => ({
          ...x,
          pipedIn: addCounts(x.pipedIn, kind, 1)
        }))
        next = updateShare(next, event.from, p.mafaldaRouter, (x) => ({
          ...x,
          pipedOut: addCounts(x.pipedOut, kind, 1)
        }))
      }
      const pipe = kindCosts(costs, kind).pipe
      next = reserveOnRouter(next, event.from, pipe, at)
      return ok(reserveOnRouter(next, event.to, pipe, at))
    }
    case "PipeClosed": {
      const hop = lookup(lookup(s.trees, event.producer) ?? HashMap.empty<RouterId, TreeHop>(), event.to)
      if (hop === undefined || hop.parent === null) {
        return invalid(event, `no pipe of Producer ${event.producer} into Router ${event.to}`)
      }
      return ok(removeHop(s, event.producer, event.to, costs, at))
    }
    case "RtpObserverCreated": {
      if (!HashMap.has(s.routers, event.router)) return invalid(event, `unknown Router ${event.router}`)
      return ok(
        updateRouter(
          s,
          event.router,
          (r) => ({ ...r, observers: HashSet.add(r.observers, event.observer) }),
          at
        )
      )
    }
    case "RtpObserverClosed": {
      const r = lookup(s.routers, event.router)
      if (r === undefined || !HashSet.has(r.observers, event.observer)) {
        return invalid(event, `no RTP observer ${event.observer} on Router ${event.router}`)
      }
      return ok(
        updateRouter(
          s,
          event.router,
          (x) => ({ ...x, observers: HashSet.remove(x.observers, event.observer) }),
          at
        )
      )
    }
  }
}

/** Applies events in order; stops at the first invalid one. */
export const applyEvents = (
  snapshot: ClusterSnapshot,
  events: Iterable<ClusterEvent>,
  costs: Costs
): Either.Either<ClusterSnapshot, InvalidEvent> => {
  let s = snapshot
  for (const e of events) {
    const r = applyEvent(s, e, costs)
    if (Either.isLeft(r)) return r
    s = r.right
  }
  return Either.right(s)
}
