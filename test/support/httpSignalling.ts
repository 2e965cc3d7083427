/**
 * The HTTP side of the real-client tests' servers: serves the test page and its bundled
 * script on 127.0.0.1 (ephemeral port) and routes the page's signalling calls (protocol in
 * test/page/protocol.ts) to handlers. test/support/signalling.ts and routerSignalling.ts
 * give the handlers.
 */

import * as http from "node:http"
import type { AddressInfo } from "node:net"
import type { Scope } from "effect"
import { Data, Effect } from "effect"
import type { types } from "mediasoup"
import type { SignallingApi, SignallingEndpoint } from "../page/protocol.js"

/** The HTTP server could not listen. */
export class HttpListenError extends Data.TaggedError("HttpListenError")<{ readonly cause: unknown }> {}

/** One handler per signalling endpoint. */
export type SignallingHandlers = {
  readonly [K in SignallingEndpoint]: (request: SignallingApi[K]["request"]) => Promise<unknown>
}

/**
 * The page's `consume` and `resume-consumer` calls: a paused consumer of the producer on the
 * transport the page names (`transport` finds it), if `router` can consume it (else an error
 * naming the router, `label`), kept in `consumers` until the page resumes it.
 */
export const consumingHandlers = (
  router: { canConsume(options: { producerId: string; rtpCapabilities: types.RtpCapabilities }): boolean },
  label: string,
  transport: (id: string) => types.WebRtcTransport,
  consumers: Map<string, types.Consumer>
): Pick<SignallingHandlers, "consume" | "resume-consumer"> => ({
  consume: async ({ transportId, producerId, rtpCapabilities }) => {
    const capabilities = rtpCapabilities as types.RtpCapabilities
    if (!router.canConsume({ producerId, rtpCapabilities: capabilities })) {
      throw new Error(`${label} cannot consume ${producerId}`)
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
})

export interface PageAssets {
  /** The page, served at `/`. */
  readonly html: string
  /** The page's bundled script, served at `/client.js`. */
  readonly script: string
}

export interface HttpSignalling {
  /** `http://127.0.0.1:<port>/` */
  readonly url: string
  /** Every signalling call and its outcome, for diagnostics. */
  readonly log: ReadonlyArray<string>
}

const readBody = (request: http.IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
    request.on("error", reject)
  })

const send = (response: http.ServerResponse, status: number, type: string, body: string) => {
  response.writeHead(status, { "content-type": type, "cache-control": "no-store" })
  response.end(body)
}

/** Starts the server; its release closes it (and every open connection). */
export const serveSignalling = (
  assets: PageAssets,
  handlers: SignallingHandlers
): Effect.Effect<HttpSignalling, HttpListenError, Scope.Scope> =>
  Effect.gen(function* () {
    const log: Array<string> = []
    const isEndpoint = (name: string): name is SignallingEndpoint => Object.hasOwn(handlers, name)

    const handle = async (request: http.IncomingMessage, response: http.ServerResponse) => {
      const path = new URL(request.url ?? "/", "http://127.0.0.1").pathname
      if (request.method === "GET" && path === "/") return send(response, 200, "text/html", assets.html)
      if (request.method === "GET" && path === "/client.js") {
        return send(response, 200, "text/javascript", assets.script)
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
    return { url: `http://127.0.0.1:${port}/`, log }
  })
