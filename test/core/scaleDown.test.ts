import { describe, expect, it } from "@effect/vitest"
import { Either, HashMap } from "effect"
import {
  type ClusterEvent,
  type ClusterSnapshot,
  decideScaleDown,
  makePolicyOptions,
  type PolicyOptions,
  type PolicyOptionsInput,
  ScaleDownAction
} from "../../src/core/index.js"
import {
  apply,
  build,
  ev,
  invariantViolations,
  keysOf,
  pid,
  rid,
  WS2,
  wid,
  workerWithRouter
} from "./helpers.js"

const GRACE = 1_000
const opts = (input: PolicyOptionsInput = {}): PolicyOptions =>
  Either.getOrThrow(
    makePolicyOptions({ idleGraceMillis: GRACE, watermark: 60, scaleDownHysteresis: 10, ...input })
  )
const o = opts()

const closePipe = (producer: string, router: string) =>
  ScaleDownAction.ClosePipe({ producer: pid(producer), router: rid(router) })
const closeRouter = (router: string) => ScaleDownAction.CloseRouter({ router: rid(router) })
const closeWorker = (worker: string) => ScaleDownAction.CloseWorker({ worker: wid(worker) })

/** Carries out scale-down actions at `now`. */
const carryOut = (s: ClusterSnapshot, actions: ReadonlyArray<ScaleDownAction>, now: number) =>
  apply(
    s,
    actions.map(
      (a): ClusterEvent =>
        ScaleDownAction.$match(a, {
          ClosePipe: (x) => ev.pipeClosed(x.producer, x.router, now),
          CloseRouter: (x) => ev.routerClosed(x.router, now),
          CloseWorker: (x) => ev.workerClosed(x.worker, now)
        })
    )
  )

/**
 * n1: w1/r1, w2/r2, w3/r3 with transports t1..t3 of m1; p1 on t1 piped r1 -> r2 -> r3 with
 * consumers c2 (r2) and c3 (r3), all at t=0.
 */
const treeEvents: ReadonlyArray<ClusterEvent> = [
  ev.nodeUp("n1", 4),
  ev.mafaldaRouter("m1"),
  ...[1, 2, 3].flatMap((i) => [
    ...workerWithRouter(`w${i}`, `r${i}`, "n1"),
    ev.transport(`t${i}`, `r${i}`, "m1")
  ]),
  ev.producer("p1", "t1"),
  ev.pipe("p1", "r1", "r2"),
  ev.pipe("p1", "r2", "r3"),
  ev.consumer("c2", "p1", "t2"),
  ev.consumer("c3", "p1", "t3")
]
const tree = build(treeEvents)

describe("decideScaleDown: nothing to do", () => {
  it("a busy cluster, however long after", () => {
    expect(decideScaleDown(tree, o, 1_000_000)).toEqual([])
  })

  it("nothing idle is closed before the grace period, everything idle is at exactly the grace period", () => {
    const s = build([
      ev.nodeUp("n1", 4),
      ev.mafaldaRouter("m1"),
      ...workerWithRouter("w1", "r1", "n1", {}, 100),
      ev.workerStarted("w2", "n1", undefined, 100)
    ])
    const o0 = opts({ warmWorkers: 0 })
    expect(decideScaleDown(s, o0, 100 + GRACE - 1)).toEqual([])
    expect(decideScaleDown(s, o0, 100 + GRACE)).toEqual([closeRouter("r1"), closeWorker("w2")])
  })
})

