import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import type { SimCluster } from "../../src/sim/Cluster.js"
import type { SimResult } from "../../src/sim/Metrics.js"
import { roundRobinPolicy } from "../../src/sim/policies/roundRobin.js"
import { simulateSync } from "../../src/sim/run.js"
import { decodeScenario, type ScenarioInput } from "../../src/sim/Scenario.js"

/**
 * 12 rooms of 20 on 3 Nodes; every join is over by 40 s and nobody leaves, so every join
 * after the busiest Node fails at 60 s is a reconnect.
 */
const failing = (rejoinDelaySeconds: ScenarioInput["rejoinDelaySeconds"], seed = 1) =>
  Either.getOrThrow(
    decodeScenario({
      name: "spread",
      durationSeconds: 120,
      seed,
      nodes: { count: 3, cpus: 2 },
      nodeEvents: [{ atSeconds: 60, action: "fail" }],
      ...(rejoinDelaySeconds === undefined ? {} : { rejoinDelaySeconds }),
      rooms: [{ rooms: 12, size: { min: 20, max: 20 }, publishers: 2, joinsPerSecond: 10, stopSeconds: 40 }]
    })
  )

/** Runs round-robin and returns the result and the times (s) of the joins after the failure. */
const reconnectTimes = (input: ReturnType<typeof failing>): { result: SimResult; times: Array<number> } => {
  const times: Array<number> = []
  const result = simulateSync(input, (cluster) => {
    const policy = roundRobinPolicy(cluster)
    return {
      ...policy,
      join: (p) => {
        const now = (cluster as SimCluster).now / 1000
        if (now >= 60) times.push(now)
        return policy.join(p)
      }
    }
  })
  return { result, times }
}

describe("spread-out reconnects (rejoinDelaySeconds)", () => {
  it("by default everyone reconnects after the same delay (1 s)", () => {
    const { result, times } = reconnectTimes(failing(undefined))
    expect(result.reconnects).toBeGreaterThan(20)
    expect(times).toHaveLength(result.reconnects)
    expect(new Set(times)).toEqual(new Set([61]))
  })

  it("uniform: each client after its own delay in [min, max], spread over the range", () => {
    const { result, times } = reconnectTimes(failing({ distribution: "uniform", min: 2, max: 32 }))
    expect(result.reconnects).toBeGreaterThan(20)
    expect(times).toHaveLength(result.reconnects)
    for (const t of times) {
      expect(t).toBeGreaterThanOrEqual(62)
      expect(t).toBeLessThanOrEqual(92)
    }
    // Spread: every client at its own time, covering most of the range, in time order.
    expect(new Set(times).size).toBe(times.length)
    expect(Math.min(...times)).toBeLessThan(67)
    expect(Math.max(...times)).toBeGreaterThan(87)
    expect([...times].sort((a, b) => a - b)).toEqual(times)
    // The same clients come back as with one delay: only when they do changes.
    expect(result.reconnects).toBe(reconnectTimes(failing(undefined)).result.reconnects)
  })

  it("exponential: min plus a draw of the mean, capped at max", () => {
    const { result, times } = reconnectTimes(
      failing({ distribution: "exponential", min: 1, mean: 5, max: 20 })
    )
    expect(times).toHaveLength(result.reconnects)
    for (const t of times) {
      expect(t).toBeGreaterThanOrEqual(61)
      expect(t).toBeLessThanOrEqual(80)
    }
    const mean = times.reduce((a, t) => a + t - 60, 0) / times.length
    expect(mean).toBeGreaterThan(3.5)
    expect(mean).toBeLessThan(8.5)
  })

  it("is deterministic from the seed", () => {
    const spread = { distribution: "uniform", min: 2, max: 32 } as const
    expect(reconnectTimes(failing(spread, 5)).times).toEqual(reconnectTimes(failing(spread, 5)).times)
    expect(reconnectTimes(failing(spread, 5)).times).not.toEqual(reconnectTimes(failing(spread, 6)).times)
  })

  it("rejects a range whose max is below its min", () => {
    const bad = decodeScenario({
      name: "bad",
      durationSeconds: 10,
      nodes: { count: 1, cpus: 1 },
      rejoinDelaySeconds: { distribution: "uniform", min: 5, max: 2 },
      rooms: [{ rooms: 1, size: { min: 2, max: 2 }, joinsPerSecond: 1 }]
    })
    expect(Either.isLeft(bad)).toBe(true)
    if (Either.isLeft(bad)) expect(bad.left.message).toContain("rejoinDelaySeconds")
  })
})
