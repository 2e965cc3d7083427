/**
 * The core's `Delegate` in multi-machine mode: a Mafalda Router's snapshot learns the other
 * Nodes from the `NodeRegistry` (`registryEvents`), the core's interpreter delegates a
 * transport to a real Node when its own is over the watermark, `carryOutRemotely` makes the
 * Worker and Router there over RPC, and a producer of the first Node, found through the
 * Index, is consumed on the Router made there, with real RTP across the pipe.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Context, Effect, Either, HashSet, Layer, Option } from "effect"
import { carryOutRemotely, registryEvents } from "../../src/cluster/delegation.js"
import { type RunningNode, startNode } from "../../src/cluster/MafaldaNode.js"
import * as NodeClientsLayer from "../../src/cluster/NodeClients.js"
import { parseAddress } from "../../src/cluster/NodeClients.js"
import { applyEvents } from "../../src/core/applyEvent.js"
import type { ClusterEvent } from "../../src/core/ClusterEvent.js"
import { MafaldaRouterId, NodeId, SettingsKey, WorkerId } from "../../src/core/Ids.js"
import { planTransportPlacement } from "../../src/core/interpret.js"
import { defaultPolicyOptions, makeCosts } from "../../src/core/PolicyOptions.js"
import { type ClusterSnapshot, emptySnapshot, lookup } from "../../src/core/Snapshot.js"
import * as IndexRedis from "../../src/layers/IndexServiceRedis.js"
import * as RegistryRedis from "../../src/layers/NodeRegistryRedis.js"
import * as RedisConnection from "../../src/layers/RedisConnection.js"
import { processExists } from "../../src/media/worker.js"
import { makeClient } from "../../src/rpc/transport.js"
import { IndexService } from "../../src/services/IndexService.js"
import { type NodeRecord, NodeRegistry } from "../../src/services/NodeRegistry.js"
import { routerSettingsKey, workerSettingsKey } from "../../src/services/SettingsKeys.js"
import { consumerOn, producerOn, sendAndCount } from "./pipeScenario.js"
import { cleanPrefix, redisAvailable, redisUrl, testPrefix } from "./redisSupport.js"

const costs = makeCosts()
const apply = (s: ClusterSnapshot, events: ReadonlyArray<ClusterEvent>) =>
  Either.getOrThrow(applyEvents(s, events, costs))

const record = (node: string, fields: Partial<NodeRecord> = {}): NodeRecord => ({
  node: NodeId.make(node),
  address: `127.0.0.1:${node.length + 4000}`,
  announcedIp: "127.0.0.1",
  cpus: 2,
  state: "up",
  workers: [],
  registeredAt: 0,
  reportedAt: 0,
  ...fields
})

describe("registryEvents", () => {
  const self = NodeId.make("self")
  const S = SettingsKey.make("w:x")
  const base = apply(emptySnapshot, [{ _tag: "NodeUp", node: self, cpus: 1, address: "here", at: 0 }])

  it("brings the other Nodes, their state, Workers and loads in line with the registry, never its own", () => {
    const w1 = WorkerId.make("b/w1")
    const w2 = WorkerId.make("b/w2")
    const first = [
      record("self", { workers: [{ worker: WorkerId.make("self/w"), settings: S, load: 50 }] }),
      record("b", { workers: [{ worker: w1, settings: S, load: 30 }], reportedAt: 900 }),
      record("c", { state: "draining" })
    ]
    const s1 = apply(base, registryEvents(base, first, self, 1000))
    expect(lookup(s1.nodes, self)?.workers).toEqual([])
    expect(lookup(s1.nodes, NodeId.make("b"))).toMatchObject({ state: "up", cpus: 2, workers: [w1] })
    expect(lookup(s1.workers, w1)).toMatchObject({ node: "b", load: 30, reportedAt: 900, settings: S })
    expect(lookup(s1.nodes, NodeId.make("c"))?.state).toBe("draining")
    // In line already: nothing to do.
    expect(registryEvents(s1, first, self, 1000)).toEqual([])

    // A Worker the snapshot just learnt of (started there by this process) is in no report
    // yet: a report made within the grace period does not close it.
    const w3 = WorkerId.make("b/w3")
    const withW3 = apply(s1, [
      { _tag: "WorkerStarted", worker: w3, node: NodeId.make("b"), settings: S, at: 1000 }
    ])
    const early = [record("b", { workers: [{ worker: w1, settings: S, load: 31 }], reportedAt: 1500 })]
    expect(registryEvents(withW3, early, self, 1600)).toEqual([
      { _tag: "LoadReported", worker: w1, load: 31, at: 1500 },
      { _tag: "NodeDown", node: NodeId.make("c"), at: 1600 },
      { _tag: "NodeLeft", node: NodeId.make("c"), at: 1600 }
    ])

    // b's first Worker closed and another started; c is up again; d is new.
    const second = [
      record("b", { workers: [{ worker: w2, settings: S, load: 10 }], reportedAt: 2500 }),
      record("c"),
      record("d", { cpus: 4 })
    ]
    const s2 = apply(s1, registryEvents(s1, second, self, 3000))
    expect(lookup(s2.workers, w1)).toBeUndefined()
    expect(lookup(s2.nodes, NodeId.make("b"))?.workers).toEqual([w2])
    expect(lookup(s2.nodes, NodeId.make("c"))?.state).toBe("up")
    expect(lookup(s2.nodes, NodeId.make("d"))?.cpus).toBe(4)

    // d registers again with a cap on Worker processes: the snapshot learns it.
    const capped = registryEvents(
      s2,
      [record("b"), record("c"), record("d", { cpus: 4, maxWorkerProcesses: 2 })],
      self,
      3500
    )
    expect(capped).toContainEqual({
      _tag: "NodeUp",
      node: NodeId.make("d"),
      cpus: 4,
      maxWorkerProcesses: 2,
      address: record("d").address,
      at: 3500
    })
    expect(lookup(apply(s2, capped).nodes, NodeId.make("d"))).toMatchObject({
      cpus: 4,
      maxWorkerProcesses: 2
    })

    // b is gone from the registry (evicted or left): it leaves the snapshot with its Worker.
    const s3 = apply(s2, registryEvents(s2, [record("c"), record("d")], self, 4000))
    expect(lookup(s3.nodes, NodeId.make("b"))).toBeUndefined()
    expect(lookup(s3.workers, w2)).toBeUndefined()
    expect(lookup(s3.nodes, self)).toBeDefined()
  })
})

const secret = "delegation-secret-0123456789"
const prefix = testPrefix("delegation")
let a: RunningNode
let b: RunningNode
const pids: Array<number> = []

const opus = { kind: "audio", mimeType: "audio/opus", clockRate: 48000, channels: 2 } as const
const workerSettings = { logLevel: "warn" } as const
const routerSettings = { mediaCodecs: [opus] }

describe.skipIf(!redisAvailable)("Delegate carried out on another Node", () => {
  beforeAll(async () => {
    const options = { redis: redisUrl, prefix, secret, heartbeatMillis: 250, leaseMillis: 2000 }
    a = await startNode({ ...options, node: "node-a", cpus: 1 })
    b = await startNode({ ...options, node: "node-b", cpus: 2 })
  })

  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()])
    for (const pid of pids) expect(processExists(pid)).toBe(false)
    expect(await cleanPrefix(prefix)).toBe(0)
  })

  it.scopedLive(
    "A over the watermark: the transport is delegated to B, its Worker and Router made there; A's producer consumed on B",
    () =>
      Effect.gen(function* () {
        // The app's side: the cluster's registry and Index, and clients of its Nodes.
        const app = yield* Layer.build(
          NodeClientsLayer.layer({ secret }).pipe(
            Layer.provideMerge(Layer.mergeAll(RegistryRedis.layerRedis({}), IndexRedis.layerRedis)),
            Layer.provide(RedisConnection.layer({ url: redisUrl, prefix }))
          )
        )
        const registry = Context.get(app, NodeRegistry)
        const index = Context.get(app, IndexService)
        const provide = Effect.provide(app)
        const nodeA = NodeId.make(a.node)
        const nodeB = NodeId.make(b.node)
        const na = { node: nodeA, client: yield* makeClient({ ...parseAddress(a.address)!, secret }) }
        const nb = { node: nodeB, client: yield* makeClient({ ...parseAddress(b.address)!, secret }) }

        // A's one CPU runs the room's Worker (with its Router and a producer fed with RTP).
        const wa = yield* na.client.StartWorker({ settings: workerSettings })
        const ra = yield* na.client.CreateRouter({ worker: wa.id, settings: routerSettings })
        const ssrc = 0x0de1e9a7
        const { producer, sender } = yield* producerOn(na, ra.id, ssrc)
        expect(wa.settings).toBe(workerSettingsKey(workerSettings))

        // The snapshot of a Mafalda Router on A: its own Node, its Worker over the watermark.
        const room = MafaldaRouterId.make("room-1")
        let snapshot = apply(emptySnapshot, [
          { _tag: "NodeUp", node: nodeA, cpus: 1, address: a.address, at: Date.now() },
          { _tag: "WorkerStarted", worker: wa.id, node: nodeA, settings: wa.settings, at: Date.now() },
          { _tag: "RouterCreated", router: ra.id, worker: wa.id, settings: ra.settings, at: Date.now() },
          {
            _tag: "MafaldaRouterCreated",
            mafaldaRouter: room,
            workerSettings: wa.settings,
            routerSettings: routerSettingsKey(routerSettings),
            at: Date.now()
          },
          { _tag: "RouterRegistered", mafaldaRouter: room, router: ra.id, at: Date.now() },
          { _tag: "LoadReported", worker: wa.id, load: 95, at: Date.now() }
        ])
        const plan = () =>
          planTransportPlacement(snapshot, defaultPolicyOptions, { node: nodeA, mafaldaRouter: room })
        // Knowing no other Node, there is no room.
        expect(Either.isLeft(plan())).toBe(true)

        // The registry tells it about B: the transport is delegated there, to a new Worker.
        const sync = Effect.gen(function* () {
          const events = registryEvents(snapshot, yield* registry.nodes, nodeA, Date.now())
          snapshot = apply(snapshot, events)
        })
        yield* sync
        expect(lookup(snapshot.nodes, nodeB)?.state).toBe("up")
        const first = Either.getOrThrow(plan())
        expect(first).toMatchObject({ node: nodeB, delegations: [nodeB], worker: null, router: null })
        const made = yield* carryOutRemotely(first, { worker: workerSettings, router: routerSettings }).pipe(
          provide
        )
        snapshot = apply(snapshot, made.events)
        const onB = yield* nb.client.NodeInfo()
        expect(onB.workers.map((w) => w.id)).toEqual([made.worker])
        pids.push(wa.pid, ...onB.workers.map((w) => w.pid))
        expect(lookup(snapshot.routers, made.router)?.worker).toBe(made.worker)
        expect(HashSet.has(lookup(snapshot.mafaldaRouters, room)!.routers, made.router)).toBe(true)
        // Synced before B reports its new Worker, the snapshot keeps it; after, it has its load.
        yield* sync
        expect(lookup(snapshot.workers, made.worker)).toBeDefined()
        yield* Effect.sleep("600 millis")
        yield* sync
        expect(lookup(snapshot.workers, made.worker)?.reportedAt).toBeGreaterThan(made.events[0]!.at)

        // The next transport goes to the room's Router on B (delegated, nothing made).
        const second = Either.getOrThrow(plan())
        expect(second).toMatchObject({
          node: nodeB,
          worker: made.worker,
          router: made.router,
          register: false
        })
        const again = yield* carryOutRemotely(second, {
          worker: workerSettings,
          router: routerSettings
        }).pipe(provide)
        expect(again).toMatchObject({ node: nodeB, worker: made.worker, router: made.router, events: [] })

        // A client of B: the producer found through the Index, piped from A (SRTP) into the
        // Router made on B, consumed there with real RTP.
        const location = Option.getOrThrow(yield* index.find(producer.id))
        expect(location).toMatchObject({ node: nodeA, router: ra.id })
        const pipe = yield* nb.client.PipeFrom({
          producer: producer.id,
          origin: location.node,
          from: location.router,
          to: made.router
        })
        expect(pipe.srtp).toBe(true)
        const { receiver, consumer } = yield* consumerOn(
          nb,
          { id: made.router, rtpCapabilities: ra.rtpCapabilities },
          producer.id
        )
        const rtp = yield* sendAndCount(sender, receiver, {
          ssrc,
          count: 100,
          first: 0,
          expectedSsrc: consumer.rtpParameters.encodings?.[0]?.ssrc ?? 0
        })
        expect(rtp.intact).toBeGreaterThanOrEqual(98)

        // B drains: once the registry says so, nothing is delegated to it any more.
        yield* nb.client.Drain()
        yield* sync
        expect(lookup(snapshot.nodes, nodeB)?.state).toBe("draining")
        expect(plan()).toMatchObject({ _tag: "Left", left: { reason: "NoRoom" } })
      }),
    60_000
  )
})
