/**
 * The real-client test's server: serves the test page and its bundled script over HTTP on
 * 127.0.0.1 (ephemeral port), and answers the page's signalling calls (protocol in
 * test/page/protocol.ts) with WebRtcTransports on Router A (send) and Router B (recv).
 * Every Producer made on Router A is piped to Router B with `pipeToRouter`.
 */
import type { Scope } from "effect"
import { Effect } from "effect"
import type { types } from "mediasoup"
import {
  consumingHandlers,
  type HttpListenError,
  type PageAssets,
  type SignallingHandlers,
  serveSignalling
} from "./httpSignalling.js"

export { HttpListenError } from "./httpSignalling.js"

/** A Producer on Router A and what `pipeToRouter` made of it. */
export interface PipedProducer {
  readonly producer: types.Producer
  readonly pipeConsumer: types.Consumer
  readonly pipeProducer: types.Producer
}

export interface SignallingServerOptions extends PageAssets {
  readonly routerA: types.Router
  readonly routerB: types.Router
}

export interface SignallingServer {
  /** `http://127.0.0.1:<port>/` */
  readonly url: string
  /** Producers on Router A, by id, with their pipe Consumer (A) and pipe Producer (B). */
  readonly piped: ReadonlyMap<string, PipedProducer>
  /** Consumers on Router B, by id. */
  readonly consumers: ReadonlyMap<string, types.Consumer>
  /** WebRtcTransports, by id (send ones on Router A, recv ones on Router B). */
  readonly transports: ReadonlyMap<string, types.WebRtcTransport>
  /** Every signalling call and its outcome, for diagnostics. */
  readonly log: ReadonlyArray<string>
}

const listenInfos: Array<types.TransportListenInfo> = [{ protocol: "udp", ip: "127.0.0.1" }]

/** Starts the server; its release closes it (and every open connection). */
export const startSignallingServer = (
  options: SignallingServerOptions
): Effect.Effect<SignallingServer, HttpListenError, Scope.Scope> =>
  Effect.gen(function* () {
    const { routerA, routerB } = options
    const transports = new Map<string, types.WebRtcTransport>()
    const piped = new Map<string, PipedProducer>()
    const consumers = new Map<string, types.Consumer>()

    const transport = (id: string): types.WebRtcTransport => {
      const found = transports.get(id)
      if (found === undefined) throw new Error(`no transport ${id}`)
      return found
    }

    const handlers: SignallingHandlers = {
      "router-capabilities": async () => routerA.rtpCapabilities,
      "create-transport": async ({ direction }) => {
        const router = direction === "send" ? routerA : routerB
        const created = await router.createWebRtcTransport({ listenInfos, enableUdp: true, enableTcp: false })
        transports.set(created.id, created)
        return {
          id: created.id,
          iceParameters: created.iceParameters,
          iceCandidates: created.iceCandidates,
          dtlsParameters: created.dtlsParameters
        }
      },
      "connect-transport": async ({ transportId, dtlsParameters }) => {
        await transport(transportId).connect({ dtlsParameters: dtlsParameters as types.DtlsParameters })
        return {}
      },
      produce: async ({ transportId, kind, rtpParameters }) => {
        const producer = await transport(transportId).produce({
          kind,
          rtpParameters: rtpParameters as types.RtpParameters
        })
        const { pipeConsumer, pipeProducer } = await routerA.pipeToRouter({
          producerId: producer.id,
          router: routerB
        })
        if (pipeConsumer === undefined || pipeProducer === undefined)
          throw new Error("pipeToRouter gave no pipe")
        piped.set(producer.id, { producer, pipeConsumer, pipeProducer })
        return { id: producer.id }
      },
      ...consumingHandlers(routerB, "Router B", transport, consumers)
    }

    const served = yield* serveSignalling(options, handlers)
    return { ...served, piped, consumers, transports }
  })
