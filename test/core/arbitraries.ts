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
  placementEvents,
  planTransportPlacement,
  type RouterId,
  scaleDownEvent,
  type TransportPlacement,
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
  nid,
  RS,
  RS2,
  rid,
  throughJson,
  WS,
  WS2,
  wid
} from "./helpers.js"
import { oracleCanStart, oracleLimit, oracleLocal, oracleParent, oracleTransportPlacement } from "./oracle.js"

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
    costs: fc.record({
      transport: fc.constantFrom(0, 0.1, 1, 3),
      producer: fc.constantFrom(0, 0.5, 2, 5),
      consumer: fc.constantFrom(0.2, 1, 4),
      pipe: fc.constantFrom(0, 0.2, 2)
    })
  },
  { requiredKeys: [] }
)

export const options: fc.Arbitrary<PolicyOptions> = optionsInput.map((input) =>
  Either.getOrThrow(makePolicyOptions(input))
)

// --- Commands --------------------------------------------------------------------------

export type Command =
  | { readonly tag: "NodeUp"; readonly node: number; readonly cpus: number }
  | { readonly tag: "NodeDraining"; readonly node: number }
  | { readonly tag: "NodeDown"; readonly node: number }
  | { readonly tag: "NodeLeft"; readonly node: number }
  | { readonly tag: "StartWorker"; readonly node: number; readonly other: boolean }
  | { readonly tag: "StopWorker"; readonly pick: number; readonly died: boolean }
  | { readonly tag: "Load"; readonly pick: number; readonly load: number }
  | { readonly tag: "CreateMafaldaRouter"; readonly ws: number; readonly rs: number }
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
  | { readonly tag: "ScaleDown" }
  /** Reports every Worker of the first producer's tree full but the deepest hop's, which is idle. */
  | { readonly tag: "Deepen" }
  /** Opens an RTP observer on a Router, or closes one. */
  | { readonly tag: "Observer"; readonly pick: number; readonly close: boolean }

const idx = fc.nat({ max: 1000 })
const nodeIdx = fc.integer({ min: 0, max: 3 })

export const commandArbs = {
  nodeUp: fc.record({
    tag: fc.constant("NodeUp" as const),
    node: nodeIdx,
    cpus: fc.integer({ min: 1, max: 4 })
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
    rs: fc.integer({ min: 0, max: 1 })
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
  deepen: fc.constant({ tag: "Deepen" as const }),
  observer: fc.record({ tag: fc.constant("Observer" as const), pick: idx, close: fc.boolean() })
}

const w = <A>(weight: number, arbitrary: fc.Arbitrary<A>) => ({ weight, arbitrary })

/** Every kind of command, weighted so that runs build clusters and then churn them. */
export const anyCommand: fc.Arbitrary<Command> = fc.oneof(
  w(2, commandArbs.nodeUp),
  w(1, commandArbs.nodeDraining),
  w(1, commandArbs.nodeDown),
  w(1, commandArbs.nodeLeft),
  w(2, commandArbs.startWorker),
  w(1, commandArbs.stopWorker),
  w(3, commandArbs.load),
  w(1, commandArbs.createMafaldaRouter),
  w(1, commandArbs.closeMafaldaRouter),
  w(8, commandArbs.join),
  w(4, commandArbs.produce),
  w(10, commandArbs.consume),
  w(4, commandArbs.closeConsumer),
  w(1, commandArbs.closeTransport),
  w(1, commandArbs.closeProducer),
  w(2, commandArbs.pipeToRouter),
  w(2, commandArbs.tick),
  w(2, commandArbs.scaleDown),
  w(1, commandArbs.deepen),
  w(1, commandArbs.observer)
)

/** Commands that only ever add: joins, producers, consumers (and load reports). */
export const growCommand: fc.Arbitrary<Command> = fc.oneof(
  w(4, commandArbs.join),
  w(3, commandArbs.produce),
  w(10, commandArbs.consume),
  w(2, commandArbs.load)
)

export interface Scenario {
  readonly options: PolicyOptions
  readonly cpus: ReadonlyArray<number>
  readonly commands: ReadonlyArray<Command>
}

export const scenario = (command: fc.Arbitrary<Command>, maxLength: number): fc.Arbitrary<Scenario> =>
  fc.record({
    options,
    cpus: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 3 }),
    commands: fc.array(command, { minLength: Math.floor(maxLength / 2), maxLength })
  })

