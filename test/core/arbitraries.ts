/**
 * Generators for the property tests, and `Sim`: a harness that plays generated commands
 * against the core the way the effectful shell would. Placements are never invented by the
 * generator: a "join" asks `decideTransportPlacement` and applies what it decided, a
 * "consume" asks `decideConsumerPlacement` and applies its pipes then the consumer, a
 * "scale-down" applies every action of `decideScaleDown`. Ids are made from a counter, so a
 * run is a pure function of its commands. Every decision is checked as it is made, and the
 * snapshot's invariants after every command.
 */
import { isDeepStrictEqual } from "node:util"
import { expect } from "@effect/vitest"
import { Either, FastCheck as fc, HashMap } from "effect"
import {
  type ClusterEvent,
  type ClusterSnapshot,
  type ClusterWorker,
  decideConsumerPlacement,
  decidePipeToRouter,
  decideScaleDown,
  decideTransportPlacement,
  effectiveLoad,
  emptySnapshot,
  isScaleDownDue,
  lookup,
  type MafaldaRouterId,
  makePolicyOptions,
  type NodeId,
  type PlannedPipe,
  type PolicyOptions,
  type PolicyOptionsInput,
  type ProducerId,
  pipeEvents,
  pipeLimit,
  placementEvents,
  planTransportPlacement,
  type RouterId,
  scaleDownEvent,
  type TransportId,
  type TransportPlacement,
  type WorkerId,
  workersOn
} from "../../src/core/index.js"
import {
  apply,
  canonical,
  cid,
  contains,
  count,
  ev,
  get,
  indexViolations,
  invariantViolations,
  keysOf,
  loadDiffs,
  loads,
  mid,
  nid,
  RS,
  RS2,
  rid,
  throughJson,
  tid,
  WS,
  WS2,
  wid
} from "./helpers.js"
import {
  oracleCanStart,
  oracleLimit,
  oracleOpen,
  oracleOwn,
  oracleParent,
  oracleStanding,
  oracleTransportPlacement
} from "./oracle.js"

/**
 * `expect` for hot paths: vitest's `expect` costs a little per call, which adds up over
 * thousands of runs, so the comparison is done here and `expect` only runs on a failure
 * (to produce its usual message).
 */
const check = (actual: unknown) => ({
  toBe: (x: unknown) => Object.is(actual, x) || expect(actual).toBe(x),
  toEqual: (x: unknown) => isDeepStrictEqual(actual, x) || expect(actual).toEqual(x),
  toBeLessThan: (x: number) => (actual as number) < x || expect(actual).toBeLessThan(x),
  toBeLessThanOrEqual: (x: number) => (actual as number) <= x || expect(actual).toBeLessThanOrEqual(x),
  toBeGreaterThanOrEqual: (x: number) => (actual as number) >= x || expect(actual).toBeGreaterThanOrEqual(x),
  toBeUndefined: () => actual === undefined || expect(actual).toBeUndefined(),
  toMatchObject: (x: object) => expect(actual).toMatchObject(x),
  not: {
    toBe: (x: unknown) => !Object.is(actual, x) || expect(actual).not.toBe(x),
    toBeNull: () => actual !== null || expect(actual).not.toBeNull()
  }
})

// --- Options ---------------------------------------------------------------------------

/** Valid option inputs, with small costs and grace periods so that limits are reached. */
export const optionsInput: fc.Arbitrary<PolicyOptionsInput> = fc.record(
  {
    watermark: fc.constantFrom(15, 30, 60, 100),
    maxWorkersPerNode: fc.integer({ min: 1, max: 3 }),
    maxTreeDepth: fc.integer({ min: 1, max: 4 }),
    idleGraceMillis: fc.constantFrom(0, 5, 40),
    warmWorkers: fc.integer({ min: 0, max: 2 }),
    scaleDownHysteresis: fc.constantFrom(0, 10, 30),
    plannedLimit: fc.constantFrom(50, 85, 100),
    roomGrowth: fc.constantFrom(0, 0.5, 1),
    costs: fc.record(
      {
        transport: fc.constantFrom(0, 0.1, 1, 3),
        producer: fc.constantFrom(0, 0.5, 2, 5),
        consumer: fc.constantFrom(0.2, 1, 4),
        pipe: fc.constantFrom(0, 0.2, 2),
        audio: fc.record({ consumer: fc.constantFrom(0.05, 0.5), pipe: fc.constantFrom(0.1, 1) }),
        video: fc.record({ producer: fc.constantFrom(1, 3) }, { requiredKeys: [] })
      },
      { requiredKeys: ["transport", "producer", "consumer", "pipe"] }
    )
  },
  { requiredKeys: [] }
)

export const options: fc.Arbitrary<PolicyOptions> = optionsInput.map((input) =>
  Either.getOrThrow(makePolicyOptions(input))
)

// --- Commands --------------------------------------------------------------------------

export type Command =
  | {
      readonly tag: "NodeUp"
      readonly node: number
      readonly cpus: number
      /** Its cap on Worker processes, if any. */
      readonly cap: number | undefined
    }
  | { readonly tag: "NodeDraining"; readonly node: number }
  | { readonly tag: "NodeDown"; readonly node: number }
  | { readonly tag: "NodeLeft"; readonly node: number }
  | { readonly tag: "StartWorker"; readonly node: number; readonly other: boolean }
  | { readonly tag: "StopWorker"; readonly pick: number; readonly died: boolean }
  | { readonly tag: "Load"; readonly pick: number; readonly load: number }
  /** `hint`: the participants the app expects (0: no hint); publishers: all, or 1 when odd. */
  | { readonly tag: "CreateMafaldaRouter"; readonly ws: number; readonly rs: number; readonly hint: number }
  | { readonly tag: "CloseMafaldaRouter"; readonly pick: number }
  /** `node`: an index into the known Nodes, or null for an unknown Node. */
  | { readonly tag: "Join"; readonly mafaldaRouter: number; readonly node: number | null }
  | { readonly tag: "Produce"; readonly transport: number }
  | {
      readonly tag: "Consume"
      readonly producer: number
      readonly transport: number
      readonly anyMafaldaRouter: boolean
    }
  | { readonly tag: "CloseConsumer"; readonly pick: number }
  | { readonly tag: "CloseTransport"; readonly pick: number }
  | { readonly tag: "CloseProducer"; readonly pick: number }
  | {
      readonly tag: "PipeToRouter"
      readonly producer: number
      readonly from: number | null
      readonly to: number
      readonly node: number | null
    }
  | { readonly tag: "Tick"; readonly ms: number }
  /** Scale-down now, or (`wait`) once the grace period has passed. */
  | { readonly tag: "ScaleDown"; readonly wait?: boolean }
  /** Reports every Worker of the first producer's tree full but the deepest hop's, which is idle. */
  | { readonly tag: "Deepen" }
  /** Opens an RTP observer on a Router, or closes one. */
  | { readonly tag: "Observer"; readonly pick: number; readonly close: boolean }
  /**
   * Consumes a producer where it is not yet: reports the Workers that carry it full (so the
   * next transport lands on another Router), joins, and consumes it on the new transport.
   * `level`: 0, every carrier at the watermark; 1, one piped hop (`hop`) between the
   * watermark and the pipe limit and the others at 100 % (so the pipe hangs below that hop);
   * 2, every carrier at 100 %. `mafaldaRouter`: null for the producer's own Mafalda Router.
   */
  | {
      readonly tag: "Spread"
      readonly producer: number
      readonly hop: number
      readonly level: 0 | 1 | 2
      readonly mafaldaRouter: number | null
      readonly node: number | null
    }
  /** Consumes a producer on a transport of a Router that does not receive it yet, if any. */
  | { readonly tag: "ConsumeElsewhere"; readonly producer: number; readonly transport: number }
  /** Reports a Worker's load at one of `fillLevels` (near, at and over the watermark). */
  | { readonly tag: "Fill"; readonly pick: number; readonly level: number }
  /**
   * `pipeToRouter` of a producer to a Mafalda Router whose settings a carrier of the
   * producer has (`share`) or none has (`pipe`); creates that Mafalda Router if none exists.
   */
  | {
      readonly tag: "PipeToRouterTo"
      readonly producer: number
      readonly want: "share" | "pipe"
      readonly pick: number
      readonly node: number | null
    }
  /**
   * Closes every consumer on a piped (non-origin, unpinned) hop, so that its pipe goes idle;
   * with `scaleDown`, then scales down once the grace period has passed.
   */
  | { readonly tag: "Release"; readonly pick: number; readonly scaleDown: boolean }

