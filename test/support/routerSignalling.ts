/**
 * A variant of the real-client test's server (test/support/signalling.ts) over ONE
 * router-like object: a mediasoup `Router` or a Mafalda Router. It serves the same test
 * page and answers the same signalling calls (test/page/protocol.ts), but both the send
 * and the recv WebRtcTransport are made on that one router and nothing is piped by hand:
 * with a Mafalda Router, the two transports may land on different Workers and `consume`
 * pipes the producers transparently.
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

/** What the server needs of a router: a mediasoup `Router` and a Mafalda Router both fit. */
export interface SignallingRouter {
  readonly rtpCapabilities: types.RtpCapabilities
  createWebRtcTransport(options: types.WebRtcTransportOptions): Promise<types.WebRtcTransport>
  canConsume(options: { producerId: string; rtpCapabilities: types.RtpCapabilities }): boolean
}

export interface RouterSignallingOptions extends PageAssets {
  readonly router: SignallingRouter
}

export interface RouterSignallingServer {
  /** `http://127.0.0.1:<port>/` */
  readonly url: string
  /** WebRtcTransports by direction, in creation order. */
  readonly transports: {
    readonly send: Array<types.WebRtcTransport>
    readonly recv: Array<types.WebRtcTransport>
  }
  /** Producers by id. */
  readonly producers: ReadonlyMap<string, types.Producer>
  /** Consumers by id. */
  readonly consumers: ReadonlyMap<string, types.Consumer>
  /** Every signalling call and its outcome, for diagnostics. */
  readonly log: ReadonlyArray<string>
  /** Serves a transport made by the test (a relocation's new one), as `create-transport` would. */
  readonly adopt: (transport: types.WebRtcTransport, direction: "send" | "recv") => void
}

const listenInfos: Array<types.TransportListenInfo> = [{ protocol: "udp", ip: "127.0.0.1" }]

/** Starts the server; its release closes it (and every open connection). */
export const startRouterSignallingServer = (
  options: RouterSignallingOptions
): Effect.Effect<RouterSignallingServer, HttpListenError, Scope.Scope> =>
  Effect.gen(function* () {
    const { router } = options
    const byId = new Map<string, types.WebRtcTransport>()
    const transports = { send: [] as Array<types.WebRtcTransport>, recv: [] as Array<types.WebRtcTransport> }
    const producers = new Map<string, types.Producer>()
    const consumers = new Map<string, types.Consumer>()

    const adopt = (created: types.WebRtcTransport, direction: "send" | "recv") => {
      byId.set(created.id, created)
      transports[direction].push(created)
    }
    const transport = (id: string): types.WebRtcTransport => {
      const found = byId.get(id)
      if (found === undefined) throw new Error(`no transport ${id}`)
      return found
    }

    const handlers: SignallingHandlers = {
      "router-capabilities": async () => router.rtpCapabilities,
      "create-transport": async ({ direction }) => {
        const created = await router.createWebRtcTransport({ listenInfos, enableUdp: true, enableTcp: false })
        adopt(created, direction)
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
        producers.set(producer.id, producer)
        return { id: producer.id }
      },
      ...consumingHandlers(router, "the router", transport, consumers)
    }

    const served = yield* serveSignalling(options, handlers)
    return { ...served, transports, producers, consumers, adopt }
  })