describe("decideScaleDown: idle pipes", () => {
  it("a leaf hop without consumers is closed after the grace period", () => {
    const s = apply(tree, ev.consumerClosed("c3", 100))
    expect(decideScaleDown(s, o, 100 + GRACE - 1)).toEqual([])
    expect(decideScaleDown(s, o, 100 + GRACE)).toEqual([closePipe("p1", "r3")])
  })

  it("a hop that still feeds a child is kept, then closed once its child is gone", () => {
    const s = apply(tree, [ev.consumerClosed("c3", 100), ev.consumerClosed("c2", 100)])
    const first = decideScaleDown(s, o, 1_100)
    expect(first).toEqual([closePipe("p1", "r3")])
    const next = carryOut(s, first, 1_100)
    expect(decideScaleDown(next, o, 2_099)).toEqual([])
    expect(decideScaleDown(next, o, 2_100)).toEqual([closePipe("p1", "r2")])
  })

  it("the origin is never closed, even without consumers", () => {
    const s = apply(tree, [ev.consumerClosed("c3", 100), ev.consumerClosed("c2", 100)])
    const r = carryOut(carryOut(s, [closePipe("p1", "r3")], 1_100), [closePipe("p1", "r2")], 2_100)
    expect(keysOf(HashMap.unsafeGet(r.trees, pid("p1")))).toEqual(["r1"])
    expect(decideScaleDown(r, o, 1_000_000)).toEqual([])
  })

  it("a new consumer makes the hop busy again", () => {
    const s = apply(tree, [ev.consumerClosed("c3", 100), ev.consumer("c4", "p1", "t3", 500)])
    expect(decideScaleDown(s, o, 100_000)).toEqual([])
  })
})

describe("decideScaleDown: idle Routers", () => {
  it("a Router with no transport and nothing carried, after the grace period", () => {
    const s = apply(tree, ev.transportClosed("t3", 200))
    // t3's consumer went with it; r3's hop is idle since 200; once it is closed, r3 is idle.
    expect(decideScaleDown(s, o, 1_200)).toEqual([closePipe("p1", "r3")])
    const next = carryOut(s, [closePipe("p1", "r3")], 1_200)
    expect(decideScaleDown(next, o, 2_199)).toEqual([])
    expect(decideScaleDown(next, o, 2_200)).toEqual([closeRouter("r3")])
  })

  it("a Router carrying a piped producer is not idle without transports", () => {
    const s = apply(tree, [ev.transportClosed("t2", 0)])
    // r2 has no transport but relays p1 to r3.
    expect(decideScaleDown(s, o, 100_000)).toEqual([])
  })
})

describe("decideScaleDown: RTP observers and pinned pipes", () => {
  it("a Router with an RTP observer is not idle; once the observer closes, it is after the grace period", () => {
    const s = build([ev.nodeUp("n1", 4), ...workerWithRouter("w1", "r1", "n1"), ev.observer("o1", "r1", 0)])
    expect(decideScaleDown(s, o, 1_000_000)).toEqual([])
    const closed = apply(s, ev.observerClosed("o1", "r1", 500))
    expect(decideScaleDown(closed, o, 1_499)).toEqual([])
    expect(decideScaleDown(closed, o, 1_500)).toEqual([closeRouter("r1")])
  })

  it("a pinned pipe (asked for by the application) is never closed for being idle", () => {
    const s = apply(tree, [
      ev.workerStarted("w4", "n1"),
      ev.routerCreated("r4", "w4"),
      ev.pipe("p1", "r1", "r4", 0, true)
    ])
    expect(decideScaleDown(s, o, 1_000_000)).toEqual([])
  })

  it("a hop below a pinned pipe is closed when idle; the pinned hop stays", () => {
    const s = apply(tree, [
      ev.workerStarted("w4", "n1"),
      ev.routerCreated("r4", "w4"),
      ev.pipe("p1", "r1", "r4", 0, true),
      ev.workerStarted("w5", "n1"),
      ev.routerCreated("r5", "w5"),
      ev.transport("t5", "r5", "m1"),
      ev.pipe("p1", "r4", "r5", 0),
      ev.consumer("c5", "p1", "t5", 0),
      ev.consumerClosed("c5", 100)
    ])
    const first = decideScaleDown(s, o, 1_100)
    expect(first).toEqual([closePipe("p1", "r5")])
    expect(decideScaleDown(carryOut(s, first, 1_100), o, 1_000_000)).toEqual([])
  })
})

