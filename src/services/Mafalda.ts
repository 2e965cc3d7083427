/**
 * `Mafalda`: the entry point of the Effect API. It makes Mafalda Routers (objects with the
 * API of a mediasoup `Router` over many Workers) and reports on the cluster.
 *
 * Layers: `layer` (over the services) and `layerLocal` (everything for one machine with
 * real mediasoup Workers) in `src/layers/Mafalda.ts`.
 *
 * @module
 */
import type { EventEmitter } from "node:events"
import { Context, type Effect } from "effect"
import type { types } from "mediasoup"
import type { ClusterSnapshot } from "../core/Snapshot.js"
import type { MafaldaRouterError } from "../router/errors.js"
import type { MafaldaRouter, MafaldaRouterOptions } from "../router/MafaldaRouter.js"
import type { ClusterStatus } from "../router/status.js"

export interface MafaldaShape {
  /** Makes a Mafalda Router (no Worker starts until its first transport). */
  readonly createRouter: <AppData extends types.AppData = types.AppData>(
    options?: MafaldaRouterOptions<AppData>
  ) => Effect.Effect<MafaldaRouter<AppData>, MafaldaRouterError>
  /** The open Mafalda Routers. */
  readonly routers: Effect.Effect<ReadonlyArray<MafaldaRouter>>
  /** The cluster snapshot now. */
  readonly snapshot: Effect.Effect<ClusterSnapshot>
  /** Workers, loads, stream trees and pipes, as plain JSON-able data. */
  readonly status: Effect.Effect<ClusterStatus>
  /** Emits `newrouter` (a Mafalda Router). */
  readonly observer: EventEmitter
}

export class Mafalda extends Context.Tag("mafalda/Mafalda")<Mafalda, MafaldaShape>() {}
