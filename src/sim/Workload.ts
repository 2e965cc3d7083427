/**
 * The workload a scenario describes, played against a policy: groups of rooms and their
 * seats, participants arriving (Poisson arrivals thinned by a rate profile, and bursts),
 * staying and leaving; each (re)join admitted through the policy (transport, producers,
 * consumers) or rejected; Nodes added, drained or failing and Workers failing, after which
 * the clients that lost their transport reconnect and the others re-consume what they lost;
 * and the policy's relocations, each carried out as a reconnect of one participant (its
 * transport closed, a new one opened on the target, the same producers consumed there, its
 * own producers published again and consumed by the others).
 *
 * Who sits in which room when, and who publishes, come from the scenario and its seed
 * alone, never from the policy: a rejected participant keeps its seat and its role (the
 * demand, see `Demand`) and leaves when it would have left; a participant whose transport
 * was lost in a failure rejoins in the same role. The policy's decisions only say whether
 * the media are placed.
 */
import { HashMap } from "effect"
import type { MafaldaRouterId, NodeId, RouterId, TransportId, WorkerId } from "../core/Ids.js"
import type { Made } from "../core/interpret.js"
import { type Move, type RelocationReason, relocationPlan, targetKey } from "../core/relocation.js"
import type { MediaKind } from "../core/Snapshot.js"
import { lookup, mafaldaRoutersOnWorkers, workerOfRouter } from "../core/Snapshot.js"
import type { SimCluster, SimNode } from "./Cluster.js"
import { Demand } from "./Demand.js"
import type { Scheduler } from "./EventLoop.js"
import type { Prng } from "./Prng.js"
import type { SimPolicy } from "./policies/Policy.js"
import type { GroupState, Participant, ProducerRef, Room } from "./Rooms.js"
import type { NodeEvent, Scenario, SpreadDelay, WorkerFailure } from "./Scenario.js"

/** What the workload schedules. */
export type WorkloadItem =
  | { readonly k: "arrival"; readonly group: GroupState }
  | { readonly k: "join"; readonly group: GroupState }
  | { readonly k: "joinRoom"; readonly room: Room }
  | { readonly k: "end"; readonly room: Room }
  | { readonly k: "promote"; readonly group: GroupState; readonly count: number }
  | { readonly k: "leave"; readonly p: Participant }
  | { readonly k: "node"; readonly ev: NodeEvent }
  | { readonly k: "worker"; readonly ev: WorkerFailure }
  | { readonly k: "repair"; readonly rooms: ReadonlyArray<Room>; readonly failedAt: number }
  | { readonly k: "rejoin"; readonly p: Participant }

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

export class Workload {
  readonly groups: Array<GroupState> = []
  /** The scenario's demand and lower bounds. */
  readonly demand: Demand
  private policy!: SimPolicy
  private nextParticipant = 0
  private readonly durationMs: number

  // Counters.
  joins = 0
  rejected = 0
  rejectedConsumers = 0
  reconnects = 0
  readonly relocationsByReason: Record<RelocationReason, number> = {
    Overload: 0,
    Drain: 0,
    WorkerLost: 0,
    Consolidate: 0
  }
  /** Rooms by id (for relocations, which name a transport and its room). */
  private readonly roomById = new Map<MafaldaRouterId, Room>()
  /** Draws each reconnecting client's delay, when the scenario spreads them. */
  private rejoinPrng: Prng | undefined

  constructor(
    private readonly scenario: Scenario,
    private readonly cluster: SimCluster,
    private readonly scheduler: Scheduler<WorkloadItem>,
    private readonly prng: Prng
  ) {
    this.durationMs = scenario.durationSeconds * 1000
    const rooms = scenario.rooms.reduce((n, group) => n + group.rooms, 0)
    this.demand = new Demand(cluster.options, cluster.factors, rooms)
  }

  private get now(): number {
    return this.scheduler.now
  }

  /** The policy that admits participants. */
  playAgainst(policy: SimPolicy): void {
    this.policy = policy
  }

