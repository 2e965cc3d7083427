/**
 * Relocation: which transports to move, and where, to correct what no join-time placement
 * can foresee. Pure and deterministic, over one snapshot; the shell (or the simulator)
 * carries each move out as a reconnect: a new transport on the target, the same producers
 * consumed there (piped as needed), the transport's own producers published again, the old
 * transport closed.
 *
 * Reasons, in the order they use the step's budget (`maxMovesPerStep` moves in all):
 *  - `WorkerLost`: a Worker known dead (`alive: false`) that still holds transports in the
 *    snapshot (a shell decides before it records `WorkerDied`): all of them move;
 *  - `Overload`: a Worker whose *measured* load (its last report) is over `relocateAbove`
 *    and whose effective load (the report plus what was placed or removed since) is still
 *    over `plannedLimit` sheds transports until its estimate is back at `plannedLimit`
 *    (hysteresis: moves made since the report count, so the next step does not shed again
 *    before a new report says so);
 *  - `Drain`: every Worker of a draining Node moves its transports out;
 *  - `Consolidate`: when nothing else moves, one nearly idle Worker (measured and effective
 *    load under `consolidateBelow`, at most `consolidateMaxTransports` transports on it: each
 *    move is a reconnect) whose transports all fit on busier Workers under
 *    `watermark - scaleDownHysteresis` is emptied, so that scale-down can close it. All or
 *    nothing: a Worker is never half emptied.
 *
 * A room's transports on one Worker (its share) move together where they can, to one
 * target, so that the pipes of the room's producers into the target are made once; a share
 * too big for any target is split in halves. An overloaded Worker prefers the share with
 * the fewest transports that relieves it enough (else the best relief per move), and only
 * moves a set of transports whose removal lowers its load (pipes back into it counted).
 *
 * Targets are chosen by transport placement itself (`planTransportPlacement`, delegation
 * included) on a working copy of the snapshot where the Workers being emptied look full,
 * and the moves already decided are charged to their targets (new Workers and Routers
 * included, under placeholder ids). A target is then kept only if its effective load plus
 * the move's cost stays under the watermark and its projected load (`projectedLoad`) plus
 * the cost within `plannedLimit`; otherwise it is hidden too and placement is asked again.
 */
import { Data, Either, HashMap, HashSet } from "effect"
import { applyEvent } from "./applyEvent.js"
import type { ClusterEvent } from "./ClusterEvent.js"
import type { MafaldaRouterId, NodeId, ProducerId, RouterId, TransportId, WorkerId } from "./Ids.js"
import { type Made, type PlacementPlan, placementEvents, planTransportPlacement } from "./interpret.js"
import { kindCosts, type PolicyOptions, pipeLimit } from "./PolicyOptions.js"
import { projectedLoad } from "./projection.js"
import {
  type ClusterSnapshot,
  type ClusterTransport,
  type ClusterWorker,
  effectiveLoad,
  lookup,
  routerIdOn,
  setWorker,
  workerOfRouter,
  workersOn
} from "./Snapshot.js"

export type RelocationReason = "Overload" | "Drain" | "WorkerLost" | "Consolidate"
export const relocationReasons: ReadonlyArray<RelocationReason> = [
  "Overload",
  "Drain",
  "WorkerLost",
  "Consolidate"
]

/** Where a moved transport goes. */
export type RelocationTarget = Data.TaggedEnum<{
  /** An existing Router (registered with the room when it is not yet). */
  UseRouter: { readonly router: RouterId; readonly worker: WorkerId; readonly node: NodeId }
  /** A new Router on an existing Worker; moves with the same Worker share it. */
  CreateRouter: { readonly worker: WorkerId; readonly node: NodeId }
  /** A new Worker (and Router) on a Node; moves with the same Node and `key` share it. */
  CreateWorker: { readonly node: NodeId; readonly key: number }
}>
export const RelocationTarget = Data.taggedEnum<RelocationTarget>()