const idx = fc.nat({ max: 1000 })
const nodeIdx = fc.integer({ min: 0, max: 3 })

export const commandArbs = {
  nodeUp: fc.record({
    tag: fc.constant("NodeUp" as const),
    node: nodeIdx,
    cpus: fc.integer({ min: 1, max: 4 }),
    cap: fc.option(fc.integer({ min: 1, max: 6 }), { nil: undefined, freq: 3 })
  }),
  nodeDraining: fc.record({ tag: fc.constant("NodeDraining" as const), node: nodeIdx }),
  nodeDown: fc.record({ tag: fc.constant("NodeDown" as const), node: nodeIdx }),
  nodeLeft: fc.record({ tag: fc.constant("NodeLeft" as const), node: nodeIdx }),
  startWorker: fc.record({ tag: fc.constant("StartWorker" as const), node: nodeIdx, other: fc.boolean() }),
  stopWorker: fc.record({ tag: fc.constant("StopWorker" as const), pick: idx, died: fc.boolean() }),
  load: fc.record({
    tag: fc.constant("Load" as const),
    pick: idx,
    load: fc.oneof(fc.integer({ min: 0, max: 100 }), fc.double({ min: 0, max: 100, noNaN: true }))
  }),
  createMafaldaRouter: fc.record({
    tag: fc.constant("CreateMafaldaRouter" as const),
    ws: fc.integer({ min: 0, max: 1 }),
    rs: fc.integer({ min: 0, max: 1 }),
    hint: fc.constantFrom(0, 0, 3, 8, 40)
  }),
  closeMafaldaRouter: fc.record({ tag: fc.constant("CloseMafaldaRouter" as const), pick: idx }),
  join: fc.record({
    tag: fc.constant("Join" as const),
    mafaldaRouter: idx,
    node: fc.option(idx, { freq: 12 })
  }),
  produce: fc.record({ tag: fc.constant("Produce" as const), transport: idx }),
  consume: fc.record({
    tag: fc.constant("Consume" as const),
    producer: idx,
    transport: idx,
    anyMafaldaRouter: fc.boolean()
  }),
  closeConsumer: fc.record({ tag: fc.constant("CloseConsumer" as const), pick: idx }),
  closeTransport: fc.record({ tag: fc.constant("CloseTransport" as const), pick: idx }),
  closeProducer: fc.record({ tag: fc.constant("CloseProducer" as const), pick: idx }),
  pipeToRouter: fc.record({
    tag: fc.constant("PipeToRouter" as const),
    producer: idx,
    from: fc.option(idx, { freq: 4 }),
    to: idx,
    node: fc.option(idx, { freq: 12 })
  }),
  tick: fc.record({ tag: fc.constant("Tick" as const), ms: fc.integer({ min: 1, max: 60 }) }),
  scaleDown: fc.constant({ tag: "ScaleDown" as const }),
  scaleDownLater: fc.constant({ tag: "ScaleDown" as const, wait: true }),
  deepen: fc.constant({ tag: "Deepen" as const }),
  observer: fc.record({ tag: fc.constant("Observer" as const), pick: idx, close: fc.boolean() }),
  spread: fc.record({
    tag: fc.constant("Spread" as const),
    producer: idx,
    hop: idx,
    level: fc.constantFrom(0 as const, 1 as const, 1 as const, 2 as const),
    mafaldaRouter: fc.option(idx, { freq: 2 }),
    node: fc.option(idx, { freq: 20 })
  }),
  consumeElsewhere: fc.record({
    tag: fc.constant("ConsumeElsewhere" as const),
    producer: idx,
    transport: idx
  }),
  fill: fc.record({ tag: fc.constant("Fill" as const), pick: idx, level: idx }),
  pipeToRouterTo: fc.record({
    tag: fc.constant("PipeToRouterTo" as const),
    producer: idx,
    want: fc.constantFrom("share" as const, "pipe" as const),
    pick: idx,
    node: fc.option(idx, { freq: 20 })
  }),
  release: fc.record({ tag: fc.constant("Release" as const), pick: idx, scaleDown: fc.boolean() })
}

const w = <A>(weight: number, arbitrary: fc.Arbitrary<A>) => ({ weight, arbitrary })

/**
 * Every kind of command, weighted so that runs build clusters, then push them to the cases
 * that need care (pipes, trees deeper than one hop, full Workers and Nodes, shared and real
 * `pipeToRouter`, idle pipes scaled down), and churn them.
 */
export const anyCommand: fc.Arbitrary<Command> = fc.oneof(
  w(2, commandArbs.nodeUp),
  w(1, commandArbs.nodeDraining),
  w(1, commandArbs.nodeDown),
  w(1, commandArbs.nodeLeft),
  w(2, commandArbs.startWorker),
  w(1, commandArbs.stopWorker),
  w(2, commandArbs.load),
  w(3, commandArbs.fill),
  w(1, commandArbs.createMafaldaRouter),
  w(1, commandArbs.closeMafaldaRouter),
  w(6, commandArbs.join),
  w(4, commandArbs.produce),
  w(6, commandArbs.consume),
  w(4, commandArbs.consumeElsewhere),
  w(6, commandArbs.spread),
  w(3, commandArbs.closeConsumer),
  w(3, commandArbs.release),
  w(1, commandArbs.closeTransport),
  w(1, commandArbs.closeProducer),
  w(1, commandArbs.pipeToRouter),
  w(5, commandArbs.pipeToRouterTo),
  w(2, commandArbs.tick),
  w(1, commandArbs.scaleDown),
  w(2, commandArbs.scaleDownLater),
  w(1, commandArbs.deepen),
  w(1, commandArbs.observer)
)

/** Commands that only ever add: joins, producers, consumers (where the producer is not yet), and load reports. */
export const growCommand: fc.Arbitrary<Command> = fc.oneof(
  w(4, commandArbs.join),
  w(3, commandArbs.produce),
  w(7, commandArbs.consume),
  w(4, commandArbs.consumeElsewhere),
  w(6, commandArbs.spread),
  w(1, commandArbs.load),
  w(2, commandArbs.fill)
)

export interface Scenario {
  readonly options: PolicyOptions
  readonly cpus: ReadonlyArray<number>
  /** Producers placed (through the policy) before the commands: a room that already has speakers. */
  readonly producers: number
  readonly commands: ReadonlyArray<Command>
}

export const scenario = (command: fc.Arbitrary<Command>, maxLength: number): fc.Arbitrary<Scenario> =>
  fc.record({
    options,
    cpus: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 3 }),
    producers: fc.constantFrom(0, 1, 1, 2),
    commands: fc.array(command, { minLength: Math.floor(maxLength / 2), maxLength })
  })

// --- The harness -------------------------------------------------------------------------

/** The cases the property tests must reach in a good share of their runs. */
export const reachKeys = ["pipe", "depth2", "share", "realPipe", "closePipe", "delegate", "overload"] as const
export type ReachKey = (typeof reachKeys)[number]

const pick = <A>(items: ReadonlyArray<A>, i: number): A | undefined =>
  items.length === 0 ? undefined : items[i % items.length]

export interface SimChecks {
  /** After every consume: pipes per producer <= Routers with consumers of it (only without closes). */
  readonly pipesBoundedByConsumers?: boolean
  /** Re-decide on a decoded copy of the snapshot at the end of the run. */
  readonly roundTrip?: boolean
  /** Compare delegation (Delegate / Reject NoRoom) with the reference model. */
  readonly delegation?: boolean
  /** Check the snapshot's derived indexes against its data after every step. */
  readonly indexes?: boolean
}

export class Sim {
  snapshot: ClusterSnapshot = emptySnapshot
  now = 0
  private seq = 0
  /**
   * What the run exercised: every decision tag (`transport.Delegate`, `consumer.PipeThenConsume`,
   * `pipeToRouter.Share`, `scaleDown.ClosePipe` carried out...) with its count, and what it
   * built: `made.pipe` (pipes made, by consumers and `pipeToRouter`), `made.depth` (the
   * deepest hop made), `pressure.full` (transport placements that passed over a Worker
   * without room on the Node asked). `reached()` sums it up; the properties assert on it.
   */
  readonly seen = new Map<string, number>()

