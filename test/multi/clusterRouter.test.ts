/**
 * The Mafalda Router in cluster mode carries out `Delegate`: this test process is the app,
 * a Mafalda instance made with `createMafalda({ cluster })` (its own Node, one CPU, a high
 * transport cost so that its one Worker is full after one transport), and Node B is a
 * `mafalda node` process. A producer fed with real RTP on the app's Node; the next
 * transport is delegated to B by the core and returned as a remote transport with
 * mediasoup's API; a consumer on it receives the RTP, piped across the processes (SRTP on).
 * Closing the remote transport closes it on B; SIGKILL of B closes the remote objects with
 * mediasoup's events. Afterwards no process, Worker, Redis key of the prefix or listening
 * socket is left.
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, HashMap, Option } from "effect"
import { parseAddress } from "../../src/cluster/NodeClients.js"
import { RemoteTransport } from "../../src/cluster/RemoteTransport.js"
import { NodeId } from "../../src/core/Ids.js"
import { makeRtpReceiver } from "../../src/media/rtp.js"
import { processExists } from "../../src/media/worker.js"
import { createMafalda } from "../../src/promise.js"
import { makeClient } from "../../src/rpc/transport.js"
import { fedProducer, opusParameters } from "./appMedia.js"
import { fullClusterApp, refused, until } from "./clusterSupport.js"
import { nodeArgs, nodeProcessPool } from "./nodeProcesses.js"
import { sendAndCount } from "./pipeScenario.js"
import { cleanPrefix, clusterStore, keysOf, redisAvailable, redisUrl, testPrefix } from "./redisSupport.js"

const secret = "cluster-router-secret-0123"
const prefix = testPrefix("cluster-router")
const nodes = nodeProcessPool()

const opus = { kind: "audio", mimeType: "audio/opus", clockRate: 48000, channels: 2 } as const
const listenInfo = { protocol: "udp", ip: "127.0.0.1" } as const

const startNode = async (name: string) => {
  return nodes.start(nodeArgs({ redis: redisUrl, prefix, node: name, cpus: 2, drainTimeoutSeconds: 1 }), {
    MAFALDA_SECRET: secret
  })
}

/** The events an object emits, in order (`observer.close` as `observer:close`). */
const recordEvents = (
  object: { on(e: string, l: () => void): unknown; observer: { on(e: string, l: () => void): unknown } },
  names: ReadonlyArray<string>
) => {
  const seen: Array<string> = []
  for (const name of names) object.on(name, () => seen.push(name))
  object.observer.on("close", () => seen.push("observer:close"))
  return seen
}

describe("createMafalda({ cluster })", () => {
  it("rejects bad cluster options with a TypeError before anything starts", async () => {
    await expect(createMafalda({ cluster: { secret: "" } })).rejects.toThrow(TypeError)
    await expect(createMafalda({ cluster: { secret: "s", listenPort: -1 } })).rejects.toThrow(
      "cluster.listenPort"
    )
  })
})

afterAll(async () => {
  await nodes.killAll()
  await cleanPrefix(prefix)
})

