/**
 * The simulator and production call the same decision interpreter (issue "Multi-machine"):
 * the same sequence of requests, carried out by both, gets the same decisions, `Delegate`
 * included.
 *
 * One script of requests (a Mafalda Router opened; transports placed one after another, each
 * reaching the first Node, `n0`; producers made and consumed by the other members; transports
 * closed; time passing; scale-down) on three Nodes of few CPUs, with a low watermark, so that
 * `n0`'s one Worker fills and the core delegates to the other Nodes, and consumers there need
 * pipes across Nodes. It is carried out:
 *
 *  1. by the production shell: `Placement`, `SnapshotStore`, `ScaleDown` (`Cluster.layer`, as a
 *     Node runs them) over simulated Workers (`layerSimulated`) on `TestClock`, with the
 *     cluster's own `Delegation` (`ClusterDelegation.layer`, unchanged) delegating to two other
 *     Nodes simulated in memory (`test/support/simulatedPeers.ts`: their `NodeClients` and
 *     `NodeRegistry` over simulated Workers): a delegated plan is carried out there by
 *     `carryOutRemotely` and recorded with its `placementEvents`, a pipe across Nodes goes
 *     through `PipeFrom` on the destination's Node, as in a real cluster. The test plays the
 *     Mafalda Router: it records producers, consumers and closed transports in the store;
 *  2. by the simulator: `SimCluster` (the simulator's `PolicyCluster`) with the `mafalda`
 *     policy, driven step by step with the same requests (the simulator's rooms and
 *     participants made by hand, no scenario, no workload).
 *
 * What is compared, step by step: for each transport, its Node, its Worker and Router (as
 * ordinals: the n-th Worker seen on the Node, the n-th Router seen on the Worker, since the
 * backends make different ids), whether a Worker was started, a Router created or registered,
 * and the Nodes the request was delegated through; for each consumer, whether it is consumed
 * where it is (`ConsumeHere`) or after pipes (`PipeThenConsume`), and each pipe's producer,
 * source and destination Routers (ordinals); the scale-down actions carried out. And after
 * every step, each Worker's effective load.
 *
 * How the loads are kept equal: neither side ever sees a load report, so every load is the
 * cost model's reservations for what was placed (`applyEvent`), charged by the same events in
 * the same order at the same times (`TestClock` and the simulator's `VirtualClock` set to the
 * same time at each step):
 *  - the simulator: its load reports come only from its engine, which is not used here;
 *  - the shell: the `TrackerService` samples every day (the first sample, at time 0, knows no
 *    Worker and reports nothing); the other Nodes' registry records say 0 % reported at time
 *    0, never later than the snapshot's news of their Workers, so that `registryEvents` reports
 *    no load (their Workers come into the snapshot from `carryOutRemotely`'s events only);
 *    scale-down runs only when the script says (its interval is a day).
 * The load of each Worker, compared after every step, shows that both snapshots charge the
 * same. The ids of Nodes, transports, producers and consumers are the same on both sides; the
 * ids of Workers and Routers differ, and the core breaks ties by id: the test checks that both
 * sides' Worker ids and Router ids sort in the same order (the script starts its Workers Node
 * by Node), so any tie is broken alike.
 *
 * Every request reaches `n0`: in production the Mafalda Router's Node decides every
 * placement (`Placement`'s `placeLocked`), and the simulator's `mafalda` policy decides each
 * of a room's requests on the room's home Node (`room.entry`), the same rule; here every
 * room's home is `n0`, as every Mafalda Router of the shell lives there.
 *
 * What it proves: for these requests, the shell and the simulator make the same decisions
 * through the same interpreter (`planTransportPlacement` following `Delegate`,
 * `placementEvents`, `pipeEvents`, `scaleDownEvent`) and record them identically (the loads
 * stay equal), with one difference, asserted as such: the shell's `ScaleDown` leaves an idle
 * Worker of another Node to that Node (`src/layers/ScaleDown.ts`), which the simulator closes.
 *
 * That difference is by design: a Node closes its own idle Workers (`NodeHost`'s idle
 * grace), so the shell's scale-down leaves them alone; the simulator, which plays every
 * Node, closes them with the same core decision.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, HashMap, Layer, TestClock } from "effect"
import * as ClusterDelegation from "../../src/cluster/ClusterDelegation.js"
import type { ClusterEvent } from "../../src/core/ClusterEvent.js"
import type { PlannedPipe } from "../../src/core/consumerPlacement.js"
import {
  ConsumerId,
  MafaldaRouterId,
  NodeId,
  ProducerId,
  type RouterId,
  TransportId,
  type WorkerId
} from "../../src/core/Ids.js"
import type { PlacementPlan } from "../../src/core/interpret.js"
import { type ClusterSnapshot, effectiveLoad, lookup, type MediaKind } from "../../src/core/Snapshot.js"
import type { ScaleDownAction } from "../../src/core/scaleDown.js"
import * as ClusterLayer from "../../src/layers/Cluster.js"
import * as TrackerLayer from "../../src/layers/TrackerService.js"
import { layerSimulated } from "../../src/layers/WorkerService.js"
import { Delegation } from "../../src/services/Delegation.js"
import { Placement } from "../../src/services/Placement.js"
import { ScaleDown } from "../../src/services/ScaleDown.js"
import { SnapshotStore } from "../../src/services/SnapshotStore.js"
import { SimCluster } from "../../src/sim/Cluster.js"
import { mafaldaPolicy } from "../../src/sim/policies/mafalda.js"
import type { Participant, ProducerRef, Room } from "../../src/sim/Rooms.js"
import type { RoomGroup } from "../../src/sim/Scenario.js"
import { VirtualClock } from "../../src/sim/VirtualClock.js"
import * as SimulatedPeers from "../support/simulatedPeers.js"
import { unitCostPolicy } from "../support/unitCostPolicy.js"

// --- The cluster and the policy --------------------------------------------------------------

const policy = unitCostPolicy(1000)

/** The Nodes, in order: the first receives every request. */
const nodes = [
  { node: "n0", cpus: 1 },
  { node: "n1", cpus: 2 },
  { node: "n2", cpus: 1 }
] as const
const entry = NodeId.make(nodes[0].node)

