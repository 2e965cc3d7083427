import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, HashMap, TestClock } from "effect"
import { runSimulateCommand } from "../../src/cli/simulate.js"
import type { RouterId, SettingsKey, WorkerId } from "../../src/core/Ids.js"
import { lookup, workerOfRouter } from "../../src/core/Snapshot.js"
import type { Engine } from "../../src/sim/Engine.js"
import type { SimResult } from "../../src/sim/Metrics.js"
import { Prng } from "../../src/sim/Prng.js"
import { type PolicyName, policyNames } from "../../src/sim/policies/Policy.js"
import { type PolicyFactory, runWithClock, simulateSync } from "../../src/sim/run.js"
import { decodeScenario, InvalidScenario, type Scenario, type ScenarioInput } from "../../src/sim/Scenario.js"
import { VirtualClock } from "../../src/sim/VirtualClock.js"

const first = <A>(xs: ReadonlyArray<A> | undefined): A => {
  const x = xs?.[0]
  if (x === undefined) throw new Error("empty")
  return x
}

/**
 * The hand-computed figures below use flat costs, the same for both media kinds (a transport
 * 0.1 %, a producer 0.5 %, a consumer 0.2 %, a pipe end 0.2 %), unless a test gives its own.
 */
const handCosts = { transport: 0.1, producer: 0.5, consumer: 0.2, pipe: 0.2 }
const scenario = (input: ScenarioInput): Scenario =>
  Either.getOrThrow(
    decodeScenario({ ...input, policy: { ...input.policy, costs: { ...handCosts, ...input.policy?.costs } } })
  )

/** Everything but the wall-clock figures. */
const stable = (r: SimResult) => {
  const { wallSeconds: _w, peakRssBytes: _r, decisionsPerSecond: _d, meanDecisionMicros: _m, ...rest } = r
  return rest
}

const meetings = (overrides: Partial<ScenarioInput> = {}): Scenario =>
  scenario({
    name: "small-meetings",
    durationSeconds: 300,
    nodes: { count: 3, cpus: 4 },
    rooms: [
      {
        rooms: 12,
        size: { min: 3, max: 10 },
        publishers: "all",
        joinsPerSecond: 2,
        meanStaySeconds: 120
      }
    ],
    ...overrides
  })

/** 1 video producer and `viewers` viewers on one Node. */
const broadcast = (viewers: number, cpus: number, extra: Partial<ScenarioInput> = {}): Scenario =>
  scenario({
    name: "hand",
    durationSeconds: 120,
    nodes: { count: 1, cpus },
    rooms: [
      {
        rooms: 1,
        size: { min: viewers + 1, max: viewers + 1 },
        publishers: 1,
        produces: ["video"],
        joinsPerSecond: 20
      }
    ],
    ...extra
  })

const withEngine = (s: Scenario, policy: PolicyName): { result: SimResult; engine: Engine } => {
  let engine: Engine | undefined
  const result = simulateSync(s, policy, {
    inspect: (e) => {
      engine = e
    }
  })
  return { result, engine: engine! }
}

describe("Prng", () => {
  it("is deterministic for a seed and differs across seeds", () => {
    const a = new Prng(42)
    const b = new Prng(42)
    const c = new Prng(43)
    const xs = Array.from({ length: 5 }, () => a.next())
    expect(Array.from({ length: 5 }, () => b.next())).toEqual(xs)
    expect(Array.from({ length: 5 }, () => c.next())).not.toEqual(xs)
    for (const x of xs) expect(x >= 0 && x < 1).toBe(true)
  })
})