describe.skipIf(!redisAvailable)("The Mafalda Router in cluster mode", () => {
  it.scopedLive(
    "a transport delegated to Node B: mediasoup's API, RTP piped from the app's Node, closed on B, and closed with mediasoup's events when B is killed",
    () =>
      Effect.gen(function* () {
        const b = yield* Effect.promise(() => startNode("node-b"))
        const nodeB = NodeId.make(b.node)
        const clientB = yield* makeClient({ ...parseAddress(b.address)!, secret })
        const { registry, index, gone } = yield* clusterStore(prefix)

        // One transport fills the app's one Worker: the next one has no room there, and its
        // Node stays over the watermark for the next transports.
        const { mafalda, closeApp } = yield* fullClusterApp({
          secret,
          prefix,
          node: "app-node",
          cluster: { leaseMillis: 2000 }
        })

        // The app's Node is registered; its snapshot learns of B from the registry.
        const appRecord = (yield* registry.nodes).find((n) => n.node === "app-node")
        expect(appRecord?.address).toMatch(/^127\.0\.0\.1:\d+$/)
        expect(yield* until(() => HashMap.has(mafalda.snapshot().nodes, nodeB), 3000)).toBe(true)

        // A producer fed with real RTP on the app's Node (its one Worker).
        const router = yield* Effect.promise(() => mafalda.createRouter({ mediaCodecs: [opus] }))
        const ssrc = 0x0c1a5e11
        const { ingress, producer, sender } = yield* fedProducer(router, ssrc)
        expect(ingress).not.toBeInstanceOf(RemoteTransport)
        expect(router.routerIds).toHaveLength(1)
        const ingressRouter = router.routerIds[0]
        const appWorkerPids = (yield* Effect.promise(() => mafalda.workers())).map((w) => w.pid)
        expect(appWorkerPids).toHaveLength(1)

        // The next transport is delegated to B: made there, with mediasoup's API here.
        const receiver = yield* makeRtpReceiver()
        const egress = yield* Effect.promise(() =>
          router.createPlainTransport({ listenInfo, rtcpMux: true, comedia: false })
        )
        expect(egress).toBeInstanceOf(RemoteTransport)
        expect((egress as unknown as RemoteTransport).node).toBe(nodeB)
        expect(router.transportsForTesting.get(egress.id)).toBe(egress)
        expect(egress.tuple.localAddress).toBe("127.0.0.1")
        const onB = yield* clientB.NodeInfo()
        expect(onB.transports).toBe(1)
        expect(onB.workers).toHaveLength(1)
        const bWorkerPids = onB.workers.map((w) => w.pid)

        // A consumer there of the app's producer: piped from the app's Node into B (SRTP).
        const pipes: Array<unknown> = []
        mafalda.observer.on("pipe", (pipe) => pipes.push(pipe))
        yield* Effect.promise(() => egress.connect({ ip: "127.0.0.1", port: receiver.local.port }))
        const consumeStarted = performance.now()
        const consumer = yield* Effect.promise(() =>
          egress.consume({ producerId: producer.id, rtpCapabilities: router.rtpCapabilities })
        )
        const withPipeMs = performance.now() - consumeStarted
        expect(consumer.producerId).toBe(producer.id)
        // Another consume there: B's Router receives the producer already (no pipe, one call).
        const againStarted = performance.now()
        const again = yield* Effect.promise(() =>
          egress.consume({ producerId: producer.id, rtpCapabilities: router.rtpCapabilities, paused: true })
        )
        const againMs = performance.now() - againStarted
        expect(again.paused).toBe(true)
        again.close()
        console.log(
          `consume() on node-b: ${withPipeMs.toFixed(1)} ms with the pipe handshake, ${againMs.toFixed(1)} ms without`
        )
        const rtp = yield* sendAndCount(sender, receiver, {
          ssrc,
          count: 100,
          first: 0,
          expectedSsrc: consumer.rtpParameters.encodings?.[0]?.ssrc ?? 0
        })
        console.log(`RTP across the pipe app -> node-b: ${rtp.intact}/100 intact`)
        expect(rtp.intact).toBeGreaterThanOrEqual(98)
        // One pipe, from the producer's Router on the app's Node into the Router made on B.
        expect(pipes).toEqual([
          {
            producer: producer.id,
            from: ingressRouter,
            to: (egress as unknown as RemoteTransport).routerId,
            pinned: false
          }
        ])

        // A second producer of the app's, consumed on B: when it closes, so does the pipe
        // into B, and the consumer there closes with `producerclose`.
        const producer2 = yield* Effect.promise(() =>
          ingress.produce({ kind: "audio", rtpParameters: opusParameters(ssrc + 1) })
        )
        const consumerOf2 = yield* Effect.promise(() =>
          egress.consume({ producerId: producer2.id, rtpCapabilities: router.rtpCapabilities })
        )
        const consumerOf2Events = recordEvents(consumerOf2, ["transportclose", "producerclose"])
        producer2.close()
        expect(yield* until(() => consumerOf2.closed, 3000)).toBe(true)
        expect(consumerOf2Events).toEqual(["producerclose", "observer:close"])

        // A producer on a transport of B (the Index says so), consumed on the app's Node:
        // piped from B into the app's Router, by the app's own Node.
        const ingressB = yield* Effect.promise(() =>
          router.createPlainTransport({ listenInfo, rtcpMux: true, comedia: true })
        )
        expect(ingressB).toBeInstanceOf(RemoteTransport)
        const producerB = yield* Effect.promise(() =>
          ingressB.produce({
            kind: "audio",
            rtpParameters: {
              codecs: [{ mimeType: "audio/opus", payloadType: 111, clockRate: 48000, channels: 2 }],
              encodings: [{ ssrc: ssrc + 2 }]
            }
          })
        )
        expect(
          yield* until(
            async () => (await Effect.runPromise(index.find(producerB.id as never)))._tag === "Some",
            3000
          )
        ).toBe(true)
        expect(Option.getOrThrow(yield* index.find(producerB.id as never))).toMatchObject({ node: nodeB })
        const local = yield* Effect.promise(() =>
          ingress.consume({ producerId: producerB.id, rtpCapabilities: router.rtpCapabilities })
        )
        expect(local.producerId).toBe(producerB.id)
        expect(pipes.at(-1)).toEqual({
          producer: producerB.id,
          from: (ingressB as unknown as RemoteTransport).routerId,
          to: ingressRouter,
          pinned: false
        })
        const localEvents = recordEvents(local, ["transportclose", "producerclose"])
        ingressB.close()
        expect(producerB.closed).toBe(true)
        // The pipe from B closes with B's producer: the app's consumer goes with `producerclose`.
        expect(yield* until(() => local.closed, 3000)).toBe(true)
        expect(localEvents).toEqual(["producerclose", "observer:close"])

        // Closing the remote transport closes it on B, its consumer with `transportclose`.
        const consumerEvents = recordEvents(consumer, ["transportclose", "producerclose"])
        const egressEvents = recordEvents(egress, ["routerclose"])
        egress.close()
        expect(egress.closed).toBe(true)
        expect(consumer.closed).toBe(true)
        expect(consumerEvents).toEqual(["transportclose", "observer:close"])
        expect(egressEvents).toEqual(["observer:close"])
        expect(router.transportsForTesting.has(egress.id)).toBe(false)
        expect(
          yield* until(async () => (await Effect.runPromise(clientB.NodeInfo())).transports === 0, 3000)
        ).toBe(true)

        // Another remote transport and consumer; B is killed: they close as under a dead Worker.
        const receiver2 = yield* makeRtpReceiver()
        const egress2 = yield* Effect.promise(() =>
          router.createPlainTransport({ listenInfo, rtcpMux: true, comedia: false })
        )
        expect(egress2).toBeInstanceOf(RemoteTransport)
        yield* Effect.promise(() => egress2.connect({ ip: "127.0.0.1", port: receiver2.local.port }))
        const consumer2 = yield* Effect.promise(() =>
          egress2.consume({ producerId: producer.id, rtpCapabilities: router.rtpCapabilities })
        )
        // A WebRtcTransport delegated alike: B's ICE and DTLS parameters, here.
        const web = yield* Effect.promise(() => router.createWebRtcTransport({ listenInfos: [listenInfo] }))
        expect(web).toBeInstanceOf(RemoteTransport)
        expect(web.iceRole).toBe("controlled")
        expect(web.iceParameters.usernameFragment.length).toBeGreaterThan(0)
        expect(web.iceCandidates[0]).toMatchObject({ address: "127.0.0.1", protocol: "udp" })
        expect(web.dtlsParameters.fingerprints.length).toBeGreaterThan(0)
        const webEvents = recordEvents(web, ["routerclose"])
        const egress2Events = recordEvents(egress2, ["routerclose"])
        const consumer2Events = recordEvents(consumer2, ["transportclose", "producerclose"])
        const killedAt = Date.now()
        b.process.child.kill("SIGKILL")
        expect(yield* until(() => egress2.closed && consumer2.closed, 5000)).toBe(true)
        console.log(`remote objects closed ${Date.now() - killedAt} ms after SIGKILL of node-b`)
        expect(egress2Events).toEqual(["routerclose", "observer:close"])
        expect(web.closed).toBe(true)
        expect(webEvents).toEqual(["routerclose", "observer:close"])
        expect(consumer2Events).toEqual(["transportclose", "observer:close"])
        expect(router.transportsForTesting.has(egress2.id)).toBe(false)
        // The app's own transport and producer are untouched.
        expect(ingress.closed).toBe(false)
        expect(producer.closed).toBe(false)

        // B is evicted from the registry and leaves the snapshot; its Workers died with it.
        const eviction = yield* gone.take.pipe(Effect.timeout("6 seconds"))
        expect(eviction.node).toBe(nodeB)
        expect(yield* until(() => !HashMap.has(mafalda.snapshot().nodes, nodeB), 3000)).toBe(true)
        yield* Effect.promise(() => b.process.exited)
        expect(yield* until(() => bWorkerPids.every((pid) => !processExists(pid)), 5000)).toBe(true)

        // The app closes: deregistered, its Index entries gone, its server and Workers closed.
        yield* closeApp
        for (const pid of appWorkerPids) expect(processExists(pid)).toBe(false)
        expect(yield* Effect.promise(() => refused(appRecord!.address))).toBe(true)
        expect(yield* Effect.promise(() => refused(b.address))).toBe(true)
        expect(yield* Effect.promise(() => keysOf(prefix))).toEqual([])
      }),
    60_000
  )
})

