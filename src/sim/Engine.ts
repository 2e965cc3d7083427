/**
 * The simulation engine: a discrete-event loop over virtual time. Joins, leaves, bursts,
 * load reports, scale-down ticks, Node and Worker failures are scheduled in a heap; the
 * loop advances the `VirtualClock` (the Effect `Clock` the run is given) from one to the
 * next and stamps every cluster event with its time. Every change to the cluster goes
 * through the core's `applyEvent`, whatever the policy, so all policies share the snapshot
 * model, the cost model (reservations) and the metrics.
 *
 * The "true" load of a Worker is counted from what is actually placed on it (see
 * `WorkerStats`); policies only see it through `LoadReported` events at the report
 * interval (possibly delayed), plus the reservations `applyEvent` charges in between.
 */
import { Either, HashMap, HashSet } from "effect"
import { applyEvent } from "../core/applyEvent.js"
import type { ClusterEvent } from "../core/ClusterEvent.js"
import type { PlannedPipe } from "../core/consumerPlacement.js"
import type {
  ConsumerId,
  MafaldaRouterId,
  NodeId,
  ProducerId,
  RouterId,
  SettingsKey,
  TransportId,
  WorkerId
} from "../core/Ids.js"
import { type PlacementPlan, pipeEvents, placementEvents } from "../core/interpret.js"
import type { PolicyOptions } from "../core/PolicyOptions.js"
import {
  type ClusterSnapshot,
  effectiveLoad,
  emptySnapshot,
  lookup,
  type MediaKind,
  mafaldaRoutersOnWorkers,
  workerOfRouter
} from "../core/Snapshot.js"
import { workerLimit } from "../core/transportPlacement.js"
import { EventHeap } from "./Heap.js"
import { LoadHistogram, type SeriesPoint, type SimResult, type TreeDrawing } from "./Metrics.js"
import { Prng } from "./Prng.js"
import type { NodeEvent, RoomGroup, Scenario, WorkerFailure } from "./Scenario.js"
import type { VirtualClock } from "./VirtualClock.js"
import { type KindFactors, type WorkerStat, WorkerStatsCache } from "./WorkerStats.js"

/** An event the core refused: a bug in the simulator or a policy, never a scenario issue. */
export class SimulatorBug extends Error {
  override readonly name = "SimulatorBug"
}

export const WORKER_SETTINGS = "w" as SettingsKey

export interface ProducerRef {
  readonly id: ProducerId
  readonly num: number
  readonly kind: MediaKind
  readonly owner: Participant
}

export interface Participant {
  readonly num: number
  readonly room: Room
  publisher: boolean
  /** The participant's transport (send and receive), or null. */
  transport: TransportId | null
  router: RouterId | null
  /** Extra receive transports by Router (policies that pin subscribers to producers' Routers). */
  extra: Map<RouterId, TransportId> | null
  producers: Array<ProducerRef>
  /** Index in `room.members` while present. */
  slot: number
  present: boolean
  /** False when the join was rejected: the participant keeps its seat (the demand) but has no media. */
  placed: boolean
}

export interface Room {
  readonly index: number
  readonly id: MafaldaRouterId
  readonly group: GroupState
  readonly size: number
  readonly publishersWanted: number
  publishers: number
  readonly members: Array<Participant>
  /** Members whose join was placed. */
  placedCount: number
  producers: Array<ProducerRef>
  /** Whether the room exists in the cluster (its Mafalda Router was created). */
  opened: boolean
  /** Index in the group's list of rooms with a free seat, or -1. */
  openSlot: number
  /** The Node the room's clients reach first (policy's choice). */
  entry: NodeId | null
  /** Nodes the room has used (policy's bookkeeping). */
  readonly nodes: Set<NodeId>
  /** Policy-specific state. */
  data: unknown
}

export interface GroupState {
  readonly index: number
  readonly spec: RoomGroup
  readonly rooms: Array<Room>
  readonly open: Array<Room>
  readonly prng: Prng
  readonly maxFactor: number
  /** First room that may have a free seat (`fill: inOrder`). */
  cursor: number
}

export interface SimNode {
  readonly id: NodeId
  readonly index: number
  readonly cpus: number
}

/** A CPU of a Node, for policies that keep a fixed pool of Workers (one per CPU). */
export interface Slot {
  readonly node: NodeId
  readonly index: number
  worker: WorkerId | null
}

export type PolicyName = "mafalda" | "round-robin" | "least-loaded" | "mesh" | "chain" | "room-per-node"
export const policyNames: ReadonlyArray<PolicyName> = [
  "mafalda",
  "round-robin",
  "least-loaded",
  "mesh",
  "chain",
  "room-per-node"
]

