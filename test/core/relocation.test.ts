import { isDeepStrictEqual } from "node:util"
import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc, HashMap, HashSet } from "effect"
import {
  applyEvent,
  type ClusterEvent,
  type ClusterSnapshot,
  decideConsumerPlacement,
  defaultPolicyOptions,
  effectiveLoad,
  lookup,
  type Made,
  makePolicyOptions,
  type PolicyOptions,
  type ProducerId,
  pipeEvents,
  placementEvents,
  type RouterId,
  setWorker,
  type TransportId,
  type WorkerId
} from "../../src/core/index.js"
import {
  decideRelocations,
  type Move,
  RelocationTarget,
  relocationPlan,
  relocationReasons,
  targetKey
} from "../../src/core/relocation.js"
import { makeRawEvent, options, type RawEvent, rawEvent, rawPrefix } from "./arbitraries.js"
import { assertProperty, Coverage } from "./coverage.js"
import {
  apply,
  build,
  ev,
  invariantViolations,
  mid,
  nid,
  rid,
  throughJson,
  tid,
  wid,
  workerWithRouter
} from "./helpers.js"

const opts = (input: Record<string, unknown> = {}): PolicyOptions =>
  Either.getOrThrow(makePolicyOptions(input))

/** Ids made by `carryOut`, unique over a test file. */
let seq = 0

/**
 * Carries moves out on a snapshot the way a shell does: the target made as
 * `relocationPlan` says (new Workers and Routers shared by the moves of one target), the old
 * transport closed, a new one opened on the target, what it consumed consumed again there
 * (piped as `decideConsumerPlacement` says), its producers published again and consumed by
 * those that consumed them before.
 */
const carryOut = (
  snapshot: ClusterSnapshot,
  options: PolicyOptions,
  moves: ReadonlyArray<Move>
): { snapshot: ClusterSnapshot; consumersLost: number } => {
  let s = snapshot
  let consumersLost = 0
  const at = s.now
  const made = new Map<string, Made>()
  const emit = (events: ClusterEvent | ReadonlyArray<ClusterEvent>) => {
    s = apply(s, events, options.costs)
  }
  const consume = (producer: ProducerId, transport: TransportId, router: RouterId) => {
    const d = decideConsumerPlacement(s, options, { producer, router })
    if (d._tag === "Reject") {
      consumersLost++
      return
    }
    if (d._tag === "PipeThenConsume") emit(pipeEvents(d.pipes, at))
    emit({ _tag: "ConsumerCreated", consumer: `xc${seq++}` as never, producer, transport, at })
  }
  for (const move of moves) {
    const key = targetKey(move.to)
    const plan = relocationPlan(s, move, key === undefined ? undefined : made.get(key))
    expect(plan).toBeDefined()
    if (plan === undefined) continue
    const worker = plan.worker ?? (`xw${seq++}` as WorkerId)
    const router = plan.router ?? (`xr${seq++}` as RouterId)
    emit(placementEvents(plan, { worker, router }, at))
    if (key !== undefined) made.set(key, { worker })
    const old = lookup(s.transports, move.transport)!
    const consumed: Array<ProducerId> = []
    for (const c of old.consumers) consumed.push(lookup(s.consumers, c)!.producer)
    const own = [...old.producers].sort().map((p) => {
      const consumers: Array<{ transport: TransportId; router: RouterId }> = []
      for (const c of HashMap.values(s.consumers)) {
        if (c.producer === p && c.transport !== old.id)
          consumers.push({ transport: c.transport, router: c.router })
      }
      return { kind: lookup(s.producers, p)!.kind, consumers }
    })
    emit(ev.transportClosed(old.id, at))
    const transport = `xt${seq++}` as TransportId
    emit({
      _tag: "TransportCreated",
      transport,
      kind: old.kind,
      router,
      mafaldaRouter: old.mafaldaRouter,
      at
    })
    for (const p of consumed.sort()) if (HashMap.has(s.producers, p)) consume(p, transport, router)
    for (const o of own) {
      const producer = `xp${seq++}` as ProducerId
      emit({ _tag: "ProducerCreated", producer, kind: o.kind, transport, at })
      for (const c of o.consumers)
        if (HashMap.has(s.transports, c.transport)) consume(producer, c.transport, c.router)
    }
  }
  return { snapshot: s, consumersLost }
}

