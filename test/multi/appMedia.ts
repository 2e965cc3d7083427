/**
 * Media through an app's Mafalda Router, for the multi-process tests: an opus producer on a
 * comedia PlainTransport of the Router, fed with real RTP by a local sender.
 */
import { Effect, Schedule } from "effect"
import { indexedPayload, makeRtpPackets, makeRtpSender, type RtpSender } from "../../src/media/rtp.js"
import type { MafaldaInstance } from "../../src/promise.js"

type MafaldaRouter = Awaited<ReturnType<MafaldaInstance["createRouter"]>>

const listenInfo = { protocol: "udp", ip: "127.0.0.1" } as const

/** An opus stream's RTP parameters (payload type 111) with this SSRC. */
export const opusParameters = (ssrc: number) => ({
  codecs: [{ mimeType: "audio/opus", payloadType: 111, clockRate: 48000, channels: 2 }],
  encodings: [{ ssrc }]
})

/** A producer of opus with this SSRC on a comedia PlainTransport of `router`, and a sender feeding it. */
export const fedProducer = (router: MafaldaRouter, ssrc: number) =>
  Effect.gen(function* () {
    const ingress = yield* Effect.promise(() =>
      router.createPlainTransport({ listenInfo, rtcpMux: true, comedia: true })
    )
    const producer = yield* Effect.promise(() =>
      ingress.produce({ kind: "audio", rtpParameters: opusParameters(ssrc) })
    )
    const sender = yield* makeRtpSender({
      target: { address: ingress.tuple.localAddress, port: ingress.tuple.localPort }
    })
    return { ingress, producer, sender }
  })

/**
 * Feeds the producer continuously (forked; interrupt the fiber to stop): one opus packet every
 * 10 ms with this SSRC, packet `i` (from `first` on) carrying `indexedPayload(i)`.
 */
export const feedContinuously = (sender: RtpSender, ssrc: number, first: number) => {
  let next = first
  return Effect.suspend(() => {
    const packet = makeRtpPackets({ ssrc, payloadType: 111, count: 1, firstSequenceNumber: next + 1 })[0]!
    const sent = sender.send({ ...packet, payload: indexedPayload(next) })
    next++
    return sent
  }).pipe(Effect.ignore, Effect.repeat(Schedule.spaced("10 millis")), Effect.fork)
}