/** A placement policy in the simulator: it turns joins into cluster events through the engine. */
export interface SimPolicy {
  readonly name: PolicyName
  /** The room gets its first participant. */
  openRoom(room: Room): void
  /** Place the participant's transport(s); false rejects the join. */
  join(p: Participant): boolean
  /** Create a producer for a publisher (and whatever the topology needs). */
  produce(p: Participant, kind: MediaKind): ProducerRef | undefined
  /** Make `p` consume `producer`; false when it cannot. */
  consume(p: Participant, producer: ProducerRef): boolean
  /** Whether the participant is still connected after a failure. */
  connected(p: Participant): boolean
  /** The room's last participant left. */
  closeRoom(room: Room): void
  /** Periodic housekeeping (scale-down). */
  tick(now: number): void
}

type Item =
  | { readonly k: "arrival"; readonly group: GroupState }
  | { readonly k: "join"; readonly group: GroupState }
  | { readonly k: "leave"; readonly p: Participant }
  | { readonly k: "report" }
  | { readonly k: "deliver"; readonly reports: ReadonlyArray<{ worker: WorkerId; load: number; at: number }> }
  | { readonly k: "scaleDown" }
  | { readonly k: "node"; readonly ev: NodeEvent }
  | { readonly k: "worker"; readonly ev: WorkerFailure }
  | { readonly k: "repair"; readonly rooms: ReadonlyArray<Room> }

/** Piecewise-linear interpolation of a rate profile. */
const profileAt = (profile: ReadonlyArray<readonly [number, number]> | undefined, t: number): number => {
  if (profile === undefined || profile.length === 0) return 1
  const first = profile[0]!
  if (t <= first[0]) return first[1]
  for (let i = 1; i < profile.length; i++) {
    const b = profile[i]!
    if (t <= b[0]) {
      const a = profile[i - 1]!
      return b[0] === a[0] ? b[1] : a[1] + ((b[1] - a[1]) * (t - a[0])) / (b[0] - a[0])
    }
  }
  return profile[profile.length - 1]![1]
}

export interface EngineOptions {
  readonly seed?: number
  readonly onProgress?: (fraction: number) => void
}

export class Engine {
  snapshot: ClusterSnapshot = emptySnapshot
  readonly options: PolicyOptions
  readonly factors: KindFactors
  readonly nodes: Array<SimNode> = []
  readonly nodeByIdMap = new Map<NodeId, SimNode>()
  readonly slots: Array<Slot> = []
  readonly groups: Array<GroupState> = []
  readonly stats: WorkerStatsCache
  readonly prng: Prng
  private readonly heap = new EventHeap<Item>()
  private policy!: SimPolicy
  private readonly durationMs: number

  // Tracker: Nodes that may have room, for the entry-Node choice (see `nodesWithRoom`).
  private maybeRoom = new Uint8Array(64)
  private roomCursor = 0

  // Ids.
  private nextWorker = 0
  private nextRouter = 0
  private nextTransport = 0
  private nextProducer = 0
  private nextParticipant = 0

  // Counters.
  events = 0
  decisions = 0
  private decisionMs = 0
  joins = 0
  rejected = 0
  rejectedConsumers = 0
  reconnects = 0
  consumersCreated = 0
  pipesCreated = 0
  private readonly depthHist: Array<number> = []
  private readonly loadHist = new LoadHistogram()
  private readonly series: Array<SeriesPoint> = []
  private peakWorkers = 0
  private peakWorkersRunning = 0
  private peakNodes = 0
  private peakLowerBound = 0
  private peakPipes = 0
  private pipesLowerBoundAtPeak = 0
  private peakConsumers = 0
  private workerSeconds = 0
  private overloadEvents = 0
  private overloadedWorkerSeconds = 0
  private peakRss = 0
  private tree: TreeDrawing | null = null
  private treeCapturedAt = 0
  private nodeMark = new Uint8Array(64)

  constructor(
    readonly scenario: Scenario,
    readonly clock: VirtualClock,
    private readonly engineOptions: EngineOptions = {}
  ) {
    this.options = scenario.policy
    const ref = scenario.referenceBitrateKbps
    this.factors =
      ref === undefined
        ? { audio: 1, video: 1 }
        : { audio: scenario.bitratesKbps.audio / ref, video: scenario.bitratesKbps.video / ref }
    this.stats = new WorkerStatsCache(this.options.costs, this.factors)
    this.prng = new Prng(engineOptions.seed ?? scenario.seed)
    this.durationMs = scenario.durationSeconds * 1000
  }

  // --- Time and events --------------------------------------------------------------------

  get now(): number {
    return this.clock.unsafeCurrentTimeMillis()
  }

  /** Applies one cluster event through the core. */
  emit(event: ClusterEvent): void {
    const r = applyEvent(this.snapshot, event, this.options.costs)
    if (Either.isLeft(r)) throw new SimulatorBug(`${this.policy.name}: ${r.left.message}`)
    this.snapshot = r.right
    this.events++
  }

  emitAll(events: ReadonlyArray<ClusterEvent>): void {
    for (const event of events) this.emit(event)
  }

