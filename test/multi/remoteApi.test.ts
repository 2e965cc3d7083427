/**
 * mediasoup's API on transports delegated to another Node: `getStats()` of a remote
 * transport, producer and consumer (the Node's `GetStats`, for the objects of the client
 * that made them only), and the ICE/DTLS state events of a remote WebRtcTransport (the
 * Node's `TransportState` notices), driven by a real ICE connectivity check: a STUN binding
 * request with USE-CANDIDATE, as a controlling ICE agent sends it, makes B's ICE-lite
 * transport `completed` with a selected tuple, and (connected as a DTLS server's peer) its
 * DTLS `connecting`. The app is this test process (`createMafalda({ cluster })`, its one
 * Worker full after one transport), B a `mafalda node` process. Afterwards no process,
 * Worker, Redis key of the prefix or listening socket is left.
 */
import { createHmac, randomBytes } from "node:crypto"
import * as dgram from "node:dgram"
import * as zlib from "node:zlib"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, HashMap } from "effect"
import type { types } from "mediasoup"
import { parseAddress } from "../../src/cluster/NodeClients.js"
import { RemoteTransport } from "../../src/cluster/RemoteTransport.js"
import { NodeId } from "../../src/core/Ids.js"
import { makeRtpReceiver, makeRtpSender } from "../../src/media/rtp.js"
import { processExists } from "../../src/media/worker.js"
import { makeClient } from "../../src/rpc/transport.js"
import { opusParameters } from "./appMedia.js"
import { fullClusterApp, refused, until } from "./clusterSupport.js"
import { nodeArgs, nodeProcessPool } from "./nodeProcesses.js"
import { sendAndCount } from "./pipeScenario.js"
import { cleanPrefix, clusterStore, keysOf, redisAvailable, redisUrl, testPrefix } from "./redisSupport.js"

const secret = "remote-api-secret-0123456"
const prefix = testPrefix("remote-api")
const nodes = nodeProcessPool()

const opus = { kind: "audio", mimeType: "audio/opus", clockRate: 48000, channels: 2 } as const
const listenInfo = { protocol: "udp", ip: "127.0.0.1" } as const

afterAll(async () => {
  await nodes.killAll()
  await cleanPrefix(prefix)
})

/** A STUN attribute (RFC 5389): type, length, value padded to 4 bytes. */
const attribute = (type: number, value: Buffer) => {
  const head = Buffer.alloc(4)
  head.writeUInt16BE(type, 0)
  head.writeUInt16BE(value.length, 2)
  const pad = Buffer.alloc((4 - (value.length % 4)) % 4)
  return Buffer.concat([head, value, pad])
}

/**
 * A STUN binding request as a controlling ICE agent nominates a pair with (RFC 8445):
 * USERNAME, PRIORITY, ICE-CONTROLLING, USE-CANDIDATE, MESSAGE-INTEGRITY (with the remote
 * password), FINGERPRINT.
 */
const bindingRequest = (remoteUfrag: string, remotePassword: string) => {
  const header = (length: number) => {
    const h = Buffer.alloc(20)
    h.writeUInt16BE(0x0001, 0)
    h.writeUInt16BE(length, 2)
    h.writeUInt32BE(0x2112a442, 4)
    transaction.copy(h, 8)
    return h
  }
  const transaction = randomBytes(12)
  const priority = Buffer.alloc(4)
  priority.writeUInt32BE(1853824767, 0)
  const body = Buffer.concat([
    attribute(0x0006, Buffer.from(`${remoteUfrag}:client`)),
    attribute(0x0024, priority),
    attribute(0x802a, randomBytes(8)),
    attribute(0x0025, Buffer.alloc(0))
  ])
  // MESSAGE-INTEGRITY over the message with a length that counts it.
  const integrity = createHmac("sha1", remotePassword)
    .update(Buffer.concat([header(body.length + 24), body]))
    .digest()
  const withIntegrity = Buffer.concat([body, attribute(0x0008, integrity)])
  const crc = Buffer.alloc(4)
  crc.writeUInt32BE(
    (zlib.crc32(Buffer.concat([header(withIntegrity.length + 8), withIntegrity])) ^ 0x5354554e) >>> 0,
    0
  )
  const all = Buffer.concat([withIntegrity, attribute(0x8028, crc)])
  return Buffer.concat([header(all.length), all])
}

