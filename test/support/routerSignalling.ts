/**
 * A variant of the real-client test's server (test/support/signalling.ts) over ONE
 * router-like object: a mediasoup `Router` or a Mafalda Router. It serves the same test
 * page and answers the same signalling calls (test/page/protocol.ts), but both the send
 * and the recv WebRtcTransport are made on that one router and nothing is piped by hand:
 * with a Mafalda Router, the two transports may land on different Workers and `consume`
 * pipes the producers transparently.
 */
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import type { Scope } from "effect"
import { Effect } from "effect"
import type { types } from "mediasoup"
import type { SignallingApi, SignallingEndpoint } from "../page/protocol.js"
import { HttpListenError } from "./signalling.js"

/** What the server needs of a router: a mediasoup `Router` and a Mafalda Router both fit. */
export interface SignallingRouter {
  readonly rtpCapabilities: types.RtpCapabilities
  createWebRtcTransport(options: types.WebRtcTransportOptions): Promise<types.WebRtcTransport>
  canConsume(options: { producerId: string; rtpCapabilities: types.RtpCapabilities }): boolean
}

export interface RouterSignallingOptions {
  readonly router: SignallingRouter
  /** The page, served at `/`. */
  readonly html: string
  /** The page's bundled script, served at `/client.js`. */
  readonly script: string
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
}

const listenInfos: Array<types.TransportListenInfo> = [{ protocol: "udp", ip: "127.0.0.1" }]

type Handlers = {
  readonly [K in SignallingEndpoint]: (request: SignallingApi[K]["request"]) => Promise<unknown>
}

const readBody = (request: http.IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
    request.on("error", reject)
  })

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
    const log: Array<string> = []

    const transport = (id: string): types.WebRtcTransport => {
      const found = byId.get(id)
      if (found === undefined) throw new Error(`no transport ${id}`)
      return found
    }

    const handlers: Handlers = {
      "router-capabilities": async () => router.rtpCapabilities,
      "create-transport": async ({ direction }) => {
        const created = await router.createWebRtcTransport({ listenInfos, enableUdp: true, enableTcp: false })
        byId.set(created.id, created)
        transports[direction].push(created)
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
      consume: async ({ transportId, producerId, rtpCapabilities }) => {
        const capabilities = rtpCapabilities as types.RtpCapabilities
        if (!router.canConsume({ producerId, rtpCapabilities: capabilities })) {
          throw new Error(`the router cannot consume ${producerId}`)
        }
        const consumer = await transport(transportId).consume({
          producerId,
          rtpCapabilities: capabilities,
          paused: true
        })
        consumers.set(consumer.id, consumer)
        return { id: consumer.id, producerId, kind: consumer.kind, rtpParameters: consumer.rtpParameters }
      },
      "resume-consumer": async ({ consumerId }) => {
        const consumer = consumers.get(consumerId)
        if (consumer === undefined) throw new Error(`no consumer ${consumerId}`)
        await consumer.resume()
        return {}
      }
    }

    const isEndpoint = (name: string): name is SignallingEndpoint => Object.hasOwn(handlers, name)

    const send = (response: http.ServerResponse, status: number, type: string, body: string) => {
      response.writeHead(status, { "content-type": type, "cache-control": "no-store" })
      response.end(body)
    }

    const handle = async (request: http.IncomingMessage, response: http.ServerResponse) => {
      const path = new URL(request.url ?? "/", "http://127.0.0.1").pathname
      if (request.method === "GET" && path === "/") return send(response, 200, "text/html", options.html)
      if (request.method === "GET" && path === "/client.js") {
        return send(response, 200, "text/javascript", options.script)
      }
      const endpoint = path.startsWith("/api/") ? path.slice("/api/".length) : ""
      if (request.method !== "POST" || !isEndpoint(endpoint))
        return send(response, 404, "text/plain", "not found")
      try {
        const body: unknown = JSON.parse(await readBody(request))
        const handler = handlers[endpoint] as (request: unknown) => Promise<unknown>
        const result = await handler(body)
        log.push(`${endpoint}: ok`)
        send(response, 200, "application/json", JSON.stringify(result))
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error)
        log.push(`${endpoint}: ${message}`)
        send(response, 500, "application/json", JSON.stringify({ error: message }))
      }
    }

    const server = yield* Effect.acquireRelease(
      Effect.async<http.Server, HttpListenError>((resume) => {
        const server = http.createServer((request, response) => void handle(request, response))
        server.once("error", (cause) => resume(Effect.fail(new HttpListenError({ cause }))))
        server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
      }),
      (server) =>
        Effect.async<void>((resume) => {
          server.close(() => resume(Effect.void))
          server.closeAllConnections()
        })
    )
    const { port } = server.address() as AddressInfo
    return { url: `http://127.0.0.1:${port}/`, transports, producers, consumers, log }
  })
