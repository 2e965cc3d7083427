/**
 * The real-client test's server: serves the test page and its bundled script over HTTP on
 * 127.0.0.1 (ephemeral port), and answers the page's signalling calls (protocol in
 * test/page/protocol.ts) with WebRtcTransports on Router A (send) and Router B (recv).
 * Every Producer made on Router A is piped to Router B with `pipeToRouter`.
 */
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import type { Scope } from "effect"
import { Data, Effect } from "effect"
import type { types } from "mediasoup"
import type { SignallingApi, SignallingEndpoint } from "../page/protocol.js"

/** The HTTP server could not listen. */
export class HttpListenError extends Data.TaggedError("HttpListenError")<{ readonly cause: unknown }> {}

/** A Producer on Router A and what `pipeToRouter` made of it. */
export interface PipedProducer {
  readonly producer: types.Producer
  readonly pipeConsumer: types.Consumer
  readonly pipeProducer: types.Producer
}

export interface SignallingServerOptions {
  readonly routerA: types.Router
  readonly routerB: types.Router
  /** The page, served at `/`. */
  readonly html: string
  /** The page's bundled script, served at `/client.js`. */
  readonly script: string
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
export const startSignallingServer = (
  options: SignallingServerOptions
): Effect.Effect<SignallingServer, HttpListenError, Scope.Scope> =>
  Effect.gen(function* () {
    const { routerA, routerB } = options
    const transports = new Map<string, types.WebRtcTransport>()
    const piped = new Map<string, PipedProducer>()
    const consumers = new Map<string, types.Consumer>()
    const log: Array<string> = []

    const transport = (id: string): types.WebRtcTransport => {
      const found = transports.get(id)
      if (found === undefined) throw new Error(`no transport ${id}`)
      return found
    }

    const handlers: Handlers = {
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
      consume: async ({ transportId, producerId, rtpCapabilities }) => {
        const capabilities = rtpCapabilities as types.RtpCapabilities
        if (!routerB.canConsume({ producerId, rtpCapabilities: capabilities })) {
          throw new Error(`Router B cannot consume ${producerId}`)
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
    return { url: `http://127.0.0.1:${port}/`, piped, consumers, transports, log }
  })
