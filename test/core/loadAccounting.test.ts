import { describe, expect, it } from "@effect/vitest"
import { Chunk, Either, HashMap } from "effect"
import {
  applyEvent,
  decideTransportPlacement,
  defaultPolicyOptions,
  effectiveLoad,
  makePolicyOptions,
  maxReservations,
  type PolicyOptions,
  TransportPlacement
} from "../../src/core/index.js"
import { Sim } from "./arbitraries.js"
import { apply, build, costs0, ev, get, loadOf, mid, nid, rid, wid, workerWithRouter } from "./helpers.js"

const costs = costs0

describe("load accounting", () => {
  const cluster = build([
    ev.nodeUp("n1", 4),
    ...workerWithRouter("w1", "r1", "n1"),
    ev.mafaldaRouter("m1"),
    ev.load("w1", 30, 10)
  ])

  it("effective load = reported load + reservations made since the report", () => {
    const s = apply(cluster, [
      ev.transport("t1", "r1", "m1", 11),
      ev.producer("p1", "t1", 12),
      ev.consumer("c1", "p1", "t1", 13)
    ])
    const w = get(s.workers, wid("w1"))
    expect(w.load).toBe(30)
    expect(w.reserved).toBeCloseTo(costs.transport + costs.producer + costs.consumer, 12)
    expect(effectiveLoad(w)).toBeCloseTo(30 + costs.transport + costs.producer + costs.consumer, 12)
    expect(Chunk.toReadonlyArray(w.reservations).map((r) => r.at)).toEqual([11, 12, 13])
  })

  it("a LoadReported at t drops the reservations made at or before t and keeps later ones", () => {
    const s = apply(cluster, [
      ev.transport("t1", "r1", "m1", 11),
      ev.producer("p1", "t1", 12),
      ev.consumer("c1", "p1", "t1", 13),
      ev.load("w1", 42, 12)
    ])
    const w = get(s.workers, wid("w1"))
    expect(w.load).toBe(42)
    expect(w.reportedAt).toBe(12)
    expect(Chunk.toReadonlyArray(w.reservations)).toEqual([{ at: 13, cost: costs.consumer }])
    expect(effectiveLoad(w)).toBeCloseTo(42 + costs.consumer, 12)
  })

  it("reservations stay bounded between reports: same-time ones merge, past the bound the oldest two merge", () => {
    const events = [ev.transport("t1", "r1", "m1", 11), ev.producer("p1", "t1", 11)]
    for (let i = 0; i < 100; i++) events.push(ev.consumer(`c${i}`, "p1", "t1", 12 + i))
    const s = apply(cluster, events)
    const w = get(s.workers, wid("w1"))
    const reservations = Chunk.toReadonlyArray(w.reservations)
    expect(reservations).toHaveLength(maxReservations)
    // Nothing is lost: the sum is every placement's cost, and the newest keep their times.
    expect(w.reserved).toBeCloseTo(costs.transport + costs.producer + 100 * costs.consumer, 9)
    expect(reservations.reduce((sum, r) => sum + r.cost, 0)).toBeCloseTo(w.reserved, 9)
    expect(reservations.at(-1)).toEqual({ at: 111, cost: costs.consumer })
    // The first entry holds the transport and producer (one time) and the oldest consumers.
    expect(reservations[0]!.at).toBe(111 - (maxReservations - 1))
    // A report after them all absorbs them all; one in between keeps the merged entry (errs full).
    expect(get(apply(s, ev.load("w1", 50, 111)).workers, wid("w1")).reserved).toBe(0)
    const between = get(apply(s, ev.load("w1", 50, 50)).workers, wid("w1"))
    expect(between.reserved).toBeGreaterThanOrEqual((111 - 50) * costs.consumer - 1e-9)
  })

  it("a report at the same time as the last one is taken", () => {
    const s = apply(cluster, [ev.transport("t1", "r1", "m1", 10), ev.load("w1", 31, 10)])
    expect(loadOf(s, "w1")).toBe(31)
  })

  it("an older report than the one we have changes nothing", () => {
    const s = apply(cluster, ev.transport("t1", "r1", "m1", 11))
    const r = applyEvent(s, ev.load("w1", 99, 9), costs)
    expect(Either.isRight(r) && r.right).toBe(s)
  })

  it("a removal is charged negatively until the next report absorbs it", () => {
    const s = apply(cluster, [
      ev.transport("t1", "r1", "m1", 11),
      ev.producer("p1", "t1", 11),
      ev.consumer("c1", "p1", "t1", 11),
      ev.load("w1", 50, 12), // includes the consumer
      ev.consumerClosed("c1", 13)
    ])
    expect(loadOf(s, "w1")).toBeCloseTo(50 - costs.consumer, 12)
    expect(loadOf(apply(s, ev.load("w1", 49.8, 14)), "w1")).toBe(49.8)
  })

  it("creating then closing a consumer restores the effective load exactly (to 1e-9)", () => {
    const s = apply(cluster, [ev.transport("t1", "r1", "m1", 11), ev.producer("p1", "t1", 11)])
    let x = s
    for (let i = 0; i < 100; i++) x = apply(x, ev.consumer(`c${i}`, "p1", "t1", 12 + i))
    for (let i = 0; i < 100; i++) x = apply(x, ev.consumerClosed(`c${i}`, 200 + i))
    expect(Math.abs(loadOf(x, "w1") - loadOf(s, "w1"))).toBeLessThan(1e-9)
  })

  it("placements see reservations at once: a Worker just under the watermark is skipped once they push it over", () => {
    const s = apply(cluster, [ev.load("w1", 59.85, 11), ev.workerStarted("w2", "n1", undefined, 11)])
    const first = decideTransportPlacement(s, defaultPolicyOptions, {
      node: nid("n1"),
      mafaldaRouter: mid("m1")
    })
    expect(first).toEqual(
      TransportPlacement.UseRouter({ router: rid("r1"), worker: wid("w1"), node: nid("n1"), register: true })
    )
    // A transport fits while the load plus its cost (0.1) stays at or under the watermark:
    // 59.85 + 0.1 does, and once it is placed, 59.95 + 0.1 does not.
    const placed = apply(s, ev.transport("t1", "r1", "m1", 12))
    const second = decideTransportPlacement(placed, defaultPolicyOptions, {
      node: nid("n1"),
      mafaldaRouter: mid("m1")
    })
    expect(second).toEqual(TransportPlacement.CreateRouter({ worker: wid("w2"), node: nid("n1") }))
  })
})

