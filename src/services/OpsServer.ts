/**
 * `OpsServer`: the live view of a Mafalda Node for operators, over HTTP (off unless its
 * layer is added; on the loopback interface unless told otherwise):
 *
 * - `/` a page that draws each producer's live stream tree, the Workers and the rooms;
 * - `/status` the status as JSON (Workers, loads, rooms, trees, pipes, totals);
 * - `/events` the same status as Server-Sent Events, each time it changes;
 * - `/metrics` Mafalda's metrics in the Prometheus text format;
 * - `/healthz` `ok`.
 *
 * Layer: `layer` in `src/layers/OpsServer.ts`.
 *
 * @module
 */
import { Context, Data } from "effect"

export interface OpsServerShape {
  /** Where the server listens, e.g. `http://127.0.0.1:9464/`. */
  readonly url: string
  readonly host: string
  readonly port: number
}

export class OpsServer extends Context.Tag("mafalda/OpsServer")<OpsServer, OpsServerShape>() {}

/** The server could not listen (the port is taken, say). */
export class OpsServerError extends Data.TaggedError("OpsServerError")<{
  readonly message: string
  readonly cause?: unknown
}> {}
