/**
 * `Mafalda`: the entry point of the Effect API. It makes Mafalda Routers (objects with the
 * API of a mediasoup `Router` over many Workers) and WebRtcServers that stand for one per
 * Worker, and reports on the cluster through its `observer` (typed events, see
 * `MafaldaEvents`).
 *
 * Layers: `layer` (over the services) and `layerLocal` (everything for one machine with
 * real mediasoup Workers) in `src/layers/Mafalda.ts`.
 *
 * @module
 */
import { Context, type Effect } from "effect"
import type { types } from "mediasoup"
import type { EnhancedEventEmitter } from "mediasoup/node/lib/enhancedEvents.js"
import type { ClusterSnapshot } from "../core/Snapshot.js"
import type { ScaleDownAction } from "../core/scaleDown.js"
import type { MafaldaRouterError } from "../router/errors.js"
import type { MafaldaRouter, MafaldaRouterOptions } from "../router/MafaldaRouter.js"
import type { TransportRelocation } from "../router/relocation.js"
import type { ClusterStatus } from "../router/status.js"
import type { MafaldaWebRtcServer, MafaldaWebRtcServerOptions } from "../router/webRtcServer.js"

/** A pipe made between two underlying Routers (for a consumer, or for `pipeToRouter`). */
export interface PipeMade {
  readonly producer: string
  readonly from: string
  readonly to: string
  /** Asked for by the application (`pipeToRouter`): never closed for being idle. */
  readonly pinned: boolean
}

/** A Worker whose last reported load crossed the watermark upwards. */
export interface WorkerOverload {
  readonly worker: string
  readonly pid: number | undefined
  /** CPU % of one core in the report. */
  readonly load: number
  readonly watermark: number
}

/** A Worker process that died, and the Mafalda Routers that had something on it. */
export interface WorkerLoss {
  readonly worker: string
  readonly pid: number | undefined
  readonly mafaldaRouters: ReadonlyArray<string>
}

/** The events of a Mafalda instance's `observer`. */
export type MafaldaEvents = {
  /** A Mafalda Router was made. */
  newrouter: [MafaldaRouter]
  /** A WebRtcServer was made. */
  newwebrtcserver: [MafaldaWebRtcServer]
  /** A Worker process died (its transports closed with `routerclose`; the Routers stay). */
  workerdied: [Error, WorkerLoss]
  /** A pipe was made. */
  pipe: [PipeMade]
  /** A Worker's reported load crossed the watermark upwards. */
  overload: [WorkerOverload]
  /** Scale-down closed idle pipes, Routers or Workers. */
  scaledown: [ReadonlyArray<ScaleDownAction>]
  /**
   * A transport of a Mafalda Router is offered for a move to another Worker, with the helper
   * that carries it out (see `TransportRelocation`); its Mafalda Router emits it too.
   */
  relocation: [TransportRelocation]
  /** A listener threw (mediasoup's `EnhancedEventEmitter` convention). */
  listenererror: [string, Error]
}

export interface MafaldaShape {
  /** Makes a Mafalda Router (no Worker starts until its first transport). */
  readonly createRouter: <AppData extends types.AppData = types.AppData>(
    options?: MafaldaRouterOptions<AppData>
  ) => Effect.Effect<MafaldaRouter<AppData>, MafaldaRouterError>
  /**
   * Makes a WebRtcServer that stands for one per Worker: it listens now on a Worker of the
   * given settings, and on every other Worker a transport using it lands on (see
   * `src/router/webRtcServer.ts` for the port plan).
   */
  readonly createWebRtcServer: <AppData extends types.AppData = types.AppData>(
    options: MafaldaWebRtcServerOptions<AppData>
  ) => Effect.Effect<MafaldaWebRtcServer<AppData>, MafaldaRouterError>
  /** The open Mafalda Routers. */
  readonly routers: Effect.Effect<ReadonlyArray<MafaldaRouter>>
  /** The cluster snapshot now. */
  readonly snapshot: Effect.Effect<ClusterSnapshot>
  /** Workers, loads, stream trees and pipes, as plain JSON-able data. */
  readonly status: Effect.Effect<ClusterStatus>
  /** The instance's events (typed: a misspelt event name does not compile). */
  readonly observer: EnhancedEventEmitter<MafaldaEvents>
  /** The hook through which the shell reports a relocation (emits `relocation`). */
  readonly relocated: (relocation: TransportRelocation) => Effect.Effect<void>
}

export class Mafalda extends Context.Tag("mafalda/Mafalda")<Mafalda, MafaldaShape>() {}
