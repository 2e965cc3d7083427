/**
 * A pipe shared by two apps on one Node and fed through an upstream Node that only the first
 * app holds (README, "Known problems"): three `mafalda node` processes A, B and C over the
 * real Redis, and two "apps" that are raw RPC clients of the Nodes (the Node API only, so the
 * tree is A -> B -> C by construction, not by load).
 *
 * App 1 makes a producer on A (fed with real RTP), pipes it into its Router on B, then from
 * B into its Router on C. App 2, another RPC client of C, asks C for the same producer in the
 * same Router: it gets C's pipe (one pipe per producer and Router) and consumes it there. App
 * 1 then lets go of everything it has on B and C (`ClosePipe`, `CloseRouter`, its
 * connections): B must keep its pipe-in from A and its Router while C's pipe, held by app 2,
 * leases its upstream end on B; app 2's consumer still receives the RTP, intact, past B's
 * idle grace (the Worker of B whose Router only the lease holds stays). A second pipe of
 * app 2 from B into another Router of C (a second lease over the same C -> B connection) is
 * let go again without taking B's pipe-in with it (one holder per lease). When app 2 lets go,
 * C's pipe closes, its lease on B ends, and B's pipe-in and Router close in turn, then A's
 * pipe end: no pipe, transport or Worker is left on any Node (the idle grace closes Workers
 * with no Router, so no Router is left either), and after the Nodes stop, no process and no
 * Redis key of the prefix.
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, ExecutionStrategy, Exit, Scope } from "effect"
import { parseAddress } from "../../src/cluster/NodeClients.js"
import { NodeId } from "../../src/core/Ids.js"
import { processExists } from "../../src/media/worker.js"
import type { NodeInfo } from "../../src/rpc/NodeRpcs.js"
import { makeClient } from "../../src/rpc/transport.js"
import { refused, until } from "./clusterSupport.js"
import { nodeArgs, nodeProcessPool } from "./nodeProcesses.js"
import {
  collectNotices,
  consumerOn,
  type NodeUnderTest,
  producerOn,
  routerOn,
  sendAndCount
} from "./pipeScenario.js"
import { cleanPrefix, keysOf, redisAvailable, redisUrl, testPrefix } from "./redisSupport.js"

const secret = "shared-upstream-secret-0123456789"
const prefix = testPrefix("shared-upstream")
const nodes = nodeProcessPool()
const idleGraceMillis = 1000

const opus = { kind: "audio", mimeType: "audio/opus", clockRate: 48000, channels: 2 } as const

const startNode = (name: string) =>
  nodes.start(
    nodeArgs({ redis: redisUrl, prefix, node: name, cpus: 1, drainTimeoutSeconds: 1, idleGraceMillis }),
    { MAFALDA_SECRET: secret }
  )

/** A new RPC connection to a Node (one client of it), for `scope`. */
const connect = (n: { readonly node: string; readonly address: string }, scope: Scope.Scope) =>
  Effect.map(
    Scope.extend(makeClient({ ...parseAddress(n.address)!, secret }), scope),
    (client): NodeUnderTest => ({ node: NodeId.make(n.node), client })
  )

const info = (n: NodeUnderTest) => n.client.NodeInfo()

/** Waits until the Node's info satisfies `check` (5 s at most); its last info. */
const infoUntil = (n: NodeUnderTest, check: (i: NodeInfo) => boolean, millis = 5000) =>
  Effect.gen(function* () {
    let last = yield* info(n)
    yield* until(async () => {
      last = await Effect.runPromise(info(n))
      return check(last)
    }, millis)
    return last
  })

afterAll(async () => {
  await nodes.killAll()
  if (redisAvailable) await cleanPrefix(prefix)
})