describe("a burst of 1,000 transport placements between two load reports", () => {
  /**
   * Decides, applies the decision's events (WorkerStarted / RouterCreated /
   * TransportCreated, following a delegation if any), decides again: 1,000 times at the
   * same instant, with no load report in between.
   */
  const burst = (options: PolicyOptions, nodes: ReadonlyArray<number>, initialLoad = 0) => {
    const sim = new Sim(options)
    nodes.forEach((cpus, i) => {
      sim.emit(ev.nodeUp(`n${i}`, cpus, 0))
    })
    sim.emit([...workerWithRouter("w0", "r0", "n0"), ev.mafaldaRouter("m0"), ev.load("w0", initialLoad, 0)])
    sim.now = 1
    let placed = 0
    for (let i = 0; i < 1000; i++) {
      const router = sim.place(mid("m0"), nid("n0"))
      if (router === undefined) break
      sim.emit(ev.transport(`t${i}`, router, "m0", sim.now))
      placed++
    }
    sim.checkInvariants()
    const workers = [...HashMap.values(sim.snapshot.workers)]
    const transports = [...HashMap.values(sim.snapshot.transports)]
    const perWorker = workers.map(
      (w) => transports.filter((t) => get(sim.snapshot.routers, t.router).worker === w.id).length
    )
    return { sim, placed, workers, perWorker, max: Math.max(...workers.map(effectiveLoad)) }
  }

  it("with the default costs, fills Workers up to the watermark and no further", () => {
    const o = defaultPolicyOptions
    const { placed, workers, perWorker, max } = burst(o, [4])
    expect(placed).toBe(1000)
    // 600 transports of 0.1 % fill a Worker to the 60 % watermark: 600 + 400 = 1000.
    expect(workers.length).toBe(2)
    expect([...perWorker].sort((a, b) => b - a)).toEqual([600, 400])
    expect(max).toBeLessThanOrEqual(o.watermark + o.costs.transport + 1e-9)
  })

  it("with costly transports, spreads over many Workers, none past watermark + one placement", () => {
    const o = Either.getOrThrow(makePolicyOptions({ costs: { transport: 1 } }))
    const { sim, placed, workers, perWorker, max } = burst(o, [20], 20)
    expect(placed).toBe(1000)
    // 60 transports fill a fresh Worker; w0 started at 20 %: 40 + 16 x 60 = 1000.
    expect(workers.length).toBe(17)
    expect(max).toBeLessThanOrEqual(o.watermark + o.costs.transport + 1e-9)
    expect(Math.max(...perWorker)).toBe(60)
    // The next load report absorbs the burst's reservations.
    const reported = apply(sim.snapshot, ev.load("w0", 61, sim.now), o.costs)
    expect(get(reported.workers, wid("w0")).reserved).toBe(0)
  })

  it("when the cluster is full, the rest is rejected rather than overloading a Worker", () => {
    const o = Either.getOrThrow(makePolicyOptions({ costs: { transport: 1 } }))
    const { sim, placed, workers, max } = burst(o, [2])
    // 2 Workers x 60 transports.
    expect(placed).toBe(120)
    expect(workers.length).toBe(2)
    expect(max).toBeLessThanOrEqual(o.watermark + o.costs.transport + 1e-9)
    expect(
      decideTransportPlacement(sim.snapshot, o, { node: nid("n0"), mafaldaRouter: mid("m0") })._tag
    ).toBe("Reject")
  })
})