// --- Example clusters ------------------------------------------------------------------------

/** Transport `t` of room `m` on Router `r`, publishing `producers` (video) named `${t}p${i}`. */
const member = (t: string, r: string, m: string, producers = 0): Array<ClusterEvent> => [
  ev.transport(t, r, m),
  ...Array.from({ length: producers }, (_, i) => ev.producer(`${t}p${i}`, t))
]

/**
 * n1 (4 CPUs): w1/r1 measured at `load1`, w2/r2 at 30, w3/r3 at 10. Room m1: five
 * transports on r1, t1 publishing. Room m2: three publishers on r2 (a1..a3), and b1 on r1
 * consuming them through pipes.
 */
const overloaded = (load1 = 96) =>
  build([
    ev.nodeUp("n1", 4),
    ev.mafaldaRouter("m1"),
    ev.mafaldaRouter("m2"),
    ...workerWithRouter("w1", "r1", "n1"),
    ...workerWithRouter("w2", "r2", "n1"),
    ...workerWithRouter("w3", "r3", "n1"),
    ev.registered("m1", "r1"),
    ev.registered("m2", "r1"),
    ev.registered("m2", "r2"),
    ...member("t1", "r1", "m1", 1),
    ...["t2", "t3", "t4", "t5"].flatMap((t) => [...member(t, "r1", "m1"), ev.consumer(`${t}c`, "t1p0", t)]),
    ...["a1", "a2", "a3"].flatMap((t) => member(t, "r2", "m2", 1)),
    ev.transport("b1", "r1", "m2"),
    ...["a1p0", "a2p0", "a3p0"].flatMap((p) => [ev.pipe(p, "r2", "r1"), ev.consumer(`b1-${p}`, p, "b1")]),
    ev.load("w1", load1, 1),
    ev.load("w2", 30, 1),
    ev.load("w3", 10, 1)
  ])

describe("decideRelocations: Overload", () => {
  it("sheds the room's smallest share that relieves enough, to the Router the room already uses", () => {
    const s = overloaded()
    // The model's estimate of w1 (a few CPU %) against its report: a move relieves ratio times more.
    const moves = decideRelocations(s, defaultPolicyOptions)
    expect(moves.length).toBeGreaterThan(0)
    expect(moves[0]).toMatchObject({
      transport: tid("b1"),
      mafaldaRouter: mid("m2"),
      from: { worker: wid("w1"), router: rid("r1") },
      to: RelocationTarget.UseRouter({ router: rid("r2"), worker: wid("w2"), node: nid("n1") }),
      reason: "Overload"
    })
    for (const m of moves) expect(m.from.worker).toBe(wid("w1"))
  })

  it("carried out, lowers the source and recreates every consumer", () => {
    const s = overloaded()
    const moves = decideRelocations(s, defaultPolicyOptions)
    const { snapshot: after, consumersLost } = carryOut(s, defaultPolicyOptions, moves)
    expect(consumersLost).toBe(0)
    expect(invariantViolations(after, defaultPolicyOptions)).toEqual([])
    expect(effectiveLoad(lookup(after.workers, wid("w1"))!)).toBeLessThan(
      effectiveLoad(lookup(s.workers, wid("w1"))!)
    )
    expect(HashMap.size(after.consumers)).toBe(HashMap.size(s.consumers))
  })

  it("does nothing under relocateAbove, nor once the moves since the report brought it to plannedLimit", () => {
    expect(decideRelocations(overloaded(90), defaultPolicyOptions)).toEqual([])
    const s = overloaded(96)
    const options = opts({ plannedLimit: 95.9 })
    const moves = decideRelocations(s, options)
    expect(moves.length).toBeGreaterThan(0)
    // The moves are carried out before the next report: the estimate is under the limit.
    const { snapshot: after } = carryOut(s, options, moves)
    expect(decideRelocations(after, options).filter((m) => m.reason === "Overload")).toEqual([])
  })

  it("never targets a Worker the move would take over the watermark", () => {
    // w2 and w3 full: the only room left is a new Worker on the Node (a free CPU).
    const s = apply(overloaded(), [ev.load("w2", 59.7, 2), ev.load("w3", 59.9, 2)])
    const moves = decideRelocations(s, defaultPolicyOptions)
    expect(moves.length).toBeGreaterThan(0)
    for (const m of moves) expect(m.to._tag).toBe("CreateWorker")
    // And with no CPU left, nothing moves at all.
    const full = apply(s, [ev.workerStarted("w4", "n1"), ev.load("w4", 59.9, 2)])
    expect(decideRelocations(full, defaultPolicyOptions)).toEqual([])
  })
})

