/**
 * The pipe-aware lower bounds (`Demand`): by hand on rooms that fit on one Worker, that need
 * several, and that no placement can keep under a capacity; and, on random small scenarios,
 * that no policy ever runs on fewer Workers than the bound of the moment without a Worker
 * over the bound's capacity (the bound stays a lower bound).
 */
import { Either } from "effect"
import { describe, expect, it } from "vitest"
import type { SettingsKey } from "../../src/core/Ids.js"
import { roomNeeds } from "../../src/sim/Demand.js"
import type { SeriesPoint } from "../../src/sim/Metrics.js"
import { afterPeak } from "../../src/sim/MetricsRecorder.js"
import { Prng } from "../../src/sim/Prng.js"
import { policyNames } from "../../src/sim/policies/Policy.js"
import { type PolicyFactory, simulateSync } from "../../src/sim/run.js"
import { decodeScenario, type Scenario, type ScenarioInput } from "../../src/sim/Scenario.js"
import { handCosts } from "../support/handCosts.js"

const scenario = (input: ScenarioInput): Scenario =>
  Either.getOrThrow(decodeScenario({ ...input, policy: { costs: handCosts, ...input.policy } }))

/** Demand and bounds do not depend on the policy: one that places nothing runs fastest. */
const rejectAll: PolicyFactory = (cluster) => ({
  name: "reject-all",
  openRoom: (room) => cluster.openMafaldaRouter(room, "r" as SettingsKey),
  join: () => false,
  produce: () => undefined,
  consume: () => false,
  connected: () => false,
  closeRoom: (room) => cluster.closeMafaldaRouter(room, false),
  tick: () => {}
})

/** One room of `size` everyone publishing `produces`, all joining at once; `handCosts`. */
const oneRoomInput = (size: number, produces: ReadonlyArray<"audio" | "video">): ScenarioInput => ({
  name: "one-room",
  durationSeconds: 10,
  nodes: { count: 1, cpus: 4 },
  rooms: [
    {
      rooms: 1,
      size: { min: size, max: size },
      publishers: "all",
      produces,
      joinsPerSecond: 0,
      bursts: [{ atSeconds: 0, joins: size, withinSeconds: 1 }]
    }
  ]
})
const oneRoom = (size: number, produces: ReadonlyArray<"audio" | "video">): Scenario =>
  scenario(oneRoomInput(size, produces))