// --- The script ------------------------------------------------------------------------------

/** One request (or the time passing), at its time (ms). */
type Step = { readonly at: number } & (
  | { readonly _tag: "Open"; readonly room: string }
  | { readonly _tag: "Join"; readonly who: number; readonly room: string }
  | { readonly _tag: "Produce"; readonly who: number; readonly kind: MediaKind; readonly producer: number }
  | { readonly _tag: "Consume"; readonly who: number; readonly producer: number }
  | { readonly _tag: "Leave"; readonly who: number }
  | { readonly _tag: "Wait" }
  | { readonly _tag: "ScaleDown" }
)

/** What a script says, before it is expanded into steps. */
type Act =
  | { readonly _tag: "Open"; readonly room: string }
  /** A member joins: its transport is placed, then it consumes every producer of the room. */
  | { readonly _tag: "Join"; readonly who: number; readonly room: string }
  /** A member publishes: its producer is made, then every other member consumes it. */
  | { readonly _tag: "Publish"; readonly who: number; readonly kind: MediaKind }
  | { readonly _tag: "Leave"; readonly who: number }
  | { readonly _tag: "Wait"; readonly millis: number }
  | { readonly _tag: "ScaleDown" }

/** The acts as steps, 10 ms apart (and `Wait`'s time). */
const expand = (acts: ReadonlyArray<Act>): ReadonlyArray<Step> => {
  const steps: Array<Step> = []
  const roomOf = new Map<number, string>()
  const producers: Array<{ readonly num: number; readonly who: number }> = []
  let at = 0
  let next = 0
  const members = (room: string) => Array.from(roomOf).filter(([, r]) => r === room)
  for (const act of acts) {
    at += 10
    switch (act._tag) {
      case "Open":
        steps.push({ _tag: "Open", room: act.room, at })
        break
      case "Join":
        steps.push({ _tag: "Join", who: act.who, room: act.room, at })
        for (const p of producers) {
          if (roomOf.get(p.who) === act.room)
            steps.push({ _tag: "Consume", who: act.who, producer: p.num, at })
        }
        roomOf.set(act.who, act.room)
        break
      case "Publish": {
        const num = next++
        steps.push({ _tag: "Produce", who: act.who, kind: act.kind, producer: num, at })
        producers.push({ num, who: act.who })
        for (const [who] of members(roomOf.get(act.who)!)) {
          if (who !== act.who) steps.push({ _tag: "Consume", who, producer: num, at })
        }
        break
      }
      case "Leave":
        steps.push({ _tag: "Leave", who: act.who, at })
        roomOf.delete(act.who)
        for (let i = producers.length - 1; i >= 0; i--)
          if (producers[i]!.who === act.who) producers.splice(i, 1)
        break
      case "Wait":
        at += act.millis
        steps.push({ _tag: "Wait", at })
        break
      case "ScaleDown":
        steps.push({ _tag: "ScaleDown", at })
        break
    }
  }
  return steps
}

