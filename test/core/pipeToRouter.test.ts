import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import {
  type ClusterEvent,
  type ClusterSnapshot,
  decidePipeToRouter,
  defaultPolicyOptions,
  makePolicyOptions,
  PipeToRouterDecision,
  planTransportPlacement
} from "../../src/core/index.js"
import { build, ev, mid, nid, pid, RS, RS2, rid, WS, WS2, wid, workerWithRouter } from "./helpers.js"

const o = defaultPolicyOptions

const decide = (s: ClusterSnapshot, from: string, to: string, producer = "p1", node = "n1") =>
  decidePipeToRouter(s, o, { producer: pid(producer), from: mid(from), to: mid(to), node: nid(node) })

/**
 * n1 with w1/r1 (default settings) used by m1 through t1, producer p1 on it. Mafalda
 * Routers: m2 (same settings as m1), m3 (other Router settings), m4 (other Worker settings).
 */
const baseEvents: ReadonlyArray<ClusterEvent> = [
  ev.nodeUp("n1", 4),
  ev.mafaldaRouter("m1", WS, RS),
  ev.mafaldaRouter("m2", WS, RS),
  ev.mafaldaRouter("m3", WS, RS2),
  ev.mafaldaRouter("m4", WS2, RS),
  ...workerWithRouter("w1", "r1", "n1"),
  ev.transport("t1", "r1", "m1"),
  ev.producer("p1", "t1")
]
const base = build(baseEvents)

describe("decidePipeToRouter: rejects", () => {
  it("piping a Mafalda Router to itself", () => {
    expect(decide(base, "m1", "m1")).toMatchObject({ _tag: "Reject", reason: "SameRouter" })
  })

  it("an unknown Mafalda Router on either side", () => {
    const from = decide(base, "mX", "m2")
    expect(from).toMatchObject({ _tag: "Reject", reason: "UnknownMafaldaRouter" })
    if (from._tag === "Reject") expect(from.message).toContain("mX")
    const to = decide(base, "m1", "mY")
    expect(to).toMatchObject({ _tag: "Reject", reason: "UnknownMafaldaRouter" })
    if (to._tag === "Reject") expect(to.message).toContain("mY")
  })

  it("an unknown producer", () => {
    expect(decide(base, "m1", "m2", "pX")).toMatchObject({ _tag: "Reject", reason: "UnknownProducer" })
  })

  it("a producer that is not on the source Mafalda Router", () => {
    expect(decide(base, "m2", "m3")).toMatchObject({ _tag: "Reject", reason: "UnknownProducer" })
  })
})

describe("decidePipeToRouter: share when the settings match", () => {
  it("shares the origin Router with a Mafalda Router of the same settings, registering it", () => {
    expect(decide(base, "m1", "m2")).toEqual(
      PipeToRouterDecision.Share({ router: rid("r1"), register: true })
    )
  })

  it("does not register again a Router the destination already uses", () => {
    const s = build([...baseEvents, ev.registered("m2", "r1")])
    expect(decide(s, "m1", "m2")).toEqual(PipeToRouterDecision.Share({ router: rid("r1"), register: false }))
  })

  it("shares the shallowest carrier with matching settings (pipes to other settings count)", () => {
    // p1 piped r1 -> r3 (RS2 on w2) -> r2 (RS2 on w1): m3 (RS2) shares r3, the shallower.
    const s = build([
      ...baseEvents,
      ev.workerStarted("w2", "n1"),
      ev.routerCreated("r2", "w1", RS2),
      ev.routerCreated("r3", "w2", RS2),
      ev.pipe("p1", "r1", "r3"),
      ev.pipe("p1", "r3", "r2")
    ])
    expect(decide(s, "m1", "m3")).toEqual(PipeToRouterDecision.Share({ router: rid("r3"), register: true }))
    // From m3's side once it has it: m1 and m3 can share back.
    const shared = build([
      ...baseEvents,
      ev.workerStarted("w2", "n1"),
      ev.routerCreated("r3", "w2", RS2),
      ev.pipe("p1", "r1", "r3"),
      ev.registered("m3", "r3")
    ])
    expect(decide(shared, "m3", "m2")).toEqual(
      PipeToRouterDecision.Share({ router: rid("r1"), register: true })
    )
  })

  it("breaks ties between equally deep carriers by the smaller Router id", () => {
    const s = build([
      ...baseEvents,
      ev.workerStarted("w2", "n1"),
      ev.workerStarted("w3", "n1"),
      ev.routerCreated("rb", "w2", RS2),
      ev.routerCreated("ra", "w3", RS2),
      ev.pipe("p1", "r1", "rb"),
      ev.pipe("p1", "r1", "ra")
    ])
    expect(decide(s, "m1", "m3")).toEqual(PipeToRouterDecision.Share({ router: rid("ra"), register: true }))
  })
})

describe("decidePipeToRouter: pipe when the settings differ", () => {
  it("other Router settings: pipe from the best parent to where the destination's transport goes", () => {
    const d = decide(base, "m1", "m3")
    expect(d).toMatchObject({
      _tag: "Pipe",
      from: rid("r1"),
      plan: { node: nid("n1"), worker: wid("w1"), router: null, register: true, delegations: [] }
    })
  })

  it("other Worker settings: a Router with the same Router settings on another kind of Worker is not shared", () => {
    const d = decide(base, "m1", "m4")
    expect(d).toMatchObject({
      _tag: "Pipe",
      from: rid("r1"),
      plan: { node: nid("n1"), worker: null, router: null, register: true, delegations: [] }
    })
  })

  it("the parent is chosen like a consumer's (under the watermark first)", () => {
    const s = build([
      ...baseEvents,
      ...workerWithRouter("w2", "r2", "n1"),
      ev.pipe("p1", "r1", "r2"),
      ev.load("w1", 80, 1),
      ev.load("w2", 10, 1)
    ])
    const d = decide(s, "m1", "m3")
    expect(d._tag).toBe("Pipe")
    if (d._tag === "Pipe") expect(d.from).toBe("r2")
  })

  it("the plan is the destination's transport placement plan from the requesting Node", () => {
    const s = build([...baseEvents, ev.nodeUp("n2", 2)])
    for (const node of ["n1", "n2"]) {
      const d = decide(s, "m1", "m3", "p1", node)
      const plan = planTransportPlacement(s, o, { node: nid(node), mafaldaRouter: mid("m3") })
      expect(d).toEqual(PipeToRouterDecision.Pipe({ from: rid("r1"), plan: Either.getOrThrow(plan) }))
    }
  })

  it("no room for the destination (or an unknown Node): Reject, with the placement's reason", () => {
    const s = build([...baseEvents, ev.nodeUp("n2", 2)])
    expect(decide(s, "m1", "m3", "p1", "nX")).toMatchObject({ _tag: "Reject", reason: "UnknownNode" })
    const full = build([...baseEvents, ev.load("w1", 100, 1)])
    const one = makePolicyOptions({ maxWorkersPerNode: 1 })
    const d = decidePipeToRouter(full, Either.getOrThrow(one), {
      producer: pid("p1"),
      from: mid("m1"),
      to: mid("m3"),
      node: nid("n1")
    })
    expect(d).toMatchObject({ _tag: "Reject", reason: "NoRoom" })
  })
})