describe("determinism", () => {
  it("gives the same metrics for the same seed, for every policy", () => {
    const joins = new Set<number>()
    for (const policy of policyNames) {
      const a = simulateSync(meetings(), policy, { seed: 7 })
      const b = simulateSync(meetings(), policy, { seed: 7 })
      expect(stable(a)).toEqual(stable(b))
      joins.add(a.joins)
    }
    // The joins are the scenario's (seed 7), whatever the policy.
    expect([...joins]).toEqual([204])
  })

  it("gives other joins for another seed", () => {
    const a = simulateSync(meetings(), "mafalda", { seed: 1 })
    const b = simulateSync(meetings(), "mafalda", { seed: 2 })
    expect(stable(a)).not.toEqual(stable(b))
  })

  it.effect("reads time from the Clock service: a virtual clock, not the wall clock", () =>
    Effect.gen(function* () {
      const clock = new VirtualClock(0)
      const result = yield* Effect.withClock(runWithClock(broadcast(50, 2), "mafalda"), clock)
      expect(clock.unsafeCurrentTimeMillis()).toBe(120_000)
      expect(result.wallSeconds).toBeLessThan(60)
      // TestClock is untouched: simulated time does not leak into the fiber's clock.
      yield* TestClock.adjust("1 millis")
    })
  )
})

describe("hand-computed broadcast: 1 producer + 600 viewers, 1 Node of 4 CPUs, watermark 60", () => {
  // A viewer costs a transport (0.1 %) and a consumer (0.2 %): 0.3 %. A Worker takes a new
  // transport while its load plus what the transport brings at once (itself, a consumer of
  // the room's one producer, and its share of the room's producers: 0.3 % and a little) stays
  // at or under 60 %. The origin Worker carries the producer's transport and the producer
  // (0.6 %), then 197 viewers reach 59.7 % (one more would pass 60 %). Each next Worker gets
  // a pipe (0.2 %) then 199 viewers (0.2 + 59.7 = 59.9 %); the origin, under the 80 % pipe
  // limit and the shallowest carrier, feeds every pipe: Workers 1 to 3 take 197 + 199 + 199
  // viewers, the 4th Worker the last 5.
  const { result, engine } = withEngine(broadcast(600, 4), "mafalda")

  it("uses 4 Workers and 3 pipes, all consumers at depth 0 or 1", () => {
    expect(result.rejected).toBe(0)
    expect(result.peakWorkers).toBe(4)
    // Demand: 601 transports, the producer, 600 consumers: 60.1 + 0.5 + 120 = 180.6 %. Each
    // Worker holding viewers carries a pipe end of the producer (0.2 %): ceil(180.6 / 59.8) = 4
    // Workers at the watermark, ceil(180.6 / 99.8) = 2 at 100 %, and the producer piped to the 3
    // others (1); with the pipes' two ends, 181.8 % (181.0 %) in all, still 4 (2) Workers.
    expect(result.lowerBounds).toMatchObject({
      workers: { atWatermark: 4, at100: 2 },
      pipes: { atWatermark: 3, at100: 1 }
    })
    expect(result.workersForPlacedDemand).toBe(4)
    expect(result.pipeConsumers).toBe(3)
    expect(result.maxDepth).toBe(1)
    expect(result.depthHistogram).toEqual([197, 403])
    expect(result.peakConsumers).toBe(600)
    expect(result.overloadEvents).toBe(0)
  })

  it("places the viewers 197 / 199 / 199 / 5 and charges the origin for its pipes", () => {
    const s = engine.cluster.snapshot
    const perWorker = [...HashMap.values(s.workers)]
      .map((w) => ({
        id: w.id,
        consumers: engine.cluster.workerStat(w.id)!.consumers,
        load: engine.cluster.workerStat(w.id)!.load
      }))
      .sort((a, b) => (a.id < b.id ? -1 : 1))
    expect(perWorker.map((w) => w.consumers)).toEqual([197, 199, 199, 5])
    expect(perWorker[0]!.load).toBeCloseTo(0.6 + 197 * 0.3 + 3 * 0.2, 6)
    expect(perWorker[1]!.load).toBeCloseTo(0.2 + 199 * 0.3, 6)
  })

  it("rejects what does not fit: 700 viewers on 2 CPUs", () => {
    const r = simulateSync(broadcast(700, 2), "mafalda")
    expect(r.peakWorkers).toBe(2)
    expect(r.rejected).toBe(700 - 396)
  })
})

