import { describe, expect, it } from "@effect/vitest"
import { Either, HashMap } from "effect"
import {
  type ClusterEvent,
  type ClusterSnapshot,
  ConsumerPlacement,
  chooseParent,
  decideConsumerPlacement,
  defaultPolicyOptions,
  makePolicyOptions,
  type PolicyOptions
} from "../../src/core/index.js"
import { apply, build, ev, get, pid, rid, workerWithRouter } from "./helpers.js"

const o = defaultPolicyOptions
const withDepth = (maxTreeDepth: number) => Either.getOrThrow(makePolicyOptions({ maxTreeDepth }))

const decide = (s: ClusterSnapshot, router: string, producer = "p1", options: PolicyOptions = o) =>
  decideConsumerPlacement(s, options, { producer: pid(producer), router: rid(router) })

const pipeThen = (router: string, from: string, producer = "p1") =>
  ConsumerPlacement.PipeThenConsume({
    router: rid(router),
    pipes: [{ producer: pid(producer), from: rid(from), to: rid(router) }]
  })

/**
 * One Node with Workers w0..w{n-1}, each with Router r{i} and a transport t{i} of m1;
 * producer p1 on t0 (origin r0). Loads are reported at t=1 (after every reservation).
 */
const cluster = (loads: ReadonlyArray<number>, extra: ReadonlyArray<ClusterEvent> = []) => {
  const events: Array<ClusterEvent> = [ev.nodeUp("n1", 16), ev.mafaldaRouter("m1")]
  loads.forEach((_, i) => {
    events.push(...workerWithRouter(`w${i}`, `r${i}`, "n1"), ev.transport(`t${i}`, `r${i}`, "m1"))
  })
  events.push(ev.producer("p1", "t0"), ...extra)
  loads.forEach((load, i) => {
    events.push(ev.load(`w${i}`, load, 1))
  })
  return build(events)
}

describe("decideConsumerPlacement: rejects", () => {
  it("an unknown producer", () => {
    expect(decide(cluster([10, 10]), "r1", "pX")).toMatchObject({ _tag: "Reject", reason: "UnknownProducer" })
  })

  it("an unknown Router", () => {
    expect(decide(cluster([10, 10]), "rX")).toMatchObject({ _tag: "Reject", reason: "UnknownRouter" })
  })

  it("a producer whose tree has no live Router to pipe from", () => {
    // Not reachable through applyEvent (a dead Worker takes its hops with it): a snapshot
    // whose origin Worker is missing.
    const s = cluster([10, 10])
    const broken: ClusterSnapshot = {
      ...s,
      workers: HashMap.remove(s.workers, get(s.routers, rid("r0")).worker)
    }
    expect(decide(broken, "r1")).toMatchObject({ _tag: "Reject", reason: "UnknownProducer" })
    expect(chooseParent(broken, o, get(broken.trees, pid("p1")))).toBeUndefined()
  })
})

describe("decideConsumerPlacement: consume here", () => {
  it("on the origin Router", () => {
    expect(decide(cluster([10, 10]), "r0")).toEqual(ConsumerPlacement.ConsumeHere({ router: rid("r0") }))
  })

  it("on a Router the producer is already piped to, even an overloaded one", () => {
    const s = cluster([10, 95], [ev.pipe("p1", "r0", "r1")])
    expect(decide(s, "r1")).toEqual(ConsumerPlacement.ConsumeHere({ router: rid("r1") }))
  })
})