describe.skipIf(!redisAvailable)("The Mafalda Router in cluster mode, Node C alive", () => {
  it.scopedLive(
    "a Worker of C killed closes the remote transport there with routerclose; closing the app closes its transports on C",
    () =>
      Effect.gen(function* () {
        const c = yield* Effect.promise(() => startNode("node-c"))
        const clientC = yield* makeClient({ ...parseAddress(c.address)!, secret })
        const { mafalda, closeApp } = yield* fullClusterApp({ secret, prefix, node: "app-node-2" })
        const nodeC = NodeId.make(c.node)
        expect(yield* until(() => HashMap.has(mafalda.snapshot().nodes, nodeC), 3000)).toBe(true)

        const router = yield* Effect.promise(() => mafalda.createRouter({ mediaCodecs: [opus] }))
        const local = yield* Effect.promise(() => router.createPlainTransport({ listenInfo, comedia: true }))
        expect(local).not.toBeInstanceOf(RemoteTransport)
        const first = yield* Effect.promise(() => router.createPlainTransport({ listenInfo, comedia: true }))
        expect(first).toBeInstanceOf(RemoteTransport)
        const firstEvents = recordEvents(first, ["routerclose"])

        // C's Worker (the Node stays) is killed: the transport there goes with routerclose.
        const [worker] = (yield* clientC.NodeInfo()).workers
        process.kill(worker!.pid, "SIGKILL")
        expect(yield* until(() => first.closed, 5000)).toBe(true)
        expect(firstEvents).toEqual(["routerclose", "observer:close"])

        // Once the snapshot knows that Worker is gone (C's notice), the next transport goes to
        // a new one there.
        const second = yield* Effect.gen(function* () {
          const deadline = Date.now() + 1000
          for (;;) {
            const made = yield* Effect.promise(() =>
              router.createPlainTransport({ listenInfo, comedia: true }).then(
                (t) => t,
                (e: unknown) => e as Error
              )
            )
            if (!(made instanceof Error)) return made
            if (Date.now() > deadline) throw made
            yield* Effect.sleep("200 millis")
          }
        })
        expect(second).toBeInstanceOf(RemoteTransport)
        expect((yield* clientC.NodeInfo()).transports).toBe(1)

        // The app closes: its transports on C are closed there.
        yield* closeApp
        expect(second.closed).toBe(true)
        expect((yield* clientC.NodeInfo()).transports).toBe(0)
        c.process.child.kill("SIGTERM")
        const exit = yield* Effect.promise(() => c.process.exited)
        expect(exit.code).toBe(0)
      }),
    60_000
  )
})

