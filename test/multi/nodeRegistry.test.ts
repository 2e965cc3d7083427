/**
 * The `NodeRegistry` (the cluster-level Tracker): the same behaviour from the in-memory layer
 * (on `TestClock`) and the Redis layer (against the real Redis, a prefix per test, no key
 * left); picks and their reservations; leases, eviction and its publication; concurrent
 * picks from two processes' connections never over-reserve; the Lua pick chooses exactly as
 * `pickNode`.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, FastCheck as fc, Layer, Option, Queue, type Scope, TestClock } from "effect"
import { type PickCandidate, pickNode } from "../../src/cluster/pickNode.js"
import { NodeId, SettingsKey, WorkerId } from "../../src/core/Ids.js"
import * as RegistryMemory from "../../src/layers/NodeRegistry.js"
import * as RegistryRedis from "../../src/layers/NodeRegistryRedis.js"
import * as RedisConnection from "../../src/layers/RedisConnection.js"
import {
  type NodeRecord,
  NodeRegistry,
  type NodeRegistryShape,
  type PickRequest
} from "../../src/services/NodeRegistry.js"
import { connectionLayer, redisAvailable, redisUrl, testPrefix } from "./redisSupport.js"

const S = SettingsKey.make("w-settings")
const T = SettingsKey.make("w-other")
const n = (id: string) => NodeId.make(id)
const w = (id: string) => WorkerId.make(id)

const register = (registry: NodeRegistryShape, id: string, cpus = 2, maxWorkerProcesses?: number) =>
  registry.register({
    node: n(id),
    address: `127.0.0.1:${1000 + id.length}`,
    announcedIp: "127.0.0.1",
    cpus,
    ...(maxWorkerProcesses === undefined ? {} : { maxWorkerProcesses })
  })

const pickId = (
  registry: NodeRegistryShape,
  request: Omit<PickRequest, "workerSettings"> & { settings?: string }
) =>
  registry
    .pick({ workerSettings: SettingsKey.make(request.settings ?? S), ...request })
    .pipe(Effect.map(Option.map((p) => `${p.node}/${p.worker ?? "new"}`)), Effect.map(Option.getOrNull))

/** The behaviour both layers share; `advance` lets time pass (TestClock or real). */
const conformance = (
  name: string,
  provide: <A, E>(
    name: string,
    effect: Effect.Effect<A, E, NodeRegistry | Scope.Scope>
  ) => Effect.Effect<A, unknown, Scope.Scope>,
  advance: (millis: number) => Effect.Effect<void>,
  test: (name: string, self: () => Effect.Effect<unknown, unknown, Scope.Scope>) => void
) => {
  describe(name, () => {
    test("registers, reports loads, refuses reports of unknown Nodes", () =>
      provide(
        "register",
        Effect.gen(function* () {
          const registry = yield* NodeRegistry
          yield* register(registry, "a", 4)
          const [record] = yield* registry.nodes
          expect(record).toMatchObject({ node: "a", cpus: 4, state: "up", workers: [] })
          expect(yield* registry.report(n("a"), [{ worker: w("a1"), settings: S, load: 12.5 }])).toBe(true)
          expect((yield* registry.node(n("a"))).pipe(Option.map((r) => r.workers))).toEqual(
            Option.some([{ worker: "a1", settings: S, load: 12.5 }])
          )
          expect(yield* registry.report(n("nobody"), [])).toBe(false)
          expect(yield* registry.setState(n("nobody"), "draining")).toBe(false)
          yield* registry.deregister(n("a"))
          expect(yield* registry.nodes).toEqual([])
        })
      ))

    test("picks the busiest Worker under the watermark and reserves on it until the next report", () =>
      provide(
        "reserve",
        Effect.gen(function* () {
          const registry = yield* NodeRegistry
          yield* register(registry, "a")
          yield* register(registry, "b")
          yield* registry.report(n("a"), [
            { worker: w("a1"), settings: S, load: 50 },
            { worker: w("a2"), settings: T, load: 10 }
          ])
          yield* registry.report(n("b"), [
            { worker: w("b1"), settings: S, load: 20 },
            { worker: w("b2"), settings: S, load: 40 }
          ])
          const request = { cost: 4, watermark: 60 }
          // a1: 50 → 54 → 58, then full (58 + 4 ≥ 60); b2: 40 → 44 → 48 → 52 → 56, then b1.
          const picks: Array<string | null> = []
          for (let i = 0; i < 7; i++) picks.push(yield* pickId(registry, request))
          expect(picks).toEqual(["a/a1", "a/a1", "b/b2", "b/b2", "b/b2", "b/b2", "b/b1"])
          // A report replaces the reservations with measured loads.
          yield* registry.report(n("a"), [{ worker: w("a1"), settings: S, load: 50 }])
          expect(yield* pickId(registry, request)).toBe("a/a1")
          expect(yield* pickId(registry, { ...request, exclude: [n("a")] })).toBe("b/b1")
        })
      ))

    test("starts Workers on Nodes with an idle CPU, the fullest first, and counts them until reported", () =>
      provide(
        "start",
        Effect.gen(function* () {
          const registry = yield* NodeRegistry
          yield* register(registry, "a", 2)
          yield* register(registry, "b", 3)
          yield* registry.report(n("a"), [{ worker: w("a1"), settings: T, load: 10 }])
          // No Worker with S anywhere: a (1 of 2 CPUs used) is fuller than b (0 of 3).
          const request = { cost: 30, watermark: 60 }
          expect(yield* pickId(registry, request)).toBe("a/new")
          // The pending Worker on a takes the next one (30 + 30 ≥ 60 does not fit: a is full).
          expect(yield* pickId(registry, request)).toBe("b/new")
          expect(yield* pickId(registry, { cost: 20, watermark: 60 })).toBe("a/new")
          // b has 1 pending of 3 CPUs; a has no idle CPU left.
          expect(yield* pickId(registry, request)).toBe("b/new")
          expect(yield* pickId(registry, request)).toBe("b/new")
          // b runs 3 of 3 with these settings; a may still start a second one beside its T.
          expect(yield* pickId(registry, request)).toBe("a/new")
          expect(yield* pickId(registry, request)).toBeNull()
          // At most one Worker per Node with these settings.
          yield* registry.report(n("a"), [])
          yield* registry.report(n("b"), [{ worker: w("b1"), settings: S, load: 59 }])
          expect(yield* pickId(registry, { ...request, maxWorkersPerNode: 1 })).toBe("a/new")
          expect(yield* pickId(registry, { ...request, maxWorkersPerNode: 1 })).toBeNull()
        })
      ))

    test("keeps a Node's cap on Worker processes in its record and starts none past it", () =>
      provide(
        "cap",
        Effect.gen(function* () {
          const registry = yield* NodeRegistry
          // a: 2 CPUs, at most 1 Worker process, running one with T; b: no cap.
          yield* register(registry, "a", 2, 1)
          yield* register(registry, "b", 4)
          const record = yield* registry.node(n("a"))
          expect(Option.map(record, (r) => r.maxWorkerProcesses)).toEqual(Option.some(1))
          expect(Option.map(yield* registry.node(n("b")), (r) => r.maxWorkerProcesses)).toEqual(
            Option.some(undefined)
          )
          yield* registry.report(n("a"), [{ worker: w("a1"), settings: T, load: 10 }])
          // a is fuller (1 of 2 CPUs) but at its cap: b starts it.
          expect(yield* pickId(registry, { cost: 30, watermark: 60 })).toBe("b/new")
          // Without a Worker, a may start one, and then no second (a pending one counts).
          yield* registry.report(n("a"), [])
          expect(yield* pickId(registry, { cost: 30, watermark: 60, exclude: [n("b")] })).toBe("a/new")
          expect(yield* pickId(registry, { cost: 30, watermark: 60, exclude: [n("b")] })).toBeNull()
        })
      ))

    test("never picks a draining Node, and evicts a Node whose lease runs out", () =>
      provide(
        "lease",
        Effect.gen(function* () {
          const registry = yield* NodeRegistry
          const gone = yield* registry.subscribe
          yield* register(registry, "a")
          yield* register(registry, "b")
          expect(yield* registry.setState(n("a"), "draining")).toBe(true)
          expect((yield* registry.node(n("a"))).pipe(Option.map((r) => r.state))).toEqual(
            Option.some("draining")
          )
          expect(yield* pickId(registry, { cost: 1, watermark: 60, exclude: [n("b")] })).toBeNull()
          // b keeps reporting, a does not.
          const step = Math.ceil(lease.leaseMillis / 3)
          for (let i = 0; i < 4; i++) {
            yield* advance(step)
            expect(yield* registry.report(n("b"), [])).toBe(true)
          }
          yield* advance(step)
          yield* registry.reap
          const evicted = yield* Queue.take(gone)
          expect(evicted).toMatchObject({ node: "a", reason: "expired" })
          expect((yield* registry.nodes).map((r) => r.node)).toEqual(["b"])
          expect(yield* registry.report(n("a"), [])).toBe(false)
          yield* registry.deregister(n("b"))
          expect(yield* Queue.take(gone)).toMatchObject({ node: "b", reason: "left" })
        })
      ))
  })
}

