/**
 * The main demo: a real broadcast through one Mafalda Router over all local CPUs. One
 * producer fed with real RTP from a UDP socket, hundreds of consumers (each on its own
 * PlainTransport, all sending to one local UDP receiver that tells them apart by SSRC).
 * Returns the stream tree, per Worker its consumers and load, the pipes, and what arrived,
 * as a plain JSON-able object. Everything is closed before it returns.
 *
 * @module
 */
import { performance } from "node:perf_hooks"
import { Duration, Effect, Exit, Fiber, Scope } from "effect"
import type { types } from "mediasoup"
import { makeRtpPackets, makeRtpReceiver, makeRtpSender } from "../media/rtp.js"
import { createMafalda } from "../promise.js"
import type { MafaldaOptionsInput } from "./MafaldaOptions.js"
import type { ClusterStatus } from "./status.js"

export interface BroadcastDemoOptions {
  /** Consumers (default 300). */
  readonly consumers?: number | undefined
  /** Packets each consumer must receive (default 50). */
  readonly packets?: number | undefined
  /** Mafalda options (default: all local CPUs, watermark 60, default costs). */
  readonly mafalda?: MafaldaOptionsInput | undefined
  /** How long to wait for the packets after the last is sent (default 5 s). */
  readonly timeout?: Duration.DurationInput | undefined
}

export interface BroadcastDemoResult {
  readonly consumers: number
  readonly producer: { readonly id: string; readonly ssrc: number; readonly router: string | undefined }
  readonly workers: ReadonlyArray<{
    readonly id: string
    readonly pid: number | undefined
    readonly routers: ReadonlyArray<string>
    readonly consumers: number
    readonly load: number
    readonly reportedLoad: number
  }>
  readonly tree: ReadonlyArray<{
    readonly router: string
    readonly worker: string | undefined
    readonly parent: string | null
    readonly depth: number
    readonly consumers: number
  }>
  readonly pipes: ClusterStatus["pipes"]
  readonly rtp: {
    readonly packetsSent: number
    readonly packetsPerConsumer: number
    /** Consumers that received packets with their own SSRC. */
    readonly consumersReceiving: number
    /** Consumers that received every packet sent. */
    readonly consumersComplete: number
    readonly minimumReceived: number
    readonly totalReceived: number
  }
  readonly setupMs: number
  readonly elapsedMs: number
}

const listenInfo: types.TransportListenInfo = { protocol: "udp", ip: "127.0.0.1" }
const PAYLOAD_TYPE = 111

export const runBroadcastDemo = async (options: BroadcastDemoOptions = {}): Promise<BroadcastDemoResult> => {
  const start = performance.now()
  const count = options.consumers ?? 300
  const packets = options.packets ?? 50
  const timeout = Duration.decode(options.timeout ?? Duration.seconds(5))
  const ssrc = 0x5eed0001
  const scope = Effect.runSync(Scope.make())
  const acquire = <A, E>(effect: Effect.Effect<A, E, Scope.Scope>) =>
    Effect.runPromise(Scope.extend(effect, scope))
  const mafalda = await createMafalda({
    workerSettings: { rtcMinPort: 45000, rtcMaxPort: 49999 },
    ...options.mafalda
  })
  try {
    const router = await mafalda.createRouter({
      mediaCodecs: [{ kind: "audio", mimeType: "audio/opus", clockRate: 48000, channels: 2 }]
    })
    const ingress = await router.createPlainTransport({ listenInfo, rtcpMux: true, comedia: true })
    const producer = await ingress.produce({
      kind: "audio",
      rtpParameters: {
        codecs: [{ mimeType: "audio/opus", payloadType: PAYLOAD_TYPE, clockRate: 48000, channels: 2 }],
        encodings: [{ ssrc }]
      }
    })
    const receiver = await acquire(makeRtpReceiver())
    const ssrcs = new Set<number>()
    for (let i = 0; i < count; i++) {
      const transport = await router.createPlainTransport({ listenInfo, rtcpMux: true, comedia: false })
      await transport.connect({ ip: receiver.local.address, port: receiver.local.port })
      const consumer = await transport.consume({
        producerId: producer.id,
        rtpCapabilities: router.rtpCapabilities
      })
      ssrcs.add(consumer.rtpParameters.encodings?.[0]?.ssrc ?? -1)
    }
    const setupMs = Math.round(performance.now() - start)
    const status = await mafalda.status()
    const sender = await acquire(
      makeRtpSender({ target: { address: ingress.tuple.localAddress, port: ingress.tuple.localPort } })
    )
    const packetsSent = await Effect.runPromise(
      Effect.gen(function* () {
        const sending = yield* sender
          .sendAll(makeRtpPackets({ ssrc, payloadType: PAYLOAD_TYPE, count: packets }), {
            interval: Duration.millis(20)
          })
          .pipe(Effect.fork)
        const sent = yield* Fiber.join(sending)
        yield* receiver
          .awaitPackets(sent * count, { timeout, where: (p) => ssrcs.has(p.ssrc) })
          .pipe(Effect.ignore)
        return sent
      })
    )
    const received = await Effect.runPromise(receiver.packets)
    const perSsrc = new Map<number, number>()
    for (const p of received) perSsrc.set(p.ssrc, (perSsrc.get(p.ssrc) ?? 0) + 1)
    const counts = Array.from(ssrcs, (s) => perSsrc.get(s) ?? 0)
    const tree = status.trees.find((t) => t.producer === producer.id)?.hops ?? []
    return {
      consumers: count,
      producer: { id: producer.id, ssrc, router: tree[0]?.router },
      workers: status.workers.map((w) => ({
        id: w.id,
        pid: w.pid,
        routers: w.routers,
        consumers: w.consumers,
        load: w.load,
        reportedLoad: w.reportedLoad
      })),
      tree,
      pipes: status.pipes,
      rtp: {
        packetsSent,
        packetsPerConsumer: packets,
        consumersReceiving: counts.filter((n) => n > 0).length,
        consumersComplete: counts.filter((n) => n >= packetsSent).length,
        minimumReceived: counts.length === 0 ? 0 : Math.min(...counts),
        totalReceived: counts.reduce((a, b) => a + b, 0)
      },
      setupMs,
      elapsedMs: Math.round(performance.now() - start)
    }
  } finally {
    await mafalda.close()
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
}