const joins = (room: string, from: number, to: number): Array<Act> =>
  Array.from({ length: to - from + 1 }, (_, i) => ({ _tag: "Join", who: from + i, room }))

const leaves = (...who: ReadonlyArray<number>): Array<Act> => who.map((w) => ({ _tag: "Leave", who: w }))

/**
 * What happens (the same on both sides): m1's members 0-4 fill n0's one Worker; 5-9 are
 * delegated to n1 (a Worker started there) and 10-11 to n1's second Worker, with n0's
 * producers piped to each; room m2 uses n1's Routers (registered), its producer piped between
 * n1's two Workers; 2 and 3 leave n0, so 12 goes back to n0; 13 to n1; 14-17 are delegated to
 * n2 (a Worker started there), n0's producers piped there; room m3: 30 on n1, 31-32 on n2 (its
 * producer piped from n1 to n2), 33-34 rejected: no room anywhere. Then n1's second Worker and
 * n2's empty, and scale-down closes their pipes, then their Routers, then n2's Worker (the
 * simulator only, see above).
 */
const script = expand([
  { _tag: "Open", room: "m1" },
  { _tag: "Join", who: 0, room: "m1" },
  { _tag: "Publish", who: 0, kind: "audio" },
  { _tag: "Join", who: 1, room: "m1" },
  { _tag: "Publish", who: 1, kind: "video" },
  ...joins("m1", 2, 11),
  { _tag: "Open", room: "m2" },
  { _tag: "Join", who: 20, room: "m2" },
  { _tag: "Publish", who: 20, kind: "audio" },
  ...joins("m2", 21, 23),
  ...leaves(2, 3),
  ...joins("m1", 12, 17),
  { _tag: "Open", room: "m3" },
  { _tag: "Join", who: 30, room: "m3" },
  { _tag: "Publish", who: 30, kind: "video" },
  ...joins("m3", 31, 34),
  ...leaves(10, 11, 13, 14, 15, 16, 17, 20, 21, 22, 23, 30, 31, 32, 33, 34),
  { _tag: "Wait", millis: 1500 },
  { _tag: "ScaleDown" },
  { _tag: "Wait", millis: 1500 },
  { _tag: "ScaleDown" },
  { _tag: "Wait", millis: 1500 },
  { _tag: "ScaleDown" }
])

// --- What is compared ------------------------------------------------------------------------

/** A decision carried out, with Workers and Routers as ordinals (see `Labels`). */
type Decision =
  | {
      readonly step: number
      readonly transport: number
      readonly node: string
      readonly worker: string
      readonly router: string
      readonly workerStarted: boolean
      readonly routerCreated: boolean
      readonly registered: boolean
      readonly delegations: ReadonlyArray<string>
    }
  | { readonly step: number; readonly transport: number; readonly rejected: true }
  | {
      readonly step: number
      readonly consumer: string
      readonly decision: "ConsumeHere" | "PipeThenConsume" | "Reject"
      readonly pipes: ReadonlyArray<{ readonly producer: string; readonly from: string; readonly to: string }>
    }
  | { readonly step: number; readonly scaleDown: ReadonlyArray<string> }
  /** A step of a member whose join was rejected (or of its producer): not taken. */
  | { readonly step: number; readonly skipped: Step["_tag"] }

