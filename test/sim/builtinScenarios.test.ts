import { describe, expect, it } from "@effect/vitest"
import type { SimCluster } from "../../src/sim/Cluster.js"
import type { Engine } from "../../src/sim/Engine.js"
import { roomPerNodePolicy } from "../../src/sim/policies/roomPerNode.js"
import { roundRobinPolicy } from "../../src/sim/policies/roundRobin.js"
import { simulateSync } from "../../src/sim/run.js"
import { builtinScenario } from "../../src/sim/scenarios.js"

/** The median of some numbers. */
const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}

describe("built-in scenario `mixed`", () => {
  const scenario = builtinScenario("mixed")
  // Round-robin is the cheapest policy to run; when each join happens is the scenario's alone.
  const joinsAt = new Map<string, Array<number>>()
  let engine: Engine | undefined
  const result = simulateSync(
    scenario,
    (cluster) => {
      const policy = roundRobinPolicy(cluster)
      return {
        ...policy,
        join: (p) => {
          const name = p.room.group.spec.name
          joinsAt.set(name, [...(joinsAt.get(name) ?? []), (cluster as SimCluster).now / 1000])
          return policy.join(p)
        }
      }
    },
    {
      inspect: (e) => {
        engine = e
      }
    }
  )

  it("has rooms of very different sizes, audio+video and audio only, with and without a size hint", () => {
    const sizes = engine!.workload.groups.flatMap((g) => g.rooms.map((r) => r.size))
    expect(Math.min(...sizes)).toBeLessThanOrEqual(4)
    expect(Math.max(...sizes)).toBeGreaterThanOrEqual(30)
    const kinds = new Set(scenario.rooms.map((g) => g.produces.join("+")))
    expect(kinds).toEqual(new Set(["audio+video", "audio"]))
    expect(new Set(scenario.rooms.map((g) => g.hint))).toEqual(new Set(["size", "none"]))
  })

  it("fills every room, the groups at the same time: their joins interleave", () => {
    for (const g of engine!.workload.groups)
      for (const room of g.rooms) expect(room.members).toHaveLength(room.size)
    expect(result.rejected).toBe(0)
    const medians = [...joinsAt.values()].map(median)
    expect(medians).toHaveLength(scenario.rooms.length)
    // Each group's median join within 30 s of the others' (they fill over ~150 s).
    expect(Math.max(...medians) - Math.min(...medians)).toBeLessThan(30)
    // The last join of each group late in the fill, not one group after another.
    const lasts = [...joinsAt.values()].map((ts) => ts[ts.length - 1]!)
    expect(Math.min(...lasts)).toBeGreaterThan(100)
  })
})

describe("built-in scenario `churn`", () => {
  const scenario = builtinScenario("churn")
  // (seconds, participants present) at each join; who is present is the scenario's alone.
  const present: Array<readonly [number, number]> = []
  const result = simulateSync(scenario, (cluster) => {
    const policy = roomPerNodePolicy(cluster)
    return {
      ...policy,
      join: (p) => {
        let n = 0
        for (const room of p.room.group.rooms) n += room.members.length
        present.push([(cluster as SimCluster).now / 1000, n])
        return policy.join(p)
      }
    }
  })
  const peakIn = (from: number, to: number) =>
    Math.max(0, ...present.filter(([t]) => t >= from && t < to).map(([, n]) => n))

  it("rises, peaks and falls: participants present follow the day", () => {
    const peak = peakIn(0, 900)
    expect(peak).toBeGreaterThan(100)
    expect(peakIn(0, 120)).toBeLessThan(peak / 2)
    expect(peakIn(240, 500)).toBe(peak)
    expect(peakIn(780, 900)).toBeLessThan(peak / 4)
  })

  it("is churny: people leave and others take their seats, many times over", () => {
    expect(result.joins).toBeGreaterThan(5 * peakIn(0, 900))
    expect(result.reconnects).toBe(0)
  })
})
