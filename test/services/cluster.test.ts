/**
 * The shell (Placement, SnapshotStore, ScaleDown, LocalNode) over simulated Workers: Tracker loads from the cost model and `TestClock`,
 * serialised placements and pipes, Worker death, scale-down.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Either, Fiber, HashMap, Layer, Option, TestClock } from "effect"
import { MafaldaRouterId, ProducerId, type RouterId, TransportId } from "../../src/core/Ids.js"
import { makePolicyOptions } from "../../src/core/PolicyOptions.js"
import * as ClusterLayer from "../../src/layers/Cluster.js"
import * as TrackerLayer from "../../src/layers/TrackerService.js"
import { layerSimulated, SimulatedWorkers } from "../../src/layers/WorkerService.js"
import { Placement } from "../../src/services/Placement.js"
import { routerSettingsKey, workerSettingsKey } from "../../src/services/SettingsKeys.js"
import { SnapshotStore } from "../../src/services/SnapshotStore.js"
import { TrackerService } from "../../src/services/TrackerService.js"
import { WorkerService } from "../../src/services/WorkerService.js"
import { unitCostPolicy } from "../support/unitCostPolicy.js"

const policy = Either.getOrThrow(
  makePolicyOptions({ watermark: 50, maxWorkersPerNode: 3, idleGraceMillis: 1000, warmWorkers: 0 })
)
const workers = layerSimulated({ cpus: 3, costs: policy.costs })
const tracker = TrackerLayer.layerMemory({ interval: "1 second" })
const live = ClusterLayer.layer({ policy, scaleDownInterval: "250 millis" }).pipe(
  Layer.provideMerge(tracker),
  Layer.provideMerge(workers)
)

let transportCounter = 0
const newTransport = () => Effect.sync(() => ({ id: `t-${++transportCounter}` }))

const setup = Effect.gen(function* () {
  const placement = yield* Placement
  const store = yield* SnapshotStore
  const m = MafaldaRouterId.make("m1")
  yield* placement.createMafaldaRouter(m, {}, { mediaCodecs: [] })
  return { placement, store, m }
})

describe("settings keys", () => {
  it("ignore key order, undefined fields and appData", () => {
    expect(workerSettingsKey({ rtcMinPort: 1, rtcMaxPort: 2 })).toBe(
      workerSettingsKey({ rtcMaxPort: 2, rtcMinPort: 1, logLevel: undefined, appData: { x: 1 } } as never)
    )
    expect(workerSettingsKey({ rtcMinPort: 1 })).not.toBe(workerSettingsKey({ rtcMinPort: 2 }))
    expect(routerSettingsKey({})).toBe(routerSettingsKey({ mediaCodecs: [] }))
  })
})

describe("WorkerService.startRefusal (simulated Workers)", () => {
  it.scoped("is what startWorker would fail with: a CPU per set of settings, and the cap on processes", () =>
    Effect.gen(function* () {
      const ws = yield* WorkerService
      const a = workerSettingsKey({})
      const b = workerSettingsKey({ logLevel: "warn" })
      expect(Option.isNone(yield* ws.startRefusal(a))).toBe(true)
      yield* ws.startWorker({})
      // One per CPU with these settings (2 CPUs): one more of them, or one of others, may start.
      expect(Option.isNone(yield* ws.startRefusal(a))).toBe(true)
      yield* ws.startWorker({})
      const perCpu = yield* ws.startRefusal(a)
      const refused = yield* Effect.flip(ws.startWorker({}))
      expect(Option.getOrThrow(perCpu)).toEqual(refused)
      expect(refused.message).toMatch(/one per CPU/)
      // Three processes at most: one of other settings, then none at all.
      expect(Option.isNone(yield* ws.startRefusal(b))).toBe(true)
      yield* ws.startWorker({ logLevel: "warn" })
      const capped = yield* ws.startRefusal(b)
      expect(Option.getOrThrow(capped).message).toMatch(/3 Worker processes already run/)
      expect(yield* Effect.flip(ws.startWorker({ logLevel: "warn" }))).toEqual(Option.getOrThrow(capped))
    }).pipe(Effect.provide(layerSimulated({ cpus: 2, maxProcesses: 3 })))
  )
})

describe("TrackerService over simulated Workers", () => {
  it.scoped("turns CPU time deltas into load % on the Clock", () =>
    Effect.gen(function* () {
      const ws = yield* WorkerService
      const sim = yield* SimulatedWorkers
      const trk = yield* TrackerService
      const w = yield* ws.startWorker({})
      yield* sim.charge(w.id, 30)
      yield* TestClock.adjust("1 second")
      yield* TestClock.adjust("1 second")
      const latest = yield* trk.latest
      expect(latest.get(w.id)?.load).toBeCloseTo(30, 5)
      yield* sim.place(w.id, "consumer", 100) // 100 consumers at the default (kind-less) cost
      yield* TestClock.adjust("1 second")
      expect((yield* trk.latest).get(w.id)?.load).toBeCloseTo(30 + 100 * policy.costs.consumer, 5)
    }).pipe(Effect.provide(tracker.pipe(Layer.provideMerge(workers))))
  )
})

describe("The cluster services over simulated Workers", () => {
  it.scoped("20 simultaneous transports start one Worker, not twenty", () =>
    Effect.gen(function* () {
      const { placement, store, m } = yield* setup
      const placed = yield* Effect.all(
        Array.from({ length: 20 }, () => placement.placeTransport(m, "webrtc", newTransport, (t) => t.id)),
        { concurrency: "unbounded" }
      )
      expect(new Set(placed.map((p) => p.worker)).size).toBe(1)
      expect(placed.filter((p) => p.added)).toHaveLength(1)
      expect(HashMap.size((yield* store.snapshot).workers)).toBe(1)
    }).pipe(Effect.provide(live))
  )

  it.scoped("50 simultaneous consumers of one producer on another Router make one pipe", () =>
    Effect.gen(function* () {
      const { placement, store, m } = yield* setup
      const sim = yield* SimulatedWorkers
      const origin = yield* placement.placeTransport(m, "plain", newTransport, (t) => t.id)
      const producer = ProducerId.make("p1")
      yield* store.apply({
        _tag: "ProducerCreated",
        producer,
        kind: "audio",
        transport: TransportId.make(origin.transport.id),
        at: 0
      })
      // The origin Worker is full: the next transport goes to a new Worker.
      yield* sim.charge(origin.worker, 80)
      yield* TestClock.adjust("2 seconds")
      const other = yield* placement.placeTransport(m, "plain", newTransport, (t) => t.id)
      expect(other.worker).not.toBe(origin.worker)
      const pipes = yield* Effect.all(
        Array.from({ length: 50 }, () => placement.ensureProducer(producer, other.router)),
        { concurrency: "unbounded" }
      )
      expect(pipes.flat()).toHaveLength(1)
      const tree = HashMap.unsafeGet((yield* store.snapshot).trees, producer)
      expect(HashMap.size(tree)).toBe(2)
      expect(store.receives(producer, other.router as RouterId)).toBe(true)
    }).pipe(Effect.provide(live))
  )

  it.scoped("drops a killed Worker and starts a replacement when needed", () =>
    Effect.gen(function* () {
      const { placement, store, m } = yield* setup
      const sim = yield* SimulatedWorkers
      const first = yield* placement.placeTransport(m, "webrtc", newTransport, (t) => t.id)
      yield* sim.kill(first.worker)
      // The notice is handled by a fiber: wait until the snapshot no longer has the Worker.
      yield* Effect.iterate(true, {
        while: (present) => present,
        body: () =>
          Effect.zipRight(
            Effect.yieldNow(),
            Effect.map(store.snapshot, (s) => HashMap.has(s.workers, first.worker))
          )
      })
      const next = yield* placement.placeTransport(m, "webrtc", newTransport, (t) => t.id)
      expect(next.worker).not.toBe(first.worker)
      expect(next.added).toBe(true)
    }).pipe(Effect.provide(live))
  )

  it.scoped("closes idle Routers and Workers after the grace period", () =>
    Effect.gen(function* () {
      const { placement, store, m } = yield* setup
      const ws = yield* WorkerService
      const placed = yield* placement.placeTransport(m, "webrtc", newTransport, (t) => t.id)
      yield* store.apply({
        _tag: "TransportClosed",
        transport: TransportId.make(placed.transport.id),
        at: 0
      })
      yield* TestClock.adjust("1500 millis")
      expect(HashMap.has((yield* store.snapshot).routers, placed.router)).toBe(false)
      yield* TestClock.adjust("1500 millis")
      expect(HashMap.size((yield* store.snapshot).workers)).toBe(0)
      expect(yield* ws.workers).toHaveLength(0)
    }).pipe(Effect.provide(live))
  )
})

describe("pipeToMafaldaRouter and a transport placed at the same time", () => {
  // One CPU: both need a Router of m2's settings on its one Worker.
  const onePolicy = unitCostPolicy(100_000)
  const oneCpu = ClusterLayer.layer({ policy: onePolicy, scaleDownInterval: "1 day" }).pipe(
    Layer.provideMerge(TrackerLayer.layerMemory({ interval: "1 day" })),
    Layer.provideMerge(layerSimulated({ cpus: 1, costs: onePolicy.costs }))
  )
  const opus = { kind: "audio", mimeType: "audio/opus", clockRate: 48000, channels: 2 } as const

  it.scoped("share the Router the first one made: the pipe is decided under the placement lock", () =>
    Effect.gen(function* () {
      const placement = yield* Placement
      const store = yield* SnapshotStore
      const m1 = MafaldaRouterId.make("m1")
      const m2 = MafaldaRouterId.make("m2")
      yield* placement.createMafaldaRouter(m1, {}, { mediaCodecs: [] })
      // Other Router settings: m2 cannot share m1's Router.
      yield* placement.createMafaldaRouter(m2, {}, { mediaCodecs: [opus] })
      yield* placement.placeTransport(
        m1,
        "webrtc",
        () => Effect.succeed({ id: "t0" }),
        (t) => t.id
      )
      yield* store.apply({
        _tag: "ProducerCreated",
        producer: ProducerId.make("p0"),
        kind: "audio",
        transport: TransportId.make("t0"),
        at: 1
      })
      // A transport of m1 holds the placement lock until `gate` opens; a transport of m2 and
      // a pipe of p0 into m2 wait behind it, the transport first.
      const gate = yield* Deferred.make<void>()
      const held = yield* Effect.fork(
        placement.placeTransport(
          m1,
          "webrtc",
          () => Effect.as(Deferred.await(gate), { id: "t1" }),
          (t) => t.id
        )
      )
      for (let i = 0; i < 10; i++) yield* Effect.yieldNow()
      const transport = yield* Effect.fork(
        placement.placeTransport(
          m2,
          "webrtc",
          () => Effect.succeed({ id: "t2" }),
          (t) => t.id
        )
      )
      for (let i = 0; i < 10; i++) yield* Effect.yieldNow()
      const pipe = yield* Effect.fork(placement.pipeToMafaldaRouter(ProducerId.make("p0"), m1, m2))
      for (let i = 0; i < 10; i++) yield* Effect.yieldNow()
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(held)
      const placed = yield* Fiber.join(transport)
      // Decided before the transport made m2's Router, the pipe would make another one on the
      // same Worker and fail (one Router per Worker and settings).
      const outcome = yield* Fiber.join(pipe)
      if (outcome._tag !== "Piped") return expect.fail(`expected a pipe, got ${outcome._tag}`)
      expect(outcome.placement.router).toBe(placed.router)
      expect(outcome.pipe.to).toBe(placed.router)
    }).pipe(Effect.provide(oneCpu))
  )
})