/** A step about a member without a transport (its join rejected, or it left), or its producer. */
const unplaced = (
  step: Step,
  placed: (who: number) => boolean,
  produced: (producer: number) => boolean
): boolean => {
  switch (step._tag) {
    case "Produce":
    case "Leave":
      return !placed(step.who)
    case "Consume":
      return !placed(step.who) || !produced(step.producer)
    default:
      return false
  }
}

/**
 * Workers and Routers named by the order each side first saw them: `n1/w0` is the first Worker
 * seen on Node n1, `n1/w0/r0` the first Router seen on it.
 */
class Labels {
  private readonly names = new Map<string, string>()
  private readonly counts = new Map<string, number>()

  private name(id: string, parent: string, kind: string): string {
    const known = this.names.get(id)
    if (known !== undefined) return known
    const n = this.counts.get(`${parent}/${kind}`) ?? 0
    this.counts.set(`${parent}/${kind}`, n + 1)
    const name = `${parent}/${kind}${n}`
    this.names.set(id, name)
    return name
  }

  worker(snapshot: ClusterSnapshot, id: WorkerId): string {
    return this.name(id, lookup(snapshot.workers, id)?.node ?? "?", "w")
  }

  router(snapshot: ClusterSnapshot, id: RouterId): string {
    const worker = lookup(snapshot.routers, id)?.worker
    return this.name(id, worker === undefined ? "?" : this.worker(snapshot, worker), "r")
  }

  known(id: string): string {
    return this.names.get(id) ?? `unknown ${id}`
  }

  /** The labels of the Workers, and of the Routers, in the order of their ids. */
  order(): { readonly workers: ReadonlyArray<string>; readonly routers: ReadonlyArray<string> } {
    const byId = Array.from(this.names)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, label]) => label)
    return {
      workers: byId.filter((l) => /\/w\d+$/.test(l)),
      routers: byId.filter((l) => /\/r\d+$/.test(l))
    }
  }
}

/** Each live Worker's effective load, by label (rounded to 1e-9). */
const loads = (snapshot: ClusterSnapshot, labels: Labels): Record<string, number> =>
  Object.fromEntries(
    Array.from(HashMap.values(snapshot.workers), (w) => [
      labels.worker(snapshot, w.id),
      Math.round(effectiveLoad(w) * 1e9) / 1e9
    ]).sort(([a], [b]) => (String(a) < String(b) ? -1 : 1))
  )

const actionLabel = (labels: Labels, action: ScaleDownAction): string => {
  switch (action._tag) {
    case "ClosePipe":
      return `ClosePipe ${action.producer} into ${labels.known(action.router)}`
    case "CloseRouter":
      return `CloseRouter ${labels.known(action.router)}`
    case "CloseWorker":
      return `CloseWorker ${labels.known(action.worker)}`
  }
}

interface Run {
  readonly decisions: ReadonlyArray<Decision>
  /** Each Worker's load after each step. */
  readonly loads: ReadonlyArray<Record<string, number>>
  /** The Workers and Routers (labels) in the order of their ids. */
  readonly order: ReturnType<Labels["order"]>
}

// --- 1. The production shell -----------------------------------------------------------------

/**
 * The production shell of `n0` over simulated Workers, with the cluster's own `Delegation`
 * over the simulated other Nodes; `delegated`: the plans `Placement` handed to `Delegation`
 * (carried out on another Node), in order.
 */
