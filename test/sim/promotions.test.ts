import { describe, expect, it } from "@effect/vitest"
import { Either, HashMap } from "effect"
import type { Engine } from "../../src/sim/Engine.js"
import type { PolicyName } from "../../src/sim/policies/Policy.js"
import { roomMedia } from "../../src/sim/Rooms.js"
import { simulateSync } from "../../src/sim/run.js"
import { decodeScenario } from "../../src/sim/Scenario.js"

/** Four rooms of 6, one speaker each; everyone is in by 40 s; two viewers promoted at 60 s. */
const scenario = (promotions: ReadonlyArray<{ atSeconds: number; count?: number }>) =>
  Either.getOrThrow(
    decodeScenario({
      name: "promotions",
      durationSeconds: 90,
      nodes: { count: 1, cpus: 4 },
      rooms: [
        {
          rooms: 4,
          size: { min: 6, max: 6 },
          publishers: 1,
          joinsPerSecond: 2,
          stopSeconds: 40,
          promotions
        }
      ]
    })
  )

const run = (promotions: ReadonlyArray<{ atSeconds: number; count?: number }>, policy: PolicyName) => {
  let engine: Engine | undefined
  const result = simulateSync(scenario(promotions), policy, {
    inspect: (e) => {
      engine = e
    }
  })
  return { result, engine: engine! }
}

describe("promotion of viewers to speakers", () => {
  it("defaults to none", () => {
    expect(scenario([]).rooms[0]!.promotions).toEqual([])
    const { engine } = run([], "round-robin")
    // 4 rooms: 1 speaker's 2 producers consumed by 5 viewers.
    expect(HashMap.size(engine.cluster.snapshot.consumers)).toBe(4 * 10)
  })

  for (const policy of ["round-robin", "mafalda"] as const) {
    it(`${policy}: the earliest viewers start to publish, consumed by everyone else`, () => {
      const { result, engine } = run([{ atSeconds: 60, count: 2 }], policy)
      expect(result.rejected).toBe(0)
      for (const room of engine.workload.groups[0]!.rooms) {
        expect(room.members).toHaveLength(6)
        const byJoin = [...room.members].sort((a, b) => a.num - b.num)
        // The first joiner was the speaker; the next two are promoted.
        expect(byJoin.map((p) => p.publisher)).toEqual([true, true, true, false, false, false])
        expect(room.publishers).toBe(3)
        expect(room.producers).toHaveLength(6)
        expect(roomMedia(room)).toEqual({
          producers: { audio: 3, video: 3 },
          consumers: { audio: 15, video: 15 }
        })
      }
      // 3 publishers x 2 producers x 5 others, per room.
      expect(HashMap.size(engine.cluster.snapshot.consumers)).toBe(4 * 30)
    })
  }
})