export interface Move {
  readonly transport: TransportId
  readonly mafaldaRouter: MafaldaRouterId
  readonly from: { readonly worker: WorkerId; readonly router: RouterId }
  readonly to: RelocationTarget
  readonly reason: RelocationReason
  /**
   * The cost-model CPU % the move's group (the transports of one room moved together to one
   * target) brings to the target: their transports, producers and consumers, and a pipe end
   * of each producer they consume that the target does not carry. Shared by the group's moves.
   */
  readonly cost: number
  /** Moves with the same group number go together (same room, same source, same target). */
  readonly group: number
}

/** Transports a client can re-establish; pipe and direct transports stay where they are. */
const movable = (t: ClusterTransport): boolean => t.kind === "webrtc" || t.kind === "plain"

// --- Costs -----------------------------------------------------------------------------------

/** What a transport's own objects cost (cost model): itself, its producers and its consumers. */
export const ownCost = (snapshot: ClusterSnapshot, options: PolicyOptions, t: ClusterTransport): number => {
  let cost = options.costs.transport
  for (const p of t.producers) {
    const kind = lookup(snapshot.producers, p)?.kind ?? "video"
    cost += kindCosts(options.costs, kind).producer
  }
  for (const c of t.consumers) {
    const consumer = lookup(snapshot.consumers, c)
    const kind =
      consumer === undefined ? "video" : (lookup(snapshot.producers, consumer.producer)?.kind ?? "video")
    cost += kindCosts(options.costs, kind).consumer
  }
  return cost
}

/** What the group's own objects cost (cost model). */
const ownOf = (snapshot: ClusterSnapshot, options: PolicyOptions, group: ReadonlyArray<ClusterTransport>) => {
  let cost = 0
  for (const t of group) cost += ownCost(snapshot, options, t)
  return cost
}

/** The producers a group consumes that none of its transports makes. */
const consumedFromOutside = (
  snapshot: ClusterSnapshot,
  group: ReadonlyArray<ClusterTransport>
): Set<ProducerId> => {
  const own = new Set<ProducerId>()
  for (const t of group) for (const p of t.producers) own.add(p)
  const out = new Set<ProducerId>()
  for (const t of group) {
    for (const c of t.consumers) {
      const p = lookup(snapshot.consumers, c)?.producer
      if (p !== undefined && !own.has(p)) out.add(p)
    }
  }
  return out
}

const carries = (snapshot: ClusterSnapshot, router: RouterId | undefined, p: ProducerId): boolean => {
  if (router === undefined) return false
  const tree = lookup(snapshot.trees, p)
  return tree !== undefined && HashMap.has(tree, router)
}

const pipeCost = (snapshot: ClusterSnapshot, options: PolicyOptions, p: ProducerId): number =>
  kindCosts(options.costs, lookup(snapshot.producers, p)?.kind ?? "video").pipe

/** The cost a group brings to a target Router (`undefined`: a Router yet to be made). */
export const groupCost = (
  snapshot: ClusterSnapshot,
  options: PolicyOptions,
  group: ReadonlyArray<ClusterTransport>,
  target: RouterId | undefined
): number => {
  let cost = ownOf(snapshot, options, group)
  for (const p of consumedFromOutside(snapshot, group)) {
    if (!carries(snapshot, target, p)) cost += pipeCost(snapshot, options, p)
  }
  return cost
}

/**
 * Slack under the pipe limit a carrier keeps for this reasoning: the pipes a step makes add a
 * little to their carriers while it is carried out.
 */
const pipeSlack = 2

/**
 * Whether a pipe of `p` to a new Router may come out of `source` (`chooseParent`'s tiers):
 * when the source, at `sourceLoad`, may be under the pipe limit, or when no other carrier of
 * `p` clearly is.
 */