describe("decideScaleDown: idle Workers, warm Workers and hysteresis", () => {
  const idleWorkers = (workers: ReadonlyArray<string>, extra: ReadonlyArray<ClusterEvent> = []) =>
    build([
      ev.nodeUp("n1", 8),
      ev.nodeUp("n2", 8),
      ...workers.map((w) => ev.workerStarted(w, "n1")),
      ...extra
    ])

  it("keeps warmWorkers idle Workers per Node and settings", () => {
    const s = idleWorkers(["w1", "w2", "w3"])
    expect(decideScaleDown(s, o, GRACE)).toEqual([closeWorker("w1"), closeWorker("w2")])
    expect(decideScaleDown(s, opts({ warmWorkers: 2 }), GRACE)).toEqual([closeWorker("w1")])
    expect(decideScaleDown(s, opts({ warmWorkers: 0 }), GRACE)).toEqual([
      closeWorker("w1"),
      closeWorker("w2"),
      closeWorker("w3")
    ])
    expect(decideScaleDown(idleWorkers(["w1"]), o, 1_000_000)).toEqual([])
  })

  it("counts warm Workers per Node and per worker settings", () => {
    const s = idleWorkers(["w1"], [ev.workerStarted("x1", "n1", WS2), ev.workerStarted("v1", "n2")])
    expect(decideScaleDown(s, o, 1_000_000)).toEqual([])
  })

  it("an idle Worker not yet past the grace period is not closed", () => {
    const s = idleWorkers(["w1"], [ev.workerStarted("w2", "n1", undefined, 500)])
    expect(decideScaleDown(s, opts({ warmWorkers: 0 }), GRACE)).toEqual([closeWorker("w1")])
  })

  it("a Worker is idle from when its last Router closed", () => {
    const s = build([ev.nodeUp("n1", 4), ...workerWithRouter("w1", "r1", "n1"), ev.routerClosed("r1", 700)])
    const o0 = opts({ warmWorkers: 0 })
    expect(decideScaleDown(s, o0, 1_699)).toEqual([])
    expect(decideScaleDown(s, o0, 1_700)).toEqual([closeWorker("w1")])
  })

  /** An idle w1 next to busy Workers reporting the given loads; no warm Workers. */
  const siblings = (loads: ReadonlyArray<number>) =>
    build([
      ev.nodeUp("n1", 8),
      ev.mafaldaRouter("m1"),
      ev.workerStarted("w1", "n1"),
      ...loads.flatMap((load, i) => [
        ...workerWithRouter(`b${i}`, `r${i}`, "n1"),
        ev.transport(`t${i}`, `r${i}`, "m1"),
        ev.load(`b${i}`, load, 1)
      ])
    ])
  const o0 = opts({ warmWorkers: 0 })

  it("hysteresis: siblings averaging above watermark - hysteresis keep the idle Worker", () => {
    expect(decideScaleDown(siblings([55]), o0, GRACE)).toEqual([])
    expect(decideScaleDown(siblings([55, 50]), o0, GRACE)).toEqual([])
    expect(decideScaleDown(siblings([90]), o0, GRACE)).toEqual([])
  })

  it("hysteresis: siblings at or below watermark - hysteresis let it close", () => {
    expect(decideScaleDown(siblings([45]), o0, GRACE)).toEqual([closeWorker("w1")])
    expect(decideScaleDown(siblings([50]), o0, GRACE)).toEqual([closeWorker("w1")])
    expect(decideScaleDown(siblings([55, 35]), o0, GRACE)).toEqual([closeWorker("w1")])
    expect(decideScaleDown(siblings([0]), opts({ warmWorkers: 0, scaleDownHysteresis: 0 }), GRACE)).toEqual([
      closeWorker("w1")
    ])
  })

  it("hysteresis uses effective load (reservations since the last report)", () => {
    const s = apply(siblings([49.9]), [ev.producer("p0", "t0", 2)]) // + 0.5
    expect(decideScaleDown(s, o0, GRACE)).toEqual([])
  })

  it("hysteresis applies per Node and settings", () => {
    const s = build([
      ev.nodeUp("n1", 8),
      ev.nodeUp("n2", 8),
      ev.mafaldaRouter("m1"),
      ev.workerStarted("w1", "n1"),
      ...workerWithRouter("b1", "r1", "n2"),
      ev.transport("t1", "r1", "m1"),
      ev.load("b1", 95, 1)
    ])
    expect(decideScaleDown(s, o0, GRACE)).toEqual([closeWorker("w1")])
  })
})

