/**
 * The `IndexService` on Redis, against the real Redis (a prefix per test, no key left):
 * the same answers as the in-memory Index, readable from another connection (another
 * process), entries written only for registered Nodes, removed when the producer closes,
 * reaped with their Node when its lease runs out or it deregisters.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option, Queue, type Scope } from "effect"
import { MafaldaRouterId, NodeId, ProducerId, RouterId } from "../../src/core/Ids.js"
import * as IndexMemory from "../../src/layers/IndexService.js"
import * as IndexRedis from "../../src/layers/IndexServiceRedis.js"
import * as RegistryRedis from "../../src/layers/NodeRegistryRedis.js"
import * as RedisConnection from "../../src/layers/RedisConnection.js"
import {
  IndexService,
  type IndexServiceShape,
  type ProducerLocation
} from "../../src/services/IndexService.js"
import { NodeRegistry, type NodeRegistryShape } from "../../src/services/NodeRegistry.js"
import { connectionLayer, keysOf, redisAvailable, redisUrl, testPrefix } from "./redisSupport.js"

const location = (producer: string, node: string, mafaldaRouter: string): ProducerLocation => ({
  producer: ProducerId.make(producer),
  node: NodeId.make(node),
  mafaldaRouter: MafaldaRouterId.make(mafaldaRouter),
  router: RouterId.make(`router-of-${producer}`),
  kind: "audio"
})

const sorted = (locations: ReadonlyArray<ProducerLocation>) =>
  locations.map((l) => l.producer).sort((a, b) => (a < b ? -1 : 1))

const basics = (index: IndexServiceShape) =>
  Effect.gen(function* () {
    yield* index.add(location("p1", "a", "m1"))
    yield* index.add(location("p2", "a", "m2"))
    yield* index.add(location("p3", "b", "m1"))
    expect(yield* index.find(ProducerId.make("p1"))).toEqual(Option.some(location("p1", "a", "m1")))
    expect(yield* index.find(ProducerId.make("nope"))).toEqual(Option.none())
    expect(sorted(yield* index.ofMafaldaRouter(MafaldaRouterId.make("m1")))).toEqual(["p1", "p3"])
    expect(sorted(yield* index.ofNode(NodeId.make("a")))).toEqual(["p1", "p2"])
    yield* index.remove(ProducerId.make("p1"))
    yield* index.remove(ProducerId.make("p1"))
    expect(yield* index.find(ProducerId.make("p1"))).toEqual(Option.none())
    expect(sorted(yield* index.ofMafaldaRouter(MafaldaRouterId.make("m1")))).toEqual(["p3"])
    expect(sorted(yield* index.ofNode(NodeId.make("a")))).toEqual(["p2"])
    // Added again for another Node: it moves.
    yield* index.add(location("p2", "b", "m2"))
    expect(sorted(yield* index.ofNode(NodeId.make("a")))).toEqual([])
    expect(sorted(yield* index.ofNode(NodeId.make("b")))).toEqual(["p2", "p3"])
  })

describe("IndexService in memory", () => {
  it.effect("adds, finds, lists and removes", () =>
    Effect.flatMap(IndexService, basics).pipe(Effect.provide(IndexMemory.layerMemory))
  )
})

const registerNode = (registry: NodeRegistryShape, id: string) =>
  registry.register({ node: NodeId.make(id), address: "127.0.0.1:1", announcedIp: "127.0.0.1", cpus: 1 })

/** Registry and Index on one prefix, and a second connection (another process's view). */
const cluster = (name: string, leaseMillis = 60_000) => {
  const prefix = testPrefix(name)
  const services = Layer.mergeAll(
    RegistryRedis.layerRedis({ leaseMillis, reapMillis: 50 }),
    IndexRedis.layerRedis
  )
  return { prefix, layer: services.pipe(Layer.provide(connectionLayer(prefix))) }
}

const otherProcess = (prefix: string): Effect.Effect<IndexServiceShape, unknown, Scope.Scope> =>
  Layer.build(
    IndexRedis.layerRedis.pipe(Layer.provide(RedisConnection.layer({ url: redisUrl, prefix })))
  ).pipe(Effect.map((context) => context.unsafeMap.get(IndexService.key) as IndexServiceShape))

describe.skipIf(!redisAvailable)("IndexService on Redis", () => {
  it.scopedLive("answers as the in-memory Index, from another connection too", () => {
    const { prefix, layer } = cluster("index-basics")
    return Effect.gen(function* () {
      const registry = yield* NodeRegistry
      yield* registerNode(registry, "a")
      yield* registerNode(registry, "b")
      yield* basics(yield* IndexService)
      const other = yield* otherProcess(prefix)
      expect(yield* other.find(ProducerId.make("p3"))).toEqual(Option.some(location("p3", "b", "m1")))
      yield* registry.deregister(NodeId.make("a"))
      yield* registry.deregister(NodeId.make("b"))
    }).pipe(Effect.provide(layer))
  })

  it.scopedLive("writes entries only for registered Nodes", () =>
    Effect.gen(function* () {
      const index = yield* IndexService
      const failed = yield* Effect.flip(index.add(location("p1", "ghost", "m1")))
      expect(failed._tag).toBe("ClusterStoreError")
      expect(yield* index.find(ProducerId.make("p1"))).toEqual(Option.none())
    }).pipe(Effect.provide(cluster("index-unregistered").layer))
  )

  it.scopedLive("reaps a Node's entries with it: lease expiry, deregistration, registering anew", () => {
    const { prefix, layer } = cluster("index-reap", 600)
    return Effect.gen(function* () {
      const registry = yield* NodeRegistry
      const index = yield* IndexService
      const gone = yield* registry.subscribe
      yield* registerNode(registry, "a")
      yield* registerNode(registry, "b")
      yield* registerNode(registry, "c")
      yield* index.add(location("pa", "a", "m1"))
      yield* index.add(location("pb", "b", "m1"))
      yield* index.add(location("pc", "c", "m1"))
      // c registers anew (a restart): its entries go.
      yield* registerNode(registry, "c")
      expect(yield* index.find(ProducerId.make("pc"))).toEqual(Option.none())
      // b leaves.
      yield* registry.deregister(NodeId.make("b"))
      expect(yield* Queue.take(gone)).toMatchObject({ node: "b", reason: "left" })
      expect(yield* index.find(ProducerId.make("pb"))).toEqual(Option.none())
      // a and c stop reporting: evicted with their entries, and every key of theirs is gone.
      const evicted = [(yield* Queue.take(gone)).node, (yield* Queue.take(gone)).node].sort()
      expect(evicted).toEqual(["a", "c"])
      expect(yield* index.find(ProducerId.make("pa"))).toEqual(Option.none())
      expect(yield* index.ofMafaldaRouter(MafaldaRouterId.make("m1"))).toEqual([])
      expect(yield* Effect.promise(() => keysOf(prefix))).toEqual([])
    }).pipe(Effect.provide(layer))
  })
})