const mayFeed = (
  snapshot: ClusterSnapshot,
  options: PolicyOptions,
  p: ProducerId,
  source: RouterId,
  sourceLoad: number
): boolean => {
  const tree = lookup(snapshot.trees, p)
  if (tree === undefined || !HashMap.has(tree, source)) return false
  const limit = pipeLimit(options)
  if (sourceLoad < limit + pipeSlack) return true
  for (const hop of HashMap.values(tree)) {
    if (hop.router === source || hop.depth >= options.maxTreeDepth) continue
    const w = workerOfRouter(snapshot, hop.router)
    if (w?.alive && effectiveLoad(w) < limit - pipeSlack) return false
  }
  return true
}

/**
 * What moving a group off its Router lowers that Router's Worker by (cost model; negative
 * when it would raise it): the group's own objects and the pipes of its producers out of the
 * source, less a pipe out of the source for each producer it consumes that the target does
 * not carry and the source may feed (`mayFeed`, the source at `sourceLoad` once the group is
 * gone), and a pipe back in for each of its producers that something left on the source
 * consumes.
 */
export const groupRelief = (
  snapshot: ClusterSnapshot,
  options: PolicyOptions,
  group: ReadonlyArray<ClusterTransport>,
  source: RouterId,
  target: RouterId | undefined,
  sourceLoad: number
): number => {
  let relief = ownOf(snapshot, options, group)
  for (const p of consumedFromOutside(snapshot, group)) {
    if (!carries(snapshot, target, p) && mayFeed(snapshot, options, p, source, sourceLoad))
      relief -= pipeCost(snapshot, options, p)
  }
  for (const t of group) {
    for (const p of t.producers) {
      const hop = lookup(lookup(snapshot.trees, p) ?? HashMap.empty(), source)
      if (hop === undefined) continue
      relief += hop.children * pipeCost(snapshot, options, p)
      // Consumers of p on the source that do not move with the group.
      let moving = 0
      for (const u of group) {
        for (const c of u.consumers) if (lookup(snapshot.consumers, c)?.producer === p) moving++
      }
      if (hop.consumers > moving) relief -= pipeCost(snapshot, options, p)
    }
  }
  return relief
}

// --- The working copy --------------------------------------------------------------------------

/** Placeholder ids of what moves decided earlier in the step will make. */
const NEW = "\u0000new:"
const newWorkerId = (node: NodeId, key: number) => `${NEW}${node}:${key}` as WorkerId
const newRouterId = (worker: WorkerId) => `${NEW}${worker}/router` as RouterId

interface Work {
  snapshot: ClusterSnapshot
  readonly options: PolicyOptions
  /** New Workers decided so far, by placeholder id. */
  readonly newWorkers: Map<WorkerId, { readonly node: NodeId; readonly key: number }>
  nextKey: number
  nextGroup: number
  readonly moved: Set<TransportId>
  readonly moves: Array<Move>
}

const applyAll = (s: ClusterSnapshot, events: ReadonlyArray<ClusterEvent>, options: PolicyOptions) => {
  let out = s
  for (const e of events) {
    const r = applyEvent(out, e, options.costs)
    if (Either.isRight(r)) out = r.right
  }
  return out
}

/** Makes a Worker look full, so that placement never picks it. */
const hide = (s: ClusterSnapshot, worker: WorkerId): ClusterSnapshot => {
  const w = lookup(s.workers, worker)
  return w === undefined || !w.alive ? s : setWorker(s, { ...w, load: Number.POSITIVE_INFINITY })
}

/** Charges `cost` to a Worker of the working copy (its effective load moves by it). */
const charge = (s: ClusterSnapshot, worker: WorkerId, cost: number): ClusterSnapshot => {
  const w = lookup(s.workers, worker)
  return w === undefined ? s : setWorker(s, { ...w, reserved: w.reserved + cost })
}

interface Decided {
  readonly target: RelocationTarget
  /** The target Router in the working copy (a placeholder when it is to be made). */
  readonly router: RouterId
  readonly worker: WorkerId
  readonly events: ReadonlyArray<ClusterEvent>
  readonly cost: number
}