  /** Runs a pure decision and accounts for its time. */
  decide<A>(f: () => A): A {
    const t0 = performance.now()
    const a = f()
    this.decisionMs += performance.now() - t0
    this.decisions++
    return a
  }

  // --- Cluster helpers for policies -----------------------------------------------------

  nodeById(id: NodeId): SimNode | undefined {
    return this.nodeByIdMap.get(id)
  }

  nodeUp(id: NodeId): boolean {
    return lookup(this.snapshot.nodes, id)?.state === "up"
  }

  startWorker(node: NodeId): WorkerId {
    const worker = `w${this.nextWorker++}` as WorkerId
    this.emit({ _tag: "WorkerStarted", worker, node, settings: WORKER_SETTINGS, at: this.now })
    return worker
  }

  /**
   * Carries out a placement plan as the shell does (see the core's `interpret.ts`): a new
   * Worker and Router where the plan needs them, recorded by the core's `placementEvents`.
   * Returns the Router the transport goes to.
   */
  carryOut(plan: PlacementPlan): RouterId {
    const worker = plan.worker ?? (`w${this.nextWorker++}` as WorkerId)
    const router = plan.router ?? (`r${this.nextRouter++}` as RouterId)
    this.emitAll(placementEvents(plan, { worker, router }, this.now))
    this.touchNode(plan.node)
    return router
  }

  createRouter(worker: WorkerId, settings: SettingsKey): RouterId {
    const router = `r${this.nextRouter++}` as RouterId
    this.emit({ _tag: "RouterCreated", router, worker, settings, at: this.now })
    return router
  }

  openMafaldaRouter(room: Room, routerSettings: SettingsKey): void {
    this.emit({
      _tag: "MafaldaRouterCreated",
      mafaldaRouter: room.id,
      workerSettings: WORKER_SETTINGS,
      routerSettings,
      at: this.now
    })
  }

  closeMafaldaRouter(room: Room, closeRouters: boolean): void {
    const m = lookup(this.snapshot.mafaldaRouters, room.id)
    if (m === undefined) return
    if (closeRouters) {
      for (const rid of m.routers) {
        const w = workerOfRouter(this.snapshot, rid)
        if (HashMap.has(this.snapshot.routers, rid))
          this.emit({ _tag: "RouterClosed", router: rid, at: this.now })
        if (w !== undefined) this.touchNode(w.node)
      }
    }
    this.emit({ _tag: "MafaldaRouterClosed", mafaldaRouter: room.id, at: this.now })
  }

  register(room: Room, router: RouterId): void {
    this.emit({ _tag: "RouterRegistered", mafaldaRouter: room.id, router, at: this.now })
  }

  createTransport(room: Room, router: RouterId): TransportId {
    const transport = `t${this.nextTransport++}` as TransportId
    this.emit({
      _tag: "TransportCreated",
      transport,
      kind: "webrtc",
      router,
      mafaldaRouter: room.id,
      at: this.now
    })
    return transport
  }

  /** Creates a producer on the participant's transport and records it in the room. */
  createProducer(p: Participant, kind: MediaKind): ProducerRef | undefined {
    if (p.transport === null) return undefined
    const num = this.nextProducer++
    const ref: ProducerRef = { id: `p${num}` as ProducerId, num, kind, owner: p }
    this.emit({ _tag: "ProducerCreated", producer: ref.id, kind, transport: p.transport, at: this.now })
    p.producers.push(ref)
    p.room.producers.push(ref)
    return ref
  }

  consumerId(p: Participant, producer: ProducerRef): ConsumerId {
    return `c${p.num}_${producer.num}` as ConsumerId
  }

  /** Creates the consumer of `producer` for `p` on `transport` (whose Router must carry it). */
  createConsumer(p: Participant, transport: TransportId, router: RouterId, producer: ProducerRef): void {
    this.emit({
      _tag: "ConsumerCreated",
      consumer: this.consumerId(p, producer),
      producer: producer.id,
      transport,
      at: this.now
    })
    this.consumersCreated++
    const depth = lookup(lookup(this.snapshot.trees, producer.id)!, router)?.depth ?? 0
    this.depthHist[depth] = (this.depthHist[depth] ?? 0) + 1
  }

  /** Makes the pipes a decision planned (the core's `pipeEvents`). */
  pipes(pipes: ReadonlyArray<PlannedPipe>): void {
    this.emitAll(pipeEvents(pipes, this.now))
    this.pipesCreated += pipes.length
  }

  pipe(producer: ProducerId, from: RouterId, to: RouterId): void {
    this.pipes([{ producer, from, to }])
  }

  carries(router: RouterId, producer: ProducerId): boolean {
    const tree = lookup(this.snapshot.trees, producer)
    return tree !== undefined && HashMap.has(tree, router)
  }

  closeTransport(t: TransportId | null): void {
    if (t !== null && HashMap.has(this.snapshot.transports, t))
      this.emit({ _tag: "TransportClosed", transport: t, at: this.now })
  }