  handle(item: WorkloadItem): void {
    switch (item.k) {
      case "arrival":
        this.join(item.group)
        this.scheduleArrival(item.group, this.now)
        break
      case "join":
        this.join(item.group)
        break
      case "joinRoom":
        if (item.room.openSlot >= 0) this.join(item.room.group, item.room)
        break
      case "promote":
        this.promote(item.group, item.count)
        break
      case "end":
        // A room of fixed length ends: everyone present leaves.
        for (const p of [...item.room.members]) this.leave(p)
        break
      case "leave":
        this.leave(item.p)
        break
      case "node":
        this.nodeEvent(item.ev)
        break
      case "worker":
        this.failWorkers(item.ev)
        break
      case "repair":
        for (const room of item.rooms) this.repair(room, item.failedAt)
        break
      case "rejoin":
        // Still here and not placed since (a client lost twice waits for its first delay).
        if (item.p.present && !item.p.placed) {
          this.reconnects++
          this.admit(item.p)
        }
        break
    }
  }

  // --- Set-up ------------------------------------------------------------------------------

  /** Draws the rooms of each group and schedules the first arrival and the bursts. */
  scheduleRooms(): void {
    let roomIndex = 0
    this.scenario.rooms.forEach((spec, gi) => {
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
          roleHolders: spec.roles.map(() => 0),
          published: { audio: 0, video: 0 },
          videoPublishers: 0,
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
        this.roomById.set(room.id, room)
        group.rooms.push(room)
        group.open.push(room)
      }
      this.groups.push(group)
      if (spec.joinsPerSecond > 0 && maxFactor > 0) this.scheduleArrival(group, spec.startSeconds * 1000)
      if (spec.scheduled !== undefined) {
        const { startSeconds, everySeconds, lengthSeconds, joinWithinSeconds } = spec.scheduled
        for (const room of group.rooms) {
          const start = (startSeconds + (room.index - group.rooms[0]!.index) * everySeconds) * 1000
          const end = start + lengthSeconds * 1000
          for (let j = 0; j < room.size; j++) {
            const at = start + prng.next() * joinWithinSeconds * 1000
            if (at <= this.durationMs && at < end) this.scheduler.schedule(at, { k: "joinRoom", room })
          }
          if (end <= this.durationMs) this.scheduler.schedule(end, { k: "end", room })
        }
      }
      for (const promotion of spec.promotions) {
        const at = promotion.atSeconds * 1000
        if (at <= this.durationMs)
          this.scheduler.schedule(at, { k: "promote", group, count: promotion.count })
      }
      for (const burst of spec.bursts) {
        for (let j = 0; j < burst.joins; j++) {
          const at = (burst.atSeconds + prng.next() * burst.withinSeconds) * 1000
          if (at <= this.durationMs) this.scheduler.schedule(at, { k: "join", group })
        }
      }
    })
  }

  /** Schedules the scenario's Node events and Worker failures. */
  scheduleFailures(): void {
    // Only a spread of delays draws from the seed: a scenario with one delay keeps its draws.
    if (typeof this.scenario.rejoinDelaySeconds !== "number") this.rejoinPrng = this.prng.fork(-1)
    for (const ev of this.scenario.nodeEvents) this.scheduler.schedule(ev.atSeconds * 1000, { k: "node", ev })
    for (const ev of this.scenario.workerFailures)
      this.scheduler.schedule(ev.atSeconds * 1000, { k: "worker", ev })
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
    this.scheduler.schedule(t, { k: "arrival", group })
  }

  // --- Seats -------------------------------------------------------------------------------

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

  // --- Participants ------------------------------------------------------------------------

  /** A participant joins a room of the group with a free seat (or `into`, which has one). */
  private join(group: GroupState, into?: Room): void {
    const open = group.open
    if (open.length === 0) return
    const room =
      into ??
      (group.spec.fill === "random"
        ? open[Math.floor(group.prng.next() * open.length)]!
        : this.firstOpen(group))
    const p: Participant = {
      num: this.nextParticipant++,
      room,
      publisher: false,
      kinds: [],
      role: -1,
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
    // The first participants present publish, as the scenario says, whether placed or not.
    p.publisher = room.publishers < room.publishersWanted
    if (p.publisher) this.takeRole(p)
    this.demand.changed(room, 1)
    if (!room.opened) {
      this.policy.openRoom(room)
      room.opened = true
    }
    this.admit(p)
    if (group.spec.meanStaySeconds !== undefined) {
      this.scheduler.schedule(this.now + group.prng.exponential(group.spec.meanStaySeconds * 1000), {
        k: "leave",
        p
      })
    }
  }

  /** A new publisher takes the first role with a free seat (else none) and its kinds. */
  private takeRole(p: Participant): void {
    const room = p.room
    const roles = room.group.spec.roles
    room.publishers++
    p.role = -1
    for (let i = 0; i < roles.length; i++) {
      if (room.roleHolders[i]! < roles[i]!.count) {
        p.role = i
        room.roleHolders[i]!++
        break
      }
    }
    p.kinds = p.role < 0 ? room.group.spec.produces : roles[p.role]!.produces
    this.countKinds(p, 1)
  }

  private countKinds(p: Participant, delta: number): void {
    const room = p.room
    for (const kind of p.kinds) room.published[kind] += delta
    if (p.kinds.includes("video")) room.videoPublishers += delta
  }

  /** Places a (re)joining participant: transport, producers, consumers. */
  private admit(p: Participant): boolean {
    const room = p.room
    this.joins++
    if (!this.policy.join(p)) {
      this.rejected++
      p.placed = false
      return false
    }
    p.placed = true
    room.placedCount++
    this.connect(p, p.publisher ? p.kinds : [])
    return true
  }

  /**
   * A placed participant's media on its (new) transport: it consumes the room's producers,
   * then publishes `kinds`, each consumed by the room's other placed members.
   */
  private connect(p: Participant, kinds: ReadonlyArray<MediaKind>): void {
    const room = p.room
    const lastN = room.group.spec.lastN
    if (lastN !== undefined) {
      this.connectLastN(p, kinds, lastN)
      return
    }
    for (const producer of room.producers) if (producer.owner !== p) this.consumeOne(p, producer)
    this.publish(p, kinds)
  }

  /** `p` publishes `kinds`, each consumed by the room's other placed members (within last-N). */
  private publish(p: Participant, kinds: ReadonlyArray<MediaKind>): void {
    const room = p.room
    const lastN = room.group.spec.lastN
    for (const kind of kinds) {
      const producer = this.policy.produce(p, kind)
      if (producer === undefined) continue
      for (const other of room.members) {
        if (other === p || !other.placed) continue
        if (lastN !== undefined && kind === "video") this.refreshVideo(other, lastN)
        else this.consumeOne(other, producer)
      }
    }
  }

  /** The same with last-N: every audio producer, and the room's latest N video producers. */
  private connectLastN(p: Participant, kinds: ReadonlyArray<MediaKind>, lastN: number): void {
    const room = p.room
    for (const producer of room.producers)
      if (producer.owner !== p && producer.kind !== "video") this.consumeOne(p, producer)
    this.refreshVideo(p, lastN)
    this.publish(p, kinds)
  }

  /**
   * In each room of the group with someone present, the `count` earliest joiners present
   * that do not publish become publishers (their role's kinds), and publish if placed.
   */
  private promote(group: GroupState, count: number): void {
    for (const room of group.rooms) {
      if (room.members.length === 0) continue
      const viewers = room.members.filter((p) => !p.publisher).sort((a, b) => a.num - b.num)
      const promoted = viewers.slice(0, count)
      if (promoted.length === 0) continue
      room.publishersWanted += promoted.length
      for (const p of promoted) {
        p.publisher = true
        this.takeRole(p)
      }
      this.demand.changed(room, 0)
      for (const p of promoted) if (p.placed) this.publish(p, p.kinds)
    }
  }

  /**
   * Last-N: `p` consumes the room's latest `lastN` video producers but its own (those it
   * lacks are created) and no other (those it has are closed).
   */
  private refreshVideo(p: Participant, lastN: number): void {
    const room = p.room
    let kept = 0
    let closed = false
    for (let i = room.producers.length - 1; i >= 0; i--) {
      const producer = room.producers[i]!
      if (producer.kind !== "video" || producer.owner === p) continue
      const id = this.cluster.consumerId(p, producer)
      const has = HashMap.has(this.cluster.snapshot.consumers, id)
      if (kept < lastN) {
        kept++
        if (!has) this.consumeOne(p, producer)
      } else if (has) {
        this.cluster.emit({ _tag: "ConsumerClosed", consumer: id, at: this.now })
        closed = true
      }
    }
    if (closed) for (const n of this.nodesOf(p)) this.cluster.touchNode(n)
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
    const snapshot = this.cluster.snapshot
    const out: Array<NodeId> = []
    const add = (t: TransportId | null) => {
      if (t === null) return
      const tr = lookup(snapshot.transports, t)
      const node = tr === undefined ? undefined : workerOfRouter(snapshot, tr.router)?.node
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
    this.cluster.closeTransport(p.transport)
    if (p.extra !== null) for (const t of p.extra.values()) this.cluster.closeTransport(t)
    p.transport = null
    p.router = null
    p.extra = null
    const hadVideo = p.producers.some((x) => x.kind === "video")
    this.forgetProducers(p)
    if (p.publisher) this.leaveRole(p)
    this.removeMember(p)
    this.demand.changed(room, -1)
    for (const n of nodes) this.cluster.touchNode(n)
    if (room.members.length === 0) this.closeRoom(room)
    else if (hadVideo && room.group.spec.lastN !== undefined) {
      // The others move up to the next latest video producers.
      for (const other of room.members) if (other.placed) this.refreshVideo(other, room.group.spec.lastN)
    }
  }

  private leaveRole(p: Participant): void {
    const room = p.room
    room.publishers--
    if (p.role >= 0) room.roleHolders[p.role]!--
    this.countKinds(p, -1)
    p.publisher = false
    p.kinds = []
    p.role = -1
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

  // --- Relocation --------------------------------------------------------------------------

  /**
   * Carries out the policy's moves, in order, as the shell does: the target made as the
   * core's `relocationPlan` says (the moves to one new Worker share it), then the
   * participant reconnects there. A move whose transport or target is gone by then is
   * dropped, uncounted.
   */
  relocate(moves: ReadonlyArray<Move>): void {
    const made = new Map<string, Made>()
    for (const move of moves) {
      const p = this.holderOf(move.transport, move.mafaldaRouter)
      if (p === undefined) continue
      const key = targetKey(move.to)
      const plan = relocationPlan(this.cluster.snapshot, move, key === undefined ? undefined : made.get(key))
      if (plan === undefined) continue
      const router = this.cluster.carryOut(plan)
      const worker = workerOfRouter(this.cluster.snapshot, router)
      if (key !== undefined && worker !== undefined && !made.has(key)) made.set(key, { worker: worker.id })
      this.reconnect(p, router)
      p.room.nodes.add(plan.node)
      this.relocationsByReason[move.reason]++
    }
  }

  /** The present, placed participant whose transport this is (policies with one transport each). */
  private holderOf(transport: TransportId, room: MafaldaRouterId): Participant | undefined {
    const r = this.roomById.get(room)
    if (r === undefined) return undefined
    for (const p of r.members) if (p.placed && p.extra === null && p.transport === transport) return p
    return undefined
  }

  /** The participant's transport closes and a new one opens on `router`; its media follow. */
  private reconnect(p: Participant, router: RouterId): void {
    const kinds = p.producers.map((x) => x.kind)
    const nodes = this.nodesOf(p)
    this.cluster.closeTransport(p.transport)
    this.forgetProducers(p)
    p.transport = this.cluster.createTransport(p.room, router)
    p.router = router
    this.connect(p, kinds)
    for (const n of nodes) this.cluster.touchNode(n)
  }

  // --- Failures ----------------------------------------------------------------------------

  private roomsOnWorkers(workers: Iterable<WorkerId>): Array<Room> {
    const ids = new Set<string>(mafaldaRoutersOnWorkers(this.cluster.snapshot, workers))
    const out: Array<Room> = []
    for (const g of this.groups) for (const room of g.rooms) if (ids.has(room.id)) out.push(room)
    return out
  }

  private liveWorkersByLoad(): Array<{ id: WorkerId; load: number }> {
    const snapshot = this.cluster.snapshot
    const out: Array<{ id: WorkerId; load: number }> = []
    for (const w of HashMap.values(snapshot.workers)) {
      if (w.alive) out.push({ id: w.id, load: this.cluster.stats.get(snapshot, w).load })
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
      const node = lookup(this.cluster.snapshot.workers, worker)?.node
      this.cluster.emit({ _tag: "WorkerDied", worker, at: this.now })
      if (node !== undefined) this.cluster.touchNode(node)
    }
    this.scheduleRepair(rooms)
  }

  private nodeEvent(ev: NodeEvent): void {
    const cluster = this.cluster
    if (ev.action === "add") {
      for (let i = 0; i < ev.count; i++) cluster.addNode(ev.cpus ?? this.scenario.nodes.cpus)
      return
    }
    for (let i = 0; i < ev.count; i++) {
      const up = cluster.nodes.filter((n) => cluster.nodeUp(n.id))
      let target: SimNode | undefined
      if (ev.node !== undefined) target = i === 0 ? cluster.nodes[ev.node] : undefined
      else {
        let best = -1
        for (const n of up) {
          let load = 0
          for (const wid of lookup(cluster.snapshot.nodes, n.id)!.workers)
            load += cluster.workerStat(wid)?.load ?? 0
          if (load > best) {
            best = load
            target = n
          }
        }
      }
      if (target === undefined || !cluster.nodeUp(target.id)) continue
      if (ev.action === "drain") {
        cluster.emit({ _tag: "NodeDraining", node: target.id, at: this.now })
      } else {
        const rooms = this.roomsOnWorkers(lookup(cluster.snapshot.nodes, target.id)!.workers)
        cluster.emit({ _tag: "NodeDown", node: target.id, at: this.now })
        this.scheduleRepair(rooms)
      }
    }
  }

  /**
   * The rooms are repaired after the rejoin delay, or with a spread of delays, after the
   * shortest one (each lost client then reconnects after its own; see `repair`).
   */
  private scheduleRepair(rooms: ReadonlyArray<Room>): void {
    if (rooms.length === 0) return
    const delay = this.scenario.rejoinDelaySeconds
    const after = typeof delay === "number" ? delay : delay.min
    this.scheduler.schedule(this.now + after * 1000, { k: "repair", rooms, failedAt: this.now })
  }

  /** A reconnecting client's own delay in ms, drawn from the scenario's spread. */
  private drawRejoinDelay(spread: SpreadDelay): number {
    const prng = this.rejoinPrng!
    const seconds =
      spread.distribution === "uniform"
        ? spread.min + prng.next() * (spread.max - spread.min)
        : Math.min(spread.min + prng.exponential(spread.mean), spread.max ?? Number.POSITIVE_INFINITY)
    return seconds * 1000
  }

  /**
   * Clients of a failed Worker or Node reconnect; the others re-consume what they lost. With
   * a spread of rejoin delays, each lost client reconnects at the failure time plus its own
   * delay (a `rejoin`), in the order of the draws.
   */
  private repair(room: Room, failedAt: number): void {
    if (!room.opened) return
    const snapshot = this.cluster.snapshot
    room.producers = room.producers.filter((x) => HashMap.has(snapshot.producers, x.id))
    const lost: Array<Participant> = []
    for (const p of room.members) {
      if (!p.placed || this.policy.connected(p)) continue
      lost.push(p)
    }
    for (const p of lost) {
      // A reconnecting client starts afresh: what survived of its old session goes.
      if (p.extra !== null) for (const t of p.extra.values()) this.cluster.closeTransport(t)
      p.placed = false
      room.placedCount--
      p.transport = null
      p.router = null
      p.extra = null
      p.producers = []
    }
    const lostSet = new Set(lost)
    room.producers = room.producers.filter((x) => !lostSet.has(x.owner))
    for (const p of room.members) {
      if (lostSet.has(p) || !p.placed) continue
      if (p.extra !== null) {
        for (const [r, t] of p.extra) if (!this.cluster.hasTransport(t)) p.extra.delete(r)
      }
      const lastN = room.group.spec.lastN
      for (const producer of room.producers) {
        if (producer.owner === p || (lastN !== undefined && producer.kind === "video")) continue
        if (!HashMap.has(this.cluster.snapshot.consumers, this.cluster.consumerId(p, producer)))
          this.consumeOne(p, producer)
      }
      if (lastN !== undefined) this.refreshVideo(p, lastN)
    }
    const delay = this.scenario.rejoinDelaySeconds
    if (typeof delay !== "number") {
      for (const p of lost)
        this.scheduler.schedule(Math.max(this.now, failedAt + this.drawRejoinDelay(delay)), {
          k: "rejoin",
          p
        })
      return
    }
    for (const p of lost) {
      if (!p.present) continue
      this.reconnects++
      this.admit(p)
    }
  }
}