interface Limits {
  /** Effective load plus cost must stay under this on an existing Worker. */
  readonly watermark: number
  /** Only existing Workers at least this loaded (consolidation moves to busier Workers). */
  readonly minLoad: number
  /** Whether new Workers may be started. */
  readonly newWorkers: boolean
}

/** How many times placement is asked again after its choice fails the relocation checks. */
const maxAttempts = 6

/** The target for a group of one room (see the module's documentation), or undefined. */
const targetFor = (
  work: Work,
  room: MafaldaRouterId,
  node: NodeId,
  group: ReadonlyArray<ClusterTransport>,
  limits: Limits
): Decided | undefined => {
  const { options } = work
  let s = work.snapshot
  const m = lookup(s.mafaldaRouters, room)
  if (m === undefined) return undefined
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    const plan = planTransportPlacement(s, options, { node, mafaldaRouter: room })
    if (Either.isLeft(plan)) return undefined
    const p = plan.right
    if (p.worker === null) {
      if (!limits.newWorkers) return undefined
      const cost = groupCost(s, options, group, undefined)
      if (cost >= limits.watermark || cost > options.plannedLimit) return undefined
      const key = work.nextKey
      const worker = newWorkerId(p.node, key)
      const router = newRouterId(worker)
      return {
        target: RelocationTarget.CreateWorker({ node: p.node, key }),
        router,
        worker,
        events: placementEvents(p, { worker, router }, s.now),
        cost
      }
    }
    const worker = lookup(s.workers, p.worker)
    const router = p.router ?? newRouterId(p.worker)
    const cost = groupCost(s, options, group, p.router ?? undefined)
    const fits =
      worker !== undefined &&
      effectiveLoad(worker) >= limits.minLoad &&
      effectiveLoad(worker) + cost < limits.watermark &&
      projectedLoad(s, options, worker) + cost <= options.plannedLimit
    if (fits) {
      const placeholder = work.newWorkers.get(p.worker)
      const target =
        placeholder !== undefined
          ? RelocationTarget.CreateWorker(placeholder)
          : p.router === null || p.router.startsWith(NEW)
            ? RelocationTarget.CreateRouter({ worker: p.worker, node: p.node })
            : RelocationTarget.UseRouter({ router: p.router, worker: p.worker, node: p.node })
      const made: Made = { worker: p.worker, router }
      return { target, router, worker: p.worker, events: placementEvents(p, made, s.now), cost }
    }
    s = hide(s, p.worker)
  }
  return undefined
}

/** Records a decided group in the working copy and the result. */
const commit = (
  work: Work,
  reason: RelocationReason,
  source: ClusterWorker,
  sourceRouter: RouterId,
  room: MafaldaRouterId,
  group: ReadonlyArray<ClusterTransport>,
  d: Decided
): void => {
  let s = applyAll(work.snapshot, d.events, work.options)
  if (d.target._tag === "CreateWorker" && !work.newWorkers.has(d.worker)) {
    work.newWorkers.set(d.worker, { node: d.target.node, key: d.target.key })
    work.nextKey++
  }
  s = charge(s, d.worker, d.cost)
  work.snapshot = s
  const groupNo = work.nextGroup++
  for (const t of group) {
    work.moved.add(t.id)
    work.moves.push({
      transport: t.id,
      mafaldaRouter: room,
      from: { worker: source.id, router: sourceRouter },
      to: d.target,
      reason,
      cost: d.cost,
      group: groupNo
    })
  }
}

/** A room's movable transports on one Router: those that publish nothing first, then by id. */
interface Share {
  readonly room: MafaldaRouterId
  readonly router: RouterId
  readonly transports: ReadonlyArray<ClusterTransport>
}