  hasTransport(t: TransportId | null): boolean {
    return t !== null && HashMap.has(this.snapshot.transports, t)
  }

  workerStat(worker: WorkerId): WorkerStat | undefined {
    const w = lookup(this.snapshot.workers, worker)
    return w === undefined ? undefined : this.stats.get(this.snapshot, w)
  }

  /** A slot's Worker, started when the slot has none (or it died). */
  slotWorker(slot: Slot): WorkerId {
    if (slot.worker !== null && HashMap.has(this.snapshot.workers, slot.worker)) return slot.worker
    slot.worker = this.startWorker(slot.node)
    return slot.worker
  }

  // --- Tracker: Nodes with room --------------------------------------------------------

  /** Whether a Node takes new work: up, and a Worker under the watermark or a CPU free. */
  nodeHasRoom(id: NodeId): boolean {
    const node = lookup(this.snapshot.nodes, id)
    if (node === undefined || node.state !== "up") return false
    let count = 0
    for (const wid of node.workers) {
      const w = lookup(this.snapshot.workers, wid)
      if (w === undefined || !w.alive || w.settings !== WORKER_SETTINGS) continue
      if (effectiveLoad(w) < this.options.watermark) return true
      count++
    }
    return count < workerLimit(node, this.options)
  }

  /** The Node may have room again (something left it, a report came, a Worker closed). */
  touchNode(id: NodeId): void {
    const n = this.nodeByIdMap.get(id)
    if (n === undefined) return
    this.maybeRoom[n.index] = 1
    if (n.index < this.roomCursor) this.roomCursor = n.index
  }

  /** Up to `k` Nodes with room, lowest index first (fills Nodes in order), skipping `exclude`. */
  nodesWithRoom(k: number, exclude?: ReadonlySet<NodeId> | NodeId | null): Array<NodeId> {
    const out: Array<NodeId> = []
    const n = this.nodes.length
    while (this.roomCursor < n && this.maybeRoom[this.roomCursor] === 0) this.roomCursor++
    for (let i = this.roomCursor; i < n && out.length < k; i++) {
      if (this.maybeRoom[i] === 0) continue
      const id = this.nodes[i]!.id
      if (this.nodeHasRoom(id)) {
        if (exclude === id || (typeof exclude === "object" && exclude?.has(id))) continue
        out.push(id)
      } else {
        this.maybeRoom[i] = 0
        if (i === this.roomCursor) this.roomCursor++
      }
    }
    return out
  }

  // --- Setup -------------------------------------------------------------------------------

  private addNode(cpus: number): void {
    const index = this.nodes.length
    const node: SimNode = { id: `n${index}` as NodeId, index, cpus }
    this.nodes.push(node)
    this.nodeByIdMap.set(node.id, node)
    if (index >= this.maybeRoom.length) {
      const grown = new Uint8Array(this.maybeRoom.length * 2)
      grown.set(this.maybeRoom)
      this.maybeRoom = grown
      this.nodeMark = new Uint8Array(grown.length)
    }
    for (let c = 0; c < cpus; c++) this.slots.push({ node: node.id, index: this.slots.length, worker: null })
    this.emit({
      _tag: "NodeUp",
      node: node.id,
      cpus,
      address: `10.0.${index >> 8}.${index & 255}`,
      at: this.now
    })
    this.touchNode(node.id)
  }

  private setup(): void {
    const s = this.scenario
    for (let i = 0; i < s.nodes.count; i++) this.addNode(s.nodes.cpus)
    let roomIndex = 0
    s.rooms.forEach((spec, gi) => {
      const prng = this.prng.fork(gi)
      const maxFactor = spec.rateProfile === undefined ? 1 : Math.max(...spec.rateProfile.map((p) => p[1]))
      const group: GroupState = { index: gi, spec, rooms: [], open: [], prng, maxFactor, cursor: 0 }
      for (let r = 0; r < spec.rooms; r++) {
        const size = prng.int(spec.size.min, spec.size.max)
        const room: Room = {
          index: roomIndex,
          id: `m${roomIndex}` as MafaldaRouterId,
          group,
          size,
          publishersWanted: spec.publishers === "all" ? size : Math.min(size, spec.publishers),
          publishers: 0,
          members: [],
          placedCount: 0,
          producers: [],
          opened: false,
          openSlot: group.open.length,
          entry: null,
          nodes: new Set(),
          data: undefined
        }
        roomIndex++
        group.rooms.push(room)
        group.open.push(room)
      }
      this.groups.push(group)
      if (spec.joinsPerSecond > 0 && maxFactor > 0) this.scheduleArrival(group, spec.startSeconds * 1000)
      for (const burst of spec.bursts) {
        for (let j = 0; j < burst.joins; j++) {
          const at = (burst.atSeconds + prng.next() * burst.withinSeconds) * 1000
          if (at <= this.durationMs) this.heap.push(at, { k: "join", group })
        }
      }
    })
    const interval = s.reportIntervalSeconds * 1000
    this.heap.push(interval, { k: "report" })
    this.heap.push(s.scaleDownIntervalSeconds * 1000, { k: "scaleDown" })
    for (const ev of s.nodeEvents) this.heap.push(ev.atSeconds * 1000, { k: "node", ev })
    for (const ev of s.workerFailures) this.heap.push(ev.atSeconds * 1000, { k: "worker", ev })
  }

