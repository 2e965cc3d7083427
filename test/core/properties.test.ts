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
import { build, canonical, ev, invariantViolations, mid, nid, throughJson } from "./helpers.js"

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

// --- What a placement costs, at the edge of a Worker's room -----------------------------

/**
 * A Node `n0` with one Worker `w0` (a Router of the room's settings on it that the room uses
 * or not, or none), and the room's producers on another Node's Worker `w1`, reported full so
 * that it takes nothing; `w0` reported at `load`.
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
  for (let i = 0; i < producers; i++)
    events.push(ev.producer(`p${i}`, "t1", 0, i % 2 === 0 ? "audio" : "video"))
  if (router !== "none") events.push(ev.routerCreated("r0", "w0"))
  if (router === "used") events.push(ev.registered("m", "r0"))
  // A report after every placement: the effective load is exactly `load`.
  events.push(ev.load("w1", 100, 1), ev.load("w0", load, 1))
  return build(events, o.costs)
}

/** Costs that add up exactly in binary, so that a load can sit exactly on the edge. */
const dyadic = fc.record({
  watermark: fc.constantFrom(15, 30, 60, 100),
  plannedLimit: fc.constantFrom(50, 85, 100),
  costs: fc.record({
    transport: fc.constantFrom(0, 0.25),
    producer: fc.constant(0),
    audio: fc.record({ consumer: fc.constantFrom(0.25, 1), pipe: fc.constantFrom(0, 0.5) }),
    video: fc.record({ consumer: fc.constantFrom(0.5, 2), pipe: fc.constantFrom(0, 1) })
  })
})

describe("what a placement brings at once, and once its room is full", () => {
  it(
    "no decision places on a Worker whose effective load plus the placement's expected cost passes the watermark (or the planned limit)",
    async () => {
      const coverage = new Coverage("placement cost", ["room", "noRoom", "planned"] as const)
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
          // The cost, stated from the documentation: the transport, a consumer of each
          // producer of the room and, on a Router the room has nothing on yet (w0's, used or
          // not, or a new one) while its producers are elsewhere, the receiving end of a pipe
          // of each.
          const audio = Math.ceil(producers / 2)
          const video = producers - audio
          const c = o.costs
          const piped = true
          const now =
            c.transport +
            audio * (c.audio.consumer + (piped ? c.audio.pipe : 0)) +
            video * (c.video.consumer + (piped ? c.video.pipe : 0))
          const load = Math.max(0, o.watermark - now + delta)
          const s: ClusterSnapshot = edgeCluster(producers, router, load, o)
          const d = decideTransportPlacement(s, o, request)
          expect(decideTransportPlacement(s, o, request)).toEqual(d)
          // Without a hint and without growth, the room is projected at its size; once full,
          // the transport also sends its share of the room's producers (the room has one
          // transport: as many as it has) to the room's other Router (it spans two: r1, and
          // w0's). w0 has nothing of the room yet to grow.
          const outs = audio * c.audio.pipe + video * c.video.pipe
          const room = load < o.watermark && load + now <= o.watermark && load + now + outs <= o.plannedLimit
          expect({ load, now, onW0: onW0(d) }).toEqual({ load, now, onW0: room })
          if (!room) expect(d._tag).toBe("Reject")
          coverage.add({
            room,
            noRoom: !room,
            planned: load + now <= o.watermark && load + now + outs > o.plannedLimit
          })
        },
        { numRuns: 1000 }
      )
      // The generator reaches room in about 20-25 % of runs (19.7-24.5 % in five runs of 1,000):
      // a floor of 20 % failed one CI run in four; 15 % still demands hundreds of such runs.
      coverage.expectAtLeast({ room: 0.15, noRoom: 0.2, planned: 0.02 })
    },
    timeout
  )

  it(
    "determinism: the same snapshot and request give an equal decision, on a decoded copy too",
    async () => {
      const coverage = new Coverage("determinism", ["placed", "delegated"] as const)
      await assertProperty(
        scenario(growCommand, 24),
        (sc) => {
          const s = play(sc).snapshot
          const copy = throughJson(s)
          let placed = false
          let delegated = false
          for (const m of HashMap.keys(s.mafaldaRouters)) {
            for (const n of HashMap.keys(s.nodes)) {
              const request = { node: n, mafaldaRouter: m }
              const d = decideTransportPlacement(s, sc.options, request)
              expect(decideTransportPlacement(s, sc.options, request)).toEqual(d)
              expect(decideTransportPlacement(copy, sc.options, request)).toEqual(d)
              placed ||= d._tag === "UseRouter" || d._tag === "CreateRouter"
              delegated ||= d._tag === "Delegate"
            }
          }
          coverage.add({ placed, delegated })
        },
        { numRuns: 1000 }
      )
      coverage.expectAtLeast({ placed: 0.25, delegated: 0.05 })
    },
    timeout
  )
})