const sharesOf = (snapshot: ClusterSnapshot, worker: ClusterWorker, moved: ReadonlySet<TransportId>) => {
  const out: Array<Share> = []
  const routers = [...worker.routers].map((r) => r.id).sort()
  for (const rid of routers) {
    const r = lookup(snapshot.routers, rid)
    if (r === undefined) continue
    const byRoom = new Map<MafaldaRouterId, Array<ClusterTransport>>()
    for (const tid of r.transports) {
      const t = lookup(snapshot.transports, tid)
      if (t === undefined || !movable(t) || moved.has(t.id)) continue
      const list = byRoom.get(t.mafaldaRouter)
      if (list === undefined) byRoom.set(t.mafaldaRouter, [t])
      else list.push(t)
    }
    for (const room of [...byRoom.keys()].sort()) {
      const transports = byRoom.get(room)!
      transports.sort(
        (a, b) => HashSet.size(a.producers) - HashSet.size(b.producers) || (a.id < b.id ? -1 : 1)
      )
      out.push({ room, router: rid, transports })
    }
  }
  return out
}

/** A Worker being relieved or emptied, and the relief (cost model) decided so far. */
interface Source {
  readonly worker: ClusterWorker
  relieved: number
}

/** Measured over modeled load of a Worker (1 when unknown). */
const ratioOf = (w: ClusterWorker): number => (w.ratio > 0 ? w.ratio : 1)

/**
 * What a Worker's measured load is estimated at now: its report, plus what was placed or
 * removed since at the cost model's figure scaled by how the model compares with the reports.
 */
export const estimatedLoad = (w: ClusterWorker): number => w.load + w.reserved * ratioOf(w)

/**
 * Moves a share, whole when one target takes it, else in halves (the first half first).
 * `mustRelieve` refuses a part whose removal would not lower the source, and `enough()`
 * stops early. Returns whether all of it moved.
 */
const moveShare = (
  work: Work,
  budget: () => number,
  reason: RelocationReason,
  source: Source,
  share: Share,
  limits: Limits,
  mustRelieve: boolean,
  enough: () => boolean = () => false
): boolean => {
  let rest = share.transports
  while (rest.length > 0) {
    if (enough()) return false
    let k = Math.min(rest.length, budget())
    if (k === 0) return false
    let placed = false
    for (;;) {
      const part = rest.slice(0, k)
      const d = targetFor(work, share.room, source.worker.node, part, limits)
      if (d !== undefined) {
        const after =
          effectiveLoad(source.worker) - source.relieved - ownOf(work.snapshot, work.options, part)
        const r = groupRelief(work.snapshot, work.options, part, share.router, d.router, after)
        if (!mustRelieve || r > 0) {
          commit(work, reason, source.worker, share.router, share.room, part, d)
          source.relieved += r
          rest = rest.slice(k)
          placed = true
          break
        }
      }
      if (k === 1) break
      k = Math.ceil(k / 2)
    }
    if (!placed) return false
  }
  return true
}

// --- The decision ----------------------------------------------------------------------------

const byId = <A extends { readonly id: string }>(a: A, b: A) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)

/** Empties a Worker as far as the budget goes (WorkerLost, Drain). */
const empty = (work: Work, reason: RelocationReason, worker: ClusterWorker, budget: () => number): void => {
  const limits: Limits = { watermark: work.options.watermark, minLoad: 0, newWorkers: true }
  const source: Source = { worker, relieved: 0 }
  for (const share of sharesOf(work.snapshot, worker, work.moved)) {
    if (budget() === 0) return
    moveShare(work, budget, reason, source, share, limits, false)
  }
}

