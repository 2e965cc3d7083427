/**
 * A draining Node is emptied by relocation: the app (this test process, a Mafalda instance
 * in cluster mode whose one Worker is full, `relocation: "offer"`) has a producer fed with
 * real RTP on its own Node and a consumer on a PlainTransport the core delegated to Node B
 * (a `mafalda node` process); Node C (another one) joins. B is told SIGTERM with a 30 s drain
 * timeout: the app's Mafalda Router offers the transport on B for relocation (reason
 * `Drain`), the app carries the move out with the helper (`prepare`, the client's part: the
 * new transport sends to the same receiver, `complete`), RTP arrives again through the new
 * consumer on C (piped from the app's Node, SRTP on), and B, empty, exits with 0 long before
 * its timeout. Afterwards no process, Worker, Redis key of the prefix or listening socket is left.
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, HashMap } from "effect"
import { parseAddress } from "../../src/cluster/NodeClients.js"
import { RemoteTransport } from "../../src/cluster/RemoteTransport.js"
import { NodeId } from "../../src/core/Ids.js"
import { makeRtpReceiver } from "../../src/media/rtp.js"
import { processExists } from "../../src/media/worker.js"
import type { PreparedRelocation, TransportRelocation } from "../../src/router/relocation.js"
import { makeClient } from "../../src/rpc/transport.js"
import { fedProducer } from "./appMedia.js"
import { fullClusterApp, refused, until } from "./clusterSupport.js"
import { nodeArgs, nodeProcessPool } from "./nodeProcesses.js"
import { sendAndCount } from "./pipeScenario.js"
import { cleanPrefix, clusterStore, keysOf, redisAvailable, redisUrl, testPrefix } from "./redisSupport.js"

const secret = "drain-relocation-secret-0123"
const prefix = testPrefix("drain-relocation")
const nodes = nodeProcessPool()

const opus = { kind: "audio", mimeType: "audio/opus", clockRate: 48000, channels: 2 } as const
const listenInfo = { protocol: "udp", ip: "127.0.0.1" } as const
const drainTimeoutSeconds = 30

const startNode = async (name: string) => {
  return nodes.start(nodeArgs({ redis: redisUrl, prefix, node: name, cpus: 2, drainTimeoutSeconds }), {
    MAFALDA_SECRET: secret
  })
}

afterAll(async () => {
  await nodes.killAll()
  await cleanPrefix(prefix)
})

describe.skipIf(!redisAvailable)("Drain of a Node by relocation", () => {
  it.scopedLive(
    "Node B drained: the app is offered its transport there (Drain), moves it to Node C with the helper, RTP flows again, B exits 0 long before its timeout, nothing leaks",
    () =>
      Effect.gen(function* () {
        const b = yield* Effect.promise(() => startNode("drain-node-b"))
        const nodeB = NodeId.make(b.node)
        const clientB = yield* makeClient({ ...parseAddress(b.address)!, secret })
        const { registry } = yield* clusterStore(prefix)
        const { mafalda, closeApp } = yield* fullClusterApp({
          secret,
          prefix,
          node: "drain-app",
          options: { relocation: "offer" }
        })
        const appAddress = (yield* registry.nodes).find((n) => n.node === "drain-app")!.address
        expect(yield* until(() => HashMap.has(mafalda.snapshot().nodes, nodeB), 3000)).toBe(true)

        // A producer fed with real RTP on the app's Node (its one Worker, full after it).
        const router = yield* Effect.promise(() => mafalda.createRouter({ mediaCodecs: [opus] }))
        const ssrc = 0x0d7a1400
        const { ingress, producer, sender } = yield* fedProducer(router, ssrc)
        expect(ingress).not.toBeInstanceOf(RemoteTransport)
        const appWorkerPids = (yield* Effect.promise(() => mafalda.workers())).map((w) => w.pid)

        // The consumer's transport is delegated to B; RTP reaches the receiver through it.
        const receiver = yield* makeRtpReceiver()
        const egress = yield* Effect.promise(() =>
          router.createPlainTransport({ listenInfo, rtcpMux: true, comedia: false })
        )
        expect(egress).toBeInstanceOf(RemoteTransport)
        expect((egress as unknown as RemoteTransport).node).toBe(nodeB)
        yield* Effect.promise(() => egress.connect({ ip: "127.0.0.1", port: receiver.local.port }))
        const consumer = yield* Effect.promise(() =>
          egress.consume({ producerId: producer.id, rtpCapabilities: router.rtpCapabilities })
        )
        const before = yield* sendAndCount(sender, receiver, {
          ssrc,
          count: 100,
          first: 0,
          expectedSsrc: consumer.rtpParameters.encodings?.[0]?.ssrc ?? 0
        })
        expect(before.intact).toBeGreaterThanOrEqual(98)
        const bWorkerPids = (yield* clientB.NodeInfo()).workers.map((w) => w.pid)
        expect(bWorkerPids).toHaveLength(1)

        // Node C joins (after the transport went to B, so that B holds it).
        const c = yield* Effect.promise(() => startNode("drain-node-c"))
        const nodeC = NodeId.make(c.node)
        const clientC = yield* makeClient({ ...parseAddress(c.address)!, secret })
        expect(yield* until(() => HashMap.has(mafalda.snapshot().nodes, nodeC), 3000)).toBe(true)

        // The app's part: an offer (Drain, or WorkerLost) is carried out with the helper; the
        // "client" (the receiver) is told the new transport, which sends to it (connect), then
        // the move is completed (the old transport closes, if still open).
        const offers: Array<TransportRelocation> = []
        const seenOnObserver: Array<TransportRelocation> = []
        mafalda.observer.on("relocation", (r: TransportRelocation) => seenOnObserver.push(r))
        const moves: Array<{ readonly prepared: PreparedRelocation; readonly completedAt: number }> = []
        const failures: Array<unknown> = []
        router.on("relocation", (relocation) => {
          offers.push(relocation)
          void (async () => {
            try {
              const made = await relocation.prepare()
              const t = made.parameters.transport
              if (t.kind !== "plain") throw new Error(`a ${t.kind} transport`)
              await made.transport.connect({ ip: "127.0.0.1", port: receiver.local.port })
              await relocation.complete()
              moves.push({ prepared: made, completedAt: Date.now() })
            } catch (error) {
              failures.push(error)
              await relocation.abandon()
            }
          })()
        })

        // SIGTERM: B drains (30 s timeout) and the app is offered the move.
        const drainAt = Date.now()
        b.process.child.kill("SIGTERM")
        expect(yield* until(() => offers.length > 0, 10_000)).toBe(true)
        const offer = offers[0]!
        console.log(`Drain offered ${Date.now() - drainAt} ms after SIGTERM of node-b`)
        expect(offer.reason).toBe("Drain")
        expect(offer.transport.id).toBe(egress.id)
        expect(offer.from).toMatchObject({ node: nodeB })
        expect(seenOnObserver[0]).toBe(offer)
        expect(yield* until(() => moves.length > 0 || failures.length > 0, 15_000)).toBe(true)
        expect(failures).toEqual([])
        expect(offer.state).toBe("completed")
        console.log(`move completed ${moves[0]!.completedAt - drainAt} ms after SIGTERM`)

        // The new transport is on C; the consumer re-made there (none dropped); the old one closed.
        const moved = moves[0]!.prepared
        expect(moved.to.node).toBe(nodeC)
        expect(moved.transport).toBeInstanceOf(RemoteTransport)
        expect(moved.dropped).toEqual([])
        expect(moved.consumers).toHaveLength(1)
        expect(moved.consumers[0]!.replaces).toBe(consumer.id)
        const newConsumer = moved.consumers[0]!.consumer
        expect(newConsumer.producerId).toBe(producer.id)
        expect(egress.closed).toBe(true)
        expect(consumer.closed).toBe(true)
        expect(router.transportsForTesting.has(egress.id)).toBe(false)
        expect(router.transportsForTesting.get(moved.transport.id)).toBe(moved.transport)

        // RTP arrives again, through the consumer on C.
        const after = yield* sendAndCount(sender, receiver, {
          ssrc,
          count: 100,
          first: 100,
          expectedSsrc: newConsumer.rtpParameters.encodings?.[0]?.ssrc ?? 0
        })
        console.log(`RTP after the move (app -> node-c): ${after.intact}/100 intact`)
        expect(after.intact).toBeGreaterThanOrEqual(98)

        // B, empty, exits with 0 long before its drain timeout.
        const exitB = yield* Effect.promise(() => b.process.exited)
        const drainedMs = Date.now() - drainAt
        console.log(`node-b exited ${drainedMs} ms after SIGTERM (drain timeout ${drainTimeoutSeconds} s)`)
        expect(exitB.code).toBe(0)
        expect(drainedMs).toBeLessThan(10_000)
        expect(
          b.process.output.some((line) => line.includes('"event":"stopped"') && line.includes('"empty":true'))
        ).toBe(true)
        // One move only, the one offered.
        expect(offers).toHaveLength(1)
        const cInfo = yield* clientC.NodeInfo()
        expect(cInfo.transports).toBe(1)
        const cWorkerPids = cInfo.workers.map((w) => w.pid)
        expect(cWorkerPids).toHaveLength(1)

        // A Worker of another Node lost: C's Worker is killed; the transport there is offered
        // (WorkerLost), re-made on a new Worker of C, and RTP flows again.
        const lostEvents: Array<string> = []
        for (const name of ["transportclose", "producerclose"])
          newConsumer.on(name as never, () => lostEvents.push(name))
        moved.transport.on("routerclose", () => lostEvents.push("routerclose"))
        const killedAt = Date.now()
        process.kill(cWorkerPids[0]!, "SIGKILL")
        expect(yield* until(() => moves.length > 1 || failures.length > 0, 15_000)).toBe(true)
        expect(failures).toEqual([])
        expect(offers[1]?.reason).toBe("WorkerLost")
        expect(offers[1]?.transport.id).toBe(moved.transport.id)
        // As under a dead Worker of this Node: the consumer closed with its transport.
        expect(lostEvents).toEqual(["transportclose", "routerclose"])
        const remade = moves[1]!.prepared
        console.log(
          `WorkerLost on node-c: transport re-made ${moves[1]!.completedAt - killedAt} ms after the kill`
        )
        expect(remade.to.node).toBe(nodeC)
        expect(remade.to.worker).not.toBe(moved.to.worker)
        expect(remade.dropped).toEqual([])
        expect(remade.consumers.map((c) => c.replaces)).toEqual([newConsumer.id])
        const third = yield* sendAndCount(sender, receiver, {
          ssrc,
          count: 100,
          first: 200,
          expectedSsrc: remade.consumers[0]!.consumer.rtpParameters.encodings?.[0]?.ssrc ?? 0
        })
        console.log(`RTP after the WorkerLost move (app -> node-c): ${third.intact}/100 intact`)
        expect(third.intact).toBeGreaterThanOrEqual(98)
        cWorkerPids.push(...(yield* clientC.NodeInfo()).workers.map((w) => w.pid))

        // A Node lost: D joins, C is killed. The transport there is offered (WorkerLost) and
        // re-made away from C (which the registry still lists for a few seconds), on D.
        const d = yield* Effect.promise(() => startNode("drain-node-d"))
        const nodeD = NodeId.make(d.node)
        const clientD = yield* makeClient({ ...parseAddress(d.address)!, secret })
        expect(yield* until(() => HashMap.has(mafalda.snapshot().nodes, nodeD), 3000)).toBe(true)
        const cKilledAt = Date.now()
        c.process.child.kill("SIGKILL")
        expect(yield* until(() => moves.length > 2 || failures.length > 0, 15_000)).toBe(true)
        expect(failures).toEqual([])
        expect(offers[2]?.reason).toBe("WorkerLost")
        expect(offers[2]?.transport.id).toBe(remade.transport.id)
        expect(offers[2]?.from).toMatchObject({ node: nodeC })
        const onD = moves[2]!.prepared
        console.log(
          `node-c lost: transport re-made on node-d ${moves[2]!.completedAt - cKilledAt} ms after the kill`
        )
        expect(onD.to.node).toBe(nodeD)
        expect(onD.dropped).toEqual([])
        expect(onD.consumers.map((c) => c.replaces)).toEqual([remade.consumers[0]!.consumer.id])
        const fourth = yield* sendAndCount(sender, receiver, {
          ssrc,
          count: 100,
          first: 300,
          expectedSsrc: onD.consumers[0]!.consumer.rtpParameters.encodings?.[0]?.ssrc ?? 0
        })
        console.log(`RTP after the Node-lost move (app -> node-d): ${fourth.intact}/100 intact`)
        expect(fourth.intact).toBeGreaterThanOrEqual(98)
        const dWorkerPids = (yield* clientD.NodeInfo()).workers.map((w) => w.pid)
        expect((yield* clientD.NodeInfo()).transports).toBe(1)

        // Everything closes: the app, then D (SIGTERM, empty once the app's transport went).
        yield* closeApp
        d.process.child.kill("SIGTERM")
        expect((yield* Effect.promise(() => d.process.exited)).code).toBe(0)
        yield* Effect.promise(() => c.process.exited)
        const pids = [...appWorkerPids, ...bWorkerPids, ...cWorkerPids, ...dWorkerPids]
        expect(yield* until(() => pids.every((pid) => !processExists(pid)), 5000)).toBe(true)
        for (const address of [appAddress, b.address, c.address, d.address]) {
          expect(yield* Effect.promise(() => refused(address))).toBe(true)
        }
        // C's record goes once its lease runs out (this test's registry reaps it).
        expect(yield* until(async () => (await keysOf(prefix)).length === 0, 8000)).toBe(true)
      }),
    120_000
  )
})
