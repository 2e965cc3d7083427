/**
 * Property tests of the core: generated sequences of cluster events, with every placement
 * decided by the policy and applied by the harness (`Sim`), checked after every step.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"
import { applyEvent, defaultPolicyOptions, makePolicyOptions } from "../../src/core/index.js"
import {
  anyCommand,
  growCommand,
  makeRawEvent,
  play,
  playTree,
  rawEvent,
  rawPrefix,
  scenario,
  treeScenario
} from "./arbitraries.js"
import { build, canonical, invariantViolations } from "./helpers.js"

describe("properties", () => {
  it.prop(
    "every step keeps trees, depths, indexes, placements and scale-down consistent",
    [scenario(anyCommand, 40)],
    ([sc]) => {
      play(sc, { roundTrip: true })
    },
    { fastCheck: { numRuns: 1000 } }
  )

  it.prop(
    "consume-only: pipes per producer never exceed the Routers consuming it",
    [scenario(growCommand, 40)],
    ([sc]) => {
      play(sc, { pipesBoundedByConsumers: true })
    },
    { fastCheck: { numRuns: 1000 } }
  )

  it.prop(
    "deep trees: parents follow the rules and no hop is deeper than maxTreeDepth",
    [treeScenario],
    ([sc]) => {
      playTree(sc)
    },
    { fastCheck: { numRuns: 1000 } }
  )

  const lax = Either.getOrThrow(makePolicyOptions({ maxTreeDepth: 1_000 }))

  it.prop(
    "raw events: each is either rejected or gives a consistent snapshot",
    [fc.array(rawEvent, { minLength: 10, maxLength: 40 })],
    ([events]) => {
      let s = build(rawPrefix)
      events.forEach((raw, i) => {
        const event = makeRawEvent(s, raw, i + 1)
        const r = applyEvent(s, event, defaultPolicyOptions.costs)
        if (Either.isRight(r)) {
          s = r.right
          const violations = invariantViolations(s, lax)
          if (violations.length > 0) throw new Error(`${JSON.stringify(event)}: ${violations.join("; ")}`)
        }
      })
    },
    { fastCheck: { numRuns: 1000 } }
  )

  it.prop(
    "raw events: applyEvent never changes the snapshot it is given, valid event or not",
    [fc.array(rawEvent, { minLength: 10, maxLength: 30 })],
    ([events]) => {
      let s = build(rawPrefix)
      events.forEach((raw, i) => {
        const event = makeRawEvent(s, raw, i + 1)
        const before = canonical(s)
        const r = applyEvent(s, event, defaultPolicyOptions.costs)
        expect(canonical(s)).toEqual(before)
        if (Either.isRight(r)) s = r.right
      })
    },
    { fastCheck: { numRuns: 300 } }
  )
})