  constructor(
    readonly options: PolicyOptions,
    readonly checks: SimChecks = {}
  ) {}

  private fresh(prefix: string): string {
    this.seq += 1
    return `${prefix}${this.seq}`
  }

  private note(tag: string) {
    this.seen.set(tag, (this.seen.get(tag) ?? 0) + 1)
  }

  /** Whether the run reached each case the coverage targets name. */
  reached(): Record<ReachKey, boolean> {
    const n = (tag: string) => this.seen.get(tag) ?? 0
    return {
      pipe: n("made.pipe") > 0,
      depth2: n("made.depth") >= 2,
      share: n("pipeToRouter.Share") > 0,
      realPipe: n("pipeToRouter.Pipe") > 0,
      closePipe: n("scaleDown.ClosePipe") > 0,
      delegate: n("transport.Delegate") > 0,
      overload: n("pressure.full") > 0
    }
  }

  /** Emits pipes (as the shell records them) and notes how many and how deep. */
  private emitPipes(pipes: ReadonlyArray<PlannedPipe>, pinned = false) {
    for (const p of pipes) {
      const tree = lookup(this.snapshot.trees, p.producer)!
      const from = lookup(tree, p.from)!
      this.note("made.pipe")
      this.seen.set("made.depth", Math.max(this.seen.get("made.depth") ?? 0, from.depth + 1))
    }
    this.emit(pipeEvents(pipes, this.now, pinned))
  }

  emit(events: ClusterEvent | ReadonlyArray<ClusterEvent>) {
    this.snapshot = apply(this.snapshot, events, this.options.costs)
  }

  private get strictDelegation(): boolean {
    return this.checks.delegation ?? true
  }

  checkInvariants() {
    const violations = invariantViolations(this.snapshot, this.options)
    if (violations.length > 0) check(violations).toEqual([])
    if (this.checks.indexes ?? true) {
      const stale = indexViolations(this.snapshot, this.options.watermark)
      if (stale.length > 0) check(stale).toEqual([])
    }
  }

  /** Nodes up, each with a Mafalda Router of default settings to start from. */
  setup(cpus: ReadonlyArray<number>, producers = 0) {
    cpus.forEach((c, i) => {
      this.emit(ev.nodeUp(`n${i}`, c, this.now))
    })
    this.emit(ev.mafaldaRouter("m0", WS, RS, this.now))
    for (let i = 0; i < producers; i++) this.produceOnNewTransport(mid("m0"), nid("n0"))
    this.checkInvariants()
  }

  /** Places a transport of `mafaldaRouter` (asking `node`) and makes a producer on it. */
  private produceOnNewTransport(mafaldaRouter: MafaldaRouterId, node: NodeId) {
    const router = this.place(mafaldaRouter, node)
    if (router === undefined) return
    const transport = this.fresh("t")
    this.emit(ev.transport(transport, router, mafaldaRouter, this.now))
    this.emit(ev.producer(this.fresh("p"), transport, this.now))
  }

  run(commands: ReadonlyArray<Command>) {
    for (const c of commands) {
      this.now += 1
      this.step(c)
      this.checkInvariants()
    }
    if (this.checks.roundTrip) this.checkRoundTrip()
  }

  /** A known Node by index, or an unknown one for null. */
  private nodeAt(i: number | null): NodeId {
    return i === null
      ? nid("unknown-node")
      : (pick(this.sorted(this.snapshot.nodes), i) ?? nid("unknown-node"))
  }

  private sorted<K extends string, V>(map: HashMap.HashMap<K, V>): Array<K> {
    return keysOf(map)
  }

  step(c: Command) {
    const s = this.snapshot
    const at = this.now
    switch (c.tag) {
      case "NodeUp": {
        const n = lookup(s.nodes, nid(`n${c.node}`))
        if (n === undefined || n.state !== "up") this.emit(ev.nodeUp(`n${c.node}`, c.cpus, at, c.cap))
        return
      }
      case "NodeDraining":
      case "NodeDown":
      case "NodeLeft": {
        const node = `n${c.node}`
        if (!HashMap.has(s.nodes, nid(node))) return
        this.emit(
          c.tag === "NodeDraining"
            ? ev.nodeDraining(node, at)
            : c.tag === "NodeDown"
              ? ev.nodeDown(node, at)
              : ev.nodeLeft(node, at)
        )
        return
      }
      case "StartWorker": {
        const n = lookup(s.nodes, nid(`n${c.node}`))
        if (n === undefined || n.state !== "up" || count(n.workers) >= n.cpus + 1) return
        this.emit(ev.workerStarted(this.fresh("w"), n.id, c.other ? WS2 : WS, at))
        return
      }
      case "StopWorker": {
        const worker = pick(this.sorted(s.workers), c.pick)
        if (worker !== undefined) this.emit(c.died ? ev.workerDied(worker, at) : ev.workerClosed(worker, at))
        return
      }
      case "Load": {
        const worker = pick(this.sorted(s.workers), c.pick)
        if (worker !== undefined) this.emit(ev.load(worker, c.load, at))
        return
      }
      case "CreateMafaldaRouter": {
        if (HashMap.size(s.mafaldaRouters) >= 3) return
        const event = ev.mafaldaRouter(this.fresh("m"), c.ws === 0 ? WS : WS2, c.rs === 0 ? RS : RS2, at)
        this.emit(
          c.hint === 0 || event._tag !== "MafaldaRouterCreated"
            ? event
            : { ...event, hint: { participants: c.hint, publishers: c.hint % 2 === 1 ? 1 : null } }
        )
        return
      }
      case "CloseMafaldaRouter": {
        const m = pick(this.sorted(s.mafaldaRouters), c.pick)
        if (m !== undefined) this.emit(ev.mafaldaRouterClosed(m, at))
        return
      }
      case "Join": {
        const m = pick(this.sorted(s.mafaldaRouters), c.mafaldaRouter)
        if (m === undefined) return
        const router = this.place(m, this.nodeAt(c.node))
        if (router !== undefined) this.emit(ev.transport(this.fresh("t"), router, m, at))
        return
      }
      case "Produce": {
        const t = pick(this.sorted(s.transports), c.transport)
        if (t !== undefined)
          this.emit(ev.producer(this.fresh("p"), t, at, c.transport % 2 === 0 ? "video" : "audio"))
        return
      }
      case "Consume":
        return this.consume(c)
      case "ConsumeElsewhere":
        return this.consumeElsewhere(c)
      case "Spread":
        return this.spread(c)
      case "Fill":
        return this.fill(c)
      case "PipeToRouterTo":
        return this.pipeToRouterTo(c)
      case "Release":
        return this.release(c)
      case "CloseConsumer": {
        const x = pick(this.sorted(s.consumers), c.pick)
        if (x !== undefined) this.emit(ev.consumerClosed(x, at))
        return
      }
      case "CloseTransport": {
        const x = pick(this.sorted(s.transports), c.pick)
        if (x !== undefined) this.emit(ev.transportClosed(x, at))
        return
      }
      case "CloseProducer": {
        const x = pick(this.sorted(s.producers), c.pick)
        if (x !== undefined) this.emit(ev.producerClosed(x, at))
        return
      }
      case "PipeToRouter":
        return this.pipeToRouter(c)
      case "Tick":
        this.now += c.ms
        return
      case "ScaleDown":
        if (c.wait) this.now += this.options.idleGraceMillis
        return this.scaleDown()
      case "Deepen":
        return this.deepen()
      case "Observer": {
        if (c.close) {
          const open = this.sorted(s.routers).flatMap((r) =>
            [...lookup(s.routers, r)!.observers].sort().map((o) => [o, r] as const)
          )
          const x = pick(open, c.pick)
          if (x !== undefined) this.emit(ev.observerClosed(x[0], x[1], at))
        } else {
          const r = pick(this.sorted(s.routers), c.pick)
          if (r !== undefined) this.emit(ev.observer(this.fresh("o"), r, at))
        }
        return
      }
    }
  }

