/**
 * The cross-Node scenario shared by the in-process and the multi-process tests: through the
 * Node API only, a producer fed with real RTP on Node A, piped by the RPC handshake into a
 * Router on Node B, consumed there by a PlainTransport that sends to a local UDP receiver;
 * packets checked payload for payload.
 */
import { type Duration, Effect, Stream } from "effect"
import type { NodeId } from "../../src/core/Ids.js"
import {
  indexedPayload,
  makeRtpPackets,
  makeRtpReceiver,
  makeRtpSender,
  payloadIndex,
  type RtpReceiver,
  type RtpSender
} from "../../src/media/rtp.js"
import type { NodeClient } from "../../src/rpc/transport.js"

export interface NodeUnderTest {
  readonly node: NodeId
  readonly client: NodeClient
}

const listenInfo = { protocol: "udp", ip: "127.0.0.1" } as const
const opus = { kind: "audio", mimeType: "audio/opus", clockRate: 48000, channels: 2 } as const
const SENT_PAYLOAD_TYPE = 111

/** A Worker and a Router with opus on a Node. */
export const routerOn = (n: NodeUnderTest) =>
  Effect.gen(function* () {
    const worker = yield* n.client.StartWorker({ settings: { logLevel: "warn" } })
    return yield* n.client.CreateRouter({ worker: worker.id, settings: { mediaCodecs: [opus] } })
  })

/** A producer on a comedia PlainTransport of `router` on `n`, and a sender feeding it. */
export const producerOn = (n: NodeUnderTest, router: string, ssrc: number) =>
  Effect.gen(function* () {
    const ingress = yield* n.client.CreatePlainTransport({
      router: router as never,
      listenInfo,
      rtcpMux: true,
      comedia: true
    })
    const producer = yield* n.client.Produce({
      transport: ingress.id,
      kind: "audio",
      rtpParameters: {
        codecs: [{ mimeType: "audio/opus", payloadType: SENT_PAYLOAD_TYPE, clockRate: 48000, channels: 2 }],
        encodings: [{ ssrc }]
      },
      mafaldaRouter: "mafalda-router-1"
    })
    const sender = yield* makeRtpSender({
      target: { address: ingress.tuple.localAddress, port: ingress.tuple.localPort }
    })
    return { ingress, producer, sender }
  })

/** A consumer of `producer` on a PlainTransport of `router` on `n` that sends to a local receiver. */
export const consumerOn = (
  n: NodeUnderTest,
  router: { readonly id: string; readonly rtpCapabilities: unknown },
  producer: string
) =>
  Effect.gen(function* () {
    const receiver = yield* makeRtpReceiver()
    const egress = yield* n.client.CreatePlainTransport({
      router: router.id as never,
      listenInfo,
      rtcpMux: true,
      comedia: false
    })
    yield* n.client.ConnectTransport({ transport: egress.id, ip: "127.0.0.1", port: receiver.local.port })
    const consumer = yield* n.client.Consume({
      transport: egress.id,
      producer: producer as never,
      rtpCapabilities: router.rtpCapabilities as never
    })
    return { receiver, egress, consumer }
  })

/** Sends `count` packets and returns how many arrived intact, with the consumer's SSRC. */
export const sendAndCount = (
  sender: RtpSender,
  receiver: RtpReceiver,
  options: {
    readonly ssrc: number
    readonly count: number
    readonly first: number
    readonly expectedSsrc: number
    /** How long to wait for them (default 5 s). */
    readonly timeout?: Duration.DurationInput | undefined
  }
) =>
  Effect.gen(function* () {
    const before = (yield* receiver.packets).length
    yield* sender.sendAll(
      makeRtpPackets({
        ssrc: options.ssrc,
        payloadType: SENT_PAYLOAD_TYPE,
        count: options.count,
        firstSequenceNumber: options.first + 1
      }).map((p, i) => ({ ...p, payload: indexedPayload(options.first + i) })),
      { interval: "4 millis" }
    )
    const all = yield* receiver
      .awaitPackets(before + options.count, { timeout: options.timeout ?? "5 seconds" })
      .pipe(Effect.catchAll(() => receiver.packets))
    const fresh = all.slice(before)
    const intact = new Set<number>()
    for (const p of fresh) {
      const index = payloadIndex(p.payload)
      if (index === undefined || index < options.first || index >= options.first + options.count) continue
      if (
        p.ssrc === options.expectedSsrc &&
        Buffer.from(p.payload).equals(Buffer.from(indexedPayload(index)))
      ) {
        intact.add(index)
      }
    }
    return { received: fresh.length, intact: intact.size }
  })

/** Collects the notices of a Node in the background, for the scope. */
export const collectNotices = (n: NodeUnderTest) =>
  Effect.gen(function* () {
    const seen: Array<{ readonly _tag: string } & Record<string, unknown>> = []
    yield* n.client.Notices(undefined).pipe(
      Stream.runForEach((notice) => Effect.sync(() => void seen.push({ ...notice, seenAt: Date.now() }))),
      Effect.ignore,
      Effect.forkScoped
    )
    return seen
  })