describe("decideConsumerPlacement: pipe then consume, choosing the parent", () => {
  it("pipes from the origin when it is the only carrier", () => {
    expect(decide(cluster([10, 10]), "r1")).toEqual(pipeThen("r1", "r0"))
  })

  it("a carrier over the watermark but under the pipe limit still feeds: shallower wins", () => {
    const s = cluster([70, 10, 10], [ev.pipe("p1", "r0", "r1")])
    expect(decide(s, "r2")).toEqual(pipeThen("r2", "r0"))
  })

  it("over the pipe limit (80 % by default), a deeper carrier under it wins", () => {
    const s = cluster([85, 10, 10], [ev.pipe("p1", "r0", "r1")])
    expect(decide(s, "r2")).toEqual(pipeThen("r2", "r1"))
  })

  it("shallowest among those under the watermark, even if less busy", () => {
    const s = cluster([10, 50, 10], [ev.pipe("p1", "r0", "r1")])
    expect(decide(s, "r2")).toEqual(pipeThen("r2", "r0"))
  })

  it("busiest among the shallowest under the watermark", () => {
    const s = cluster([80, 20, 40, 10], [ev.pipe("p1", "r0", "r1"), ev.pipe("p1", "r0", "r2")])
    expect(decide(s, "r3")).toEqual(pipeThen("r3", "r2"))
  })

  it("smallest Router id when depth and load are equal", () => {
    const s = cluster([80, 30, 30, 10], [ev.pipe("p1", "r0", "r2"), ev.pipe("p1", "r0", "r1")])
    expect(decide(s, "r3")).toEqual(pipeThen("r3", "r1"))
  })

  it("over the watermark, a carrier under the pipe limit (80 % by default) before one above it", () => {
    const s = cluster([90, 70, 10], [ev.pipe("p1", "r0", "r1")])
    expect(decide(s, "r2")).toEqual(pipeThen("r2", "r1"))
  })

  it("under the pipe limit, the shallowest carrier, then the busiest", () => {
    const s = cluster([75, 65, 62, 10], [ev.pipe("p1", "r0", "r1"), ev.pipe("p1", "r0", "r2")])
    expect(decide(s, "r3")).toEqual(pipeThen("r3", "r0"))
    const deeper = cluster([85, 65, 62, 10], [ev.pipe("p1", "r0", "r1"), ev.pipe("p1", "r0", "r2")])
    expect(decide(deeper, "r3")).toEqual(pipeThen("r3", "r1"))
  })

  it("when every carrier is over the pipe limit, the least loaded", () => {
    const s = cluster([95, 85, 10], [ev.pipe("p1", "r0", "r1")])
    expect(decide(s, "r2")).toEqual(pipeThen("r2", "r1"))
  })

  it("pipeWatermark moves the pipe limit", () => {
    const s = cluster([74, 65, 10], [ev.pipe("p1", "r0", "r1")])
    expect(decide(s, "r2")).toEqual(pipeThen("r2", "r0"))
    const lower = Either.getOrThrow(makePolicyOptions({ pipeWatermark: 70 }))
    expect(decide(s, "r2", "p1", lower)).toEqual(pipeThen("r2", "r1"))
  })

  it("reserved load counts towards the pipe limit", () => {
    // r0 reported at 79.9, then a consumer placed on it since (0.2): over 80.
    const s = apply(cluster([79.9, 10, 10], [ev.pipe("p1", "r0", "r1")]), ev.consumer("c0", "p1", "t0", 2))
    expect(decide(s, "r2")).toEqual(pipeThen("r2", "r1"))
    expect(decide(cluster([79.9, 10, 10], [ev.pipe("p1", "r0", "r1")]), "r2")).toEqual(pipeThen("r2", "r0"))
  })
})

describe("decideConsumerPlacement: maxTreeDepth is never exceeded", () => {
  const chain = cluster(
    [90, 90, 10, 10],
    [ev.pipe("p1", "r0", "r1"), ev.pipe("p1", "r1", "r2")] // r2 at depth 2, with room
  )

  it("a hop at the maximum depth is never a parent, even with room", () => {
    expect(decide(chain, "r3", "p1", withDepth(2))).toEqual(pipeThen("r3", "r0"))
    expect(decide(chain, "r3", "p1", withDepth(3))).toEqual(pipeThen("r3", "r2"))
  })

  it("with maxTreeDepth 1, every pipe comes from the origin", () => {
    const s = cluster([90, 10, 10], [ev.pipe("p1", "r0", "r1")])
    expect(decide(s, "r2", "p1", withDepth(1))).toEqual(pipeThen("r2", "r0"))
  })

  it("applying the decision puts the new hop one level below its parent, within the limit", () => {
    for (const depth of [1, 2, 3, 4]) {
      const options = withDepth(depth)
      const d = decide(chain, "r3", "p1", options)
      if (d._tag !== "PipeThenConsume") throw new Error(d._tag)
      const s = apply(chain, [
        ...d.pipes.map((p) => ev.pipe(p.producer, p.from, p.to, 5)),
        ev.consumer("c3", "p1", "t3", 5)
      ])
      const tree = get(s.trees, pid("p1"))
      const hop = get(tree, rid("r3"))
      expect(hop.depth).toBe(get(tree, hop.parent!).depth + 1)
      expect(hop.depth).toBeLessThanOrEqual(depth)
      expect(hop.consumers).toBe(1)
    }
  })
})

describe("chooseParent", () => {
  it("is undefined for an empty tree", () => {
    expect(chooseParent(cluster([10]), o, HashMap.empty())).toBeUndefined()
  })

  it("returns the hop itself", () => {
    const s = cluster([90, 10], [ev.pipe("p1", "r0", "r1")])
    expect(chooseParent(s, o, get(s.trees, pid("p1")))).toMatchObject({
      router: "r1",
      parent: "r0",
      depth: 1
    })
  })
})