  private deepen() {
    const s = this.snapshot
    const first = this.sorted(s.trees)[0]
    if (first === undefined) return
    const hops = [...HashMap.values(lookup(s.trees, first)!)].sort(
      (a, b) => b.depth - a.depth || (a.router < b.router ? -1 : a.router > b.router ? 1 : 0)
    )
    const deepest = hops[0]!
    const workerOf = (r: RouterId) => lookup(s.routers, r)!.worker
    const keep = workerOf(deepest.router)
    for (const hop of hops) {
      const worker = workerOf(hop.router)
      if (worker !== keep) this.emit(ev.load(worker, 100, this.now))
    }
    this.emit(ev.load(keep, 0, this.now))
  }

  /** The levels `Fill` reports: near, at and over the watermark, and at the edge of the room a transport needs. */
  private fillLevels(worker: ClusterWorker): Array<number> {
    const o = this.options
    const wm = o.watermark
    const levels = [wm - 1, wm - 0.01, wm, wm + 5, pipeLimit(o), 100]
    // A transport of a Mafalda Router fits the Worker just under wm - its cost now.
    const m = this.sorted(this.snapshot.mafaldaRouters)
      .map((x) => lookup(this.snapshot.mafaldaRouters, x)!)
      .find((x) => x.workerSettings === worker.settings)
    if (m !== undefined) {
      const now = oracleStanding(this.snapshot, o, m, worker).cost.now
      levels.push(wm - now - 0.001, wm - now + 0.001)
    }
    return levels.map((l) => Math.min(100, Math.max(0, l)))
  }

  private fill(c: Extract<Command, { tag: "Fill" }>) {
    const worker = pick(this.sorted(this.snapshot.workers), c.pick)
    if (worker === undefined) return
    const levels = this.fillLevels(lookup(this.snapshot.workers, worker)!)
    this.emit(ev.load(worker, levels[c.level % levels.length]!, this.now))
  }

  /**
   * Reports the Workers carrying a producer full (see the `Spread` command), then joins a
   * transport and consumes the producer on it: most often on a Router the tree does not
   * reach yet, so a pipe is made, and below a chosen hop at level 1.
   */
  private spread(c: Extract<Command, { tag: "Spread" }>) {
    const s = this.snapshot
    const o = this.options
    const producerId = pick(this.sorted(s.producers), c.producer)
    if (producerId === undefined) {
      // Nothing to spread yet: make a producer, then spread it.
      const m = pick(this.sorted(s.mafaldaRouters), c.producer)
      if (m === undefined) return
      this.produceOnNewTransport(m, this.nodeAt(c.node))
      if (HashMap.size(this.snapshot.producers) > 0) this.spread(c)
      return
    }
    const hops = [...HashMap.values(lookup(s.trees, producerId)!)].sort(
      (a, b) => a.depth - b.depth || (a.router < b.router ? -1 : a.router > b.router ? 1 : 0)
    )
    const workerOf = (r: RouterId) => lookup(s.routers, r)!.worker
    const parents = hops.filter((h) => h.parent !== null && h.depth < o.maxTreeDepth)
    if (c.level === 1 && parents.length === 0 && o.maxTreeDepth >= 2 && hops.length === 1) {
      // No piped hop to hang the next pipe below: make one first (and a producer's second
      // hop only, so that this recursion ends).
      this.spread({ ...c, level: 0 })
      if (HashMap.size(lookup(this.snapshot.trees, producerId) ?? HashMap.empty()) > 1) this.spread(c)
      return
    }
    const chosen = c.level === 1 ? pick(parents, c.hop) : undefined
    const level = chosen !== undefined || c.level === 2 ? 100 : o.watermark
    const levels = new Map<WorkerId, number>()
    for (const hop of hops) levels.set(workerOf(hop.router), level)
    if (chosen !== undefined) levels.set(workerOf(chosen.router), (o.watermark + pipeLimit(o)) / 2)
    for (const [worker, load] of levels) this.emit(ev.load(worker, load, this.now))
    const producer = lookup(s.producers, producerId)!
    const mafaldaRouter =
      c.mafaldaRouter === null
        ? producer.mafaldaRouter
        : (pick(this.sorted(this.snapshot.mafaldaRouters), c.mafaldaRouter) ?? producer.mafaldaRouter)
    const router = this.place(mafaldaRouter, this.nodeAt(c.node))
    if (router === undefined) return
    const transport = this.fresh("t")
    this.emit(ev.transport(transport, router, mafaldaRouter, this.now))
    this.consumeOn(producerId, tid(transport))
  }

  /** Closes the consumers on one piped hop that the application did not pin. */
  private release(c: Extract<Command, { tag: "Release" }>) {
    const s = this.snapshot
    const hops = this.sorted(s.trees).flatMap((p) =>
      [...HashMap.values(lookup(s.trees, p)!)]
        .filter((h) => h.parent !== null && !h.pinned && h.consumers > 0)
        .sort((a, b) => (a.router < b.router ? -1 : a.router > b.router ? 1 : 0))
        .map((h) => [p, h.router] as const)
    )
    const chosen = pick(hops, c.pick)
    if (chosen === undefined) return
    const [producer, router] = chosen
    const consumers = [...HashMap.values(s.consumers)]
      .filter((x) => x.producer === producer && x.router === router)
      .map((x) => x.id)
      .sort()
    this.emit(consumers.map((x) => ev.consumerClosed(x, this.now)))
    if (c.scaleDown) {
      this.now += this.options.idleGraceMillis
      this.scaleDown()
    }
  }

  // --- Transport placement --------------------------------------------------------------

  /**
   * Decides a transport placement, checks the decision (and, when it delegates, the one the
   * other Node makes), then carries out the core's plan with the core's interpreter, as the
   * shell does; returns the Router to use.
   */
  place(mafaldaRouter: MafaldaRouterId, node: NodeId): RouterId | undefined {
    const s = this.snapshot
    const o = this.options
    const request = { node, mafaldaRouter }
    const d = decideTransportPlacement(s, o, request)
    this.note(`transport.${d._tag}${d._tag === "Reject" ? `.${d.reason}` : ""}`)
    const m = lookup(s.mafaldaRouters, mafaldaRouter)
    if (m !== undefined) {
      // Pressure: a Worker the transport could have used has no room for it.
      if (workersOn(s, node, m.workerSettings).some((x) => !oracleStanding(s, o, m, x).fits))
        this.note("pressure.full")
    }
    this.checkTransportDecision(s, request, d)
    if (d._tag === "Delegate") {
      const there = { node: d.node, mafaldaRouter }
      const d2 = decideTransportPlacement(s, o, there)
      this.checkTransportDecision(s, there, d2)
      // The Node a client was delegated to must take it.
      if (this.strictDelegation) check(d2._tag === "Delegate" || d2._tag === "Reject").toBe(false)
    }
    const plan = planTransportPlacement(s, o, request)
    check(planTransportPlacement(s, o, request)).toEqual(plan)
    if (Either.isLeft(plan)) {
      if (this.strictDelegation) check(d._tag).toBe("Reject")
      return undefined
    }
    const p = plan.right
    // The plan is the decision, made concrete where it lands.
    if (d._tag !== "Delegate") {
      check(p.delegations).toEqual([])
      check({ worker: p.worker, router: p.router, register: p.register, node: p.node }).toEqual(
        d._tag === "UseRouter"
          ? { worker: d.worker, router: d.router, register: d.register, node: d.node }
          : d._tag === "CreateRouter"
            ? { worker: d.worker, router: null, register: true, node: d.node }
            : { worker: null, router: null, register: true, node: d._tag === "CreateWorker" ? d.node : "?" }
      )
    } else {
      check(p.delegations[0]).toBe(d.node)
    }
    const worker = p.worker ?? wid(this.fresh("w"))
    const router = p.router ?? rid(this.fresh("r"))
    this.emit(placementEvents(p, { worker, router }, this.now))
    check(contains(lookup(this.snapshot.mafaldaRouters, mafaldaRouter)!.routers, router)).toBe(true)
    return router
  }