describe("every policy follows its own definition", () => {
  it("round-robin gives each new room the next Worker in turn", () => {
    const s = scenario({
      name: "rr",
      durationSeconds: 60,
      nodes: { count: 2, cpus: 3 },
      rooms: [{ rooms: 9, size: { min: 4, max: 4 }, publishers: "all", joinsPerSecond: 5, fill: "inOrder" }]
    })
    const { engine } = withEngine(s, "round-robin")
    const rooms = engine.workload.groups[0]!.rooms
    const workers = rooms.map((room) => {
      const m = lookup(engine.cluster.snapshot.mafaldaRouters, room.id)!
      expect([...m.routers]).toHaveLength(1)
      return workerOfRouter(engine.cluster.snapshot, first([...m.routers]))!
    })
    // Rooms open in order (inOrder fill), so room k sits on slot k mod 6: Node k mod 6 < 3 ? 0 : 1.
    const slots = engine.cluster.slots
    rooms.forEach((_, k) => {
      expect(workers[k]!.id).toBe(slots[k % slots.length]!.worker)
    })
    expect(new Set(workers.slice(0, 6).map((w) => w.id)).size).toBe(6)
  })

  it("mesh pipes every producer to every Router of its room", () => {
    const s = meetings({ meshPeersPerRouter: 3 })
    const { result, engine } = withEngine(s, "mesh")
    expect(result.pipeConsumers).toBeGreaterThan(0)
    let checked = 0
    for (const room of engine.workload.groups[0]!.rooms) {
      const m = lookup(engine.cluster.snapshot.mafaldaRouters, room.id)
      if (m === undefined) continue
      for (const producer of room.producers) {
        const tree = lookup(engine.cluster.snapshot.trees, producer.id)!
        for (const router of m.routers) {
          expect(HashMap.has(tree, router)).toBe(true)
          checked++
        }
        for (const hop of HashMap.values(tree)) expect(hop.depth).toBeLessThanOrEqual(1)
      }
    }
    expect(checked).toBeGreaterThan(20)
  })

  it("chain links Workers one after another: depth is the position in the chain", () => {
    const { result, engine } = withEngine(broadcast(1000, 8), "chain")
    const room = first(first(engine.workload.groups).rooms)
    const links = (room.data as { links: Array<RouterId> }).links
    // Link 0: 0.6 % + 198 viewers; links 1-4: a pipe in (0.2 %) + 200 viewers; the last 2 on link 5.
    expect(links.length).toBe(6)
    expect(result.maxDepth).toBe(links.length - 1)
    const producer = room.producers[0]!
    const tree = lookup(engine.cluster.snapshot.trees, producer.id)!
    links.forEach((router, position) => {
      const hop = lookup(tree, router)!
      expect(hop.depth).toBe(position)
      expect(hop.parent).toBe(position === 0 ? null : links[position - 1])
    })
    // One Router per Worker.
    const workers = new Set<WorkerId>(links.map((r) => lookup(engine.cluster.snapshot.routers, r)!.worker))
    expect(workers.size).toBe(links.length)
  })

  it("room-per-node keeps each room on one Node", () => {
    const s = meetings({ nodes: { count: 4, cpus: 2 } })
    const { engine } = withEngine(s, "room-per-node")
    let rooms = 0
    for (const room of engine.workload.groups[0]!.rooms) {
      const m = lookup(engine.cluster.snapshot.mafaldaRouters, room.id)
      if (m === undefined) continue
      const nodes = new Set([...m.routers].map((r) => workerOfRouter(engine.cluster.snapshot, r)!.node))
      expect(nodes.size).toBeLessThanOrEqual(1)
      rooms++
    }
    expect(rooms).toBeGreaterThan(3)
  })

  it("least-loaded pins subscribers to their producer's Router", () => {
    const { result, engine } = withEngine(meetings(), "least-loaded")
    expect(result.pipeConsumers).toBe(0)
    for (const consumer of HashMap.values(engine.cluster.snapshot.consumers)) {
      const producer = lookup(engine.cluster.snapshot.producers, consumer.producer)!
      expect(consumer.router).toBe(producer.origin)
    }
  })

  it("mafalda decides every transport and consumer through the core, and fills Workers to the watermark", () => {
    const r = simulateSync(broadcast(2000, 16), "mafalda")
    expect(r.rejected).toBe(0)
    expect(r.decisions).toBeGreaterThanOrEqual(r.joins + r.consumersCreated)
    expect(r.peakWorkers).toBe(r.lowerBounds.workers.atWatermark)
    // Every Worker stops at the watermark; the origin also feeds every pipe (0.2 % each).
    expect(r.cpu.max).toBeCloseTo(0.6 + 197 * 0.3 + r.pipeConsumers * 0.2, 1)
  })
})