const makeShell = () => {
  const delegated: Array<PlacementPlan> = []
  const recordingDelegation = Layer.effect(
    Delegation,
    Effect.map(Delegation, (d) =>
      Delegation.of({
        ...d,
        carryOut: (plan, settings) =>
          Effect.zipRight(
            Effect.sync(() => delegated.push(plan)),
            d.carryOut(plan, settings)
          )
      })
    )
  ).pipe(Layer.provide(ClusterDelegation.layer({ syncMillis: 100 })))
  const layer = ClusterLayer.layer({ policy, scaleDownInterval: "1 day" }).pipe(
    Layer.provideMerge(recordingDelegation),
    Layer.provideMerge(SimulatedPeers.layer(nodes.slice(1), policy.costs)),
    Layer.provideMerge(TrackerLayer.layerMemory({ interval: "1 day" })),
    Layer.provideMerge(layerSimulated({ node: nodes[0].node, cpus: nodes[0].cpus, costs: policy.costs }))
  )
  return { layer, delegated }
}

const runShell = (steps: ReadonlyArray<Step>, delegated: ReadonlyArray<PlacementPlan>) =>
  Effect.gen(function* () {
    const placement = yield* Placement
    const store = yield* SnapshotStore
    const scaleDown = yield* ScaleDown
    const labels = new Labels()
    const decisions: Array<Decision> = []
    const loadsAfter: Array<Record<string, number>> = []
    const transports = new Map<number, { readonly transport: TransportId; readonly router: RouterId }>()
    let nextTransport = 0
    // The first sync with the registry brings the other Nodes.
    while (!nodes.every((n) => HashMap.has(store.current().nodes, NodeId.make(n.node)))) {
      yield* Effect.yieldNow()
    }
    const produced = new Set<number>()
    for (const [i, step] of steps.entries()) {
      yield* TestClock.setTime(step.at)
      if (
        unplaced(
          step,
          (who) => transports.has(who),
          (num) => produced.has(num)
        )
      ) {
        decisions.push({ step: i, skipped: step._tag })
        loadsAfter.push(loads(store.current(), labels))
        continue
      }
      switch (step._tag) {
        case "Open":
          yield* placement.createMafaldaRouter(MafaldaRouterId.make(step.room), {}, { mediaCodecs: [] })
          break
        case "Join": {
          const before = store.current()
          const handed = delegated.length
          const placed = yield* Effect.either(
            placement.placeTransport(
              MafaldaRouterId.make(step.room),
              "webrtc",
              () => Effect.sync(() => ({ id: `t${nextTransport++}` })),
              (t) => t.id
            )
          )
          if (Either.isLeft(placed)) {
            decisions.push({ step: i, transport: step.who, rejected: true })
            break
          }
          const { router, worker, added } = placed.right
          const s = store.current()
          const node = lookup(s.workers, worker)!.node
          // Placed on another Node: through `Delegation`, with the plan that says how it got there.
          const plan = delegated.length > handed ? delegated[handed] : undefined
          expect(plan === undefined).toBe(node === entry)
          transports.set(step.who, { transport: TransportId.make(placed.right.transport.id), router })
          decisions.push({
            step: i,
            transport: step.who,
            node,
            worker: labels.worker(s, worker),
            router: labels.router(s, router),
            workerStarted: !HashMap.has(before.workers, worker),
            routerCreated: !HashMap.has(before.routers, router),
            registered: added,
            delegations: plan?.delegations ?? []
          })
          break
        }
        case "Produce":
          produced.add(step.producer)
          yield* store.apply({
            _tag: "ProducerCreated",
            producer: ProducerId.make(`p${step.producer}`),
            kind: step.kind,
            transport: transports.get(step.who)!.transport,
            at: step.at
          })
          break
        case "Consume": {
          const { transport, router } = transports.get(step.who)!
          const producer = ProducerId.make(`p${step.producer}`)
          const consumer = `c${step.who}_${step.producer}`
          const pipes = yield* Effect.either(placement.ensureProducer(producer, router))
          if (Either.isLeft(pipes)) {
            decisions.push({ step: i, consumer, decision: "Reject", pipes: [] })
            break
          }
          const s = store.current()
          decisions.push({
            step: i,
            consumer,
            decision: pipes.right.length === 0 ? "ConsumeHere" : "PipeThenConsume",
            pipes: pipes.right.map((p) => ({
              producer: p.producer,
              from: labels.router(s, p.from),
              to: labels.router(s, p.to)
            }))
          })
          yield* store.apply({
            _tag: "ConsumerCreated",
            consumer: ConsumerId.make(consumer),
            producer,
            transport,
            at: step.at
          })
          break
        }
        case "Leave":
          yield* store.apply({
            _tag: "TransportClosed",
            transport: transports.get(step.who)!.transport,
            at: step.at
          })
          transports.delete(step.who)
          break
        case "Wait":
          break
        case "ScaleDown": {
          const done = yield* scaleDown.run
          decisions.push({ step: i, scaleDown: done.map((a) => actionLabel(labels, a)).sort() })
          break
        }
      }
      loadsAfter.push(loads(store.current(), labels))
    }
    const run: Run = { decisions, loads: loadsAfter, order: labels.order() }
    return run
  })

