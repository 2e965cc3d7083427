/**
 * Helpers for the Mafalda Router tests: real RTP into a producer (a comedia PlainTransport
 * fed from a UDP socket) and out of consumers (PlainTransports sending to UDP receivers),
 * and a counter of the PipeTransports mediasoup creates.
 */
import { Duration, Effect, Exit, Fiber, Scope } from "effect"
import type { types } from "mediasoup"
import * as mediasoup from "mediasoup"
import {
  makeRtpPackets,
  makeRtpReceiver,
  makeRtpSender,
  type RtpReceiver,
  type RtpSender
} from "../../src/media/rtp.js"
import type { MafaldaRouter } from "../../src/router/MafaldaRouter.js"

export const opus: types.RtpCodecCapability = {
  kind: "audio",
  mimeType: "audio/opus",
  clockRate: 48000,
  channels: 2
}
export const listenInfo: types.TransportListenInfo = { protocol: "udp", ip: "127.0.0.1" }
const SENT_PAYLOAD_TYPE = 111

/** A scope for UDP sockets, closed by `close`. */
export const makeResources = () => {
  const scope = Effect.runSync(Scope.make())
  return {
    acquire: <A, E>(effect: Effect.Effect<A, E, Scope.Scope>): Promise<A> =>
      Effect.runPromise(Scope.extend(effect, scope)),
    close: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}
export type Resources = ReturnType<typeof makeResources>

export interface Broadcast {
  readonly producer: types.Producer
  readonly ingress: types.PlainTransport
  readonly ssrc: number
  readonly sender: RtpSender
}

/** A producer on `router` fed with real RTP from a local UDP socket. */
export const startBroadcast = async (
  resources: Resources,
  router: MafaldaRouter,
  ssrc = 0x0a0b0c0d
): Promise<Broadcast> => {
  const ingress = await router.createPlainTransport({ listenInfo, rtcpMux: true, comedia: true })
  const producer = await ingress.produce({
    kind: "audio",
    rtpParameters: {
      codecs: [{ mimeType: "audio/opus", payloadType: SENT_PAYLOAD_TYPE, clockRate: 48000, channels: 2 }],
      encodings: [{ ssrc }]
    }
  })
  const sender = await resources.acquire(
    makeRtpSender({ target: { address: ingress.tuple.localAddress, port: ingress.tuple.localPort } })
  )
  return { producer, ingress, ssrc, sender }
}

export interface Listener {
  readonly transport: types.PlainTransport
  readonly consumer: types.Consumer
  readonly receiver: RtpReceiver
  /** The SSRC mediasoup gave the consumer's stream. */
  readonly ssrc: number
}

/** A consumer of `producerId` on its own PlainTransport, sending to a local UDP receiver. */
export const listen = async (
  resources: Resources,
  router: MafaldaRouter,
  producerId: string
): Promise<Listener> => {
  const receiver = await resources.acquire(makeRtpReceiver())
  const transport = await router.createPlainTransport({ listenInfo, rtcpMux: true, comedia: false })
  await transport.connect({ ip: receiver.local.address, port: receiver.local.port })
  const consumer = await transport.consume({ producerId, rtpCapabilities: router.rtpCapabilities })
  return { transport, consumer, receiver, ssrc: consumer.rtpParameters.encodings?.[0]?.ssrc ?? -1 }
}

/**
 * Sends RTP (one packet every 5 ms) until every listener has received `count` packets of
 * its consumer's SSRC, or fails after `timeout`. Returns the packets each received.
 */
export const sendUntilReceived = async (
  broadcast: Broadcast,
  listeners: ReadonlyArray<Listener>,
  count = 20,
  timeout: Duration.DurationInput = "10 seconds"
): Promise<ReadonlyArray<number>> => {
  const program = Effect.gen(function* () {
    const packets = makeRtpPackets({ ssrc: broadcast.ssrc, payloadType: SENT_PAYLOAD_TYPE, count: 4000 })
    const sending = yield* broadcast.sender
      .sendAll(packets, { interval: Duration.millis(5) })
      .pipe(Effect.fork)
    const received = yield* Effect.forEach(
      listeners,
      (l) => l.receiver.awaitPackets(count, { timeout, where: (p) => p.ssrc === l.ssrc }),
      { concurrency: "unbounded" }
    ).pipe(Effect.ensuring(Fiber.interrupt(sending)))
    return received.map((r) => r.length)
  })
  return Effect.runPromise(program)
}

/** Counts the PipeTransports mediasoup creates from now on (on any Worker). */
export const countPipeTransports = () => {
  let count = 0
  const onTransport = (transport: types.Transport) => {
    if (transport.constructor.name === "PipeTransport") count++
  }
  const onRouter = (router: types.Router) => router.observer.on("newtransport", onTransport)
  const onWorker = (worker: types.Worker) => worker.observer.on("newrouter", onRouter)
  mediasoup.observer.on("newworker", onWorker)
  return {
    get count() {
      return count
    },
    stop: () => mediasoup.observer.off("newworker", onWorker)
  }
}

/**
 * Resolves on the first `event` of `emitter` (with its arguments), or rejects after `ms`.
 * Any emitter will do, typed ones (mediasoup's `EnhancedEventEmitter`) included.
 */
export const once = <A extends Array<unknown>>(
  emitter: { once: (event: never, listener: never) => unknown },
  event: string,
  ms = 10_000
): Promise<A> =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "${event}" within ${ms} ms`)), ms)
    ;(emitter.once as (event: string, listener: (...args: A) => void) => unknown).call(
      emitter,
      event,
      (...args: A) => {
        clearTimeout(timer)
        resolve(args)
      }
    )
  })

/** The mediasoup-worker processes still running (none after a test file). */
export const liveWorkerPids = async (): Promise<ReadonlyArray<number>> => {
  const { execFileSync } = await import("node:child_process")
  try {
    return execFileSync("pgrep", ["-f", "mediasoup-worker"], { encoding: "utf8" })
      .split("\n")
      .filter((s) => s.trim() !== "")
      .map(Number)
  } catch {
    return []
  }
}