describe.skipIf(!redisAvailable)("The Mafalda Router in cluster mode, scale-down on Node D", () => {
  it.scopedLive(
    "idle pipes with an end on D and an idle Router the app made on D are closed there after the grace; D's Worker is left to D; nothing leaks",
    () =>
      Effect.gen(function* () {
        const d = yield* Effect.promise(() => startNode("node-d"))
        const nodeD = NodeId.make(d.node)
        const clientD = yield* makeClient({ ...parseAddress(d.address)!, secret })
        const { registry } = yield* clusterStore(prefix)
        const grace = 600
        const { mafalda, closeApp } = yield* fullClusterApp({
          secret,
          prefix,
          node: "app-node-3",
          options: { idleGraceMillis: grace, scaleDownInterval: 150 }
        })
        const scaledDown: Array<{ at: number; action: { _tag: string; router?: string; worker?: string } }> =
          []
        mafalda.observer.on("scaledown", (actions: ReadonlyArray<{ _tag: string }>) => {
          for (const action of actions) scaledDown.push({ at: Date.now(), action })
        })
        expect(yield* until(() => HashMap.has(mafalda.snapshot().nodes, nodeD), 3000)).toBe(true)
        const appAddress = (yield* registry.nodes).find((n) => n.node === "app-node-3")!.address
        const clientApp = yield* makeClient({ ...parseAddress(appAddress)!, secret })

        const router = yield* Effect.promise(() => mafalda.createRouter({ mediaCodecs: [opus] }))
        // A producer on the app's Node, consumed on D (a pipe app -> D); a producer on D,
        // consumed on the app's Node (a pipe D -> app, held by the app's own NodeHost).
        const ingress = yield* Effect.promise(() =>
          router.createPlainTransport({ listenInfo, comedia: true })
        )
        expect(ingress).not.toBeInstanceOf(RemoteTransport)
        const producer = yield* Effect.promise(() =>
          ingress.produce({ kind: "audio", rtpParameters: opusParameters(0x5ca1e001) })
        )
        const onD = yield* Effect.promise(() => router.createPlainTransport({ listenInfo, comedia: true }))
        expect(onD).toBeInstanceOf(RemoteTransport)
        const routerD = (onD as unknown as RemoteTransport).routerId
        const producerD = yield* Effect.promise(() =>
          onD.produce({ kind: "audio", rtpParameters: opusParameters(0x5ca1e002) })
        )
        const consumerOnD = yield* Effect.promise(() =>
          onD.consume({ producerId: producer.id, rtpCapabilities: router.rtpCapabilities })
        )
        const consumerHere = yield* Effect.promise(() =>
          ingress.consume({ producerId: producerD.id, rtpCapabilities: router.rtpCapabilities })
        )
        expect((yield* clientD.NodeInfo()).pipes).toBe(2)
        expect((yield* clientApp.NodeInfo()).pipes).toBe(2)
        const workersOfD = (yield* clientD.NodeInfo()).workers.map((w) => w.id)
        expect(workersOfD).toHaveLength(1)

        // The consumers go: the two pipes are idle; after the grace they are closed, on
        // both Nodes (D's pipe into its Router by D, the one into the app's Router by the
        // app's NodeHost; each origin's end goes with its lease).
        const consumersClosedAt = Date.now()
        consumerOnD.close()
        consumerHere.close()
        const pipesGone = async () =>
          (await Effect.runPromise(clientD.NodeInfo())).pipes === 0 &&
          (await Effect.runPromise(clientApp.NodeInfo())).pipes === 0
        expect(yield* until(pipesGone, grace + 5000)).toBe(true)
        const pipeCloses = scaledDown.filter((s) => s.action._tag === "ClosePipe")
        expect(pipeCloses).toHaveLength(2)
        for (const s of pipeCloses) expect(s.at - consumersClosedAt).toBeGreaterThanOrEqual(grace)
        console.log(
          `pipes across Nodes closed by scale-down ${Date.now() - consumersClosedAt} ms after their consumers (grace ${grace} ms)`
        )
        // The Router on D is still used (its transport): open.
        expect(scaledDown.some((s) => s.action._tag === "CloseRouter" && s.action.router === routerD)).toBe(
          false
        )

        // The transport on D goes: its Router there is idle, and closed on D after the grace.
        const transportClosedAt = Date.now()
        onD.close()
        expect(
          yield* until(async () => (await Effect.runPromise(clientD.NodeInfo())).transports === 0, 3000)
        ).toBe(true)
        expect(
          yield* until(
            () => scaledDown.some((s) => s.action._tag === "CloseRouter" && s.action.router === routerD),
            grace + 5000
          )
        ).toBe(true)
        const routerClose = scaledDown.find((s) => s.action._tag === "CloseRouter")!
        expect(routerClose.at - transportClosedAt).toBeGreaterThanOrEqual(grace)
        console.log(
          `Router on node-d closed by scale-down ${routerClose.at - transportClosedAt} ms after its transport`
        )
        // Gone on D: a transport there is refused as on an unknown Router.
        const refusedOnD = yield* clientD
          .CreatePlainTransport({ router: routerD, listenInfo })
          .pipe(Effect.flip)
        expect(refusedOnD).toMatchObject({ _tag: "UnknownObjectError", what: "Router" })
        // D's Worker is D's: not closed by the app, neither there nor in the app's snapshot.
        yield* Effect.sleep(grace * 2)
        expect((yield* clientD.NodeInfo()).workers.map((w) => w.id)).toEqual(workersOfD)
        expect(scaledDown.some((s) => s.action._tag === "CloseWorker")).toBe(false)
        expect(HashMap.has(mafalda.snapshot().workers, workersOfD[0]!)).toBe(true)
        // Nothing left on either Node but the app's own transport.
        const infoD = yield* clientD.NodeInfo()
        expect({ transports: infoD.transports, pipes: infoD.pipes }).toEqual({ transports: 0, pipes: 0 })
        const infoApp = yield* clientApp.NodeInfo()
        expect(infoApp.pipes).toBe(0)
        expect(ingress.closed).toBe(false)

        yield* closeApp
        d.process.child.kill("SIGTERM")
        expect((yield* Effect.promise(() => d.process.exited)).code).toBe(0)
      }),
    60_000
  )
})