// --- 2. The simulator ------------------------------------------------------------------------

/** The simulator's cluster adapter, recording the plans it carries out, the pipes and the closes. */
class RecordingSimCluster extends SimCluster {
  readonly plans: Array<PlacementPlan> = []
  readonly piped: Array<ReadonlyArray<PlannedPipe>> = []
  readonly closed: Array<ClusterEvent> = []
  ticking = false

  override carryOut(plan: PlacementPlan): RouterId {
    this.plans.push(plan)
    return super.carryOut(plan)
  }

  override pipes(pipes: ReadonlyArray<PlannedPipe>): void {
    this.piped.push(pipes)
    super.pipes(pipes)
  }

  override emit(event: ClusterEvent): void {
    if (this.ticking) this.closed.push(event)
    super.emit(event)
  }
}

const simRoom = (id: string, index: number): Room => ({
  index,
  id: MafaldaRouterId.make(id),
  group: {
    index: 0,
    spec: { hint: "none" } as unknown as RoomGroup,
    rooms: [],
    open: [],
    prng: undefined as never,
    maxFactor: 1,
    cursor: 0
  },
  size: 8,
  publishersWanted: 0,
  publishers: 0,
  roleHolders: [],
  published: { audio: 0, video: 0 },
  videoPublishers: 0,
  members: [],
  placedCount: 0,
  producers: [],
  opened: true,
  openSlot: -1,
  entry: null,
  nodes: new Set(),
  data: undefined
})

const simParticipant = (num: number, room: Room): Participant => ({
  num,
  room,
  publisher: false,
  kinds: [],
  role: -1,
  transport: null,
  router: null,
  extra: null,
  producers: [],
  slot: 0,
  present: true,
  placed: false
})

const closeAction = (labels: Labels, event: ClusterEvent): string => {
  switch (event._tag) {
    case "PipeClosed":
      return `ClosePipe ${event.producer} into ${labels.known(event.to)}`
    case "RouterClosed":
      return `CloseRouter ${labels.known(event.router)}`
    case "WorkerClosed":
      return `CloseWorker ${labels.known(event.worker)}`
    default:
      return `unexpected ${event._tag}`
  }
}