const lease = { leaseMillis: 900, reapMillis: 50 }

conformance(
  "NodeRegistry in memory",
  (_name, effect) => Effect.provide(effect, RegistryMemory.layerMemory(lease)),
  (millis) => TestClock.adjust(millis),
  (name, self) => it.scoped(name, self)
)

const redisLayer = (name: string, options = lease) =>
  RegistryRedis.layerRedis(options).pipe(Layer.provide(connectionLayer(testPrefix(name))))

describe.skipIf(!redisAvailable)("Redis", () => {
  conformance(
    "NodeRegistry on Redis",
    (name, effect) => Effect.provide(effect, redisLayer(name)),
    (millis) => Effect.sleep(millis),
    (name, self) => it.scopedLive(name, self)
  )

  it.scopedLive("concurrent picks from two connections never exceed the room there is", () =>
    Effect.gen(function* () {
      const prefix = testPrefix("concurrent")
      const connection = connectionLayer(prefix)
      const one = yield* Layer.build(RegistryRedis.layerRedis(lease).pipe(Layer.provide(connection)))
      const two = yield* Layer.build(
        RegistryRedis.layerRedis(lease).pipe(Layer.provide(RedisConnection.layer({ url: redisUrl, prefix })))
      )
      const a = one.unsafeMap.get(NodeRegistry.key) as NodeRegistryShape
      const b = two.unsafeMap.get(NodeRegistry.key) as NodeRegistryShape
      yield* register(a, "x", 1)
      yield* a.report(n("x"), [{ worker: w("x1"), settings: S, load: 20 }])
      // Room for 10 picks of 4 % (20 → 60) on x1; the only CPU is taken.
      const picks = yield* Effect.all(
        Array.from({ length: 40 }, (_, i) =>
          (i % 2 === 0 ? a : b).pick({ workerSettings: S, cost: 4, watermark: 60.5 })
        ),
        { concurrency: "unbounded" }
      )
      expect(picks.filter(Option.isSome)).toHaveLength(10)
      yield* a.deregister(n("x"))
    })
  )

  it.scopedLive("the Lua pick chooses exactly as pickNode, pick after pick", () =>
    Effect.gen(function* () {
      const registry = yield* NodeRegistry
      const worker = fc.record({
        settings: fc.constantFrom(S, T),
        load: fc.integer({ min: 0, max: 80 })
      })
      const node = fc.record({
        cpus: fc.integer({ min: 1, max: 4 }),
        cap: fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }),
        workers: fc.array(worker, { maxLength: 4 }),
        draining: fc.boolean()
      })
      const scenario = fc.record({
        nodes: fc.array(node, { minLength: 1, maxLength: 5 }),
        picks: fc.array(
          fc.record({
            settings: fc.constantFrom(S, T),
            cost: fc.integer({ min: 0, max: 30 }),
            max: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
            exclude: fc.option(fc.integer({ min: 0, max: 4 }), { nil: undefined })
          }),
          { minLength: 1, maxLength: 12 }
        )
      })
      let compared = 0
      for (const sample of fc.sample(scenario, { numRuns: 60, seed: 42 })) {
        const ids = sample.nodes.map((_, i) => n(`n${i}`))
        const model: Array<{ record: NodeRecord; reservations: Map<string, number> }> = []
        for (const [i, spec] of sample.nodes.entries()) {
          const id = ids[i]!
          yield* register(registry, id, spec.cpus, spec.cap)
          const workers = spec.workers.map((x, j) => ({
            worker: w(`${id}-w${j}`),
            settings: x.settings,
            load: x.load
          }))
          yield* registry.report(id, workers)
          if (spec.draining) yield* registry.setState(id, "draining")
          const record = Option.getOrThrow(yield* registry.node(id))
          model.push({ record, reservations: new Map() })
        }
        for (const p of sample.picks) {
          const request: PickRequest = {
            workerSettings: p.settings,
            cost: p.cost,
            watermark: 60,
            ...(p.max === undefined ? {} : { maxWorkersPerNode: p.max }),
            exclude: p.exclude === undefined ? [] : [n(`n${p.exclude}`)]
          }
          const expected = pickNode(model as ReadonlyArray<PickCandidate>, request)
          if (expected !== undefined) {
            const m = model.find((c) => c.record.node === expected.picked.node)!
            m.reservations.set(expected.field, (m.reservations.get(expected.field) ?? 0) + expected.amount)
          }
          const actual = yield* registry.pick(request)
          expect(Option.getOrUndefined(actual)).toEqual(expected?.picked)
          compared++
        }
        for (const id of ids) yield* registry.deregister(id)
      }
      expect(compared).toBeGreaterThan(100)
    }).pipe(Effect.provide(redisLayer("equivalence", { leaseMillis: 60_000, reapMillis: 1000 })))
  )
})