describe.skipIf(!redisAvailable)("a pipe shared by two apps, fed through an upstream Node", () => {
  it.scopedLive(
    "A -> B -> C: the second app's media through C survives the first app letting go of B and C; nothing left after",
    () =>
      Effect.gen(function* () {
        const [a, b, c] = yield* Effect.promise(() =>
          Promise.all([startNode("node-a"), startNode("node-b"), startNode("node-c")])
        )
        // The test's own connections (NodeInfo), and each app's connections.
        // (Children of the test's scope: closed with it if the test fails half-way.)
        const parent = yield* Effect.scope
        const child = Scope.fork(parent, ExecutionStrategy.sequential)
        const testScope = yield* child
        const app1OnA = yield* child
        const app1OnBC = yield* child
        const app2Scope = yield* child
        const watchA = yield* connect(a, testScope)
        const watchB = yield* connect(b, testScope)
        const watchC = yield* connect(c, testScope)
        const a1 = yield* connect(a, app1OnA)
        const b1 = yield* connect(b, app1OnBC)
        const c1 = yield* connect(c, app1OnBC)
        const c2 = yield* connect(c, app2Scope)
        // App 1 listens on B and C: the end of its connections there lets go of what it held.
        yield* Scope.extend(Effect.all([collectNotices(b1), collectNotices(c1)]), app1OnBC)

        // App 1: a producer on A fed with real RTP, piped A -> B, then B -> C.
        const ra = yield* routerOn(a1)
        const ssrc = 0x5a4ed0
        const { producer, sender } = yield* Scope.extend(producerOn(a1, ra.id, ssrc), testScope)
        const rb = yield* routerOn(b1)
        const intoB = yield* b1.client.PipeFrom({
          producer: producer.id,
          origin: a1.node,
          from: ra.id,
          to: rb.id
        })
        expect(intoB).toMatchObject({ producer: producer.id, from: ra.id, to: rb.id })
        const rc = yield* routerOn(c1)
        const intoC = yield* c1.client.PipeFrom({
          producer: producer.id,
          origin: b1.node,
          from: rb.id,
          to: rc.id
        })
        expect(intoC).toMatchObject({ producer: producer.id, from: rb.id, to: rc.id })

        // App 2, another client of C: the same Router there (same Worker, same settings),
        // and C's pipe (PipeFrom finds it), and a consumer of it.
        const rc2 = yield* c2.client.CreateRouter({ worker: rc.worker, settings: { mediaCodecs: [opus] } })
        expect(rc2.id).toBe(rc.id)
        const shared = yield* c2.client.PipeFrom({
          producer: producer.id,
          origin: b1.node,
          from: rb.id,
          to: rc.id
        })
        expect(shared.pipeConsumer).toBe(intoC.pipeConsumer)
        const { receiver, consumer } = yield* Scope.extend(consumerOn(c2, rc2, producer.id), testScope)
        const expectedSsrc = consumer.rtpParameters.encodings?.[0]?.ssrc ?? 0

        const workerPids = (yield* Effect.all([watchA, watchB, watchC].map(info))).flatMap((i) =>
          i.workers.map((w) => w.pid)
        )
        expect(workerPids.length).toBe(3)
        const before = yield* sendAndCount(sender, receiver, { ssrc, count: 50, first: 0, expectedSsrc })
        console.log(`before app 1 lets go: ${before.intact}/50 intact`)
        expect(before.intact).toBeGreaterThanOrEqual(48)
        // A: the producer's transport and the pipe end to B; B: the pipe from A and the end
        // to C; C: the pipe from B and app 2's consumer transport.
        expect(yield* info(watchA)).toMatchObject({ transports: 1, pipes: 1 })
        expect(yield* info(watchB)).toMatchObject({ transports: 0, pipes: 2 })
        expect(yield* info(watchC)).toMatchObject({ transports: 1, pipes: 1 })

        // App 1 lets go of everything on B and C: its pipes, its Routers, its connections.
        yield* c1.client.ClosePipe({ producer: producer.id, router: rc.id })
        yield* c1.client.CloseRouter({ router: rc.id })
        yield* b1.client.ClosePipe({ producer: producer.id, router: rb.id })
        yield* b1.client.CloseRouter({ router: rb.id })
        // Past B's idle grace (and its checks every 250 ms): the Worker of B, whose Router
        // only C's lease holds now, must stay.
        yield* Effect.sleep(idleGraceMillis + 1000)
        const after = yield* sendAndCount(sender, receiver, {
          ssrc,
          count: 50,
          first: 100,
          expectedSsrc,
          timeout: "3 seconds"
        })
        console.log(`after app 1 let go of B and C: ${after.intact}/50 intact`)
        expect(after.intact).toBeGreaterThanOrEqual(48)
        const infoB = yield* info(watchB)
        console.log(`B after app 1 let go: ${JSON.stringify({ ...infoB, workers: infoB.workers.length })}`)
        expect(infoB.pipes).toBe(2)
        expect(infoB.workers.length).toBe(1)
        expect(yield* info(watchC)).toMatchObject({ transports: 1, pipes: 1 })
        expect((yield* info(watchC)).workers.length).toBe(1)

        // App 1's connections to B and C go too (their Notices streams end: a disconnect).
        yield* Scope.close(app1OnBC, Exit.void)
        yield* Effect.sleep(500)
        const afterDisconnect = yield* sendAndCount(sender, receiver, {
          ssrc,
          count: 50,
          first: 200,
          expectedSsrc,
          timeout: "3 seconds"
        })
        console.log(`after app 1's connections to B and C closed: ${afterDisconnect.intact}/50 intact`)
        expect(afterDisconnect.intact).toBeGreaterThanOrEqual(48)

        // A second lease on B over the same connection (C's to B): app 2 pipes the producer
        // from B into a Router of another Worker of C too (a Worker carries a producer id
        // once), receives it there, and lets go of it. Each lease holds B's pipe-in on its
        // own: the end of this one leaves it to the first. (Other Worker settings: C runs one
        // Worker per CPU and settings.)
        const w2 = yield* c2.client.StartWorker({ settings: { logLevel: "error" } })
        const rc3 = yield* c2.client.CreateRouter({ worker: w2.id, settings: { mediaCodecs: [opus] } })
        expect(rc3.id).not.toBe(rc.id)
        yield* c2.client.PipeFrom({ producer: producer.id, origin: b1.node, from: rb.id, to: rc3.id })
        expect(yield* info(watchB)).toMatchObject({ transports: 0, pipes: 3 })
        const third = yield* Scope.extend(consumerOn(c2, rc3, producer.id), testScope)
        const thirdRtp = yield* sendAndCount(sender, third.receiver, {
          ssrc,
          count: 50,
          first: 300,
          expectedSsrc: third.consumer.rtpParameters.encodings?.[0]?.ssrc ?? 0
        })
        console.log(`second pipe of app 2 from B into C: ${thirdRtp.intact}/50 intact`)
        expect(thirdRtp.intact).toBeGreaterThanOrEqual(48)
        yield* c2.client.CloseRouter({ router: rc3.id })
        expect((yield* infoUntil(watchC, (i) => i.pipes === 1 && i.transports === 1)).pipes).toBe(1)
        expect((yield* infoUntil(watchB, (i) => i.pipes === 2)).pipes).toBe(2)
        yield* Effect.sleep(500)
        expect(yield* info(watchB)).toMatchObject({ transports: 0, pipes: 2 })
        const afterSecondLease = yield* sendAndCount(sender, receiver, {
          ssrc,
          count: 50,
          first: 400,
          expectedSsrc,
          timeout: "3 seconds"
        })
        console.log(`after app 2's second pipe from B closed: ${afterSecondLease.intact}/50 intact`)
        expect(afterSecondLease.intact).toBeGreaterThanOrEqual(48)

        // App 2, the last holder on C, lets go: C's pipe closes, its lease on B ends, B's
        // pipe-in and Router close, then A's pipe end.
        yield* c2.client.CloseRouter({ router: rc.id })
        const endC = yield* infoUntil(
          watchC,
          (i) => i.pipes === 0 && i.transports === 0 && i.workers.length === 0
        )
        const endB = yield* infoUntil(
          watchB,
          (i) => i.pipes === 0 && i.transports === 0 && i.workers.length === 0
        )
        const endA = yield* infoUntil(watchA, (i) => i.pipes === 0)
        expect(endC).toMatchObject({ pipes: 0, transports: 0, workers: [] })
        expect(endB).toMatchObject({ pipes: 0, transports: 0, workers: [] })
        expect(endA).toMatchObject({ pipes: 0, transports: 1 })

        // App 1 lets go of A: its producer and Router go, then A's Worker (idle grace).
        yield* a1.client.CloseRouter({ router: ra.id })
        const endA2 = yield* infoUntil(watchA, (i) => i.transports === 0 && i.workers.length === 0)
        expect(endA2).toMatchObject({ pipes: 0, transports: 0, workers: [] })

        // The Nodes stop (SIGTERM): no process, Worker, socket or Redis key left.
        yield* Scope.close(app1OnA, Exit.void)
        yield* Scope.close(app2Scope, Exit.void)
        yield* Scope.close(testScope, Exit.void)
        for (const n of [a, b, c]) n.process.child.kill("SIGTERM")
        const exits = yield* Effect.promise(() => Promise.all([a, b, c].map((n) => n.process.exited)))
        for (const exit of exits) expect(exit.code).toBe(0)
        for (const n of [a, b, c]) expect(processExists(n.process.pid)).toBe(false)
        expect(yield* until(() => workerPids.every((pid) => !processExists(pid)), 5000)).toBe(true)
        for (const n of [a, b, c]) expect(yield* Effect.promise(() => refused(n.address))).toBe(true)
        expect(yield* until(async () => (await keysOf(prefix)).length === 0, 3000)).toBe(true)
      }),
    120_000
  )
})