  private scheduleArrival(group: GroupState, from: number): void {
    const spec = group.spec
    const stop = (spec.stopSeconds ?? this.scenario.durationSeconds) * 1000
    const rate = (spec.joinsPerSecond * group.maxFactor) / 1000
    let t = from
    // Thinning: candidates at the peak rate, kept with probability profile(t) / peak.
    for (;;) {
      t += group.prng.exponential(1 / rate)
      if (t > stop || t > this.durationMs) return
      if (group.maxFactor === 1 && spec.rateProfile === undefined) break
      if (group.prng.next() * group.maxFactor < profileAt(spec.rateProfile, t / 1000)) break
    }
    this.heap.push(t, { k: "arrival", group })
  }

  // --- Participants ----------------------------------------------------------------------

  /** The room with a free seat that comes first in the group (`fill: inOrder`). */
  private firstOpen(group: GroupState): Room {
    while (group.cursor < group.rooms.length && group.rooms[group.cursor]!.openSlot < 0) group.cursor++
    const room = group.rooms[group.cursor]
    if (room !== undefined) return room
    group.cursor = 0
    while (group.rooms[group.cursor]!.openSlot < 0) group.cursor++
    return group.rooms[group.cursor]!
  }

  private closeSeat(room: Room): void {
    if (room.openSlot < 0) return
    const open = room.group.open
    const last = open.pop()!
    if (last !== room) {
      open[room.openSlot] = last
      last.openSlot = room.openSlot
    }
    room.openSlot = -1
  }

  private openSeat(room: Room): void {
    if (room.openSlot >= 0) return
    room.openSlot = room.group.open.length
    room.group.open.push(room)
  }

  private removeMember(p: Participant): void {
    const room = p.room
    const last = room.members.pop()!
    if (last !== p) {
      room.members[p.slot] = last
      last.slot = p.slot
    }
    p.slot = -1
    p.present = false
    if (room.members.length < room.size) {
      this.openSeat(room)
      if (room.index - room.group.rooms[0]!.index < room.group.cursor)
        room.group.cursor = room.index - room.group.rooms[0]!.index
    }
  }

  private join(group: GroupState): void {
    const open = group.open
    if (open.length === 0) return
    const room =
      group.spec.fill === "random"
        ? open[Math.floor(group.prng.next() * open.length)]!
        : this.firstOpen(group)
    const p: Participant = {
      num: this.nextParticipant++,
      room,
      publisher: false,
      transport: null,
      router: null,
      extra: null,
      producers: [],
      slot: room.members.length,
      present: true,
      placed: false
    }
    room.members.push(p)
    if (room.members.length >= room.size) this.closeSeat(room)
    if (!room.opened) {
      this.policy.openRoom(room)
      room.opened = true
    }
    this.admit(p)
    if (group.spec.meanStaySeconds !== undefined) {
      this.heap.push(this.now + group.prng.exponential(group.spec.meanStaySeconds * 1000), { k: "leave", p })
    }
  }

  /** Places a (re)joining participant: transport, producers, consumers. */
  private admit(p: Participant): boolean {
    const room = p.room
    this.joins++
    p.publisher = room.publishers < room.publishersWanted
    if (!this.policy.join(p)) {
      this.rejected++
      p.publisher = false
      p.placed = false
      return false
    }
    p.placed = true
    room.placedCount++
    for (const producer of room.producers) this.consumeOne(p, producer)
    if (p.publisher) {
      room.publishers++
      for (const kind of room.group.spec.produces) {
        const producer = this.policy.produce(p, kind)
        if (producer === undefined) continue
        for (const other of room.members) if (other !== p && other.placed) this.consumeOne(other, producer)
      }
    }
    return true
  }

  private consumeOne(p: Participant, producer: ProducerRef): void {
    if (!this.policy.consume(p, producer)) this.rejectedConsumers++
  }

  private forgetProducers(p: Participant): void {
    if (p.producers.length === 0) return
    const room = p.room
    room.producers = room.producers.filter((x) => x.owner !== p)
    p.producers = []
  }

  /** Nodes where the participant's transports are. */
  private nodesOf(p: Participant): Array<NodeId> {
    const out: Array<NodeId> = []
    const add = (t: TransportId | null) => {
      if (t === null) return
      const tr = lookup(this.snapshot.transports, t)
      const node = tr === undefined ? undefined : workerOfRouter(this.snapshot, tr.router)?.node
      if (node !== undefined) out.push(node)
    }
    add(p.transport)
    if (p.extra !== null) for (const t of p.extra.values()) add(t)
    return out
  }