  checkTransportDecision(
    s: ClusterSnapshot,
    request: { readonly node: NodeId; readonly mafaldaRouter: MafaldaRouterId },
    d: TransportPlacement
  ) {
    const o = this.options
    // Deterministic: the same snapshot and request give an equal decision.
    check(decideTransportPlacement(s, o, request)).toEqual(d)
    // The specification's order, by an independent model.
    const expected = oracleTransportPlacement(s, o, request)
    const delegation = (x: { readonly _tag: string; readonly reason?: string }) =>
      x._tag === "Delegate" || (x._tag === "Reject" && x.reason === "NoRoom")
    if (!this.strictDelegation && delegation(d) && delegation(expected)) {
      if (d._tag === "Delegate") {
        check(d.node).not.toBe(request.node)
        check(lookup(s.nodes, d.node)?.state).toBe("up")
      }
      return
    }
    switch (d._tag) {
      case "UseRouter":
        check(expected).toEqual({
          _tag: "UseRouter",
          router: d.router,
          worker: d.worker,
          register: d.register
        })
        break
      case "CreateRouter":
        check(expected).toEqual({ _tag: "CreateRouter", worker: d.worker })
        break
      case "CreateWorker":
        check(expected).toEqual({ _tag: "CreateWorker", node: d.node })
        break
      case "Delegate":
        check(expected._tag).toBe("Delegate")
        if (expected._tag === "Delegate" && !expected.expected.includes(d.node))
          check(d.node).toBe(expected.expected.join(" or "))
        break
      case "Reject":
        check(expected).toEqual({ _tag: "Reject", reason: d.reason })
        break
    }
    const m = lookup(s.mafaldaRouters, request.mafaldaRouter)
    if (m === undefined) return
    if (d._tag === "UseRouter" || d._tag === "CreateRouter") {
      const worker = lookup(s.workers, d.worker)!
      check(worker.node).toBe(request.node)
      check(lookup(s.nodes, worker.node)?.state).toBe("up")
      check(worker.settings).toBe(m.workerSettings)
      // Never on a Worker at or over the watermark, nor on one whose effective load plus
      // what the placement brings at once passes it, nor past the planned limit.
      check(effectiveLoad(worker)).toBeLessThan(o.watermark)
      const st = oracleStanding(s, o, m, worker)
      this.note("placed.onWorker")
      check(effectiveLoad(worker) + st.cost.now).toBeLessThanOrEqual(o.watermark + 1e-9)
      check(st.projected + st.cost.final).toBeLessThanOrEqual(o.plannedLimit + 1e-9)
      if (d._tag === "UseRouter") {
        const router = lookup(s.routers, d.router)!
        check(router.worker).toBe(worker.id)
        check(router.settings).toBe(m.routerSettings)
        check(d.register).toBe(!contains(m.routers, d.router))
      }
    }
    if (d._tag === "CreateWorker") {
      check(d.node).toBe(request.node)
      check(oracleOwn(s, o, d.node, m)).toBeUndefined()
      check(oracleOpen(s, o, d.node, m).holder).toBeUndefined()
      check(workersOn(s, d.node, m.workerSettings).length).toBeLessThan(oracleLimit(s, o, d.node))
      check(oracleCanStart(s, o, d.node, m)).toBe(true)
    }
    if (d._tag === "Delegate") {
      check(d.node).not.toBe(request.node)
      check(lookup(s.nodes, d.node)?.state).toBe("up")
    }
  }

  // --- Consumer placement ---------------------------------------------------------------

  private consume(c: Extract<Command, { tag: "Consume" }>) {
    const s = this.snapshot
    const producerId = pick(this.sorted(s.producers), c.producer)
    if (producerId === undefined) return
    const producer = lookup(s.producers, producerId)!
    const all = this.sorted(s.transports)
    const same = all.filter((t) => lookup(s.transports, t)?.mafaldaRouter === producer.mafaldaRouter)
    const transportId = pick(c.anyMafaldaRouter || same.length === 0 ? all : same, c.transport)
    if (transportId !== undefined) this.consumeOn(producerId, transportId)
  }

  /** Consumes a producer on a transport of a Router that does not receive it yet (any, failing that). */
  private consumeElsewhere(c: Extract<Command, { tag: "ConsumeElsewhere" }>) {
    const s = this.snapshot
    const producerId = pick(this.sorted(s.producers), c.producer)
    if (producerId === undefined) return
    const tree = lookup(s.trees, producerId)!
    const all = this.sorted(s.transports)
    const elsewhere = all.filter((t) => !HashMap.has(tree, lookup(s.transports, t)!.router))
    const transportId = pick(elsewhere.length === 0 ? all : elsewhere, c.transport)
    if (transportId !== undefined) this.consumeOn(producerId, transportId)
  }

  /** Decides a consumer of `producerId` on `transportId`, checks it, and carries it out. */
  consumeOn(producerId: ProducerId, transportId: TransportId) {
    const s = this.snapshot
    const transport = lookup(s.transports, transportId)!
    const request = { producer: producerId, router: transport.router }
    const d = decideConsumerPlacement(s, this.options, request)
    this.note(`consumer.${d._tag}`)
    check(decideConsumerPlacement(s, this.options, request)).toEqual(d)
    const tree = lookup(s.trees, producerId)!
    const at = this.now
    let planned: ReadonlyArray<PlannedPipe> = []
    switch (d._tag) {
      case "ConsumeHere":
        check(HashMap.has(tree, transport.router)).toBe(true)
        check(d.router).toBe(transport.router)
        break
      case "PipeThenConsume": {
        check(HashMap.has(tree, transport.router)).toBe(false)
        check(d.router).toBe(transport.router)
        const parent = oracleParent(s, this.options, tree)
        check(d.pipes).toEqual([{ producer: producerId, from: parent!.router, to: transport.router }])
        for (const p of d.pipes) {
          check(lookup(tree, p.from)!.depth).toBeLessThan(this.options.maxTreeDepth)
        }
        planned = d.pipes
        break
      }
      case "Reject":
        throw new Error(`unexpected consumer Reject: ${d.message}`)
    }
    const before = loads(s)
    this.emitPipes(planned)
    const piped = this.snapshot
    const consumer = cid(this.fresh("c"))
    this.emit(ev.consumer(consumer, producerId, transportId, at))
    const consumed = this.snapshot
    // Applying then removing a consumer (and the pipes made for it) restores every load.
    const closed = apply(consumed, ev.consumerClosed(consumer, at), this.options.costs)
    check(loadDiffs(loads(closed), loads(piped))).toEqual([])
    const unpiped = apply(
      closed,
      [...planned].reverse().map((p) => ev.pipeClosed(p.producer, p.to, at)),
      this.options.costs
    )
    check(loadDiffs(loads(unpiped), before)).toEqual([])
    if (this.checks.pipesBoundedByConsumers) this.checkPipesBounded()
  }

  checkPipesBounded() {
    const s = this.snapshot
    const consuming = new Map<string, Set<string>>()
    for (const c of HashMap.values(s.consumers)) {
      const routers = consuming.get(c.producer) ?? new Set<string>()
      routers.add(c.router)
      consuming.set(c.producer, routers)
    }
    for (const [producer, tree] of s.trees) {
      const pipesOf = HashMap.size(tree) - 1
      if (pipesOf > (consuming.get(producer)?.size ?? 0))
        check({
          producer,
          pipes: pipesOf,
          consumingRouters: [...(consuming.get(producer) ?? [])]
        }).toBeUndefined()
    }
  }

  // --- pipeToRouter -------------------------------------------------------------------------

  private pipeToRouter(c: Extract<Command, { tag: "PipeToRouter" }>) {
    const s = this.snapshot
    const mafaldaRouters = this.sorted(s.mafaldaRouters)
    const producerId = pick(this.sorted(s.producers), c.producer)
    const to = pick(mafaldaRouters, c.to)
    if (producerId === undefined || to === undefined) return
    const producer = lookup(s.producers, producerId)!
    const from = c.from === null ? producer.mafaldaRouter : pick(mafaldaRouters, c.from)!
    this.pipeToRouterOf(producerId, from, to, this.nodeAt(c.node))
  }