describe("metrics on hand-computed scenarios", () => {
  /** A policy that rejects every join. */
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

  it("a melted Worker: exact overloaded Worker-seconds and share", () => {
    // Round-robin, 1 Node of 2 CPUs, load sampled every 2 s for 30 s. A room of 2 (one audio
    // producer: 0.2 + 0.5 + 0.2 = 0.9 %) joins in [0, 1) s on the first Worker; a room of 401
    // (one video producer: 40.1 + 0.5 + 80 = 120.6 %) joins in [10, 11) s on the second, which
    // stays over 100 % to the end. Samples at 2, 4, ..., 30 s each stand for the 2 s before:
    // the first Worker is in use for 15 samples (30 s), the second for 10 (20 s), all over 100 %.
    const s = scenario({
      name: "melt",
      durationSeconds: 30,
      nodes: { count: 1, cpus: 2 },
      rooms: [
        {
          rooms: 1,
          size: { min: 2, max: 2 },
          produces: ["audio"],
          joinsPerSecond: 0,
          bursts: [{ atSeconds: 0, joins: 2, withinSeconds: 1 }]
        },
        {
          rooms: 1,
          size: { min: 401, max: 401 },
          produces: ["video"],
          joinsPerSecond: 0,
          bursts: [{ atSeconds: 10, joins: 401, withinSeconds: 1 }]
        }
      ]
    })
    const r = simulateSync(s, "round-robin")
    expect(r.peakWorkers).toBe(2)
    expect(r.workerSeconds).toBe(50)
    expect(r.overloadedWorkerSeconds).toBe(20)
    expect(r.overloadedShare).toBeCloseTo(0.4, 12)
    expect(r.overloadEvents).toBe(1)
    expect(r.cpu.max).toBeCloseTo(120.6, 9)
    // Over the Worker-seconds in use: (30 × 0.9 + 20 × 120.6) / 50.
    expect(r.cpu.mean).toBeCloseTo((30 * 0.9 + 20 * 120.6) / 50, 9)
    // Demand 121.5 %: the big room (120.6 %) needs ceil(120.6 / (60 - 0.2)) = 3 Workers at the
    // watermark (ceil(120.6 / 99.8) = 2 at 100 %), so its producer 2 (1) pipes and 121.4 %
    // (121.0 %) with their ends; the small one fits on one: 122.3 % (121.9 %), 3 (2) Workers.
    expect(r.lowerBounds).toMatchObject({
      workers: { atWatermark: 3, at100: 2 },
      pipes: { atWatermark: 2, at100: 1 }
    })
    const last = r.series[r.series.length - 1]!
    expect([last.t, last.workersOverloaded, last.participants]).toEqual([30, 1, 403])
    expect(r.series).toHaveLength(15)
  })

  it("a policy that packs past the watermark beats the bound at the watermark, not the one at 100 %", () => {
    // 1 producer and 300 viewers: 30.1 + 0.5 + 60 = 90.6 %.
    const s = broadcast(300, 2)
    const packed = simulateSync(s, "round-robin")
    const mafalda = simulateSync(s, "mafalda")
    const bounds = { workers: { atWatermark: 2, at100: 1 }, pipes: { atWatermark: 1, at100: 0 } }
    expect(packed.lowerBounds).toMatchObject(bounds)
    expect(mafalda.lowerBounds).toMatchObject(bounds)
    expect(packed.peakWorkers).toBe(1)
    expect(packed.peakWorkers).toBeLessThan(bounds.workers.atWatermark)
    expect(packed.peakWorkers).toBeGreaterThanOrEqual(bounds.workers.at100)
    expect(packed.pipeConsumers).toBe(0)
    expect(packed.cpu.max).toBeCloseTo(90.6, 9)
    expect(packed.overloadedWorkerSeconds).toBe(0)
    expect(packed.overloadedShare).toBe(0)
    expect(mafalda.peakWorkers).toBe(2)
    expect(mafalda.pipeConsumers).toBe(1)
  })

  it("rejections leave the lower bounds unchanged", () => {
    const s = meetings()
    const none = simulateSync(s, rejectAll, { seed: 3 })
    const all = simulateSync(s, "round-robin", { seed: 3 })
    expect(none.rejected).toBe(none.joins)
    expect(none.consumersCreated).toBe(0)
    expect(none.peakWorkers).toBe(0)
    expect(none.workersForPlacedDemand).toBe(0)
    expect(all.rejected).toBe(0)
    expect(none.lowerBounds).toEqual(all.lowerBounds)
    expect(none.lowerBounds.workers.atWatermark).toBeGreaterThan(1)
    // The broadcast of the previous case, every viewer turned away.
    const broadcastRejected = simulateSync(broadcast(300, 2), rejectAll)
    expect(broadcastRejected.rejected).toBe(301)
    expect(broadcastRejected.lowerBounds).toMatchObject({
      workers: { atWatermark: 2, at100: 1 },
      pipes: { atWatermark: 1, at100: 0 }
    })
  })

  it("membership, demand and lower bounds over time are the same for every policy, failures and rejections included", () => {
    // Two Nodes of one CPU: mafalda and room-per-node reject joins (publishers among them), the
    // others do not; a Node fails, a Worker fails, clients reconnect.
    const s = scenario({
      name: "same-demand",
      durationSeconds: 120,
      nodes: { count: 2, cpus: 1 },
      nodeEvents: [
        { atSeconds: 50, action: "fail" },
        { atSeconds: 60, action: "add" }
      ],
      workerFailures: [{ atSeconds: 90, target: "random" }],
      rooms: [
        { rooms: 6, size: { min: 3, max: 12 }, publishers: "all", joinsPerSecond: 1, meanStaySeconds: 40 },
        { rooms: 1, size: { min: 40, max: 80 }, publishers: 2, joinsPerSecond: 1, meanStaySeconds: 60 }
      ]
    })
    const timeline = (r: SimResult) =>
      r.series.map((p) => [p.t, p.participants, p.lowerBoundAtWatermark, p.lowerBoundAt100])
    const runs = [...policyNames.map((p) => simulateSync(s, p)), simulateSync(s, rejectAll)]
    const [reference] = runs
    const named = runs.slice(0, policyNames.length)
    expect(named.some((r) => r.rejected > 0)).toBe(true)
    expect(named.some((r) => r.rejected === 0)).toBe(true)
    expect(named.some((r) => r.reconnects > 0)).toBe(true)
    for (const r of runs) {
      expect(r.lowerBounds).toEqual(reference!.lowerBounds)
      expect(timeline(r)).toEqual(timeline(reference!))
      expect(r.joins - r.reconnects).toBe(reference!.joins - reference!.reconnects)
    }
  })
})