  private leave(p: Participant): void {
    if (!p.present) return
    const room = p.room
    const nodes = this.nodesOf(p)
    if (p.placed) room.placedCount--
    p.placed = false
    this.closeTransport(p.transport)
    if (p.extra !== null) for (const t of p.extra.values()) this.closeTransport(t)
    p.transport = null
    p.router = null
    p.extra = null
    this.forgetProducers(p)
    if (p.publisher) room.publishers--
    p.publisher = false
    this.removeMember(p)
    for (const n of nodes) this.touchNode(n)
    if (room.members.length === 0) this.closeRoom(room)
  }

  private closeRoom(room: Room): void {
    if (!room.opened) return
    this.policy.closeRoom(room)
    room.opened = false
    room.producers = []
    room.publishers = 0
    room.entry = null
    room.nodes.clear()
    room.data = undefined
  }

  // --- Failures -------------------------------------------------------------------------

  private roomsOnWorkers(workers: Iterable<WorkerId>): Array<Room> {
    const ids = new Set<string>(mafaldaRoutersOnWorkers(this.snapshot, workers))
    const out: Array<Room> = []
    for (const g of this.groups) for (const room of g.rooms) if (ids.has(room.id)) out.push(room)
    return out
  }

  private liveWorkersByLoad(): Array<{ id: WorkerId; load: number }> {
    const out: Array<{ id: WorkerId; load: number }> = []
    for (const w of HashMap.values(this.snapshot.workers)) {
      if (w.alive) out.push({ id: w.id, load: this.stats.get(this.snapshot, w).load })
    }
    return out.sort((a, b) => b.load - a.load || (a.id < b.id ? -1 : 1))
  }

  private failWorkers(ev: WorkerFailure): void {
    const live = this.liveWorkersByLoad()
    const chosen: Array<WorkerId> = []
    for (let i = 0; i < ev.count && live.length > 0; i++) {
      const at = ev.target === "busiest" ? 0 : Math.floor(this.prng.next() * live.length)
      chosen.push(live.splice(at, 1)[0]!.id)
    }
    const rooms = this.roomsOnWorkers(chosen)
    for (const worker of chosen) {
      const node = lookup(this.snapshot.workers, worker)?.node
      this.emit({ _tag: "WorkerDied", worker, at: this.now })
      if (node !== undefined) this.touchNode(node)
    }
    this.scheduleRepair(rooms)
  }

  private nodeEvent(ev: NodeEvent): void {
    if (ev.action === "add") {
      for (let i = 0; i < ev.count; i++) this.addNode(ev.cpus ?? this.scenario.nodes.cpus)
      return
    }
    for (let i = 0; i < ev.count; i++) {
      const up = this.nodes.filter((n) => this.nodeUp(n.id))
      let target: SimNode | undefined
      if (ev.node !== undefined) target = i === 0 ? this.nodes[ev.node] : undefined
      else {
        let best = -1
        for (const n of up) {
          let load = 0
          for (const wid of lookup(this.snapshot.nodes, n.id)!.workers)
            load += this.workerStat(wid)?.load ?? 0
          if (load > best) {
            best = load
            target = n
          }
        }
      }
      if (target === undefined || !this.nodeUp(target.id)) continue
      if (ev.action === "drain") {
        this.emit({ _tag: "NodeDraining", node: target.id, at: this.now })
      } else {
        const rooms = this.roomsOnWorkers(lookup(this.snapshot.nodes, target.id)!.workers)
        this.emit({ _tag: "NodeDown", node: target.id, at: this.now })
        this.scheduleRepair(rooms)
      }
    }
  }

  private scheduleRepair(rooms: ReadonlyArray<Room>): void {
    if (rooms.length > 0)
      this.heap.push(this.now + this.scenario.rejoinDelaySeconds * 1000, { k: "repair", rooms })
  }

  /** Clients of a failed Worker or Node reconnect; the others re-consume what they lost. */
  private repair(room: Room): void {
    if (!room.opened) return
    room.producers = room.producers.filter((x) => HashMap.has(this.snapshot.producers, x.id))
    const lost: Array<Participant> = []
    for (const p of room.members) {
      if (!p.placed || this.policy.connected(p)) continue
      lost.push(p)
    }
    for (const p of lost) {
      p.placed = false
      room.placedCount--
      p.transport = null
      p.router = null
      p.extra = null
      p.producers = []
      if (p.publisher) room.publishers--
      p.publisher = false
    }
    const lostSet = new Set(lost)
    room.producers = room.producers.filter((x) => !lostSet.has(x.owner))
    for (const p of room.members) {
      if (lostSet.has(p) || !p.placed) continue
      if (p.extra !== null) {
        for (const [r, t] of p.extra) if (!this.hasTransport(t)) p.extra.delete(r)
      }
      for (const producer of room.producers) {
        if (producer.owner === p) continue
        if (!HashMap.has(this.snapshot.consumers, this.consumerId(p, producer))) this.consumeOne(p, producer)
      }
    }
    for (const p of lost) {
      if (!p.present) continue
      this.reconnects++
      this.admit(p)
    }
  }