/** The script carried out by the simulator, the room's requests going where its policy sends them. */
const runSimulator = (steps: ReadonlyArray<Step>): Run => {
  const clock = new VirtualClock(0)
  const cluster = new RecordingSimCluster(policy, { audio: 1, video: 1 }, clock)
  for (const n of nodes) cluster.addNode(n.cpus)
  expect(cluster.nodes.map((n) => n.id)).toEqual(nodes.map((n) => n.node))
  const sim = mafaldaPolicy(cluster)
  const labels = new Labels()
  const rooms = new Map<string, Room>()
  const people = new Map<number, Participant>()
  const producers = new Map<number, ProducerRef>()
  const decisions: Array<Decision> = []
  const loadsAfter: Array<Record<string, number>> = []
  for (const [i, step] of steps.entries()) {
    clock.advanceTo(step.at)
    const placed = (who: number) => (people.get(who)?.transport ?? null) !== null
    if (unplaced(step, placed, (num) => producers.has(num))) {
      decisions.push({ step: i, skipped: step._tag })
      loadsAfter.push(loads(cluster.snapshot, labels))
      continue
    }
    switch (step._tag) {
      case "Open": {
        const room = simRoom(step.room, rooms.size)
        // Its home: the Node its Mafalda Router lives on, the app's (the policy would pick the
        // first Node with room, as a simulated app would).
        room.entry = entry
        rooms.set(step.room, room)
        sim.openRoom(room)
        break
      }
      case "Join": {
        const room = rooms.get(step.room)!
        const p = simParticipant(step.who, room)
        people.set(step.who, p)
        room.members.push(p)
        const before = cluster.snapshot
        const handed = cluster.plans.length
        if (!sim.join(p)) {
          decisions.push({ step: i, transport: step.who, rejected: true })
          break
        }
        p.placed = true
        const plan = cluster.plans[handed]!
        expect(cluster.plans).toHaveLength(handed + 1)
        const s = cluster.snapshot
        const router = p.router!
        const worker = lookup(s.routers, router)!.worker
        decisions.push({
          step: i,
          transport: step.who,
          node: lookup(s.workers, worker)!.node,
          worker: labels.worker(s, worker),
          router: labels.router(s, router),
          workerStarted: !HashMap.has(before.workers, worker),
          routerCreated: !HashMap.has(before.routers, router),
          registered: plan.register,
          delegations: plan.delegations
        })
        break
      }
      case "Produce": {
        const owner = people.get(step.who)!
        const ref = sim.produce(owner, step.kind)
        if (ref === undefined) throw new Error(`no producer for ${step.who}`)
        expect(ref.id).toBe(`p${step.producer}`)
        producers.set(step.producer, ref)
        break
      }
      case "Consume": {
        const p = people.get(step.who)!
        const piped = cluster.piped.length
        const consumer = `c${step.who}_${step.producer}`
        if (!sim.consume(p, producers.get(step.producer)!)) {
          decisions.push({ step: i, consumer, decision: "Reject", pipes: [] })
          break
        }
        const s = cluster.snapshot
        const pipes = cluster.piped.slice(piped).flat()
        decisions.push({
          step: i,
          consumer,
          decision: pipes.length === 0 ? "ConsumeHere" : "PipeThenConsume",
          pipes: pipes.map((x) => ({
            producer: x.producer,
            from: labels.router(s, x.from),
            to: labels.router(s, x.to)
          }))
        })
        break
      }
      case "Leave": {
        const p = people.get(step.who)!
        cluster.closeTransport(p.transport)
        p.transport = null
        p.present = false
        break
      }
      case "Wait":
        break
      case "ScaleDown": {
        const closed = cluster.closed.length
        cluster.ticking = true
        sim.tick(step.at)
        cluster.ticking = false
        decisions.push({
          step: i,
          scaleDown: cluster.closed
            .slice(closed)
            .map((e) => closeAction(labels, e))
            .sort()
        })
        break
      }
    }
    loadsAfter.push(loads(cluster.snapshot, labels))
  }
  return { decisions, loads: loadsAfter, order: labels.order() }
}

// --- The test --------------------------------------------------------------------------------

/**
 * A run with the closes of other Nodes' Workers by scale-down set apart (`elsewhere`, with
 * the step they were made at): the shell leaves those to their Node by design.
 */
const apart = (run: Run) => {
  const elsewhere: Array<{ readonly step: number; readonly action: string }> = []
  const decisions = run.decisions.map((d): Decision => {
    if (!("scaleDown" in d)) return d
    const mine = (a: string) => !a.startsWith("CloseWorker ") || a.startsWith(`CloseWorker ${entry}/`)
    for (const action of d.scaleDown) if (!mine(action)) elsewhere.push({ step: d.step, action })
    return { step: d.step, scaleDown: d.scaleDown.filter(mine) }
  })
  return { decisions, elsewhere }
}

const withoutKeys = (r: Record<string, number>, keys: ReadonlyArray<string>): Record<string, number> =>
  Object.fromEntries(Object.entries(r).filter(([k]) => !keys.includes(k)))

