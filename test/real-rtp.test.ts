/**
 * Real RTP through two real mediasoup Workers: packets sent from a UDP socket into Router A
 * (Worker 1), piped to Router B (Worker 2) with pipeToRouter, consumed there and received
 * on another UDP socket. Plus the RTP helpers those tests rely on.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Deferred, Effect, Either, Exit, Fiber, Stream } from "effect"
import type { types } from "mediasoup"
import { runPipeDemo } from "../src/demo/pipeDemo.js"
import {
  buildRtpPacket,
  indexedPayload,
  isRtcpPacket,
  makeRtpPackets,
  makeRtpReceiver,
  makeRtpSender,
  parseRtpPacket,
  payloadIndex,
  RtpBuildError
} from "../src/media/rtp.js"
import { acquireWorker, opusCodec, processExists, tryMediasoup } from "../src/media/worker.js"

const PACKET_COUNT = 60
const SENT_PAYLOAD_TYPE = 111
const SENT_SSRC = 0x5eed1234
const listenInfo: types.TransportListenInfo = { protocol: "udp", ip: "127.0.0.1" }

const sumStats = (stats: ReadonlyArray<{ packetCount: number; byteCount: number }>) => ({
  packetCount: stats.reduce((n, s) => n + s.packetCount, 0),
  byteCount: stats.reduce((n, s) => n + s.byteCount, 0)
})

describe("RTP helpers", () => {
  it("builds and parses a packet with every header field", () => {
    const init = {
      payloadType: 96,
      sequenceNumber: 65535,
      timestamp: 0xfffffff0,
      ssrc: 0xdeadbeef,
      marker: true,
      csrcs: [1, 0xffffffff],
      headerExtension: { profile: 0xbede, data: Uint8Array.of(0x10, 0xaa, 0, 0) },
      payload: indexedPayload(7, 33),
      paddingLength: 3
    }
    const bytes = buildRtpPacket(init)
    expect(bytes.length).toBe(12 + 8 + 8 + 33 + 3)
    expect(bytes[0]! >> 6).toBe(2)
    const parsed = Either.getOrThrow(parseRtpPacket(bytes))
    expect(parsed).toMatchObject({ ...init, csrcs: [1, 0xffffffff] })
    expect(payloadIndex(parsed.payload)).toBe(7)
    expect(isRtcpPacket(bytes)).toBe(false)
  })

  it("rejects what is not RTP and refuses out-of-range fields", () => {
    expect(Either.isLeft(parseRtpPacket(new Uint8Array(11)))).toBe(true)
    expect(Either.isLeft(parseRtpPacket(new Uint8Array(12)))).toBe(true) // version 0
    const senderReport = Uint8Array.of(0x80, 200, 0, 6, ...new Array<number>(24).fill(0))
    expect(isRtcpPacket(senderReport)).toBe(true)
    expect(Either.isLeft(parseRtpPacket(senderReport))).toBe(true)
    expect(() => buildRtpPacket({ payloadType: 128, sequenceNumber: 0, timestamp: 0, ssrc: 0 })).toThrow(
      RtpBuildError
    )
    expect(() => buildRtpPacket({ payloadType: 0, sequenceNumber: 65536, timestamp: 0, ssrc: 0 })).toThrow(
      /sequenceNumber/
    )
  })

  it("numbers a series with wrap-around", () => {
    const series = makeRtpPackets({
      ssrc: 1,
      payloadType: 100,
      count: 3,
      firstSequenceNumber: 65535,
      firstTimestamp: 2 ** 32 - 960
    })
    expect(series.map((p) => p.sequenceNumber)).toEqual([65535, 0, 1])
    expect(series.map((p) => p.timestamp)).toEqual([2 ** 32 - 960, 0, 960])
  })

  it.scopedLive("sends over UDP, waits on arrivals, streams, and times out with a typed error", () =>
    Effect.gen(function* () {
      const receiver = yield* makeRtpReceiver()
      const sender = yield* makeRtpSender({ target: receiver.local })
      const first = makeRtpPackets({ ssrc: 42, payloadType: 100, count: 5 })
      const waiting = yield* Effect.fork(receiver.awaitPackets(8, { timeout: "5 seconds" }))
      expect(yield* sender.sendAll(first)).toBe(5)
      yield* sender.send(Uint8Array.of(0x81, 201, 0, 1, 0, 0, 0, 42)) // an RTCP receiver report
      yield* sender.send(Uint8Array.of(1, 2, 3)) // garbage
      yield* sender.sendStream(Stream.fromIterable(makeRtpPackets({ ssrc: 43, payloadType: 100, count: 3 })))
      const all = yield* Fiber.join(waiting)
      expect(all.map((p) => p.ssrc)).toEqual([42, 42, 42, 42, 42, 43, 43, 43])
      expect(all.map((p) => p.arrivalIndex)).toEqual([0, 1, 2, 3, 4, 5, 6, 7])
      expect(all[0]!.from).toEqual(sender.local)
      expect(yield* sender.sent).toBe(10)
      const stats = yield* receiver.stats
      expect(stats).toMatchObject({ rtp: 8, rtcp: 1, malformed: 1 })

      const onlySsrc43 = yield* receiver.awaitPackets(3, { timeout: "1 second", where: (p) => p.ssrc === 43 })
      expect(onlySsrc43.map((p) => p.sequenceNumber)).toEqual([1, 2, 3])

      // The stream replays what arrived, then follows live arrivals.
      const streamed = yield* Effect.fork(Stream.runCollect(Stream.take(receiver.stream, 9)))
      yield* sender.send({ ssrc: 44, payloadType: 100, sequenceNumber: 9, timestamp: 0 })
      const chunk = yield* Fiber.join(streamed)
      expect(Chunk.toReadonlyArray(chunk).map((p) => p.ssrc)).toEqual([42, 42, 42, 42, 42, 43, 43, 43, 44])

      const timedOut = yield* Effect.flip(receiver.awaitPackets(100, { timeout: "50 millis" }))
      expect(timedOut._tag).toBe("RtpReceiveTimeoutError")
      expect(timedOut.received).toBe(9)
      expect(timedOut.message).toMatch(/received 9 of 100 RTP packets within 50ms/)
    })
  )
})

describe("real RTP through two mediasoup Workers", () => {
  it.live(
    "pipes packets from Router A on Worker 1 to Router B on Worker 2, remapping SSRC and payload type",
    () =>
      Effect.gen(function* () {
        const workerPids: Array<number> = []
        const outcome = yield* Effect.scoped(
          Effect.gen(function* () {
            const worker1 = yield* acquireWorker({ logLevel: "warn", rtcMinPort: 41000, rtcMaxPort: 41099 })
            const worker2 = yield* acquireWorker({ logLevel: "warn", rtcMinPort: 41100, rtcMaxPort: 41199 })
            workerPids.push(worker1.pid, worker2.pid)
            expect(worker1.pid).not.toBe(worker2.pid)
            expect(workerPids.every(processExists)).toBe(true)

            const routerA = yield* tryMediasoup("createRouter A", () =>
              worker1.createRouter({ mediaCodecs: [opusCodec] })
            )
            const routerB = yield* tryMediasoup("createRouter B", () =>
              worker2.createRouter({ mediaCodecs: [opusCodec] })
            )

            const ingress = yield* tryMediasoup("ingress", () =>
              routerA.createPlainTransport({ listenInfo, rtcpMux: true, comedia: true })
            )
            expect(ingress.tuple.localPort).toBeGreaterThanOrEqual(41000)
            expect(ingress.tuple.localPort).toBeLessThanOrEqual(41099)
            const producer = yield* tryMediasoup("produce", () =>
              ingress.produce({
                kind: "audio",
                rtpParameters: {
                  codecs: [
                    { mimeType: "audio/opus", payloadType: SENT_PAYLOAD_TYPE, clockRate: 48000, channels: 2 }
                  ],
                  encodings: [{ ssrc: SENT_SSRC }]
                }
              })
            )

            const { pipeConsumer, pipeProducer } = yield* tryMediasoup("pipeToRouter", () =>
              routerA.pipeToRouter({ producerId: producer.id, router: routerB })
            )
            expect(pipeConsumer).toBeDefined()
            expect(pipeProducer?.id).toBe(producer.id)

            const receiver = yield* makeRtpReceiver()
            const egress = yield* tryMediasoup("egress", () =>
              routerB.createPlainTransport({ listenInfo, rtcpMux: true, comedia: false })
            )
            yield* tryMediasoup("egress.connect", () =>
              egress.connect({ ip: receiver.local.address, port: receiver.local.port })
            )
            const consumer = yield* tryMediasoup("consume", () =>
              egress.consume({ producerId: producer.id, rtpCapabilities: routerB.rtpCapabilities })
            )
            expect(consumer.kind).toBe("audio")
            expect(consumer.paused).toBe(false)
            const consumerSsrc = consumer.rtpParameters.encodings?.[0]?.ssrc
            const consumerPayloadType = consumer.rtpParameters.codecs[0]?.payloadType
            expect(consumerSsrc).toBeTypeOf("number")
            expect(consumerSsrc).not.toBe(SENT_SSRC)
            expect(consumerPayloadType).toBe(routerB.rtpCapabilities.codecs?.[0]?.preferredPayloadType)
            expect(consumerPayloadType).not.toBe(SENT_PAYLOAD_TYPE)

            // comedia: the ingress learns the sender's address from its first packet.
            const sender = yield* makeRtpSender({
              target: { address: ingress.tuple.localAddress, port: ingress.tuple.localPort }
            })
            const tupleLearned = yield* Deferred.make<types.TransportTuple>()
            ingress.once("tuple", (tuple) => Deferred.unsafeDone(tupleLearned, Exit.succeed(tuple)))
            const sent = makeRtpPackets({
              ssrc: SENT_SSRC,
              payloadType: SENT_PAYLOAD_TYPE,
              count: PACKET_COUNT
            })
            expect(yield* sender.sendAll(sent, { interval: "5 millis" })).toBe(PACKET_COUNT)
            const received = yield* receiver.awaitPackets(PACKET_COUNT, { timeout: "10 seconds" })
            const tuple = yield* Deferred.await(tupleLearned).pipe(Effect.timeout("5 seconds"))
            expect(tuple.remotePort).toBe(sender.local.port)

            const [producerStats, pipeConsumerStats, pipeProducerStats, consumerStats] = yield* tryMediasoup(
              "getStats",
              () =>
                Promise.all([
                  producer.getStats(),
                  pipeConsumer!.getStats(),
                  pipeProducer!.getStats(),
                  consumer.getStats()
                ])
            )
            return {
              sent,
              received,
              consumerSsrc,
              consumerPayloadType,
              stats: {
                producer: sumStats(producerStats),
                pipeConsumer: sumStats(pipeConsumerStats.filter((s) => s.type === "outbound-rtp")),
                pipeProducer: sumStats(pipeProducerStats),
                consumer: sumStats(consumerStats.filter((s) => s.type === "outbound-rtp"))
              },
              receiverStats: yield* receiver.stats
            }
          })
        )

        const { sent, received, consumerSsrc, consumerPayloadType, stats } = outcome
        expect(received).toHaveLength(PACKET_COUNT)
        expect(outcome.receiverStats.malformed).toBe(0)
        for (const packet of received) {
          expect(packet.ssrc).toBe(consumerSsrc)
          expect(packet.payloadType).toBe(consumerPayloadType)
        }
        // Every payload arrives once, byte for byte.
        const byIndex = new Map(received.map((packet) => [payloadIndex(packet.payload), packet]))
        expect([...byIndex.keys()].sort((a, b) => a! - b!)).toEqual(sent.map((_, i) => i))
        sent.forEach((packet, i) => {
          expect(Buffer.from(byIndex.get(i)!.payload)).toEqual(Buffer.from(packet.payload!))
        })
        // Sequence numbers and timestamps are rewritten, but consecutively.
        const inOrder = sent.map((_, i) => byIndex.get(i)!)
        for (let i = 1; i < inOrder.length; i++) {
          expect((inOrder[i]!.sequenceNumber - inOrder[i - 1]!.sequenceNumber + 65536) % 65536).toBe(1)
          expect((inOrder[i]!.timestamp - inOrder[i - 1]!.timestamp + 2 ** 32) % 2 ** 32).toBe(960)
        }
        // Each hop counted every packet and byte: the producer what was sent (12-byte headers),
        // the hops after it what the receiver got (mediasoup adds its header extensions there).
        const sentBytes = sent.reduce((sum, packet) => sum + 12 + packet.payload!.length, 0)
        const receivedBytes = received.reduce((sum, packet) => sum + packet.size, 0)
        expect(sentBytes).toBe(PACKET_COUNT * (12 + 160))
        expect(stats.producer).toEqual({ packetCount: PACKET_COUNT, byteCount: sentBytes })
        for (const hop of [stats.pipeConsumer, stats.pipeProducer, stats.consumer]) {
          expect(hop).toEqual({ packetCount: PACKET_COUNT, byteCount: receivedBytes })
        }
        // The scope is closed: both worker processes have exited.
        expect(workerPids).toHaveLength(2)
        for (const pid of workerPids) {
          expect(processExists(pid)).toBe(false)
          expect(() => process.kill(pid, 0)).toThrow(expect.objectContaining({ code: "ESRCH" }))
        }
      }),
    30_000
  )

  it.live(
    "runPipeDemo reports every packet carried and leaves no worker behind",
    () =>
      Effect.gen(function* () {
        const summary = yield* runPipeDemo({
          packetCount: 40,
          packetInterval: "5 millis",
          rtcPortRanges: [
            { min: 41200, max: 41299 },
            { min: 41300, max: 41399 }
          ]
        })
        expect(summary.packetsSent).toBe(40)
        expect(summary.packetsReceived).toBe(40)
        expect(summary.payloadsIntact).toBe(40)
        expect(summary.workers).toHaveLength(2)
        expect(summary.routers.a).not.toBe(summary.routers.b)
        expect(summary.pipe.transportIds.a).not.toBe("")
        expect(summary.pipe.transportIds.b).not.toBe("")
        expect(summary.consumer.ssrc).not.toBe(summary.producer.ssrc)
        expect(summary.consumer.payloadType).not.toBe(summary.producer.payloadType)
        // It sent 40 packets 5 ms apart: 39 intervals (a timer may fire up to 1 ms early).
        expect(summary.elapsedMs).toBeGreaterThanOrEqual(39 * 4)
        expect(JSON.parse(JSON.stringify(summary))).toEqual(summary)
        for (const { pid } of summary.workers) expect(processExists(pid)).toBe(false)
      }),
    30_000
  )
})
