import { describe, expect, it } from "@effect/vitest"
import { Either, HashMap, HashSet } from "effect"
import { decideRelocations } from "../../src/core/relocation.js"
import { lookup, workerOfRouter } from "../../src/core/Snapshot.js"
import type { Engine } from "../../src/sim/Engine.js"
import { mafaldaPolicy } from "../../src/sim/policies/mafalda.js"
import { resultJson, summaryTable } from "../../src/sim/report.js"
import { type PolicyFactory, simulateSync } from "../../src/sim/run.js"
import { decodeScenario, type Scenario, type ScenarioInput } from "../../src/sim/Scenario.js"

const scenario = (input: ScenarioInput): Scenario => Either.getOrThrow(decodeScenario(input))

/** The mafalda policy with the core's relocation as its `relocate` step. */
const relocating: PolicyFactory = (cluster) => ({
  ...mafaldaPolicy(cluster),
  relocate: () => cluster.decide(() => decideRelocations(cluster.snapshot, cluster.options))
})

/** Meetings on three Nodes of 2 CPUs; the first Node drains at 60 s. */
const draining = scenario({
  name: "drain",
  durationSeconds: 180,
  nodes: { count: 3, cpus: 2 },
  nodeEvents: [{ atSeconds: 60, action: "drain", node: 0 }],
  rooms: [{ rooms: 6, size: { min: 3, max: 6 }, publishers: "all", joinsPerSecond: 1, meanStaySeconds: 600 }]
})

/**
 * Every placed participant consumes every producer of its room but its own, on its own
 * transport, and every producer is on its owner's transport.
 */
const consistent = (engine: Engine): void => {
  const s = engine.cluster.snapshot
  for (const group of engine.workload.groups) {
    for (const room of group.rooms) {
      for (const p of room.members) {
        if (!p.placed) continue
        const t = lookup(s.transports, p.transport!)
        expect(t).toBeDefined()
        for (const x of p.producers) expect(HashSet.has(t!.producers, x.id)).toBe(true)
        const consumed = new Set<string>()
        for (const c of t!.consumers) consumed.add(lookup(s.consumers, c)!.producer)
        for (const x of room.producers) if (x.owner !== p) expect(consumed.has(x.id)).toBe(true)
      }
    }
  }
}

describe("simulator: relocation", () => {
  it("a draining Node's transports move out as reconnects, counted by reason, and the media follow", () => {
    let engine: Engine | undefined
    const r = simulateSync(draining, relocating, {
      inspect: (e) => {
        engine = e
      }
    })
    expect(r.relocationsByReason.Drain).toBeGreaterThan(0)
    expect(r.relocations).toBe(
      r.relocationsByReason.Overload +
        r.relocationsByReason.Drain +
        r.relocationsByReason.WorkerLost +
        r.relocationsByReason.Consolidate
    )
    // Nothing is left on the drained Node, and every participant has its media.
    const s = engine!.cluster.snapshot
    for (const t of HashMap.values(s.transports)) {
      expect(workerOfRouter(s, t.router)?.node).not.toBe("n0")
    }
    consistent(engine!)
    expect(r.rejectedConsumers).toBe(0)
    // Counted in the JSON and the table.
    expect(resultJson(r)).toMatchObject({
      relocations: r.relocations,
      relocationsByReason: r.relocationsByReason
    })
    expect(summaryTable([r])).toContain("relocations")
  })

  it("without a relocate step nothing moves", () => {
    const still: PolicyFactory = (cluster) => {
      const { relocate: _relocate, ...policy } = mafaldaPolicy(cluster)
      return policy
    }
    const plain = simulateSync(draining, still)
    expect(plain.relocations).toBe(0)
    expect(plain.relocationsByReason).toEqual({ Overload: 0, Drain: 0, WorkerLost: 0, Consolidate: 0 })
    expect(simulateSync(draining, "least-loaded").relocations).toBe(0)
  })

  it("an overloaded Worker sheds transports; a run is deterministic", () => {
    // One Node: rooms that grow after their transports were placed fill Workers past 100 %.
    const s = scenario({
      name: "grow",
      durationSeconds: 240,
      nodes: { count: 1, cpus: 4 },
      reportIntervalSeconds: 2,
      rooms: [{ rooms: 8, size: { min: 20, max: 40 }, publishers: "all", joinsPerSecond: 3, fill: "random" }]
    })
    const a = simulateSync(s, relocating)
    const b = simulateSync(s, relocating)
    expect(a.relocationsByReason.Overload).toBeGreaterThan(0)
    expect(b.relocationsByReason).toEqual(a.relocationsByReason)
    expect(b.overloadEvents).toBe(a.overloadEvents)
  })
})
