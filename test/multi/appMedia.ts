/**
 * Media through an app's Mafalda Router, for the multi-process tests: an opus producer on a
 * comedia PlainTransport of the Router, fed with real RTP by a local sender.
 */
import { Effect } from "effect"
import { makeRtpSender } from "../../src/media/rtp.js"
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
