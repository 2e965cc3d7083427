/**
 * The snapshot's `hopConsumers` index (the consumers of each producer on each Router), kept
 * in step by `applyEvent` so that closing a hop of a stream tree does not walk every consumer
 * of every transport on its Router: after any sequence of raw events, valid or not, it must
 * equal the index recomputed from the snapshot's consumers (and the one `decodeSnapshot`
 * rebuilds from the JSON form).
 */
import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc, HashMap } from "effect"
import { applyEvent, defaultPolicyOptions } from "../../src/core/index.js"
import { makeRawEvent, rawEvent, rawPrefix } from "./arbitraries.js"
import { assertProperty, Coverage } from "./coverage.js"
import { build, hopConsumerViolations, throughJson } from "./helpers.js"

const timeout = 300_000

const indexOf = (s: ReturnType<typeof build>): Array<string> => {
  const out: Array<string> = []
  for (const [p, byRouter] of s.hopConsumers)
    for (const [r, ids] of byRouter) out.push(`${p}|${r}:${[...ids].sort().join(",")}`)
  return out.sort()
}

describe("hopConsumers index", () => {
  it(
    "equals its recomputation from the consumers after every raw event",
    async () => {
      const coverage = new Coverage("hopConsumers", ["consumers", "removed"] as const)
      await assertProperty(
        fc.array(rawEvent, { minLength: 10, maxLength: 40 }),
        (raws) => {
          let s = build(rawPrefix)
          let most = 0
          let removed = false
          raws.forEach((raw, i) => {
            const r = applyEvent(s, makeRawEvent(s, raw, i + 1), defaultPolicyOptions.costs)
            if (Either.isLeft(r)) return
            const before = HashMap.size(s.consumers)
            s = r.right
            if (HashMap.size(s.consumers) < before) removed = true
            most = Math.max(most, HashMap.size(s.consumers))
            const violations = hopConsumerViolations(s)
            if (violations.length > 0) throw new Error(violations.join("; "))
            expect(indexOf(throughJson(s))).toEqual(indexOf(s))
          })
          coverage.add({ consumers: most > 0, removed })
        },
        { numRuns: 500 }
      )
      coverage.expectAtLeast({ consumers: 0.5, removed: 0.2 })
    },
    timeout
  )
})