  // --- Load reports and metrics ------------------------------------------------------------

  private report(): void {
    const now = this.now
    const interval = this.scenario.reportIntervalSeconds
    const reports: Array<{ worker: WorkerId; load: number; at: number }> = []
    let inUse = 0
    let running = 0
    let demand = 0
    let pipes = 0
    let consumers = 0
    let maxLoad = 0
    let sumLoad = 0
    let nodesInUse = 0
    this.nodeMark.fill(0)
    for (const w of HashMap.values(this.snapshot.workers)) {
      if (!w.alive) continue
      running++
      const st = this.stats.get(this.snapshot, w)
      demand += st.demand
      pipes += st.pipesIn
      consumers += st.consumers
      if (st.inUse) {
        inUse++
        this.loadHist.add(st.load)
        sumLoad += st.load
        if (st.load > maxLoad) maxLoad = st.load
        const n = this.nodeByIdMap.get(w.node)
        if (n !== undefined && this.nodeMark[n.index] === 0) {
          this.nodeMark[n.index] = 1
          nodesInUse++
        }
      }
      const over = st.load > 100
      if (over) {
        if (!st.over) this.overloadEvents++
        this.overloadedWorkerSeconds += interval
      }
      st.over = over
      if (st.load !== w.load || w.reserved !== 0) reports.push({ worker: w.id, load: st.load, at: now })
    }
    const lowerBound = Math.ceil(demand / this.options.watermark - 1e-9)
    this.workerSeconds += inUse * interval
    if (inUse > this.peakWorkers) this.peakWorkers = inUse
    if (running > this.peakWorkersRunning) this.peakWorkersRunning = running
    if (nodesInUse > this.peakNodes) this.peakNodes = nodesInUse
    if (lowerBound > this.peakLowerBound) this.peakLowerBound = lowerBound
    if (pipes >= this.peakPipes) {
      this.peakPipes = pipes
      this.pipesLowerBoundAtPeak = this.pipesLowerBound()
    }
    if (consumers > this.peakConsumers) {
      this.peakConsumers = consumers
      if (consumers >= this.treeCapturedAt * 1.25 || this.tree === null) {
        this.treeCapturedAt = consumers
        this.captureTree()
      }
    }
    this.series.push({
      t: now / 1000,
      workersInUse: inUse,
      workersRunning: running,
      nodesInUse,
      workersLowerBound: lowerBound,
      meanLoad: inUse === 0 ? 0 : sumLoad / inUse,
      maxLoad,
      consumers,
      pipes
    })
    const rss = process.memoryUsage.rss()
    if (rss > this.peakRss) this.peakRss = rss
    if (this.scenario.reportDelaySeconds === 0) this.deliver(reports)
    else if (reports.length > 0)
      this.heap.push(now + this.scenario.reportDelaySeconds * 1000, { k: "deliver", reports })
  }

  private deliver(reports: ReadonlyArray<{ worker: WorkerId; load: number; at: number }>): void {
    for (const r of reports) {
      const before = lookup(this.snapshot.workers, r.worker)
      if (before === undefined) continue
      const unchanged = this.stats.get(this.snapshot, before).ref === before
      this.emit({ _tag: "LoadReported", worker: r.worker, load: r.load, at: r.at })
      const after = lookup(this.snapshot.workers, r.worker)!
      if (unchanged) this.stats.rebase(after)
      if (effectiveLoad(after) < this.options.watermark) this.touchNode(after.node)
    }
    this.stats.prune(this.snapshot)
  }

  /** Fewest pipes: per room, each producer must reach every Router the room needs at the watermark. */
  private pipesLowerBound(): number {
    const c = this.options.costs
    let total = 0
    for (const g of this.groups) {
      for (const room of g.rooms) {
        const members = room.placedCount
        if (members === 0 || room.producers.length === 0) continue
        let demand = members * c.transport
        for (const pr of room.producers) {
          const f = this.factors[pr.kind]
          demand += (c.producer + (members - 1) * c.consumer) * f
        }
        const routers = Math.ceil(demand / this.options.watermark - 1e-9)
        total += room.producers.length * Math.max(0, routers - 1)
      }
    }
    return total
  }

