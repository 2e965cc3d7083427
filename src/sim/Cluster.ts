/**
 * The simulated cluster, as policies see and change it. Every change goes through the
 * core's `applyEvent`, whatever the policy, so all policies share the snapshot model, the
 * cost model (reservations) and the metrics. The adapter also makes the ids a backend would
 * make (Workers, Routers, transports, producers), carries out the core's placement plans and
 * pipes through the core's interpreter (`interpret.ts`, as the production shell does), keeps
 * the Nodes and their CPUs (slots, for policies with a fixed pool of Workers), and a tracker
 * index of the Nodes that may have room.
 *
 * The "true" load of a Worker is counted from what is actually placed on it (see
 * `WorkerStats`); policies only see it through `LoadReported` events at the report
 * interval (possibly delayed), plus the reservations `applyEvent` charges in between.
 */
import { Either, HashMap } from "effect"
import { applyEvent } from "../core/applyEvent.js"
import type { ClusterEvent } from "../core/ClusterEvent.js"
import type { PlannedPipe } from "../core/consumerPlacement.js"
import type {
  ConsumerId,
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
  workerOfRouter
} from "../core/Snapshot.js"
import { workerLimit } from "../core/transportPlacement.js"
import type { Participant, ProducerRef, Room } from "./Rooms.js"
import type { VirtualClock } from "./VirtualClock.js"
import { type KindFactors, type WorkerStat, WorkerStatsCache } from "./WorkerStats.js"

/** An event the core refused: a bug in the simulator or a policy, never a scenario issue. */
export class SimulatorBug extends Error {
  override readonly name = "SimulatorBug"
}

export const WORKER_SETTINGS = "w" as SettingsKey

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

/** A Worker's true load, sampled at `at`, on its way to the policy. */
export interface LoadReport {
  readonly worker: WorkerId
  readonly load: number
  readonly at: number
}

/** What a policy may read and do: the cluster adapter's face towards policies. */
export interface PolicyCluster {
  readonly options: PolicyOptions
  readonly snapshot: ClusterSnapshot
  readonly nodes: ReadonlyArray<SimNode>
  readonly slots: ReadonlyArray<Slot>
  nodeUp(id: NodeId): boolean
  /** Up to `k` Nodes with room, lowest index first (fills Nodes in order), skipping `exclude`. */
  nodesWithRoom(k: number, exclude?: ReadonlySet<NodeId> | NodeId | null): Array<NodeId>
  /** The Node may have room again (something left it, a report came, a Worker closed). */
  touchNode(id: NodeId): void
  /** Runs a pure decision and accounts for its time. */
  decide<A>(f: () => A): A
  /** Applies one cluster event through the core. */
  emit(event: ClusterEvent): void
  /** Carries out a placement plan; returns the Router the transport goes to. */
  carryOut(plan: PlacementPlan): RouterId
  /** A slot's Worker, started when the slot has none (or it died). */
  slotWorker(slot: Slot): WorkerId
  workerStat(worker: WorkerId): WorkerStat | undefined
  createRouter(worker: WorkerId, settings: SettingsKey): RouterId
  register(room: Room, router: RouterId): void
  openMafaldaRouter(room: Room, routerSettings: SettingsKey): void
  closeMafaldaRouter(room: Room, closeRouters: boolean): void
  createTransport(room: Room, router: RouterId): TransportId
  hasTransport(t: TransportId | null): boolean
  /** Creates a producer on the participant's transport and records it in the room. */
  createProducer(p: Participant, kind: MediaKind): ProducerRef | undefined
  /** Creates the consumer of `producer` for `p` on `transport` (whose Router must carry it). */
  createConsumer(p: Participant, transport: TransportId, router: RouterId, producer: ProducerRef): void
  /** Makes the pipes a decision planned (the core's `pipeEvents`). */
  pipes(pipes: ReadonlyArray<PlannedPipe>): void
  pipe(producer: ProducerId, from: RouterId, to: RouterId): void
  carries(router: RouterId, producer: ProducerId): boolean
}

export class SimCluster implements PolicyCluster {
  snapshot: ClusterSnapshot = emptySnapshot
  readonly nodes: Array<SimNode> = []
  readonly nodeByIdMap = new Map<NodeId, SimNode>()
  readonly slots: Array<Slot> = []
  readonly stats: WorkerStatsCache
  /** Named in a `SimulatorBug`. */
  policyName = ""

  // Tracker: Nodes that may have room, for the entry-Node choice (see `nodesWithRoom`).
  private maybeRoom = new Uint8Array(64)
  private roomCursor = 0

  // Ids.
  private nextWorker = 0
  private nextRouter = 0
  private nextTransport = 0
  private nextProducer = 0

  // Counters.
  events = 0
  decisions = 0
  decisionMs = 0
  consumersCreated = 0
  pipesCreated = 0
  /** Consumers created, by depth of their Router in the producer's tree. */
  readonly depthHist: Array<number> = []

  constructor(
    readonly options: PolicyOptions,
    readonly factors: KindFactors,
    private readonly clock: VirtualClock
  ) {
    this.stats = new WorkerStatsCache(options.costs, factors)
  }

  get now(): number {
    return this.clock.unsafeCurrentTimeMillis()
  }

  emit(event: ClusterEvent): void {
    const r = applyEvent(this.snapshot, event, this.options.costs)
    if (Either.isLeft(r)) throw new SimulatorBug(`${this.policyName}: ${r.left.message}`)
    this.snapshot = r.right
    this.events++
  }

  emitAll(events: ReadonlyArray<ClusterEvent>): void {
    for (const event of events) this.emit(event)
  }

  decide<A>(f: () => A): A {
    const t0 = performance.now()
    const a = f()
    this.decisionMs += performance.now() - t0
    this.decisions++
    return a
  }

  // --- Nodes, Workers, Routers ----------------------------------------------------------

  addNode(cpus: number): void {
    const index = this.nodes.length
    const node: SimNode = { id: `n${index}` as NodeId, index, cpus }
    this.nodes.push(node)
    this.nodeByIdMap.set(node.id, node)
    if (index >= this.maybeRoom.length) {
      const grown = new Uint8Array(this.maybeRoom.length * 2)
      grown.set(this.maybeRoom)
      this.maybeRoom = grown
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

  slotWorker(slot: Slot): WorkerId {
    if (slot.worker !== null && HashMap.has(this.snapshot.workers, slot.worker)) return slot.worker
    slot.worker = this.startWorker(slot.node)
    return slot.worker
  }

  workerStat(worker: WorkerId): WorkerStat | undefined {
    const w = lookup(this.snapshot.workers, worker)
    return w === undefined ? undefined : this.stats.get(this.snapshot, w)
  }

  // --- Rooms (Mafalda Routers), transports, producers, consumers, pipes -----------------

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

  closeTransport(t: TransportId | null): void {
    if (t !== null && HashMap.has(this.snapshot.transports, t))
      this.emit({ _tag: "TransportClosed", transport: t, at: this.now })
  }

  hasTransport(t: TransportId | null): boolean {
    return t !== null && HashMap.has(this.snapshot.transports, t)
  }

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

  // --- Load reports ---------------------------------------------------------------------

  /** The reports reach the policy: each Worker's reported load becomes its sampled true load. */
  applyLoadReports(reports: ReadonlyArray<LoadReport>): void {
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

  // --- Tracker: Nodes with room -----------------------------------------------------------

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

  touchNode(id: NodeId): void {
    const n = this.nodeByIdMap.get(id)
    if (n === undefined) return
    this.maybeRoom[n.index] = 1
    if (n.index < this.roomCursor) this.roomCursor = n.index
  }

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
}