/** Sheds transports of an overloaded Worker until its estimate is back at `plannedLimit`. */
const shed = (work: Work, worker: ClusterWorker, budget: () => number): void => {
  const { options } = work
  const ratio = ratioOf(worker)
  const source: Source = { worker, relieved: 0 }
  const need = () => estimatedLoad(worker) - source.relieved * ratio - options.plannedLimit
  const limits: Limits = { watermark: options.watermark, minLoad: 0, newWorkers: true }
  const original = work.snapshot
  const left = sharesOf(original, worker, work.moved).map((share) => {
    const after = effectiveLoad(worker) - ownOf(original, options, share.transports)
    return {
      share,
      relief: groupRelief(original, options, share.transports, share.router, undefined, after) * ratio
    }
  })
  while (need() > 0 && budget() > 0 && left.length > 0) {
    // The smallest whole share that relieves enough, else the best relief per transport.
    const needed = need()
    let best = -1
    for (let i = 0; i < left.length; i++) {
      const c = left[i]!
      if (c.relief <= 0) continue
      if (best < 0) {
        best = i
        continue
      }
      const b = left[best]!
      const cEnough = c.relief >= needed && c.share.transports.length <= budget()
      const bEnough = b.relief >= needed && b.share.transports.length <= budget()
      if (cEnough !== bEnough) {
        if (cEnough) best = i
        continue
      }
      const better = cEnough
        ? c.share.transports.length < b.share.transports.length
        : c.relief / c.share.transports.length > b.relief / b.share.transports.length
      if (better) best = i
    }
    if (best < 0) return
    const { share } = left.splice(best, 1)[0]!
    moveShare(work, budget, "Overload", source, share, limits, true, () => need() <= 0)
  }
}

/** Tries to empty a nearly idle Worker onto busier ones; all or nothing. */
const consolidate = (work: Work, worker: ClusterWorker, budget: () => number): boolean => {
  const { options } = work
  const shares = sharesOf(work.snapshot, worker, work.moved)
  let total = 0
  for (const share of shares) total += share.transports.length
  if (total === 0 || total > budget()) return false
  const before = { snapshot: work.snapshot, moves: work.moves.length, nextKey: work.nextKey }
  const limits: Limits = {
    watermark: options.watermark - options.scaleDownHysteresis,
    minLoad: effectiveLoad(worker),
    newWorkers: false
  }
  const source: Source = { worker, relieved: 0 }
  for (const share of shares) {
    if (!moveShare(work, budget, "Consolidate", source, share, limits, false)) {
      for (const m of work.moves.splice(before.moves)) work.moved.delete(m.transport)
      work.snapshot = before.snapshot
      work.nextKey = before.nextKey
      return false
    }
  }
  return true
}

/** A Worker that could close once empty: no observer and nothing but movable transports. */
const closable = (snapshot: ClusterSnapshot, worker: ClusterWorker): boolean => {
  for (const { id } of worker.routers) {
    const r = lookup(snapshot.routers, id)
    if (r === undefined) continue
    if (HashSet.size(r.observers) > 0) return false
    for (const tid of r.transports) {
      const t = lookup(snapshot.transports, tid)
      if (t !== undefined && !movable(t)) return false
    }
  }
  return true
}

const transportsOn = (snapshot: ClusterSnapshot, worker: ClusterWorker): number => {
  let n = 0
  for (const { id } of worker.routers)
    n += HashSet.size(lookup(snapshot.routers, id)?.transports ?? HashSet.empty())
  return n
}