describe("regressions: core bugs these tests found", () => {
  // Stale delegation indexes (see transportPlacement.test.ts, "known core bugs"): once the
  // first Node is full, delegation sends clients to full Nodes and the burst is cut short.
  it("a burst over several Nodes goes on by delegation until every CPU is used", () => {
    const o = Either.getOrThrow(makePolicyOptions({ costs: { transport: 1 } }))
    const sim = new Sim(o)
    sim.emit([ev.nodeUp("n0", 8), ev.nodeUp("n1", 8), ev.nodeUp("n2", 4), ev.mafaldaRouter("m0")])
    let placed = 0
    for (let i = 0; i < 1000; i++) {
      let d = decideTransportPlacement(sim.snapshot, o, { node: nid("n0"), mafaldaRouter: mid("m0") })
      if (d._tag === "Delegate")
        d = decideTransportPlacement(sim.snapshot, o, { node: d.node, mafaldaRouter: mid("m0") })
      const router = d._tag === "UseRouter" ? d.router : undefined
      if (d._tag === "Reject" || d._tag === "Delegate") break
      const at = sim.now
      if (router !== undefined) sim.emit(ev.transport(`t${i}`, router, "m0", at))
      else {
        const worker = d._tag === "CreateRouter" ? d.worker : wid(`w${i}`)
        if (d._tag === "CreateWorker") sim.emit(ev.workerStarted(worker, d.node, undefined, at))
        sim.emit([ev.routerCreated(`r${i}`, worker, undefined, at), ev.transport(`t${i}`, `r${i}`, "m0", at)])
      }
      placed++
    }
    // 17 Workers of 60 transports: n0 (8), n1 (8) and one on n2.
    expect(placed).toBe(1000)
    expect(new Set([...HashMap.values(sim.snapshot.workers)].map((w) => w.node)).size).toBe(3)
  })
})