describe("the shell and the simulator", () => {
  const main = makeShell()
  it.scoped("make the same decisions for the same requests, Delegate included", () =>
    Effect.gen(function* () {
      const production = yield* runShell(script, main.delegated)
      const simulated = runSimulator(script)
      const shell = apart(production)
      const sim = apart(simulated)

      // Ties between Workers (or Routers) are broken by their ids: in the same order on both sides.
      expect(production.order).toEqual(simulated.order)
      // Every decision the same, and carried out alike: the same loads after every step.
      expect(shell.decisions).toEqual(sim.decisions)
      // Each side's own scale-down closes the idle Workers of its Node; the simulator, which
      // is every Node at once, closes the others' too, which the shell leaves to their Node
      // (src/layers/ScaleDown.ts): they are still in its snapshot, idle.
      expect(shell.elsewhere).toEqual([])
      const closedElsewhere = sim.elsewhere.map((e) => e.action.slice("CloseWorker ".length))
      // (n1's idle Worker stays: its busy sibling is near the watermark, the hysteresis.)
      expect(closedElsewhere).toEqual(["n2/w0"])
      const from = sim.elsewhere[0]!.step
      expect(sim.elsewhere.every((e) => e.step === from)).toBe(true)
      expect(production.loads.slice(0, from)).toEqual(simulated.loads.slice(0, from))
      for (const [i, loads] of production.loads.entries()) {
        if (i < from) continue
        expect(withoutKeys(loads, closedElsewhere)).toEqual(simulated.loads[i])
        for (const w of closedElsewhere) expect(loads[w]).toBe(0)
      }

      // What the script exercises, on both sides (they are equal): Delegate to each other
      // Node, Workers started there, pipes across Nodes and between two Workers of another
      // Node, rejections once the cluster is full, and scale-down of pipes and Routers there.
      const placed = sim.decisions.filter((d) => "delegations" in d)
      expect(placed.filter((d) => d.delegations.length > 0).map((d) => d.node)).toContain("n1")
      expect(placed.filter((d) => d.delegations.length > 0).map((d) => d.node)).toContain("n2")
      expect(placed.filter((d) => d.workerStarted).map((d) => d.worker)).toEqual([
        "n0/w0",
        "n1/w0",
        "n1/w1",
        "n2/w0"
      ])
      const pipes = sim.decisions.flatMap((d) => ("pipes" in d ? d.pipes : []))
      expect(pipes).toContainEqual({ producer: "p0", from: "n0/w0/r0", to: "n2/w0/r0" })
      expect(pipes).toContainEqual({ producer: "p2", from: "n1/w0/r0", to: "n1/w1/r0" })
      expect(pipes).toContainEqual({ producer: "p3", from: "n1/w1/r0", to: "n2/w0/r0" })
      expect(sim.decisions.filter((d) => "rejected" in d).length).toBeGreaterThan(0)
      const scaledDown = sim.decisions.flatMap((d) => ("scaleDown" in d ? d.scaleDown : []))
      expect(scaledDown).toContain("ClosePipe p0 into n2/w0/r0")
      expect(scaledDown).toContain("CloseRouter n1/w1/r0")
      expect(scaledDown).toContain("CloseRouter n2/w0/r0")

      // The shell did it through the cluster's Delegation: every transport placed on another
      // Node was a plan handed to it, carried out there (a Worker started on n1 twice, on n2
      // once), its pipes made by the destination's Node, its scale-down closed there.
      expect(main.delegated).toHaveLength(placed.filter((d) => d.node !== entry).length)
      const peers = yield* SimulatedPeers.SimulatedPeers
      const calls = (call: string, node: string) =>
        peers.calls.filter((c) => c.call === call && c.node === node).length
      expect([calls("StartWorker", "n1"), calls("StartWorker", "n2")]).toEqual([2, 1])
      expect(calls("PipeFrom", "n1")).toBeGreaterThan(0)
      expect(calls("PipeFrom", "n2")).toBeGreaterThan(0)
      expect(calls("ClosePipe", "n2")).toBeGreaterThan(0)
      expect([calls("CloseRouter", "n1"), calls("CloseRouter", "n2")]).toEqual([1, 1])
    }).pipe(Effect.provide(main.layer))
  )
})