describe("decideRelocations: Drain and WorkerLost", () => {
  const twoNodes = (moves = 8) => {
    const s = build([
      ev.nodeUp("n1", 2),
      ev.nodeUp("n2", 2),
      ev.mafaldaRouter("m1"),
      ...workerWithRouter("w1", "r1", "n1"),
      ...workerWithRouter("w2", "r2", "n2"),
      ev.registered("m1", "r1"),
      ...member("t1", "r1", "m1", 2),
      ...member("t2", "r1", "m1"),
      ...member("t3", "r1", "m1"),
      ev.consumer("c2", "t1p0", "t2"),
      ev.consumer("c3", "t1p0", "t3"),
      ev.load("w1", 20, 1),
      ev.load("w2", 20, 1)
    ])
    return { s, options: opts({ maxMovesPerStep: moves }) }
  }

  it("a draining Node moves every transport out, a room's share together, within the budget", () => {
    const { s, options } = twoNodes(2)
    const drained = apply(s, ev.nodeDraining("n1", 2))
    const moves = decideRelocations(drained, options)
    expect(moves.map((m) => [m.transport, m.reason])).toEqual([
      [tid("t2"), "Drain"],
      [tid("t3"), "Drain"]
    ])
    // Both to w2's Router on the other Node (m1 registers it), one group.
    expect(moves.map((m) => m.to)).toEqual([
      RelocationTarget.UseRouter({ router: rid("r2"), worker: wid("w2"), node: nid("n2") }),
      RelocationTarget.UseRouter({ router: rid("r2"), worker: wid("w2"), node: nid("n2") })
    ])
    expect(new Set(moves.map((m) => m.group)).size).toBe(1)
    // Carried out, the next step moves the last one.
    const { snapshot: after } = carryOut(drained, options, moves)
    expect(lookup(after.workers, wid("w2"))!.routers.length).toBe(1)
    const next = decideRelocations(after, options)
    expect(next.map((m) => [m.transport, m.reason, m.to._tag])).toEqual([[tid("t1"), "Drain", "UseRouter"]])
    const { snapshot: done, consumersLost } = carryOut(after, options, next)
    expect(consumersLost).toBe(0)
    expect(HashSet.size(lookup(done.routers, rid("r1"))!.transports)).toBe(0)
    expect(decideRelocations(done, options)).toEqual([])
  })

  it("a Worker known dead moves everything it holds first", () => {
    const { s, options } = twoNodes()
    const w1 = lookup(s.workers, wid("w1"))!
    const lost = setWorker(s, { ...w1, alive: false })
    const moves = decideRelocations(lost, options)
    expect(moves.map((m) => m.transport).sort()).toEqual([tid("t1"), tid("t2"), tid("t3")])
    for (const m of moves) expect(m).toMatchObject({ reason: "WorkerLost", from: { worker: wid("w1") } })
    // One group: the room's share goes to one target, never the dead Worker.
    expect(new Set(moves.map((m) => m.group)).size).toBe(1)
    for (const m of moves) expect(m.to._tag === "CreateWorker" || m.to.worker !== wid("w1")).toBe(true)
  })
})