// Costs: `handCosts`. Bitrate factors 1.
describe("pipe-aware lower bounds, by hand", () => {
  it("a room that fits on one Worker needs one and no pipe", () => {
    // 10 people, audio and video: 10 × 0.1 + 10 × (1.02 + 9 × 0.151) = 24.79 %.
    const r = simulateSync(oneRoom(10, ["audio", "video"]), rejectAll)
    expect(r.lowerBounds).toEqual({
      workers: { atWatermark: 1, at100: 1 },
      pipes: { atWatermark: 0, at100: 0 },
      infeasibleRooms: { atWatermark: { peak: 0, total: 0 }, at100: { peak: 0, total: 0 } },
      demandOnly: { atWatermark: 1, at100: 1 }
    })
  })

  it("a 50-person all-video meeting needs k Workers, each carrying a pipe end of every producer", () => {
    // D = 50 × 0.1 + 50 × (0.7 + 49 × 0.108) = 304.6 %; one pipe end of each producer
    // P = 50 × 0.4 = 20 %; the largest participant 0.1 + 0.7 + 49 × 0.108 = 6.092 %.
    // At 100 %: T* = ceil(304.6 / 80) = 4 Workers holding transports, 3 pipes per producer
    // (150), 304.6 + 2 × 20 × 3 = 424.6 % in all: 5 Workers. At 60 %: T* = ceil(304.6 / 40)
    // = 8, 350 pipes, 304.6 + 280 = 584.6 %: 10 Workers. Demand only: 6 and 4.
    expect(roomNeeds(304.6, 20, 6.092, 50, 100)).toEqual({
      workers: 5,
      transportWorkers: 4,
      cpu: expect.closeTo(424.6, 9),
      pipes: 150,
      infeasible: false
    })
    const r = simulateSync(oneRoom(50, ["video"]), rejectAll)
    expect(r.lowerBounds).toEqual({
      workers: { atWatermark: 10, at100: 5 },
      pipes: { atWatermark: 350, at100: 150 },
      infeasibleRooms: { atWatermark: { peak: 0, total: 0 }, at100: { peak: 0, total: 0 } },
      demandOnly: { atWatermark: 6, at100: 4 }
    })
  })

  it("a room whose Workers cannot stay under the capacity is counted infeasible, adding its demand alone", () => {
    // 100 people, audio and video: D = 10 + 100 × (1.02 + 99 × 0.151) = 1,606.9 %; P = 100 ×
    // 0.58 = 58 %; the largest participant (a publisher) 0.1 + 1.02 + 99 × 0.151 = 16.069 %.
    // At 60 %: 16.069 + 58 > 60, so every Worker holding part of it would be over 60 %:
    // infeasible, its demand alone counted (ceil(1,606.9 / 60) = 27 Workers), no pipe. At
    // 100 %: T* = ceil(1,606.9 / 42) = 39, 200 producers × 38 = 7,600 pipes, 1,606.9 + 116 × 38
    // = 6,014.9 %: 61 Workers.
    expect(roomNeeds(1606.9, 58, 16.069, 200, 60)).toMatchObject({ workers: 27, pipes: 0, infeasible: true })
    const r = simulateSync(oneRoom(100, ["audio", "video"]), rejectAll)
    const last = r.series[r.series.length - 1]!
    expect([last.participants, last.lowerBoundAtWatermark, last.lowerBoundAt100]).toEqual([100, 27, 61])
    // The peaks are the room's, as it grew: at 80 people it was still feasible at 60 %
    // (1.12 + 79 × 0.151 + 80 × 0.58 = 59.4 %), with a Worker for barely more than one
    // participant: T* = ceil(1,043.9 / (60 - 46.4)) = 77, 160 × 76 = 12,160 pipes,
    // 1,043.9 + 92.8 × 76 = 8,096.7 %: 135 Workers. From 81 people on, it is infeasible.
    expect(r.lowerBounds).toEqual({
      workers: { atWatermark: 135, at100: 61 },
      pipes: { atWatermark: 12160, at100: 7600 },
      infeasibleRooms: { atWatermark: { peak: 1, total: 1 }, at100: { peak: 0, total: 0 } },
      demandOnly: { atWatermark: 27, at100: 17 }
    })
  })

  it("a participant who alone needs more than a Worker makes its room infeasible", () => {
    // A subscriber of 1,000 video producers costs 0.1 + 1,000 × 0.108 = 108.1 %: alone over
    // a Worker, whatever the pipes.
    expect(roomNeeds(5000, 0, 108.1, 1000, 100)).toMatchObject({ infeasible: true, pipes: 0 })
    // Fits on one Worker: never infeasible, whatever the pipes would cost.
    expect(roomNeeds(90, 500, 50, 100, 100)).toEqual({
      workers: 1,
      transportWorkers: 1,
      cpu: 90,
      pipes: 0,
      infeasible: false
    })
  })

  it("with last-N, counts the pipe ends of the audio producers only; roles give publishers their own kinds", () => {
    // 50 people, audio and video, last-N 5: D = 5 + 50 × (1.02 + 49 × 0.043) + 50 × 5 × 0.108
    // = 5 + 156.35 + 27 = 188.35 %; P = 50 × 0.18 = 9 % (audio only). At 100 %:
    // T* = ceil(188.35 / 91) = 3, 50 × 2 = 100 pipes, 188.35 + 36 = 224.35 %: 3 Workers.
    const lastN = scenario({
      ...oneRoomInput(50, ["audio", "video"]),
      rooms: [{ ...oneRoomInput(50, ["audio", "video"]).rooms[0]!, lastN: 5 }]
    })
    const r = simulateSync(lastN, rejectAll)
    const last = r.series[r.series.length - 1]!
    expect([last.lowerBoundAt100, last.demandOnlyAt100]).toEqual([3, 2])
    expect(r.lowerBounds.pipes.at100).toBe(100)
    // A teacher on audio and video, 39 students on audio: D = 4 + 40 × 0.32 + 0.7 + 40 × 39 ×
    // 0.043 + 39 × 0.108 = 88.792 %: one Worker at 100 %. At 60 %: P = 40 × 0.18 + 0.4 = 7.6,
    // T* = ceil(88.792 / 52.4) = 2, 41 producers piped once, 88.792 + 15.2 %: 2 Workers.
    const roles = scenario({
      ...oneRoomInput(40, ["audio"]),
      rooms: [
        { ...oneRoomInput(40, ["audio"]).rooms[0]!, roles: [{ count: 1, produces: ["audio", "video"] }] }
      ]
    })
    const c = simulateSync(roles, rejectAll)
    expect(c.lowerBounds).toMatchObject({
      workers: { atWatermark: 2, at100: 1 },
      pipes: { atWatermark: 41, at100: 0 }
    })
  })

  it("counts rooms infeasible at once and ever apart", () => {
    // Two 100-person rooms (infeasible at 60 % from 81 people on), the first one emptied (a
    // mean stay of 20 s) long before the second fills.
    const s = scenario({
      name: "two-infeasible",
      durationSeconds: 200,
      nodes: { count: 1, cpus: 4 },
      rooms: [
        {
          rooms: 1,
          size: { min: 100, max: 100 },
          publishers: "all",
          joinsPerSecond: 0,
          meanStaySeconds: 20,
          bursts: [{ atSeconds: 0, joins: 100, withinSeconds: 1 }]
        },
        {
          rooms: 1,
          size: { min: 100, max: 100 },
          publishers: "all",
          joinsPerSecond: 0,
          bursts: [{ atSeconds: 150, joins: 100, withinSeconds: 1 }]
        }
      ]
    })
    const r = simulateSync(s, rejectAll)
    expect(r.lowerBounds.infeasibleRooms.atWatermark).toEqual({ peak: 1, total: 2 })
    expect(r.lowerBounds.infeasibleRooms.at100).toEqual({ peak: 0, total: 0 })
  })
})