describe("decideScaleDown: output", () => {
  it("lists pipes, then Routers, then Workers, each sorted", () => {
    const s = build([
      ev.nodeUp("n1", 8),
      ev.mafaldaRouter("m1"),
      ev.workerStarted("wb", "n1"),
      ev.workerStarted("wa", "n1"),
      ...workerWithRouter("w1", "rz", "n1"),
      ...workerWithRouter("w2", "ry", "n1"),
      ...workerWithRouter("w3", "r3", "n1"),
      ev.transport("t3", "r3", "m1"),
      ev.producer("p1", "t3"),
      ev.producer("p0", "t3"),
      ...workerWithRouter("w4", "r4", "n1"),
      ...workerWithRouter("w5", "r5", "n1"),
      ev.transport("t4", "r4", "m1"),
      ev.transport("t5", "r5", "m1"),
      ev.pipe("p1", "r3", "r5"),
      ev.pipe("p1", "r3", "r4"),
      ev.pipe("p0", "r3", "r4")
    ])
    expect(decideScaleDown(s, opts({ warmWorkers: 0 }), GRACE)).toEqual([
      closePipe("p0", "r4"),
      closePipe("p1", "r4"),
      closePipe("p1", "r5"),
      closeRouter("ry"),
      closeRouter("rz"),
      closeWorker("wa"),
      closeWorker("wb")
    ])
  })

  it("rounds of scale-down tear an abandoned cluster down to its warm Workers", () => {
    let s = apply(tree, [
      ev.transportClosed("t1", 10),
      ev.transportClosed("t2", 10),
      ev.transportClosed("t3", 10)
    ])
    let now = 10
    for (let round = 0; round < 10; round++) {
      now += GRACE
      const actions = decideScaleDown(s, o, now)
      if (actions.length === 0) break
      s = carryOut(s, actions, now)
      expect(invariantViolations(s, o)).toEqual([])
    }
    expect(keysOf(s.routers)).toEqual([])
    expect(keysOf(s.workers).length).toBe(o.warmWorkers)
    expect(decideScaleDown(s, o, now + 10 * GRACE)).toEqual([])
  })
})

describe("regressions: core bugs these tests found", () => {
  // warmWorkers is the least number of Workers (busy or idle) kept per up Node and settings:
  // the idle sibling of a busy Worker is closed once the grace period is over.
  it("warmWorkers counts busy Workers too", () => {
    const s = build([
      ev.nodeUp("n1", 8),
      ev.mafaldaRouter("m1"),
      ev.workerStarted("w1", "n1"),
      ...workerWithRouter("b1", "r1", "n1"),
      ev.transport("t1", "r1", "m1"),
      ev.load("b1", 10, 1)
    ])
    expect(decideScaleDown(s, opts({ warmWorkers: 1 }), GRACE)).toEqual([closeWorker("w1")])
    expect(decideScaleDown(s, opts({ warmWorkers: 2 }), GRACE)).toEqual([])
  })

  // A draining Node "takes nothing new", so an idle Worker there can never be used again,
  // and a Node leaves once it has no Workers; yet warm Workers are kept on draining Nodes
  // too, so a drained Node never empties.
  it("an idle Worker on a draining Node is closed after the grace period (no warm Workers there)", () => {
    const s = build([ev.nodeUp("n1", 8), ev.workerStarted("w1", "n1"), ev.nodeDraining("n1", 1)])
    expect(decideScaleDown(s, opts({ warmWorkers: 1 }), GRACE)).toEqual([closeWorker("w1")])
  })
})