describe("decideRelocations: Consolidate", () => {
  const idle = (load2: number, warm = 1) => {
    const s = build([
      ev.nodeUp("n1", 4),
      ev.mafaldaRouter("m1"),
      ...workerWithRouter("w1", "r1", "n1"),
      ...workerWithRouter("w2", "r2", "n1"),
      ev.registered("m1", "r1"),
      ev.registered("m1", "r2"),
      ...member("t1", "r1", "m1", 1),
      ...member("t2", "r2", "m1"),
      ev.pipe("t1p0", "r1", "r2"),
      ev.consumer("c2", "t1p0", "t2"),
      ...member("t3", "r2", "m1"),
      ev.load("w1", 2, 1),
      ev.load("w2", load2, 1)
    ])
    return { s, options: opts({ warmWorkers: warm, consolidateMaxTransports: 8 }) }
  }

  it("empties only a Worker with at most consolidateMaxTransports transports (1 by default)", () => {
    const { s } = idle(1)
    const busier = apply(s, ev.load("w1", 3, 2))
    // w2 (1 %) holds two transports: left to empty as its users leave, by default.
    expect(decideRelocations(busier, opts())).toEqual([])
    expect(decideRelocations(busier, opts({ consolidateMaxTransports: 2 }))).toHaveLength(2)
    // w1 (2 %) holds one: it moves onto the busier w2 (30 %).
    const moves = decideRelocations(idle(30).s, opts())
    expect(moves.map((m) => [m.transport, m.reason])).toEqual([[tid("t1"), "Consolidate"]])
  })

  it("empties a nearly idle Worker onto a busier one that stays under the watermark less the hysteresis", () => {
    const { s, options } = idle(30)
    const moves = decideRelocations(s, options)
    expect(moves).toHaveLength(1)
    expect(moves[0]).toMatchObject({
      transport: tid("t1"),
      reason: "Consolidate",
      to: RelocationTarget.UseRouter({ router: rid("r2"), worker: wid("w2"), node: nid("n1") })
    })
    const { snapshot: after, consumersLost } = carryOut(s, options, moves)
    expect(consumersLost).toBe(0)
    expect(HashSet.size(lookup(after.routers, rid("r1"))!.transports)).toBe(0)
    // Nothing moves back.
    expect(decideRelocations(apply(after, [ev.load("w1", 0, 2), ev.load("w2", 31, 2)]), options)).toEqual([])
  })

  it("keeps it when the others are near the watermark, when it is the warm Worker, or when turned off", () => {
    expect(decideRelocations(idle(55).s, idle(55).options)).toEqual([])
    expect(decideRelocations(idle(30, 2).s, idle(30, 2).options)).toEqual([])
    expect(decideRelocations(idle(30).s, opts({ consolidateBelow: 0, consolidateMaxTransports: 8 }))).toEqual(
      []
    )
    // The less busy of two nearly idle Workers moves onto the busier one, never the other way.
    const { s, options } = idle(1)
    const moves = decideRelocations(apply(s, ev.load("w1", 3, 2)), options)
    expect(moves.map((m) => [m.transport, m.from.worker, m.to._tag === "UseRouter" && m.to.worker])).toEqual([
      [tid("t2"), wid("w2"), wid("w1")],
      [tid("t3"), wid("w2"), wid("w1")]
    ])
  })
})