describe("Workers over the bound after its peak", () => {
  const point = (t: number, workersInUse: number, bound: number): SeriesPoint => ({
    t,
    workersInUse,
    workersRunning: workersInUse,
    nodesInUse: 1,
    workersOverloaded: 0,
    participants: 0,
    lowerBoundAtWatermark: bound,
    lowerBoundAt100: bound,
    demandOnlyAt100: bound,
    meanLoad: 0,
    maxLoad: 0,
    consumers: 0,
    pipes: 0
  })

  it("takes the largest ratio from the bound's first peak on, leaving out bounds under the floor", () => {
    const series = [
      point(1, 9, 1), // before the peak: left out
      point(2, 20, 20),
      point(3, 22, 20),
      point(4, 20, 10), // 2x on the way down
      point(5, 6, 3), // over the floor of max(2, 10 % of 20) = 2
      point(6, 9, 1) // under the floor: left out
    ]
    expect(afterPeak(series)).toEqual({
      maxRatio: 2,
      atSeconds: 4,
      peakBound: 20,
      peakAtSeconds: 2,
      floor: 2,
      samples: 4
    })
    expect(afterPeak([point(1, 3, 1)]).maxRatio).toBeNull()
  })
})

/** One 50-person all-video meeting on one Node of 8 CPUs, under `mesh` with `peers` per Router. */
const meshMeeting = (peers: number): Scenario =>
  scenario({ ...oneRoomInput(50, ["video"]), meshPeersPerRouter: peers, nodes: { count: 1, cpus: 8 } })