// --- The harness -------------------------------------------------------------------------

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
  /** Decision tags seen, for sanity checks on what a test exercised. */
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
  setup(cpus: ReadonlyArray<number>) {
    cpus.forEach((c, i) => {
      this.emit(ev.nodeUp(`n${i}`, c, this.now))
    })
    this.emit(ev.mafaldaRouter("m0", WS, RS, this.now))
    this.checkInvariants()
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
        if (n === undefined || n.state !== "up") this.emit(ev.nodeUp(`n${c.node}`, c.cpus, at))
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
        this.emit(ev.mafaldaRouter(this.fresh("m"), c.ws === 0 ? WS : WS2, c.rs === 0 ? RS : RS2, at))
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
      // Never on a Worker at or over the watermark (so never while another has room).
      check(effectiveLoad(worker)).toBeLessThan(o.watermark)
      if (d._tag === "UseRouter") {
        const router = lookup(s.routers, d.router)!
        check(router.worker).toBe(worker.id)
        check(router.settings).toBe(m.routerSettings)
        check(d.register).toBe(!contains(m.routers, d.router))
      }
    }
    if (d._tag === "CreateWorker") {
      check(d.node).toBe(request.node)
      check(oracleLocal(s, o, d.node, m)).toBeUndefined()
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
    if (transportId === undefined) return
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
    this.emit(pipeEvents(planned, at))
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
    const request = { producer: producerId, from, to, node: this.nodeAt(c.node) }
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
        this.emit(pipeEvents([{ producer: producerId, from: d.from, to: router }], at, true))
        return
      }
      case "Reject":
        check(d.reason).toBe("NoRoom")
        check(
          Either.isLeft(planTransportPlacement(s, this.options, { node: request.node, mafaldaRouter: to }))
        ).toBe(true)
        return
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
    const pipes = new Set<string>()
    const routers = new Set<string>()
    const workers = new Set<string>()
    for (const a of actions) {
      this.note(`scaleDown.${a._tag}`)
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
    // Every action is still due when the shell gets to it (one by one), and applies.
    for (const a of actions) {
      check(isScaleDownDue(this.snapshot, o, a, now)).toBe(true)
      this.emit(scaleDownEvent(a, now))
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
  sim.setup(sc.cpus)
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
 * An event made without asking the policy: its ids are picked among the snapshot's (by
 * index), or, when `foreign`, from a small pool that may or may not exist (so duplicates,
 * unknown ids, wrong settings and pipes to Routers that already receive the producer all
 * occur). `make` builds the event against the current snapshot.
 */
export interface RawEvent {
  readonly kind: RawEventKind
  readonly a: number
  readonly b: number
  readonly c: number
  readonly foreign: boolean
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
  [6, "ConsumerCreated"],
  [2, "ConsumerClosed"],
  [6, "PipeCreated"],
  [2, "PipeClosed"],
  [1, "RtpObserverCreated"],
  [1, "RtpObserverClosed"]
]

export const rawEvent: fc.Arbitrary<RawEvent> = fc.record({
  kind: fc.oneof(...rawKinds.map(([weight, kind]) => w(weight, fc.constant(kind)))),
  a: idx,
  b: idx,
  c: idx,
  foreign: fc.boolean().chain((x) => (x ? fc.boolean() : fc.constant(false)))
})

export const makeRawEvent = (s: ClusterSnapshot, e: RawEvent, at: number): ClusterEvent => {
  const choose = <K extends string>(map: HashMap.HashMap<K, unknown>, prefix: string, i: number): string =>
    e.foreign ? `${prefix}${i % 6}` : (pick(keysOf(map), i) ?? `${prefix}-none`)
  const fresh = (prefix: string) => (e.foreign ? `${prefix}${e.a % 6}` : `${prefix}-${at}`)
  const hopOf = (producer: string, i: number) => {
    const tree = lookup(s.trees, producer as ProducerId)
    return e.foreign || tree === undefined ? `r${i % 6}` : (pick(keysOf(tree), i) ?? "r-none")
  }
  const settings = (i: number) => (i % 2 === 0 ? WS : WS2)
  const rsettings = (i: number) => (i % 2 === 0 ? RS : RS2)
  switch (e.kind) {
    case "NodeUp":
      return ev.nodeUp(`n${e.a % 4}`, 1 + (e.b % 4), at)
    case "NodeDraining":
      return ev.nodeDraining(choose(s.nodes, "n", e.a), at)
    case "NodeDown":
      return ev.nodeDown(choose(s.nodes, "n", e.a), at)
    case "NodeLeft":
      return ev.nodeLeft(choose(s.nodes, "n", e.a), at)
    case "WorkerStarted":
      return ev.workerStarted(fresh("w"), choose(s.nodes, "n", e.b), settings(e.c), at)
    case "WorkerDied":
      return ev.workerDied(choose(s.workers, "w", e.a), at)
    case "WorkerClosed":
      return ev.workerClosed(choose(s.workers, "w", e.a), at)
    case "LoadReported":
      return ev.load(choose(s.workers, "w", e.a), e.b % 101, at)
    case "RouterCreated":
      return ev.routerCreated(fresh("r"), choose(s.workers, "w", e.b), rsettings(e.c), at)
    case "RouterClosed":
      return ev.routerClosed(choose(s.routers, "r", e.a), at)
    case "MafaldaRouterCreated":
      return ev.mafaldaRouter(fresh("m"), settings(e.b), rsettings(e.c), at)
    case "MafaldaRouterClosed":
      return ev.mafaldaRouterClosed(choose(s.mafaldaRouters, "m", e.a), at)
    case "RouterRegistered":
      return ev.registered(choose(s.mafaldaRouters, "m", e.a), choose(s.routers, "r", e.b), at)
    case "TransportCreated":
      return ev.transport(fresh("t"), choose(s.routers, "r", e.b), choose(s.mafaldaRouters, "m", e.c), at)
    case "TransportClosed":
      return ev.transportClosed(choose(s.transports, "t", e.a), at)
    case "ProducerCreated":
      return ev.producer(fresh("p"), choose(s.transports, "t", e.b), at)
    case "ProducerClosed":
      return ev.producerClosed(choose(s.producers, "p", e.a), at)
    case "ConsumerCreated": {
      const producer = choose(s.producers, "p", e.b)
      // Mostly a transport on a Router that receives the producer, so that most are valid.
      const tree = lookup(s.trees, producer as ProducerId)
      const onTree = keysOf(s.transports).filter(
        (t) => tree !== undefined && HashMap.has(tree, lookup(s.transports, t)!.router)
      )
      const transport =
        e.foreign || onTree.length === 0 ? choose(s.transports, "t", e.c) : onTree[e.c % onTree.length]!
      return ev.consumer(fresh("c"), producer, transport, at)
    }
    case "ConsumerClosed":
      return ev.consumerClosed(choose(s.consumers, "c", e.a), at)
    case "PipeCreated": {
      const producer = choose(s.producers, "p", e.a)
      return ev.pipe(producer, hopOf(producer, e.b), choose(s.routers, "r", e.c), at, e.c % 3 === 0)
    }
    case "PipeClosed": {
      const producer = choose(s.producers, "p", e.a)
      return ev.pipeClosed(producer, hopOf(producer, e.b), at)
    }
    case "RtpObserverCreated":
      return ev.observer(fresh("o"), choose(s.routers, "r", e.b), at)
    case "RtpObserverClosed": {
      const router = choose(s.routers, "r", e.b)
      const open = [...(lookup(s.routers, rid(router))?.observers ?? [])].sort()
      return ev.observerClosed(e.foreign ? `o${e.a % 6}` : (pick(open, e.a) ?? "o-none"), router, at)
    }
  }
}