describe.skipIf(!redisAvailable)("mediasoup's API on a transport of another Node", () => {
  it.scopedLive(
    "getStats() of a remote transport, producer and consumer; a comedia PlainTransport's tuple; bad arguments throw TypeError; ICE and DTLS state events of a remote WebRtcTransport",
    () =>
      Effect.gen(function* () {
        const b = yield* Effect.promise(() =>
          nodes.start(
            nodeArgs({ redis: redisUrl, prefix, node: "node-b", cpus: 2, drainTimeoutSeconds: 1 }),
            { MAFALDA_SECRET: secret }
          )
        )
        const nodeB = NodeId.make(b.node)
        const clientB = yield* makeClient({ ...parseAddress(b.address)!, secret })
        const { registry } = yield* clusterStore(prefix)
        const { mafalda, closeApp } = yield* fullClusterApp({ secret, prefix, node: "app-node" })
        const appRecord = (yield* registry.nodes).find((n) => n.node === "app-node")
        expect(yield* until(() => HashMap.has(mafalda.snapshot().nodes, nodeB), 3000)).toBe(true)

        const router = yield* Effect.promise(() => mafalda.createRouter({ mediaCodecs: [opus] }))
        // One transport fills the app's one Worker: the next ones go to B.
        const local = yield* Effect.promise(() => router.createPlainTransport({ listenInfo, comedia: true }))
        expect(local).not.toBeInstanceOf(RemoteTransport)
        const appWorkerPids = (yield* Effect.promise(() => mafalda.workers())).map((w) => w.pid)

        // A producer on a plain transport of B, fed with RTP; a consumer of it on another.
        const ingress = yield* Effect.promise(() =>
          router.createPlainTransport({ listenInfo, rtcpMux: true, comedia: true })
        )
        expect(ingress).toBeInstanceOf(RemoteTransport)
        const ssrc = 0x5ea75000
        const producer = yield* Effect.promise(() =>
          ingress.produce({ kind: "audio", rtpParameters: opusParameters(ssrc) })
        )
        const egress = yield* Effect.promise(() =>
          router.createPlainTransport({ listenInfo, rtcpMux: true, comedia: false })
        )
        expect(egress).toBeInstanceOf(RemoteTransport)
        const receiver = yield* makeRtpReceiver()
        yield* Effect.promise(() => egress.connect({ ip: "127.0.0.1", port: receiver.local.port }))
        const consumer = yield* Effect.promise(() =>
          egress.consume({ producerId: producer.id, rtpCapabilities: router.rtpCapabilities })
        )
        // `comedia`: the Node's PlainTransport learns the sender's address from its first packet,
        // and the app's object emits `tuple` (and `observer` too) with it, as mediasoup does.
        expect(ingress.tuple.remoteIp).toBeUndefined()
        const learnt = new Promise<types.TransportTuple>((resolve) => ingress.once("tuple", resolve))
        const learntByObserver = new Promise<types.TransportTuple>((resolve) =>
          ingress.observer.once("tuple", resolve)
        )
        const sender = yield* makeRtpSender({
          target: { address: ingress.tuple.localAddress, port: ingress.tuple.localPort }
        })
        const rtp = yield* sendAndCount(sender, receiver, {
          ssrc,
          count: 50,
          first: 0,
          expectedSsrc: consumer.rtpParameters.encodings?.[0]?.ssrc ?? 0
        })
        expect(rtp.intact).toBeGreaterThanOrEqual(48)
        const comediaTuple = yield* Effect.promise(() => learnt).pipe(Effect.timeout("3 seconds"))
        expect(comediaTuple).toMatchObject({ remoteIp: "127.0.0.1", remotePort: sender.local.port })
        expect(yield* Effect.promise(() => learntByObserver).pipe(Effect.timeout("1 second"))).toEqual(
          comediaTuple
        )
        expect(ingress.tuple).toEqual(comediaTuple)

        // Arguments the Node API's schema refuses throw mediasoup's TypeError, as on the app's Node.
        const thrown = (call: () => Promise<unknown>) =>
          Effect.promise(() =>
            call().then(
              () => "resolved",
              (e: unknown) => e
            )
          )
        const badProduce = yield* thrown(() =>
          ingress.produce({ kind: "audio", rtpParameters: { codecs: "nope" } as never })
        )
        expect(badProduce).toBeInstanceOf(TypeError)
        const badConnect = yield* thrown(() => ingress.connect({ ip: "127.0.0.1", port: 70000 }))
        expect(badConnect).toBeInstanceOf(TypeError)

        const statsStarted = performance.now()
        const ingressStats = yield* Effect.promise(() => ingress.getStats())
        const statsMs = performance.now() - statsStarted
        console.log(`getStats() of a transport on node-b: ${statsMs.toFixed(1)} ms`)
        expect(ingressStats).toHaveLength(1)
        expect(ingressStats[0]).toMatchObject({
          type: "plain-rtp-transport",
          transportId: ingress.id,
          comedia: true
        })
        expect(ingressStats[0]!.bytesReceived).toBeGreaterThan(0)
        const egressStats = yield* Effect.promise(() => egress.getStats())
        expect(egressStats[0]).toMatchObject({ type: "plain-rtp-transport", transportId: egress.id })
        expect(egressStats[0]!.bytesSent).toBeGreaterThan(0)
        const producerStats = yield* Effect.promise(() => producer.getStats())
        expect(producerStats.map((s) => s.type)).toEqual(["inbound-rtp"])
        expect(producerStats[0]).toMatchObject({ ssrc, kind: "audio", mimeType: "audio/opus" })
        expect(producerStats[0]!.packetCount).toBeGreaterThanOrEqual(48)
        const consumerStats = yield* Effect.promise(() => consumer.getStats())
        expect(consumerStats.map((s) => s.type)).toEqual(["outbound-rtp", "inbound-rtp"])
        expect(consumerStats[0]!.packetCount).toBeGreaterThanOrEqual(48)

        // Another client of B (another connection) cannot read them: not its objects.
        for (const [what, id] of [
          ["transport", ingress.id],
          ["producer", producer.id],
          ["consumer", consumer.id]
        ] as const) {
          const refusal = yield* Effect.flip(clientB.GetStats({ what, id }))
          expect(refusal).toMatchObject({ _tag: "UnknownObjectError", what, id })
        }

        // Closed: getStats() rejects with mediasoup's InvalidStateError.
        consumer.close()
        yield* Effect.promise(() => expect(consumer.getStats()).rejects.toThrow("Consumer closed"))
        yield* Effect.promise(() =>
          expect(consumer.getStats()).rejects.toMatchObject({ name: "InvalidStateError" })
        )
        ingress.close()
        expect(producer.closed).toBe(true)
        yield* Effect.promise(() =>
          expect(producer.getStats()).rejects.toMatchObject({ name: "InvalidStateError" })
        )
        yield* Effect.promise(() =>
          expect(ingress.getStats()).rejects.toMatchObject({ name: "InvalidStateError" })
        )
        egress.close()

        // A WebRtcTransport on B: a controlling ICE agent's nomination (a real STUN check).
        const web = yield* Effect.promise(() => router.createWebRtcTransport({ listenInfos: [listenInfo] }))
        expect(web).toBeInstanceOf(RemoteTransport)
        expect(web.iceState).toBe("new")
        expect(web.dtlsState).toBe("new")
        expect(web.iceSelectedTuple).toBeUndefined()
        const seen: Array<[string, unknown]> = []
        const observed: Array<string> = []
        for (const event of ["icestatechange", "iceselectedtuplechange", "dtlsstatechange"] as const) {
          web.on(event as never, ((value: unknown) => seen.push([event, value])) as never)
          web.observer.on(event as never, (() => observed.push(event)) as never)
        }
        // The peer is the DTLS server: B's transport is its client, and starts once ICE is up.
        yield* Effect.promise(() =>
          web.connect({
            dtlsParameters: {
              role: "server",
              fingerprints: [{ algorithm: "sha-256", value: Array(32).fill("AB").join(":") }]
            }
          })
        )
        const socket = dgram.createSocket("udp4")
        yield* Effect.addFinalizer(() => Effect.sync(() => socket.close()))
        yield* Effect.promise(() => new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve)))
        const candidate = web.iceCandidates[0]!
        const request = bindingRequest(web.iceParameters.usernameFragment, web.iceParameters.password)
        socket.send(request, candidate.port, candidate.address)
        expect(yield* until(() => web.dtlsState === "connecting", 5000)).toBe(true)
        const tuple = {
          localAddress: "127.0.0.1",
          localPort: candidate.port,
          remoteIp: "127.0.0.1",
          remotePort: socket.address().port,
          protocol: "udp"
        }
        // As mediasoup emits them (its Worker tells the selected tuple and ICE's completion in
        // its own order; DTLS starts once ICE is up).
        console.log(
          `state events of the WebRtcTransport on node-b: ${seen.map(([e, v]) => `${e}(${typeof v === "string" ? v : "tuple"})`).join(", ")}`
        )
        expect(seen).toHaveLength(3)
        expect(seen).toEqual(
          expect.arrayContaining([
            ["icestatechange", "completed"],
            ["iceselectedtuplechange", tuple],
            ["dtlsstatechange", "connecting"]
          ])
        )
        expect(seen[2]).toEqual(["dtlsstatechange", "connecting"])
        expect(observed).toEqual(seen.map(([event]) => event))
        expect(web.iceState).toBe("completed")
        expect(web.iceSelectedTuple).toEqual(tuple)
        const webStats = yield* Effect.promise(() => web.getStats())
        expect(webStats[0]).toMatchObject({
          type: "webrtc-transport",
          iceState: "completed",
          dtlsState: "connecting"
        })
        web.close()
        expect(web.iceState).toBe("closed")
        expect(web.dtlsState).toBe("closed")
        expect(web.iceSelectedTuple).toBeUndefined()
        expect(
          yield* until(async () => (await Effect.runPromise(clientB.NodeInfo())).transports === 0, 3000)
        ).toBe(true)

        // Everything goes: the app, then B.
        const bWorkerPids = (yield* clientB.NodeInfo()).workers.map((w) => w.pid)
        yield* closeApp
        for (const pid of appWorkerPids) expect(processExists(pid)).toBe(false)
        b.process.child.kill("SIGTERM")
        const exit = yield* Effect.promise(() => b.process.exited)
        expect(exit.code).toBe(0)
        expect(yield* until(() => bWorkerPids.every((pid) => !processExists(pid)), 5000)).toBe(true)
        expect(yield* Effect.promise(() => refused(appRecord!.address))).toBe(true)
        expect(yield* Effect.promise(() => refused(b.address))).toBe(true)
        expect(yield* until(async () => (await keysOf(prefix)).length === 0, 3000)).toBe(true)
      }),
    60_000
  )
})