  /**
   * `pipeToRouter` to a Mafalda Router whose settings some carrier of the producer has
   * (`share`) or none has (`pipe`), made when there is none yet (the application creates
   * Mafalda Routers as it likes).
   */
  private pipeToRouterTo(c: Extract<Command, { tag: "PipeToRouterTo" }>) {
    const s = this.snapshot
    const producerId = pick(this.sorted(s.producers), c.producer)
    if (producerId === undefined) return
    const from = lookup(s.producers, producerId)!.mafaldaRouter
    const carried = new Set<string>()
    for (const r of HashMap.keys(lookup(s.trees, producerId)!)) {
      const router = lookup(s.routers, r)!
      carried.add(`${lookup(s.workers, router.worker)!.settings}|${router.settings}`)
    }
    const combos = [WS, WS2].flatMap((ws) => [RS, RS2].map((rs) => [ws, rs] as const))
    const wanted = combos.filter(([ws, rs]) => carried.has(`${ws}|${rs}`) === (c.want === "share"))
    const fits = (m: MafaldaRouterId) => {
      const x = lookup(s.mafaldaRouters, m)!
      return m !== from && wanted.some(([ws, rs]) => x.workerSettings === ws && x.routerSettings === rs)
    }
    let to = pick(this.sorted(s.mafaldaRouters).filter(fits), c.pick)
    if (to === undefined) {
      const settings = pick(wanted, c.pick)
      if (settings === undefined || HashMap.size(s.mafaldaRouters) >= 6) return
      to = mid(this.fresh("m"))
      this.emit(ev.mafaldaRouter(to, settings[0], settings[1], this.now))
    }
    this.pipeToRouterOf(producerId, from, to, this.nodeAt(c.node))
  }

  /** Decides a `pipeToRouter`, checks it against the rules, and carries it out. */
  private pipeToRouterOf(producerId: ProducerId, from: MafaldaRouterId, to: MafaldaRouterId, node: NodeId) {
    const s = this.snapshot
    const request = { producer: producerId, from, to, node }
    const d = decidePipeToRouter(s, this.options, request)
    this.note(`pipeToRouter.${d._tag}${d._tag === "Reject" ? `.${d.reason}` : ""}`)
    check(decidePipeToRouter(s, this.options, request)).toEqual(d)
    const tree = lookup(s.trees, producerId)!
    const mFrom = lookup(s.mafaldaRouters, from)!
    const mTo = lookup(s.mafaldaRouters, to)!
    const visible = [...HashMap.keys(tree)].some((r) => contains(mFrom.routers, r))
    const accepts = (r: RouterId) =>
      lookup(s.routers, r)?.settings === mTo.routerSettings &&
      lookup(s.workers, lookup(s.routers, r)!.worker)?.settings === mTo.workerSettings
    const at = this.now
    if (from === to) {
      check(d).toMatchObject({ _tag: "Reject", reason: "SameRouter" })
      return
    }
    if (!visible) {
      check(d).toMatchObject({ _tag: "Reject", reason: "UnknownProducer" })
      return
    }
    switch (d._tag) {
      case "Share": {
        check(HashMap.has(tree, d.router)).toBe(true)
        check(accepts(d.router)).toBe(true)
        // The shallowest such carrier.
        const depths = [...HashMap.values(tree)].filter((h) => accepts(h.router)).map((h) => h.depth)
        check(lookup(tree, d.router)!.depth).toBe(Math.min(...depths))
        check(d.register).toBe(!contains(mTo.routers, d.router))
        if (d.register) this.emit(ev.registered(to, d.router, at))
        return
      }
      case "Pipe": {
        check([...HashMap.keys(tree)].some(accepts)).toBe(false)
        check(d.from).toBe(oracleParent(s, this.options, tree)!.router)
        check(lookup(tree, d.from)!.depth).toBeLessThan(this.options.maxTreeDepth)
        check(Either.right(d.plan)).toEqual(
          planTransportPlacement(s, this.options, { node: request.node, mafaldaRouter: to })
        )
        // The shell carries out the decision's own plan.
        const worker = d.plan.worker ?? wid(this.fresh("w"))
        const router = d.plan.router ?? rid(this.fresh("r"))
        this.emit(placementEvents(d.plan, { worker, router }, at))
        check(HashMap.has(lookup(this.snapshot.trees, producerId)!, router)).toBe(false)
        // pipeToRouter is the application's request: the pipe is pinned.
        this.emitPipes([{ producer: producerId, from: d.from, to: router }], true)
        return
      }
      case "Reject": {
        // No room for the destination's Router, or the request came from an unknown Node.
        const plan = planTransportPlacement(s, this.options, { node: request.node, mafaldaRouter: to })
        check(Either.isLeft(plan)).toBe(true)
        if (Either.isLeft(plan))
          check(d.reason).toBe(plan.left.reason === "UnknownNode" ? "UnknownNode" : "NoRoom")
        check(d.reason).toBe(HashMap.has(s.nodes, request.node) ? "NoRoom" : "UnknownNode")
        return
      }
    }
  }

  // --- Scale-down -------------------------------------------------------------------------

  private scaleDown() {
    const s = this.snapshot
    const o = this.options
    const now = this.now
    const actions = decideScaleDown(s, o, now)
    check(decideScaleDown(s, o, now)).toEqual(actions)
    const expired = (since: number | null) => since !== null && now - since >= o.idleGraceMillis
    const idleBefore = new Set(
      [...HashMap.values(s.workers)].filter((x) => expired(x.idleSince)).map((x) => x.id)
    )
    const pipes = new Set<string>()
    const routers = new Set<string>()
    const workers = new Set<string>()
    for (const a of actions) {
      switch (a._tag) {
        case "ClosePipe": {
          const hop = get(get(s.trees, a.producer), a.router)
          check(hop.parent).not.toBeNull()
          check(hop.pinned).toBe(false)
          check(hop.consumers).toBe(0)
          check(hop.children).toBe(0)
          check(expired(hop.idleSince)).toBe(true)
          pipes.add(`${a.producer}|${a.router}`)
          break
        }
        case "CloseRouter": {
          const r = lookup(s.routers, a.router)!
          check(count(r.transports)).toBe(0)
          check(count(r.carried)).toBe(0)
          check(expired(r.idleSince)).toBe(true)
          routers.add(a.router)
          break
        }
        case "CloseWorker": {
          const worker = lookup(s.workers, a.worker)!
          check(count(worker.routers)).toBe(0)
          check(expired(worker.idleSince)).toBe(true)
          workers.add(a.worker)
          break
        }
      }
    }
    // Complete for pipes and Routers: every expired idle one is closed.
    for (const [p, tree] of s.trees)
      for (const hop of HashMap.values(tree))
        if (hop.parent !== null && hop.consumers === 0 && hop.children === 0 && expired(hop.idleSince))
          check(pipes.has(`${p}|${hop.router}`)).toBe(true)
    for (const r of HashMap.values(s.routers)) if (expired(r.idleSince)) check(routers.has(r.id)).toBe(true)
    // Workers: per Node and settings, never below the warm Workers, never under hysteresis.
    const groups = new Map<string, Array<string>>()
    for (const x of workers) {
      const worker = lookup(s.workers, wid(x))!
      const key = `${worker.node}|${worker.settings}`
      groups.set(key, [...(groups.get(key) ?? []), x])
    }
    for (const closing of groups.values()) {
      const first = get(s.workers, wid(closing[0] ?? ""))
      const all = workersOn(s, first.node, first.settings)
      // A draining Node keeps nothing warm and skips hysteresis: it is meant to empty.
      const up = lookup(s.nodes, first.node)?.state === "up"
      check(all.length - closing.length).toBeGreaterThanOrEqual(up ? Math.min(o.warmWorkers, all.length) : 0)
      const busy = all.filter((x) => !(x.idleSince !== null && expired(x.idleSince)))
      if (up && busy.length > 0) {
        const avg = busy.reduce((sum, x) => sum + effectiveLoad(x), 0) / busy.length
        check(avg).toBeLessThanOrEqual(o.watermark - o.scaleDownHysteresis)
      }
    }
    // The shell carries the actions out one by one, each only if still due. Pipes and
    // Routers stay due (closing a leaf pipe or an idle Router frees nothing listed); a
    // Worker may not: when closing a Router leaves its Worker idle at once (no grace), the
    // group's idle Workers change, and the one to close (or keep warm) with them.
    for (const a of actions) {
      if (isScaleDownDue(this.snapshot, o, a, now)) {
        this.note(`scaleDown.${a._tag}`)
        this.emit(scaleDownEvent(a, now))
        continue
      }
      this.note("scaleDown.skipped")
      check(a._tag).toBe("CloseWorker")
      if (a._tag !== "CloseWorker") continue
      const worker = lookup(this.snapshot.workers, a.worker)
      const newlyIdle = workersOn(this.snapshot, worker?.node ?? nid("?"), worker?.settings ?? WS).some(
        (x) => x.idleSince !== null && expired(x.idleSince) && !idleBefore.has(x.id)
      )
      check(newlyIdle).toBe(true)
    }
  }