describe("the bound at 100 % is reached, and going under it overloads", () => {
  it("mesh spreading the 50-person all-video meeting 10 per Worker sits on the bound; 13 per Worker overloads", () => {
    // 10 per Worker: 5 Workers, each with 10 × 6.092 % of demand, 40 pipe-ins and 10 × 4
    // pipe-outs at 0.4 %: 60.92 + 32 = 92.92 %. 13 per Worker: 4 Workers (the demand-only
    // bound), 13 × 6.092 + (37 + 39) × 0.4 = 109.6 %.
    const at = simulateSync(meshMeeting(10), "mesh")
    expect(at.lowerBounds.workers.at100).toBe(5)
    expect([at.peakWorkers, at.overloadedWorkerSeconds, at.pipeConsumers]).toEqual([5, 0, 200])
    expect(at.cpu.max).toBeCloseTo(92.92, 9)
    const under = simulateSync(meshMeeting(13), "mesh")
    expect(under.peakWorkers).toBe(4)
    expect(under.peakWorkers).toBe(under.lowerBounds.demandOnly.at100)
    expect(under.cpu.max).toBeCloseTo(109.596, 9)
    expect(under.overloadedWorkerSeconds).toBeGreaterThan(0)
  })
})

/** A random small scenario: a few meetings and small webinars (some with last-N or roles) on 2 or 3 Nodes of a few CPUs. */
const randomScenario = (seed: number): Scenario => {
  const prng = new Prng(seed)
  const kinds: ReadonlyArray<ReadonlyArray<"audio" | "video">> = [["audio", "video"], ["video"], ["audio"]]
  const groups = Array.from({ length: prng.int(1, 2) }, () => {
    const min = prng.int(10, 50)
    return {
      rooms: prng.int(1, 3),
      size: { min, max: min + prng.int(0, 10) },
      publishers: prng.next() < 0.7 ? ("all" as const) : prng.int(1, 3),
      produces: kinds[prng.next() < 0.8 ? prng.int(0, 1) : 2]!,
      hint: prng.next() < 0.5 ? ("size" as const) : ("none" as const),
      joinsPerSecond: prng.int(3, 10),
      ...(prng.next() < 0.5 ? { meanStaySeconds: prng.int(15, 60) } : {}),
      // Last-N video, and a teacher on video among students on audio.
      ...(prng.next() < 0.3 ? { lastN: prng.int(2, 6) } : {}),
      ...(prng.next() < 0.2 ? { roles: [{ count: 1, produces: ["audio", "video"] as const }] } : {})
    }
  })
  return scenario({
    name: `random-${seed}`,
    durationSeconds: 60,
    seed,
    nodes: { count: prng.int(2, 3), cpus: prng.int(4, 8) },
    rooms: [groups[0]!, ...groups.slice(1)]
  })
}

describe("the bounds stay lower bounds on random small scenarios", () => {
  it("no policy holds everyone on fewer Workers than the bound of the moment without going over its capacity", () => {
    let checked = 0
    let pipeAware = 0
    for (let seed = 1; seed <= 8; seed++) {
      const s = randomScenario(seed)
      const watermark = s.policy.watermark
      for (const policy of policyNames) {
        const r = simulateSync(s, policy)
        // Only complete placements: everyone placed with all its media.
        if (r.rejected > 0 || r.rejectedConsumers > 0) continue
        // least-loaded gives subscribers a receive transport per producer's Router, outside
        // the pipe-aware bound's model: only the demand-only bound holds for it.
        const pinned = policy === "least-loaded"
        for (const p of r.series) {
          const where = `${policy}, seed ${seed}, at ${p.t} s`
          if (p.workersOverloaded === 0) {
            checked++
            expect(p.workersInUse, where).toBeGreaterThanOrEqual(
              pinned ? p.demandOnlyAt100 : p.lowerBoundAt100
            )
            if (!pinned && p.lowerBoundAt100 > p.demandOnlyAt100) pipeAware++
          }
          if (!pinned && p.maxLoad <= watermark)
            expect(p.workersInUse, where).toBeGreaterThanOrEqual(p.lowerBoundAtWatermark)
        }
      }
    }
    expect(checked).toBeGreaterThan(500)
    // Samples where the pipes make the bound higher than the demand alone, and it held.
    expect(pipeAware).toBeGreaterThan(0)
  }, 300_000)
})
