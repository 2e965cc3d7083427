import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import type { SimCluster } from "../../src/sim/Cluster.js"
import { roundRobinPolicy } from "../../src/sim/policies/roundRobin.js"
import { simulateSync } from "../../src/sim/run.js"
import { decodeScenario } from "../../src/sim/Scenario.js"

/** Three rooms of 5: room i starts at 10 + 60 i s, fills within 10 s and lasts 40 s. */
const scenario = Either.getOrThrow(
  decodeScenario({
    name: "scheduled",
    durationSeconds: 240,
    nodes: { count: 1, cpus: 2 },
    rooms: [
      {
        name: "class",
        rooms: 3,
        size: { min: 5, max: 5 },
        publishers: "all",
        joinsPerSecond: 0,
        scheduled: { startSeconds: 10, everySeconds: 60, lengthSeconds: 40, joinWithinSeconds: 10 }
      }
    ]
  })
)

describe("rooms with start times and fixed lengths (scheduled)", () => {
  const joins = new Map<number, Array<number>>()
  const closes = new Map<number, number>()
  const result = simulateSync(scenario, (cluster) => {
    const policy = roundRobinPolicy(cluster)
    const now = () => (cluster as SimCluster).now / 1000
    return {
      ...policy,
      join: (p) => {
        joins.set(p.room.index, [...(joins.get(p.room.index) ?? []), now()])
        return policy.join(p)
      },
      closeRoom: (room) => {
        closes.set(room.index, now())
        policy.closeRoom(room)
      }
    }
  })

  it("fills each room within its first 10 s after its start", () => {
    expect(result.joins).toBe(15)
    for (const i of [0, 1, 2]) {
      const ts = joins.get(i)!
      expect(ts).toHaveLength(5)
      for (const t of ts) {
        expect(t).toBeGreaterThanOrEqual(10 + 60 * i)
        expect(t).toBeLessThanOrEqual(20 + 60 * i)
      }
    }
  })

  it("ends each room at its start plus its length: everyone leaves", () => {
    expect([...closes.entries()].sort()).toEqual([
      [0, 50],
      [1, 110],
      [2, 170]
    ])
  })

  it("defaults to none: rooms fill from the steady joins", () => {
    const plain = Either.getOrThrow(
      decodeScenario({
        ...scenario,
        rooms: [{ ...scenario.rooms[0]!, scheduled: undefined, joinsPerSecond: 1 }]
      })
    )
    expect(plain.rooms[0]!.scheduled).toBeUndefined()
    expect(simulateSync(plain, "round-robin").joins).toBe(15)
  })
})