  // --- Encode / decode ---------------------------------------------------------------------

  /** The snapshot survives encode/JSON/decode, and decisions on the copy are equal. */
  checkRoundTrip() {
    const s = this.snapshot
    const decoded = throughJson(s)
    check(canonical(decoded)).toEqual(canonical(s))
    const o = this.options
    for (const m of this.sorted(s.mafaldaRouters)) {
      for (const n of [...this.sorted(s.nodes), nid("nowhere")]) {
        const request = { node: n, mafaldaRouter: m }
        const here = decideTransportPlacement(s, o, request)
        const there = decideTransportPlacement(decoded, o, request)
        const delegation = (x: TransportPlacement) =>
          x._tag === "Delegate" || (x._tag === "Reject" && x.reason === "NoRoom")
        if (this.strictDelegation || !delegation(here) || !delegation(there)) check(there).toEqual(here)
      }
    }
    const producers: Array<ProducerId> = this.sorted(s.producers).slice(0, 3)
    for (const p of producers) {
      for (const r of this.sorted(s.routers).slice(0, 4)) {
        const request = { producer: p, router: r }
        check(decideConsumerPlacement(decoded, o, request)).toEqual(decideConsumerPlacement(s, o, request))
      }
    }
    check(decideScaleDown(decoded, o, this.now + 1_000)).toEqual(decideScaleDown(s, o, this.now + 1_000))
  }
}

/** Consumers of one producer over many Routers whose loads keep changing: trees grow deep. */
export const treeCommand: fc.Arbitrary<Command> = fc.oneof(
  w(8, commandArbs.consume),
  // Mostly overloaded Workers, so that parents are often full and trees grow deeper.
  w(
    6,
    fc.record({
      tag: fc.constant("Load" as const),
      pick: idx,
      load: fc.constantFrom(0, 20, 45, 90, 100, 100)
    })
  ),
  w(1, commandArbs.closeConsumer),
  w(1, commandArbs.release),
  w(1, commandArbs.tick),
  w(1, commandArbs.scaleDown),
  w(3, commandArbs.deepen)
)

export interface TreeScenario {
  readonly options: PolicyOptions
  readonly routers: number
  readonly commands: ReadonlyArray<Command>
}

export const treeScenario: fc.Arbitrary<TreeScenario> = fc.record({
  options: fc
    .record({ maxTreeDepth: fc.integer({ min: 1, max: 4 }), watermark: fc.constantFrom(30, 50) })
    .map((o) =>
      Either.getOrThrow(
        makePolicyOptions({
          ...o,
          idleGraceMillis: 10,
          costs: { consumer: 1, pipe: 1, transport: 0, producer: 0 }
        })
      )
    ),
  routers: fc.integer({ min: 2, max: 10 }),
  commands: fc.array(treeCommand, { minLength: 20, maxLength: 40 })
})

/** One Node with `routers` Workers, each with a Router and a transport of m0; producer p0 on the first. */
export const playTree = (sc: TreeScenario): Sim => {
  const sim = new Sim(sc.options)
  sim.emit([ev.nodeUp("n0", sc.routers), ev.mafaldaRouter("m0")])
  for (let i = 0; i < sc.routers; i++) {
    sim.emit([
      ev.workerStarted(`w${i}`, "n0"),
      ev.routerCreated(`r${i}`, `w${i}`),
      ev.transport(`t${String(i).padStart(2, "0")}`, `r${i}`, "m0")
    ])
  }
  sim.emit(ev.producer("p0", "t00"))
  sim.checkInvariants()
  sim.run(sc.commands)
  return sim
}

/** Plays a scenario: Nodes and a Mafalda Router, then the commands. */
export const play = (sc: Scenario, checks: SimChecks = {}): Sim => {
  const sim = new Sim(sc.options, checks)
  sim.setup(sc.cpus, sc.producers)
  sim.run(sc.commands)
  return sim
}

// --- Raw events ----------------------------------------------------------------------------

/** A small valid cluster that raw events start from: 3 Nodes, 4 Workers, 5 Routers, 2 Mafalda Routers. */
export const rawPrefix: ReadonlyArray<ClusterEvent> = [
  ev.nodeUp("n0", 2),
  ev.nodeUp("n1", 2),
  ev.nodeUp("n2", 2),
  ev.workerStarted("w0", "n0", WS),
  ev.workerStarted("w1", "n0", WS),
  ev.workerStarted("w2", "n1", WS),
  ev.workerStarted("w3", "n2", WS2),
  ev.routerCreated("r0", "w0", RS),
  ev.routerCreated("r1", "w1", RS),
  ev.routerCreated("r2", "w2", RS),
  ev.routerCreated("r3", "w3", RS),
  ev.routerCreated("r4", "w0", RS2),
  ev.mafaldaRouter("m0", WS, RS),
  ev.mafaldaRouter("m1", WS, RS2),
  ev.transport("t0", "r0", "m0"),
  ev.transport("t1", "r1", "m0"),
  ev.transport("t2", "r2", "m0"),
  ev.transport("t3", "r4", "m1"),
  ev.producer("p0", "t0"),
  ev.producer("p1", "t3")
]

export type RawEventKind =
  | "NodeUp"
  | "NodeDraining"
  | "NodeDown"
  | "NodeLeft"
  | "WorkerStarted"
  | "WorkerDied"
  | "WorkerClosed"
  | "LoadReported"
  | "RouterCreated"
  | "RouterClosed"
  | "MafaldaRouterCreated"
  | "MafaldaRouterClosed"
  | "RouterRegistered"
  | "TransportCreated"
  | "TransportClosed"
  | "ProducerCreated"
  | "ProducerClosed"
  | "ConsumerCreated"
  | "ConsumerClosed"
  | "PipeCreated"
  | "PipeClosed"
  | "RtpObserverCreated"
  | "RtpObserverClosed"

/**
 * How a raw event is meant to be wrong, if at all: `none` aims at a valid event (ids that
 * exist where they must, fresh ones where it makes one, matching settings, Routers in or out
 * of the producer's tree as needed); `unknown` names an id that does not exist; `duplicate`
 * makes a thing with an id that exists; `mismatch` breaks the kind's own rule (a Worker on a
 * down Node, a second Router of the same settings on a Worker, a Router of other settings
 * for a Mafalda Router, a consumer on a Router that does not receive the producer, a pipe
 * into a Router that does, closing a producer's origin as a pipe, an observer closed on
 * the wrong Router). The generator only aims: whether the event is valid is decided by
 * the independent model in `eventValidity.ts`.
 */
export type Flaw = "none" | "unknown" | "duplicate" | "mismatch"

/** An event made without asking the policy, against the current snapshot (see `makeRawEvent`). */
export interface RawEvent {
  readonly kind: RawEventKind
  readonly flaw: Flaw
  readonly a: number
  readonly b: number
  readonly c: number
}

const rawKinds: ReadonlyArray<[number, RawEventKind]> = [
  [1, "NodeUp"],
  [1, "NodeDraining"],
  [1, "NodeDown"],
  [1, "NodeLeft"],
  [3, "WorkerStarted"],
  [1, "WorkerDied"],
  [1, "WorkerClosed"],
  [2, "LoadReported"],
  [3, "RouterCreated"],
  [1, "RouterClosed"],
  [1, "MafaldaRouterCreated"],
  [1, "MafaldaRouterClosed"],
  [2, "RouterRegistered"],
  [4, "TransportCreated"],
  [1, "TransportClosed"],
  [3, "ProducerCreated"],
  [1, "ProducerClosed"],
  [5, "ConsumerCreated"],
  [2, "ConsumerClosed"],
  [5, "PipeCreated"],
  [2, "PipeClosed"],
  [1, "RtpObserverCreated"],
  [2, "RtpObserverClosed"]
]

