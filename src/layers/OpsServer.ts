/**
 * `OpsServer` over `node:http`: the live view (`/`), `/status`, `/events` (Server-Sent
 * Events), `/metrics` (Prometheus text) and `/healthz` of this Node, from the
 * `SnapshotStore` and the `WorkerService` (for the pids). Listens on `127.0.0.1` unless
 * given another host; closing the layer's scope closes the server and its connections.
 * There is no authentication: keep it on the loopback interface, or behind a proxy that
 * has some.
 *
 * ```ts
 * // The live view on top of the app's layer (it reads the services below it).
 * const app = OpsServerLayer.layer({ port: 9464 }).pipe(
 *   Layer.provideMerge(MafaldaLayer.layerFromResolved(resolved))
 * )
 * ```
 *
 * @module
 */
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { Duration, Effect, Layer, Option, Runtime, Schedule } from "effect"
import * as Metrics from "../ops/metrics.js"
import { livePage } from "../ops/page.js"
import { opsStatus } from "../ops/status.js"
import { OpsServer, OpsServerError } from "../services/OpsServer.js"
import { Placement } from "../services/Placement.js"
import { SnapshotStore } from "../services/SnapshotStore.js"
import { WorkerService } from "../services/WorkerService.js"

export interface OpsServerOptions {
  /** The port (0: any free port; the service says which). */
  readonly port: number
  /** The interface to listen on (default `127.0.0.1`). */
  readonly host?: string | undefined
  /** How often the event stream looks for a changed status (default 500 ms). */
  readonly eventInterval?: Duration.DurationInput | undefined
  /** How often the gauges are refreshed from the snapshot between scrapes (default 5 s). */
  readonly gaugeInterval?: Duration.DurationInput | undefined
}

const loopback = (host: string) => host === "127.0.0.1" || host === "::1" || host === "localhost"

const make = (options: OpsServerOptions) =>
  Effect.gen(function* () {
    const store = yield* SnapshotStore
    const workers = yield* WorkerService
    const placement = yield* Effect.serviceOption(Placement)
    const watermark = Option.getOrUndefined(Option.map(placement, (p) => p.options.watermark))
    const runPromise = Runtime.runPromise(yield* Effect.runtime<never>())
    const host = options.host ?? "127.0.0.1"

    const status = Effect.map(workers.workers, (infos) => {
      const pids = new Map(infos.map((w) => [w.id as string, w.pid]))
      return opsStatus(store.current(), workers.node, (w) => pids.get(w), watermark)
    })
    const statusJson = Effect.map(status, (s) => JSON.stringify(s))

    const clients = new Set<http.ServerResponse>()
    let lastSent = ""

    const send = (res: http.ServerResponse, code: number, type: string, body: string) => {
      res.writeHead(code, { "content-type": type, "cache-control": "no-store" })
      res.end(body)
    }

    const handle = (req: http.IncomingMessage, res: http.ServerResponse) => {
      const path = new URL(req.url ?? "/", "http://localhost").pathname
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.setHeader("allow", "GET, HEAD")
        return send(res, 405, "text/plain; charset=utf-8", "method not allowed\n")
      }
      switch (path) {
        case "/":
        case "/index.html":
          return send(res, 200, "text/html; charset=utf-8", livePage(`mafalda: live view of ${workers.node}`))
        case "/healthz":
          return send(res, 200, "text/plain; charset=utf-8", "ok\n")
        case "/metrics":
          return send(res, 200, Metrics.prometheusContentType, Metrics.scrape(store.current()))
        case "/status":
          return void runPromise(statusJson).then(
            (body) => send(res, 200, "application/json; charset=utf-8", body),
            (error) => send(res, 500, "text/plain; charset=utf-8", `${String(error)}\n`)
          )
        case "/events":
          res.writeHead(200, {
            "content-type": "text/event-stream",
            "cache-control": "no-store",
            connection: "keep-alive"
          })
          clients.add(res)
          req.on("close", () => clients.delete(res))
          return void runPromise(statusJson).then(
            (body) => res.write(`data: ${body}\n\n`),
            () => res.end()
          )
        default:
          return send(res, 404, "text/plain; charset=utf-8", "not found: try /, /status, /metrics\n")
      }
    }

    const server = yield* Effect.acquireRelease(
      Effect.async<http.Server, OpsServerError>((resume) => {
        const server = http.createServer(handle)
        server.once("error", (cause) =>
          resume(
            Effect.fail(
              new OpsServerError({ message: `the live view cannot listen on ${host}:${options.port}`, cause })
            )
          )
        )
        server.listen(options.port, host, () => resume(Effect.succeed(server)))
      }),
      (server) =>
        Effect.async<void>((resume) => {
          for (const res of clients) res.end()
          clients.clear()
          server.close(() => resume(Effect.void))
          server.closeAllConnections()
        })
    )

    // Pushes the status to the event stream's clients when it changed.
    const push = Effect.gen(function* () {
      if (clients.size === 0) {
        lastSent = ""
        return
      }
      const body = yield* statusJson
      if (body === lastSent) return
      lastSent = body
      for (const res of clients) res.write(`data: ${body}\n\n`)
    })
    yield* push.pipe(
      Effect.repeat(Schedule.spaced(options.eventInterval ?? Duration.millis(500))),
      Effect.interruptible,
      Effect.forkScoped
    )
    // Keeps the gauges fresh for other exporters of Effect's metric registry.
    yield* Effect.sync(() => Metrics.refreshGauges(store.current())).pipe(
      Effect.repeat(Schedule.spaced(options.gaugeInterval ?? Duration.seconds(5))),
      Effect.interruptible,
      Effect.forkScoped
    )

    const port = (server.address() as AddressInfo).port
    const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}/`
    yield* Effect.annotateLogs(Effect.logInfo("live view listening"), { url })
    if (!loopback(host)) {
      yield* Effect.annotateLogs(
        Effect.logWarning("the live view listens beyond the loopback interface and has no authentication"),
        { host }
      )
    }
    return { url, host, port }
  })

/** The live view and metrics endpoint, listening while the layer's scope is open. */
export const layer = (
  options: OpsServerOptions
): Layer.Layer<OpsServer, OpsServerError, SnapshotStore | WorkerService> =>
  Layer.scoped(OpsServer, make(options))