describe("failures", () => {
  it("clients of a failed Node reconnect elsewhere", () => {
    const s = scenario({
      name: "fail",
      durationSeconds: 120,
      nodes: { count: 3, cpus: 2 },
      nodeEvents: [{ atSeconds: 60, action: "fail" }],
      workerFailures: [{ atSeconds: 90, target: "random" }],
      rooms: [{ rooms: 4, size: { min: 30, max: 30 }, publishers: 1, joinsPerSecond: 5 }]
    })
    for (const policy of policyNames) {
      const r = simulateSync(s, policy)
      expect(r.reconnects).toBeGreaterThan(0)
      // Every client joins once (4 rooms of 30), then once more per reconnect.
      expect(r.joins).toBe(4 * 30 + r.reconnects)
    }
  })
})

describe("scenario validation", () => {
  it("names the bad field", () => {
    const bad = decodeScenario({
      name: "x",
      durationSeconds: 10,
      nodes: { count: 1, cpus: 0 },
      policy: { watermark: 150 },
      rooms: [{ rooms: 1, size: { min: 5, max: 2 }, joinsPerSecond: 1, colour: "red" }]
    })
    expect(Either.isLeft(bad)).toBe(true)
    const error = Either.getLeft(bad).pipe((o) => (o._tag === "Some" ? o.value : undefined))!
    expect(error).toBeInstanceOf(InvalidScenario)
    expect(error._tag).toBe("InvalidScenario")
    const paths = error.issues.map((i) => i.path)
    expect(paths).toContain("nodes.cpus")
    expect(paths).toContain("policy.watermark")
    expect(paths).toContain("rooms.0.size.max")
    expect(paths).toContain("rooms.0.colour")
    expect(error.message).toContain("rooms.0.size.max")
  })

  it("requires the scenario's fields", () => {
    const bad = decodeScenario({ name: "x" })
    const paths = Either.isLeft(bad) ? bad.left.issues.map((i) => i.path) : []
    expect(paths).toEqual(expect.arrayContaining(["durationSeconds", "nodes", "rooms"]))
  })
})