export const rawEvent: fc.Arbitrary<RawEvent> = fc.record({
  kind: fc.oneof(...rawKinds.map(([weight, kind]) => w(weight, fc.constant(kind)))),
  flaw: fc.oneof(
    w(6, fc.constant("none" as const)),
    w(1, fc.constant("unknown" as const)),
    w(1, fc.constant("duplicate" as const)),
    w(2, fc.constant("mismatch" as const))
  ),
  a: idx,
  b: idx,
  c: idx
})

export const makeRawEvent = (s: ClusterSnapshot, e: RawEvent, at: number): ClusterEvent => {
  const flaw = e.flaw
  /** An existing id by index (or a made-up one when there is none), or an unknown id. */
  const ref = <K extends string>(map: HashMap.HashMap<K, unknown>, prefix: string, i: number): string =>
    flaw === "unknown" ? `${prefix}-unknown${i % 3}` : (pick(keysOf(map), i) ?? `${prefix}-none`)
  /** A fresh id, or for a duplicate an existing one. */
  const fresh = <K extends string>(map: HashMap.HashMap<K, unknown>, prefix: string): string =>
    flaw === "duplicate" ? (pick(keysOf(map), e.a) ?? `${prefix}-${at}`) : `${prefix}-${at}`
  const among = <A>(items: ReadonlyArray<A>, i: number, fallback: A): A => pick(items, i) ?? fallback
  const routers = keysOf(s.routers)
  const settingsOf = (r: RouterId) => {
    const router = lookup(s.routers, r)!
    return `${lookup(s.workers, router.worker)?.settings}|${router.settings}`
  }
  /** A Router for a Mafalda Router: of its settings, or (mismatch) of others. */
  const routerFor = (m: string, i: number): string => {
    const mr = lookup(s.mafaldaRouters, mid(m))
    if (mr === undefined || flaw === "unknown") return ref(s.routers, "r", i)
    const own = `${mr.workerSettings}|${mr.routerSettings}`
    const fits = routers.filter((r) => (settingsOf(r) === own) === (flaw !== "mismatch"))
    return among(fits, i, ref(s.routers, "r", i))
  }
  const treeOf = (p: string) => lookup(s.trees, p as ProducerId)
  switch (e.kind) {
    case "NodeUp":
      return ev.nodeUp(`n${e.a % 4}`, 1 + (e.b % 4), at)
    case "NodeDraining":
      return ev.nodeDraining(ref(s.nodes, "n", e.a), at)
    case "NodeDown":
      return ev.nodeDown(ref(s.nodes, "n", e.a), at)
    case "NodeLeft":
      return ev.nodeLeft(ref(s.nodes, "n", e.a), at)
    case "WorkerStarted": {
      const nodes = keysOf(s.nodes)
      const down = (n: NodeId) => lookup(s.nodes, n)!.state === "down"
      const node =
        flaw === "unknown"
          ? ref(s.nodes, "n", e.b)
          : among(
              nodes.filter((n) => down(n) === (flaw === "mismatch")),
              e.b,
              ref(s.nodes, "n", e.b)
            )
      return ev.workerStarted(fresh(s.workers, "w"), node, e.c % 2 === 0 ? WS : WS2, at)
    }
    case "WorkerDied":
      return ev.workerDied(ref(s.workers, "w", e.a), at)
    case "WorkerClosed":
      return ev.workerClosed(ref(s.workers, "w", e.a), at)
    case "LoadReported":
      return ev.load(ref(s.workers, "w", e.a), e.b % 101, at)
    case "RouterCreated": {
      const worker = ref(s.workers, "w", e.b)
      const taken = (lookup(s.workers, wid(worker))?.routers ?? []).map((r) => r.settings)
      // Settings the Worker has no Router of yet, or (mismatch) ones it has.
      const settings = [RS, RS2].filter((x) => taken.includes(x) === (flaw === "mismatch"))
      return ev.routerCreated(fresh(s.routers, "r"), worker, among(settings, e.c, RS), at)
    }
    case "RouterClosed":
      return ev.routerClosed(ref(s.routers, "r", e.a), at)
    case "MafaldaRouterCreated":
      return ev.mafaldaRouter(
        fresh(s.mafaldaRouters, "m"),
        e.b % 2 === 0 ? WS : WS2,
        e.c % 2 === 0 ? RS : RS2,
        at
      )
    case "MafaldaRouterClosed":
      return ev.mafaldaRouterClosed(ref(s.mafaldaRouters, "m", e.a), at)
    case "RouterRegistered": {
      const m = ref(s.mafaldaRouters, "m", e.a)
      return ev.registered(m, routerFor(m, e.b), at)
    }
    case "TransportCreated": {
      const m = ref(s.mafaldaRouters, "m", e.c)
      return ev.transport(fresh(s.transports, "t"), routerFor(m, e.b), m, at)
    }
    case "TransportClosed":
      return ev.transportClosed(ref(s.transports, "t", e.a), at)
    case "ProducerCreated":
      return ev.producer(fresh(s.producers, "p"), ref(s.transports, "t", e.b), at)
    case "ProducerClosed":
      return ev.producerClosed(ref(s.producers, "p", e.a), at)
    case "ConsumerCreated": {
      const producer = ref(s.producers, "p", e.b)
      const tree = treeOf(producer)
      // A transport on a Router that receives the producer, or (mismatch) one that does not.
      const fits = keysOf(s.transports).filter(
        (t) =>
          (tree !== undefined && HashMap.has(tree, lookup(s.transports, t)!.router)) === (flaw !== "mismatch")
      )
      const transport =
        flaw === "unknown" ? ref(s.transports, "t", e.c) : among(fits, e.c, ref(s.transports, "t", e.c))
      return ev.consumer(fresh(s.consumers, "c"), producer, transport, at)
    }
    case "ConsumerClosed":
      return ev.consumerClosed(ref(s.consumers, "c", e.a), at)
    case "PipeCreated": {
      const producer = ref(s.producers, "p", e.a)
      const tree = treeOf(producer)
      const inTree = tree === undefined ? [] : keysOf(tree)
      const outside = routers.filter((r) => tree === undefined || !HashMap.has(tree, r))
      // From a Router that receives it to one that does not; mismatch swaps one end.
      const swapFrom = flaw === "mismatch" && e.c % 2 === 0
      const swapTo = flaw === "mismatch" && !swapFrom
      const from = among<string>(swapFrom ? outside : inTree, e.b, "r-none")
      const to = flaw === "unknown" ? "r-unknown" : among<string>(swapTo ? inTree : outside, e.c, "r-none")
      return ev.pipe(producer, from, to, at, e.a % 3 === 0)
    }
    case "PipeClosed": {
      const producer = ref(s.producers, "p", e.a)
      const p = lookup(s.producers, producer as ProducerId)
      const tree = treeOf(producer)
      const piped = tree === undefined ? [] : keysOf(tree).filter((r) => r !== p?.origin)
      const to =
        flaw === "mismatch" ? (p?.origin ?? "r-none") : among<string>(piped, e.b, ref(s.routers, "r", e.b))
      return ev.pipeClosed(producer, to, at)
    }
    case "RtpObserverCreated": {
      const open = routers.flatMap((r) => [...lookup(s.routers, r)!.observers].sort())
      const observer = flaw === "duplicate" ? among<string>(open, e.a, `o-${at}`) : `o-${at}`
      return ev.observer(observer, ref(s.routers, "r", e.b), at)
    }
    case "RtpObserverClosed": {
      const open = routers.flatMap((r) =>
        [...lookup(s.routers, r)!.observers].sort().map((o): [string, string] => [o, r])
      )
      const [observer, router] = among<[string, string]>(open, e.a, ["o-none", ref(s.routers, "r", e.b)])
      // Mismatch: an open observer named on another Router; unknown: an observer never opened.
      const other = among<string>(
        routers.filter((r) => r !== router),
        e.b,
        router
      )
      return flaw === "mismatch"
        ? ev.observerClosed(observer, other, at)
        : ev.observerClosed(flaw === "unknown" ? "o-unknown" : observer, router, at)
    }
  }
}
