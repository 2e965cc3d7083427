/**
 * Property tests of the core: generated sequences of cluster events, with every placement
 * decided by the policy and applied by the harness (`Sim`), checked after every step.
 *
 * Each property also counts what its runs reached (pipes, trees of depth 2 or more, shared
 * and real `pipeToRouter`, pipes scaled down, delegation, full Workers; valid and invalid
 * raw events), prints one coverage line, and fails when a case falls under its target: a
 * generator that drifted to easy runs would otherwise pass without testing anything hard.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc, HashMap } from "effect"
import {
  applyEvent,
  type ClusterEvent,
  type ClusterSnapshot,
  decideTransportPlacement,
  defaultPolicyOptions,
  makePolicyOptions,
  type PolicyOptions
} from "../../src/core/index.js"
import {
  anyCommand,
  growCommand,
  makeRawEvent,
  play,
  playTree,
  type RawEventKind,
  rawEvent,
  rawPrefix,
  reachKeys,
  scenario,
  treeScenario
} from "./arbitraries.js"
import { assertProperty, Coverage } from "./coverage.js"
import { invalidReasons, postconditionViolations } from "./eventValidity.js"
import { build, canonical, ev, invariantViolations, mid, nid } from "./helpers.js"
import { oracleExpected, oracleTransportPlacement } from "./oracle.js"

/** Generous: a property is not timed, but this machine is shared and slow at times. */
const timeout = 300_000

describe("properties", () => {
  it(
    "every step keeps trees, depths, indexes, placements and scale-down consistent",
    async () => {
      const coverage = new Coverage("any commands", reachKeys)
      await assertProperty(
        scenario(anyCommand, 24),
        (sc) => coverage.add(play(sc, { roundTrip: true }).reached()),
        { numRuns: 1000 }
      )
      coverage.expectAtLeast({
        pipe: 0.3,
        depth2: 0.1,
        share: 0.1,
        realPipe: 0.1,
        closePipe: 0.05,
        delegate: 0.1,
        overload: 0.3
      })
    },
    timeout
  )

  it(
    "consume-only: pipes per producer never exceed the Routers consuming it",
    async () => {
      const coverage = new Coverage("grow commands", ["pipe", "depth2", "delegate", "overload"] as const)
      await assertProperty(
        scenario(growCommand, 24),
        (sc) => coverage.add(play(sc, { pipesBoundedByConsumers: true }).reached()),
        { numRuns: 1000 }
      )
      coverage.expectAtLeast({ pipe: 0.3, depth2: 0.1, delegate: 0.1, overload: 0.3 })
    },
    timeout
  )

  it(
    "deep trees: parents follow the rules and no hop is deeper than maxTreeDepth",
    async () => {
      const coverage = new Coverage("deep trees", ["pipe", "depth2", "maxDepth", "closePipe"] as const)
      await assertProperty(
        treeScenario,
        (sc) => {
          const sim = playTree(sc)
          const depth = sim.seen.get("made.depth") ?? 0
          coverage.add({ ...sim.reached(), maxDepth: depth === sc.options.maxTreeDepth })
        },
        { numRuns: 1000 }
      )
      coverage.expectAtLeast({ pipe: 0.9, depth2: 0.3, maxDepth: 0.3, closePipe: 0.2 })
    },
    timeout
  )

  const lax = Either.getOrThrow(makePolicyOptions({ maxTreeDepth: 1_000 }))

  it(
    "raw events: valid ones (by an independent model) are applied consistently, invalid ones refused",
    async () => {
      const kinds = new Map<RawEventKind, { valid: number; invalid: number }>()
      const coverage = new Coverage("raw events", ["valid", "invalid", "both"] as const)
      let events = 0
      let valid = 0
      await assertProperty(
        fc.array(rawEvent, { minLength: 10, maxLength: 40 }),
        (raws) => {
          let s = build(rawPrefix)
          let runValid = 0
          raws.forEach((raw, i) => {
            const event = makeRawEvent(s, raw, i + 1)
            const reasons = invalidReasons(s, event)
            const r = applyEvent(s, event, defaultPolicyOptions.costs)
            const fail = (m: string) => {
              throw new Error(`${JSON.stringify(event)}: ${m}`)
            }
            if (reasons.length === 0) {
              if (Either.isLeft(r)) fail(`valid by the model, refused: ${r.left.message}`)
              else {
                const after = r.right
                const violations = [
                  ...postconditionViolations(after, event),
                  ...invariantViolations(after, lax)
                ]
                if (violations.length > 0) fail(violations.join("; "))
                s = after
              }
              runValid++
            } else if (Either.isRight(r)) fail(`invalid by the model (${reasons.join("; ")}), accepted`)
            else if (r.left._tag !== "InvalidEvent" || r.left.event !== event._tag)
              fail(`refused oddly: ${r.left}`)
            const k = kinds.get(raw.kind) ?? { valid: 0, invalid: 0 }
            kinds.set(
              raw.kind,
              reasons.length === 0 ? { ...k, valid: k.valid + 1 } : { ...k, invalid: k.invalid + 1 }
            )
          })
          events += raws.length
          valid += runValid
          const invalid = raws.length - runValid
          coverage.add({ valid: runValid > 0, invalid: invalid > 0, both: runValid > 0 && invalid > 0 })
        },
        { numRuns: 1000 }
      )
      console.log(
        `raw events: ${events} events, ${((100 * valid) / events).toFixed(1)} % valid; by kind (valid/invalid): ${[
          ...kinds
        ]
          .sort()
          .map(([k, x]) => `${k} ${x.valid}/${x.invalid}`)
          .join(", ")}`
      )
      coverage.expectAtLeast({ valid: 0.95, invalid: 0.95, both: 0.9 })
      // Every kind was seen valid, and every kind that can be wrong was seen wrong.
      for (const [kind, x] of kinds) {
        expect({ kind, valid: x.valid > 0 }).toEqual({ kind, valid: true })
        if (kind !== "NodeUp") expect({ kind, invalid: x.invalid > 0 }).toEqual({ kind, invalid: true })
      }
    },
    timeout
  )

  it(
    "raw events: applyEvent never changes the snapshot it is given, valid event or not",
    async () => {
      const coverage = new Coverage("raw events, immutability", ["applied", "refused"] as const)
      await assertProperty(
        fc.array(rawEvent, { minLength: 10, maxLength: 30 }),
        (events) => {
          let s = build(rawPrefix)
          let applied = 0
          events.forEach((raw, i) => {
            const event = makeRawEvent(s, raw, i + 1)
            const before = canonical(s)
            const r = applyEvent(s, event, defaultPolicyOptions.costs)
            expect(canonical(s)).toEqual(before)
            if (Either.isRight(r)) {
              s = r.right
              applied++
            }
          })
          coverage.add({ applied: applied > 0, refused: applied < events.length })
        },
        { numRuns: 300 }
      )
      coverage.expectAtLeast({ applied: 0.95, refused: 0.9 })
    },
    timeout
  )
})