  /** Keeps a drawing of the largest stream tree (most hops, then most consumers). */
  private captureTree(): void {
    let best: { id: ProducerId; size: number; consumers: number } | undefined
    for (const [id, tree] of this.snapshot.trees) {
      const size = HashMap.size(tree)
      if (best !== undefined && size < best.size) continue
      let consumers = 0
      for (const hop of HashMap.values(tree)) consumers += hop.consumers
      if (best === undefined || size > best.size || consumers > best.consumers) best = { id, size, consumers }
    }
    if (best === undefined) return
    const tree = lookup(this.snapshot.trees, best.id)!
    const producer = lookup(this.snapshot.producers, best.id)!
    const hops = []
    for (const hop of HashMap.values(tree)) {
      const w = workerOfRouter(this.snapshot, hop.router)
      hops.push({
        router: hop.router,
        parent: hop.parent,
        depth: hop.depth,
        consumers: hop.consumers,
        worker: w?.id ?? "?",
        node: w?.node ?? "?",
        load: w === undefined ? 0 : this.stats.get(this.snapshot, w).load
      })
    }
    hops.sort((a, b) => a.depth - b.depth || (a.router < b.router ? -1 : 1))
    this.tree = { producer: best.id, kind: producer.kind, atSeconds: this.now / 1000, hops }
  }

  // --- The loop ---------------------------------------------------------------------------

  run(policy: SimPolicy): SimResult {
    this.policy = policy
    const wall0 = performance.now()
    this.setup()
    const interval = this.scenario.reportIntervalSeconds * 1000
    const onProgress = this.engineOptions.onProgress
    let steps = 0
    while (this.heap.size > 0) {
      const next = this.heap.peekTime()
      if (next > this.durationMs) break
      const entry = this.heap.pop()!
      this.clock.advanceTo(entry.at)
      const item = entry.item
      switch (item.k) {
        case "arrival":
          this.join(item.group)
          this.scheduleArrival(item.group, this.now)
          break
        case "join":
          this.join(item.group)
          break
        case "leave":
          this.leave(item.p)
          break
        case "report":
          this.report()
          if (this.now + interval <= this.durationMs) this.heap.push(this.now + interval, { k: "report" })
          break
        case "deliver":
          this.deliver(item.reports)
          break
        case "scaleDown": {
          this.policy.tick(this.now)
          const every = this.scenario.scaleDownIntervalSeconds * 1000
          if (this.now + every <= this.durationMs) this.heap.push(this.now + every, { k: "scaleDown" })
          break
        }
        case "node":
          this.nodeEvent(item.ev)
          break
        case "worker":
          this.failWorkers(item.ev)
          break
        case "repair":
          for (const room of item.rooms) this.repair(room)
          break
      }
      if (onProgress !== undefined && (++steps & 0x3fff) === 0) onProgress(this.now / this.durationMs)
    }
    this.clock.advanceTo(this.durationMs)
    this.report()
    // The drawn tree: the one at the end, unless consumers had peaked well above it.
    if (this.series.length > 0 && this.series[this.series.length - 1]!.consumers >= 0.9 * this.peakConsumers)
      this.captureTree()
    onProgress?.(1)
    const wallSeconds = (performance.now() - wall0) / 1000
    const rss = Math.max(this.peakRss, process.memoryUsage.rss())
    let depthCount = 0
    let depthSum = 0
    const depthHistogram: Array<number> = []
    for (let d = 0; d < this.depthHist.length; d++) {
      const n = this.depthHist[d] ?? 0
      depthHistogram.push(n)
      depthCount += n
      depthSum += n * d
    }
    return {
      scenario: this.scenario.name,
      policy: policy.name,
      seed: this.engineOptions.seed ?? this.scenario.seed,
      simulatedSeconds: this.scenario.durationSeconds,
      peakWorkers: this.peakWorkers,
      peakWorkersRunning: this.peakWorkersRunning,
      peakNodes: this.peakNodes,
      workersLowerBound: this.peakLowerBound,
      workerSeconds: this.workerSeconds,
      cpu: { mean: this.loadHist.mean(), p95: this.loadHist.quantile(0.95), max: this.loadHist.max },
      overloadEvents: this.overloadEvents,
      overloadedWorkerSeconds: this.overloadedWorkerSeconds,
      pipeConsumers: this.peakPipes,
      pipesLowerBound: this.pipesLowerBoundAtPeak,
      pipesCreated: this.pipesCreated,
      maxDepth: depthHistogram.length === 0 ? 0 : depthHistogram.length - 1,
      meanDepth: depthCount === 0 ? 0 : depthSum / depthCount,
      depthHistogram,
      joins: this.joins,
      rejected: this.rejected,
      rejectedConsumers: this.rejectedConsumers,
      reconnects: this.reconnects,
      consumersCreated: this.consumersCreated,
      peakConsumers: this.peakConsumers,
      events: this.events,
      decisions: this.decisions,
      decisionsPerSecond: this.decisionMs === 0 ? 0 : this.decisions / (this.decisionMs / 1000),
      meanDecisionMicros: this.decisions === 0 ? 0 : (this.decisionMs * 1000) / this.decisions,
      wallSeconds,
      peakRssBytes: rss,
      series: this.series,
      tree: this.tree
    }
  }
}

/** Helper for policies: the empty set of Routers. */
export const noRouters = HashSet.empty<RouterId>()
