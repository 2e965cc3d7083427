/**
 * The pipe demo: one stream crossing two mediasoup Workers (two CPU cores).
 *
 * Real RTP packets (opus payload type, fixed SSRC) are sent from a UDP socket into a
 * PlainTransport of Router A on Worker 1, piped with `pipeToRouter` to Router B on Worker 2,
 * and consumed there through another PlainTransport that sends them to a local UDP
 * receiver. Everything is released (Workers closed, processes exited, sockets closed)
 * before the summary is returned.
 *
 * @module
 */
import { Duration, Effect } from "effect"
import type { types } from "mediasoup"
import {
  makeRtpPackets,
  makeRtpReceiver,
  makeRtpSender,
  payloadIndex,
  type UdpBindError,
  type UdpSendError
} from "../media/rtp.js"
import { acquireWorker, type MediasoupError, opusCodec, tryMediasoup } from "../media/worker.js"

/** Options of {@link runPipeDemo}. */
export interface PipeDemoOptions {
  /** Number of RTP packets to send (default 50). */
  readonly packetCount?: number | undefined
  /** Pause between two packets (default 10 ms). */
  readonly packetInterval?: Duration.DurationInput | undefined
  /** How long to wait for all packets after the last one was sent (default 5 seconds). */
  readonly receiveTimeout?: Duration.DurationInput | undefined
  /** SSRC of the produced stream (default 0x11223344). */
  readonly ssrc?: number | undefined
  /**
   * RTC port ranges of Worker 1 and Worker 2 (defaults 40000–40099 and 40100–40199), so
   * that the two Workers, and other programs, do not compete for the same ports.
   */
  readonly rtcPortRanges?:
    | readonly [
        { readonly min: number; readonly max: number },
        { readonly min: number; readonly max: number }
      ]
    | undefined
}

/** What {@link runPipeDemo} did, as plain data. */
export interface PipeDemoSummary {
  readonly workers: ReadonlyArray<{
    readonly pid: number
    readonly rtcMinPort: number
    readonly rtcMaxPort: number
    readonly routerId: string
  }>
  readonly routers: { readonly a: string; readonly b: string }
  readonly producer: {
    readonly id: string
    readonly kind: "audio"
    readonly ssrc: number
    readonly payloadType: number
    readonly transportId: string
  }
  readonly pipe: {
    /** The PipeTransport of Router A (sends) and the one of Router B (receives). */
    readonly transportIds: { readonly a: string; readonly b: string }
    readonly consumerId: string
    readonly producerId: string
  }
  readonly consumer: {
    readonly id: string
    readonly ssrc: number
    readonly payloadType: number
    readonly transportId: string
  }
  readonly packetsSent: number
  readonly packetsReceived: number
  /** Received packets whose payload is byte-for-byte the one sent with the same index. */
  readonly payloadsIntact: number
  /** From the start to the end of the teardown, in milliseconds. */
  readonly elapsedMs: number
}

/** The payload type the demo's sender uses; Router B's consumer gets the router's own. */
const SENT_PAYLOAD_TYPE = 111

/**
 * Runs the pipe demo and returns its summary. Silent: it logs nothing. Fails only when
 * mediasoup or a UDP socket fails; lost packets show as `packetsReceived < packetsSent`.
 */