// --- The expected load of a transport, at the edge of a Worker's room --------------------

/**
 * A Node `n0` with one Worker `w0` (a Router of the room's settings on it that the room uses
 * or not, or none), and the room's producers on another Node; `w0` reported at `load`.
 */
const edgeCluster = (
  producers: number,
  router: "used" | "other" | "none",
  load: number,
  o: PolicyOptions
) => {
  const events: Array<ClusterEvent> = [
    ev.nodeUp("n0", 1),
    ev.nodeUp("n1", 1),
    ev.mafaldaRouter("m"),
    ev.workerStarted("w1", "n1"),
    ev.routerCreated("r1", "w1"),
    ev.transport("t1", "r1", "m"),
    ev.workerStarted("w0", "n0")
  ]
  for (let i = 0; i < producers; i++) events.push(ev.producer(`p${i}`, "t1"))
  if (router !== "none") events.push(ev.routerCreated("r0", "w0"))
  if (router === "used") events.push(ev.registered("m", "r0"))
  // A report after every placement: the effective load is exactly `load`.
  events.push(ev.load("w0", load, 1))
  return build(events, o.costs)
}

/** Costs that add up exactly in binary, so that a load can sit exactly on the edge. */
const dyadic = fc.record({
  watermark: fc.constantFrom(15, 30, 60, 100),
  costs: fc.record({
    transport: fc.constant(0),
    producer: fc.constant(0),
    consumer: fc.constantFrom(0.25, 0.5, 1, 2),
    pipe: fc.constantFrom(0, 0.25, 1)
  })
})

describe("expected load (the oracle's rule, stated from its documentation)", () => {
  it(
    "a Worker has room for a transport exactly when its load plus the expected load is under the watermark",
    async () => {
      const coverage = new Coverage("expected load", ["room", "noRoom", "capped"] as const)
      await assertProperty(
        fc.tuple(
          dyadic,
          fc.integer({ min: 0, max: 60 }),
          fc.constantFrom("used" as const, "other" as const, "none" as const),
          fc.constantFrom(-1, -(2 ** -10), 0, 2 ** -10, 1)
        ),
        ([input, producers, router, delta]) => {
          const o = Either.getOrThrow(makePolicyOptions(input))
          const request = { node: nid("n0"), mafaldaRouter: mid("m") }
          const onW0 = (d: ReturnType<typeof decideTransportPlacement>) =>
            (d._tag === "UseRouter" || d._tag === "CreateRouter") && d.worker === "w0"
          // The cap: an idle Worker always has room, however many producers the room has.
          const idle = edgeCluster(producers, router, 0, o)
          expect(onW0(decideTransportPlacement(idle, o, request))).toBe(true)
          const expected = oracleExpected(idle, o, HashMap.unsafeGet(idle.mafaldaRouters, mid("m")))
          const extra = router === "used" ? expected.used : expected.other
          const load = Math.max(0, o.watermark - extra + delta)
          const s: ClusterSnapshot = edgeCluster(producers, router, load, o)
          const d = decideTransportPlacement(s, o, request)
          // On w0 (its Router, or a new Router on it) exactly when the oracle finds room there.
          const room = load + extra < o.watermark
          expect({ load, extra, onW0: onW0(d) }).toEqual({ load, extra, onW0: room })
          expect(d._tag).toBe(oracleTransportPlacement(s, o, request)._tag)
          coverage.add({ room, noRoom: !room, capped: extra === o.watermark / 2 })
        },
        { numRuns: 500 }
      )
      coverage.expectAtLeast({ room: 0.2, noRoom: 0.2, capped: 0.1 })
    },
    timeout
  )
})
