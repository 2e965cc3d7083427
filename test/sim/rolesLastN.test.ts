import { describe, expect, it } from "@effect/vitest"
import { Either, HashMap } from "effect"
import type { Engine } from "../../src/sim/Engine.js"
import type { SimResult } from "../../src/sim/Metrics.js"
import type { PolicyName } from "../../src/sim/policies/Policy.js"
import { type Participant, type Room, roomMedia } from "../../src/sim/Rooms.js"
import { simulateSync } from "../../src/sim/run.js"
import { decodeScenario, type ScenarioInput } from "../../src/sim/Scenario.js"

type GroupInput = ScenarioInput["rooms"][number]

const run = (
  group: Omit<GroupInput, "rooms" | "joinsPerSecond"> & Partial<GroupInput>,
  policy: PolicyName = "round-robin"
): { result: SimResult; engine: Engine } => {
  const scenario = Either.getOrThrow(
    decodeScenario({
      name: "roles",
      durationSeconds: 240,
      nodes: { count: 2, cpus: 4 },
      rooms: [{ rooms: 4, joinsPerSecond: 2, ...group }]
    })
  )
  let engine: Engine | undefined
  const result = simulateSync(scenario, policy, {
    inspect: (e) => {
      engine = e
    }
  })
  return { result, engine: engine! }
}

/** The kinds of the producers `p` consumes now, and which ones. */
const consumed = (engine: Engine, p: Participant) =>
  p.room.producers.filter((x) =>
    HashMap.has(engine.cluster.snapshot.consumers, engine.cluster.consumerId(p, x))
  )

const rooms = (engine: Engine): ReadonlyArray<Room> => engine.workload.groups.flatMap((g) => g.rooms)

describe("roles per participant", () => {
  it("defaults to none: every publisher creates `produces`", () => {
    const { engine } = run({ size: { min: 5, max: 5 }, publishers: 2 })
    for (const room of rooms(engine)) {
      expect(room.producers.map((x) => x.kind).sort()).toEqual(["audio", "audio", "video", "video"])
    }
  })

  it("teacher on video: the first participant sends audio and video, the others audio only", () => {
    const { result, engine } = run({
      size: { min: 6, max: 6 },
      publishers: "all",
      produces: ["audio"],
      roles: [{ count: 1, produces: ["audio", "video"] }],
      stopSeconds: 60
    })
    expect(result.rejected).toBe(0)
    for (const room of rooms(engine)) {
      expect(room.members).toHaveLength(6)
      const first = room.members.reduce((a, b) => (a.num < b.num ? a : b))
      expect(first.producers.map((x) => x.kind)).toEqual(["audio", "video"])
      for (const p of room.members) {
        if (p !== first) expect(p.producers.map((x) => x.kind)).toEqual(["audio"])
        // Everyone consumes everyone else's producers: 5 audio, and the teacher's video.
        expect(consumed(engine, p)).toHaveLength(p === first ? 5 : 6)
      }
      // The demand the lower bounds count (`Demand` is to read it): 6 audio and 1 video
      // producers, 30 audio and 5 video consumers.
      expect(roomMedia(room)).toEqual({
        producers: { audio: 6, video: 1 },
        consumers: { audio: 30, video: 5 }
      })
    }
    expect(HashMap.size(engine.cluster.snapshot.consumers)).toBe(4 * 35)
  })

  it("a free seat in a role goes to the next publisher: never more holders than the role's count", () => {
    const { engine } = run({
      rooms: 6,
      size: { min: 4, max: 8 },
      publishers: 3,
      produces: ["audio"],
      roles: [{ count: 1, produces: ["audio", "video"] }],
      meanStaySeconds: 40,
      joinsPerSecond: 3
    })
    let teachers = 0
    for (const room of rooms(engine)) {
      const holders = room.members.filter((p) => p.role === 0)
      expect(holders.length).toBeLessThanOrEqual(1)
      expect(room.roleHolders[0]).toBe(holders.length)
      if (room.publishers > 0) expect(holders).toHaveLength(1)
      teachers += holders.length
      const kinds = room.members.flatMap((p) => p.kinds)
      expect(room.published).toEqual({
        audio: kinds.filter((k) => k === "audio").length,
        video: kinds.filter((k) => k === "video").length
      })
    }
    expect(teachers).toBeGreaterThan(0)
  })
})

describe("last-N video", () => {
  it("each participant consumes the latest N others' video producers and every audio producer", () => {
    const { result, engine } = run({
      size: { min: 8, max: 8 },
      publishers: "all",
      lastN: 3,
      stopSeconds: 60
    })
    expect(result.rejected).toBe(0)
    expect(result.rejectedConsumers).toBe(0)
    for (const room of rooms(engine)) {
      expect(room.members).toHaveLength(8)
      for (const p of room.members) {
        const got = consumed(engine, p)
        expect(got.filter((x) => x.kind === "audio")).toHaveLength(7)
        const latest = room.producers.filter((x) => x.kind === "video" && x.owner !== p).slice(-3)
        expect(got.filter((x) => x.kind === "video")).toEqual(latest)
      }
      expect(roomMedia(room)).toEqual({
        producers: { audio: 8, video: 8 },
        consumers: { audio: 56, video: 24 }
      })
    }
    // 4 rooms of 8: 56 audio + 24 video consumers each, where without last-N 56 + 56.
    expect(HashMap.size(engine.cluster.snapshot.consumers)).toBe(4 * 80)
    const all = run({ size: { min: 8, max: 8 }, publishers: "all", stopSeconds: 60 })
    expect(HashMap.size(all.engine.cluster.snapshot.consumers)).toBe(4 * 112)
  })

  it("when a publisher leaves, the others move up to the next latest video producers", () => {
    for (const policy of ["round-robin", "mafalda"] as const) {
      const { result, engine } = run(
        {
          rooms: 5,
          size: { min: 5, max: 9 },
          publishers: "all",
          lastN: 2,
          meanStaySeconds: 30,
          joinsPerSecond: 3
        },
        policy
      )
      expect(result.rejected).toBe(0)
      let checked = 0
      for (const room of rooms(engine)) {
        for (const p of room.members) {
          if (!p.placed) continue
          const video = consumed(engine, p).filter((x) => x.kind === "video")
          expect(video).toEqual(room.producers.filter((x) => x.kind === "video" && x.owner !== p).slice(-2))
          checked++
        }
      }
      expect(checked).toBeGreaterThan(5)
    }
  })
})