describe("mafalda simulate", () => {
  it("prints one JSON object per policy and writes one self-contained HTML report", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mafalda-sim-"))
    const file = path.join(dir, "scenario.json")
    const html = path.join(dir, "report.html")
    fs.writeFileSync(
      file,
      JSON.stringify({
        name: "file",
        durationSeconds: 60,
        nodes: { count: 2, cpus: 2 },
        rooms: [{ rooms: 2, size: { min: 150, max: 150 }, publishers: 1, joinsPerSecond: 10 }]
      })
    )
    const lines: Array<string> = []
    const log = console.log
    console.log = (s: string) => lines.push(s)
    let code: number
    try {
      code = await runSimulateCommand([
        "--scenario-file",
        file,
        "--policy",
        "mafalda,mesh,chain",
        "--json",
        "--seed",
        "3",
        "--html",
        html
      ])
    } finally {
      console.log = log
    }
    expect(code).toBe(0)
    const objects = lines.map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(objects.map((o) => o.policy)).toEqual(["mafalda", "mesh", "chain"])
    for (const o of objects) {
      for (const key of [
        "policy",
        "peakWorkers",
        "overloadedWorkerSeconds",
        "overloadedShare",
        "overloadEvents",
        "pipeConsumers",
        "maxDepth",
        "rejected",
        "rejectedConsumers",
        "wallSeconds"
      ])
        expect(o).toHaveProperty(key)
      expect(o).toHaveProperty("cpu.p95")
      expect(o).toHaveProperty("lowerBounds.workers.atWatermark")
      expect(o).toHaveProperty("lowerBounds.pipes.at100")
      expect(o.lowerBounds).toEqual(objects[0]!.lowerBounds)
      expect(o.seed).toBe(3)
    }
    const page = fs.readFileSync(html, "utf8")
    expect(page).toContain("<svg")
    expect(page).not.toMatch(/<script|https?:\/\//)
  })

  it("prints a table that leads with the overload in time, under the shared lower bounds", async () => {
    const lines: Array<string> = []
    const log = console.log
    console.log = (s: string) => lines.push(s)
    try {
      expect(await runSimulateCommand(["--scenario", "burst", "--policy", "mafalda,round-robin"])).toBe(0)
    } finally {
      console.log = log
    }
    const text = lines.join("\n").split("\n")
    const bounds = text.findIndex((l) => l.startsWith("lower bounds"))
    expect(bounds).toBeGreaterThan(0)
    const head = text[bounds + 1]!.split(/ {2,}/)
    expect(head.slice(0, 3)).toEqual(["policy", "overloaded Worker-s", "over 100 %"])
    expect(head).toEqual(expect.arrayContaining(["overload events", "rejected joins", "rejected consumers"]))
    expect(head.indexOf("overload events")).toBeGreaterThan(2)
    expect(text[bounds + 3]).toMatch(/^mafalda /)
    expect(text[bounds + 4]).toMatch(/^round-robin /)
  })

  it("fails with a usage error on a bad scenario file", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mafalda-sim-"))
    const file = path.join(dir, "bad.json")
    fs.writeFileSync(file, JSON.stringify({ name: "x", durationSeconds: -1 }))
    const errors: Array<string> = []
    const err = console.error
    console.error = (s: string) => errors.push(s)
    try {
      expect(await runSimulateCommand(["--scenario-file", file])).toBe(2)
    } finally {
      console.error = err
    }
    expect(errors.join("\n")).toContain("durationSeconds")
  })
})