export const runPipeDemo = (
  options: PipeDemoOptions = {}
): Effect.Effect<PipeDemoSummary, MediasoupError | UdpBindError | UdpSendError> => {
  const packetCount = options.packetCount ?? 50
  const packetInterval = options.packetInterval ?? Duration.millis(10)
  const receiveTimeout = options.receiveTimeout ?? Duration.seconds(5)
  const ssrc = options.ssrc ?? 0x11223344
  const [ports1, ports2] = options.rtcPortRanges ?? [
    { min: 40000, max: 40099 },
    { min: 40100, max: 40199 }
  ]
  const listenInfo: types.TransportListenInfo = { protocol: "udp", ip: "127.0.0.1" }

  const scenario = Effect.gen(function* () {
    const worker1 = yield* acquireWorker({ logLevel: "warn", rtcMinPort: ports1.min, rtcMaxPort: ports1.max })
    const worker2 = yield* acquireWorker({ logLevel: "warn", rtcMinPort: ports2.min, rtcMaxPort: ports2.max })
    const routerA = yield* tryMediasoup("worker1.createRouter", () =>
      worker1.createRouter({ mediaCodecs: [opusCodec] })
    )
    const routerB = yield* tryMediasoup("worker2.createRouter", () =>
      worker2.createRouter({ mediaCodecs: [opusCodec] })
    )

    // Ingress: comedia learns the sender's address from its first packet.
    const ingress = yield* tryMediasoup("routerA.createPlainTransport", () =>
      routerA.createPlainTransport({ listenInfo, rtcpMux: true, comedia: true })
    )
    const producer = yield* tryMediasoup("ingress.produce", () =>
      ingress.produce({
        kind: "audio",
        rtpParameters: {
          codecs: [{ mimeType: "audio/opus", payloadType: SENT_PAYLOAD_TYPE, clockRate: 48000, channels: 2 }],
          encodings: [{ ssrc }]
        }
      })
    )

    // The pipe: the only transports Router A creates during pipeToRouter are its PipeTransport,
    // and Router B's is the one it creates at the same time.
    const pipeTransportIds = { a: "", b: "" }
    const onNewTransportA = (transport: types.Transport) => {
      pipeTransportIds.a = transport.id
    }
    const onNewTransportB = (transport: types.Transport) => {
      pipeTransportIds.b = transport.id
    }
    routerA.observer.on("newtransport", onNewTransportA)
    routerB.observer.on("newtransport", onNewTransportB)
    const piped = yield* tryMediasoup("routerA.pipeToRouter", () =>
      routerA.pipeToRouter({ producerId: producer.id, router: routerB })
    ).pipe(
      Effect.ensuring(
        Effect.sync(() => {
          routerA.observer.off("newtransport", onNewTransportA)
          routerB.observer.off("newtransport", onNewTransportB)
        })
      )
    )
    const pipeConsumer = piped.pipeConsumer
    const pipeProducer = piped.pipeProducer
    if (pipeConsumer === undefined || pipeProducer === undefined) {
      return yield* Effect.die(new Error("pipeToRouter returned no pipe consumer/producer for a Producer"))
    }

    // Egress: Router B sends the consumed stream to a local UDP receiver.
    const receiver = yield* makeRtpReceiver()
    const egress = yield* tryMediasoup("routerB.createPlainTransport", () =>
      routerB.createPlainTransport({ listenInfo, rtcpMux: true, comedia: false })
    )
    yield* tryMediasoup("egress.connect", () =>
      egress.connect({ ip: receiver.local.address, port: receiver.local.port })
    )
    const consumer = yield* tryMediasoup("egress.consume", () =>
      egress.consume({ producerId: producer.id, rtpCapabilities: routerB.rtpCapabilities })
    )

    const sender = yield* makeRtpSender({
      target: { address: ingress.tuple.localAddress, port: ingress.tuple.localPort }
    })
    const packets = makeRtpPackets({ ssrc, payloadType: SENT_PAYLOAD_TYPE, count: packetCount })
    const packetsSent = yield* sender.sendAll(packets, { interval: packetInterval })
    const received = yield* receiver
      .awaitPackets(packetsSent, { timeout: receiveTimeout })
      .pipe(Effect.catchTag("RtpReceiveTimeoutError", () => receiver.packets))

    const payloadsIntact = received.filter((packet) => {
      const index = payloadIndex(packet.payload)
      const sent = index === undefined ? undefined : packets[index]?.payload
      return sent !== undefined && Buffer.compare(sent, packet.payload) === 0
    }).length

    return {
      workers: [
        { pid: worker1.pid, rtcMinPort: ports1.min, rtcMaxPort: ports1.max, routerId: routerA.id },
        { pid: worker2.pid, rtcMinPort: ports2.min, rtcMaxPort: ports2.max, routerId: routerB.id }
      ],
      routers: { a: routerA.id, b: routerB.id },
      producer: {
        id: producer.id,
        kind: "audio",
        ssrc,
        payloadType: SENT_PAYLOAD_TYPE,
        transportId: ingress.id
      },
      pipe: { transportIds: pipeTransportIds, consumerId: pipeConsumer.id, producerId: pipeProducer.id },
      consumer: {
        id: consumer.id,
        ssrc: consumer.rtpParameters.encodings?.[0]?.ssrc ?? 0,
        payloadType: consumer.rtpParameters.codecs[0]?.payloadType ?? 0,
        transportId: egress.id
      },
      packetsSent,
      packetsReceived: received.length,
      payloadsIntact
    } as const
  })

  return Effect.gen(function* () {
    const start = performance.now()
    const summary = yield* Effect.scoped(scenario)
    return { ...summary, elapsedMs: Math.round(performance.now() - start) }
  })
}