describe("relocationPlan", () => {
  it("moves to one new Worker share it: the first starts it, the others use what it made", () => {
    const s = build([
      ev.nodeUp("n1", 2),
      ev.mafaldaRouter("m1"),
      ...workerWithRouter("w1", "r1", "n1"),
      ev.registered("m1", "r1"),
      ev.transport("t1", "r1", "m1"),
      ev.transport("t2", "r1", "m1")
    ])
    const to = RelocationTarget.CreateWorker({ node: nid("n1"), key: 0 })
    const move = (t: string): Move => ({
      transport: tid(t),
      mafaldaRouter: mid("m1"),
      from: { worker: wid("w1"), router: rid("r1") },
      to,
      reason: "Overload",
      cost: 1,
      group: 0
    })
    expect(targetKey(to)).toBe("worker:n1:0")
    expect(relocationPlan(s, move("t1"), undefined)).toMatchObject({
      worker: null,
      router: null,
      register: true
    })
    const made = apply(s, [...workerWithRouter("w9", "r9", "n1"), ev.registered("m1", "r9")])
    expect(relocationPlan(made, move("t2"), { worker: wid("w9"), router: rid("r9") })).toMatchObject({
      worker: wid("w9"),
      router: rid("r9"),
      register: false
    })
    // A target gone since the decision: no plan.
    expect(relocationPlan(made, move("t2"), { worker: wid("w8"), router: rid("r8") })).toBeUndefined()
  })
})

// --- Properties ------------------------------------------------------------------------------

const relocationOptions = fc.record({
  relocateAbove: fc.constantFrom(20, 50, 92),
  plannedLimit: fc.constantFrom(10, 40, 85),
  consolidateBelow: fc.constantFrom(0, 8, 30, 50),
  consolidateMaxTransports: fc.constantFrom(1, 2, 8),
  maxMovesPerStep: fc.integer({ min: 1, max: 8 })
})

/**
 * Clusters made of valid raw events (what the shell may record, whatever the policy would
 * have decided) over the raw events' small cluster, with the policy's options.
 */
const property = fc.record({
  options,
  events: fc.array(
    rawEvent.map((e) => ({ ...e, flaw: "none" as const })),
    { minLength: 10, maxLength: 60 }
  ),
  reloc: relocationOptions,
  /** Load reports at the end, one per Worker in id order (the raw events report a few). */
  loads: fc.option(fc.array(fc.integer({ min: 0, max: 100 }), { maxLength: 8 }), { freq: 2 }),
  lost: fc.option(fc.nat({ max: 100 }), { freq: 3 })
})

const buildRaw = (
  events: ReadonlyArray<RawEvent>,
  loads: ReadonlyArray<number> | null,
  options: PolicyOptions
): ClusterSnapshot => {
  let s = build(rawPrefix, options.costs)
  events.forEach((raw, i) => {
    const r = applyEvent(s, makeRawEvent(s, raw, i + 1), options.costs)
    if (Either.isRight(r)) s = r.right
  })
  const workers = [...HashMap.keys(s.workers)].sort()
  loads?.forEach((load, i) => {
    const w = workers[i]
    if (w !== undefined) s = apply(s, ev.load(w, load, events.length + 1), options.costs)
  })
  return s
}

/** The limit a target of a move must stay under (the watermark, less the hysteresis when consolidating). */
const limitOf = (options: PolicyOptions, m: Move) =>
  m.reason === "Consolidate" ? options.watermark - options.scaleDownHysteresis : options.watermark