/** Which transports to move this step, where, and why (see the module's documentation). */
export const decideRelocations = (snapshot: ClusterSnapshot, options: PolicyOptions): ReadonlyArray<Move> => {
  const workers = [...HashMap.values(snapshot.workers)].sort(byId)
  const work: Work = {
    snapshot,
    options,
    newWorkers: new Map(),
    nextKey: 0,
    nextGroup: 0,
    moved: new Set(),
    moves: []
  }
  const budget = () => options.maxMovesPerStep - work.moves.length
  const lost = workers.filter((w) => !w.alive && w.routers.length > 0)
  const overloaded = workers
    .filter((w) => w.alive && w.load > options.relocateAbove && estimatedLoad(w) > options.plannedLimit)
    .sort((a, b) => b.load - a.load || byId(a, b))
  const draining = workers.filter(
    (w) => w.alive && lookup(snapshot.nodes, w.node)?.state === "draining" && w.routers.length > 0
  )
  // Every Worker being emptied or relieved looks full to placement from the start.
  for (const w of [...overloaded, ...draining]) work.snapshot = hide(work.snapshot, w.id)
  for (const w of lost) if (budget() > 0) empty(work, "WorkerLost", w, budget)
  for (const w of overloaded) if (budget() > 0) shed(work, w, budget)
  for (const w of draining) if (budget() > 0) empty(work, "Drain", w, budget)
  if (work.moves.length > 0 || options.consolidateBelow <= 0) return work.moves

  const candidates = workers
    .filter((w) => {
      if (!w.alive || w.load >= options.consolidateBelow || effectiveLoad(w) >= options.consolidateBelow)
        return false
      if (lookup(snapshot.nodes, w.node)?.state !== "up") return false
      if (workersOn(snapshot, w.node, w.settings).length <= options.warmWorkers) return false
      const n = transportsOn(snapshot, w)
      return (
        n > 0 &&
        n <= Math.min(options.maxMovesPerStep, options.consolidateMaxTransports) &&
        closable(snapshot, w)
      )
    })
    .sort((a, b) => effectiveLoad(a) - effectiveLoad(b) || byId(a, b))
  for (const w of candidates.slice(0, 3)) {
    const saved = work.snapshot
    work.snapshot = hide(work.snapshot, w.id)
    if (consolidate(work, w, budget)) break
    work.snapshot = saved
  }
  return work.moves
}

// --- Carrying a move out ----------------------------------------------------------------------

/**
 * The key under which a shell remembers the Worker it started for a `CreateWorker` target, so
 * that the other moves to it use that Worker; undefined for the other targets (a Router made
 * for an earlier move is in the snapshot by the time the next move is carried out).
 */
export const targetKey = (target: RelocationTarget): string | undefined =>
  target._tag === "CreateWorker" ? `worker:${target.node}:${target.key}` : undefined

/**
 * The placement plan that carries a move out on the snapshot of now (`interpret.ts` records
 * it with `placementEvents`), given the Worker an earlier move of the step started for its
 * target, if any. Undefined when the target is gone (its Worker or Router closed since, its
 * Node no longer up).
 */
export const relocationPlan = (
  snapshot: ClusterSnapshot,
  move: Move,
  made: Made | undefined
): PlacementPlan | undefined => {
  const m = lookup(snapshot.mafaldaRouters, move.mafaldaRouter)
  if (m === undefined) return undefined
  const base = {
    mafaldaRouter: m.id,
    workerSettings: m.workerSettings,
    routerSettings: m.routerSettings,
    delegations: []
  }
  /** A plan on a live Worker: its Router of the room's settings, or a new one. */
  const onWorker = (node: NodeId, worker: WorkerId): PlacementPlan | undefined => {
    const w = lookup(snapshot.workers, worker)
    if (w === undefined || !w.alive || w.settings !== m.workerSettings) return undefined
    const router = routerIdOn(w, m.routerSettings)
    return router === undefined
      ? { ...base, node, worker, router: null, register: true }
      : { ...base, node, worker, router, register: !HashSet.has(m.routers, router) }
  }
  const to = move.to
  switch (to._tag) {
    case "UseRouter": {
      const r = lookup(snapshot.routers, to.router)
      if (r === undefined || r.worker !== to.worker) return undefined
      return onWorker(to.node, to.worker)
    }
    case "CreateRouter":
      return onWorker(to.node, to.worker)
    case "CreateWorker":
      if (made !== undefined) return onWorker(to.node, made.worker)
      if (lookup(snapshot.nodes, to.node)?.state !== "up") return undefined
      return { ...base, node: to.node, worker: null, router: null, register: true }
  }
}
