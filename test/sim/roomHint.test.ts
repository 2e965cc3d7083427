import { describe, expect, it } from "@effect/vitest"
import { Either, HashMap } from "effect"
import type { Engine } from "../../src/sim/Engine.js"
import { simulateSync } from "../../src/sim/run.js"
import { decodeScenario } from "../../src/sim/Scenario.js"

/** Two groups of rooms, the first telling its rooms' sizes (`hint: "size"`), the second not. */
const scenario = Either.getOrThrow(
  decodeScenario({
    name: "hints",
    durationSeconds: 60,
    nodes: { count: 2, cpus: 4 },
    rooms: [
      { name: "told", rooms: 4, size: { min: 6, max: 9 }, publishers: 2, hint: "size", joinsPerSecond: 2 },
      { name: "silent", rooms: 4, size: { min: 6, max: 9 }, publishers: "all", joinsPerSecond: 2 }
    ]
  })
)

describe("scenario room hints", () => {
  it("defaults to no hint", () => {
    expect(scenario.rooms.map((g) => g.hint)).toEqual(["size", "none"])
  })

  it("the mafalda policy opens a room of a `size` group with its size and publishers as the Mafalda Router's hint", () => {
    let engine: Engine | undefined
    simulateSync(scenario, "mafalda", {
      inspect: (e) => {
        engine = e
      }
    })
    const [told, silent] = engine!.workload.groups
    const hintOf = (id: string) =>
      [...HashMap.values(engine!.cluster.snapshot.mafaldaRouters)].find((m) => m.id === id)?.hint
    const opened = told!.rooms.filter((r) => r.opened)
    expect(opened.length).toBeGreaterThan(0)
    for (const room of opened) {
      expect(hintOf(room.id)).toEqual({ participants: room.size, publishers: 2 })
    }
    const openedSilent = silent!.rooms.filter((r) => r.opened)
    expect(openedSilent.length).toBeGreaterThan(0)
    for (const room of openedSilent) expect(hintOf(room.id)).toBeNull()
  })

  it("other policies ignore it (the same figures with and without)", () => {
    const silent = Either.getOrThrow(
      decodeScenario({
        ...scenario,
        rooms: scenario.rooms.map(({ hint: _hint, ...g }) => g)
      })
    )
    const a = simulateSync(scenario, "least-loaded")
    const b = simulateSync(silent, "least-loaded")
    expect({ ...a, wallSeconds: 0, peakRssBytes: 0, meanDecisionMicros: 0, decisionsPerSecond: 0 }).toEqual({
      ...b,
      scenario: a.scenario,
      wallSeconds: 0,
      peakRssBytes: 0,
      meanDecisionMicros: 0,
      decisionsPerSecond: 0
    })
  })
})