describe("decideRelocations: properties", () => {
  it("never targets a Worker over the watermark, moves a transport once, never raises its source, is deterministic", async () => {
    const coverage = new Coverage("relocation", ["moved", ...relocationReasons, "newWorker"] as const)
    await assertProperty(
      property,
      ({ options: base, events, reloc, loads, lost }) => {
        const options: PolicyOptions = { ...base, ...reloc }
        let s = buildRaw(events, loads, options)
        if (lost !== null) {
          const workers = [...HashMap.values(s.workers)].sort((a, b) => (a.id < b.id ? -1 : 1))
          const w = workers[lost % Math.max(1, workers.length)]
          if (w !== undefined) s = setWorker(s, { ...w, alive: false })
        }
        const moves = decideRelocations(s, options)
        // Determinism: the same decision again, and on a copy through JSON.
        if (!isDeepStrictEqual(decideRelocations(s, options), moves)) expect(moves).toEqual("the same moves")
        if (!isDeepStrictEqual(decideRelocations(throughJson(s), options), moves))
          expect(decideRelocations(throughJson(s), options)).toEqual(moves)
        coverage.add({
          moved: moves.length > 0,
          Overload: moves.some((m) => m.reason === "Overload"),
          Drain: moves.some((m) => m.reason === "Drain"),
          WorkerLost: moves.some((m) => m.reason === "WorkerLost"),
          Consolidate: moves.some((m) => m.reason === "Consolidate"),
          newWorker: moves.some((m) => m.to._tag === "CreateWorker")
        })
        if (moves.length === 0) return
        expect(moves.length).toBeLessThanOrEqual(options.maxMovesPerStep)
        // Each transport once, from where it is.
        const ids = moves.map((m) => m.transport)
        if (new Set(ids).size !== ids.length) expect(ids).toEqual("no transport twice")
        for (const m of moves) {
          const t = lookup(s.transports, m.transport)
          const r = t === undefined ? undefined : lookup(s.routers, t.router)
          if (t?.router !== m.from.router || r?.worker !== m.from.worker)
            expect(m).toEqual("from where it is")
        }
        // Targets: effective load plus the cost of every group moved there under the limit.
        const charged = new Map<string, { base: number; cost: number; limit: number }>()
        const groups = new Set<number>()
        for (const m of moves) {
          if (groups.has(m.group)) continue
          groups.add(m.group)
          const key = m.to._tag === "CreateWorker" ? `new:${m.to.node}:${m.to.key}` : m.to.worker
          let base = 0
          if (m.to._tag !== "CreateWorker") {
            const target = m.to.worker
            const w = lookup(s.workers, target)
            if (w === undefined || !w.alive) expect(m).toEqual("a live target")
            if (target === m.from.worker) expect(m).toEqual("another Worker")
            if (moves.some((x) => x.from.worker === target)) expect(m).toEqual("not a source")
            base = effectiveLoad(w!)
          }
          const c = charged.get(key) ?? { base, cost: 0, limit: limitOf(options, m) }
          c.cost += m.cost
          c.limit = Math.min(c.limit, limitOf(options, m))
          charged.set(key, c)
        }
        for (const [key, c] of charged) {
          if (!(c.base + c.cost < c.limit + 1e-9)) expect({ key, ...c }).toEqual("under the watermark")
        }
        // Carried out: no source of an overload or a consolidation is left busier.
        const { snapshot: after } = carryOut(s, options, moves)
        // Raw events may break the policy's own invariants (a pipe deeper than maxTreeDepth): only
        // a cluster that kept them must keep them.
        const valid = (x: ClusterSnapshot) =>
          invariantViolations(x, options).filter((v) => !v.startsWith("dead worker"))
        if (valid(s).length === 0 && valid(after).length > 0) expect(valid(after)).toEqual([])
        for (const m of moves) {
          if (m.reason !== "Overload" && m.reason !== "Consolidate") continue
          const before = effectiveLoad(lookup(s.workers, m.from.worker)!)
          const w = lookup(after.workers, m.from.worker)
          if (w !== undefined && effectiveLoad(w) > before + 1e-9)
            expect({ worker: m.from.worker, before, after: effectiveLoad(w) }).toEqual("not raised")
        }
      },
      { numRuns: 1000 }
    )
    coverage.expectAtLeast({ moved: 0.2, Overload: 0.06, Drain: 0.02, WorkerLost: 0.05, Consolidate: 0.01 })
  }, 300_000)
})
