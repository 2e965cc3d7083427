/**
 * `WorkerService`: the mediasoup Workers and Routers of one Node, as data.
 *
 * Everything goes by id and settings key and every operation is an Effect returning plain
 * data, so that Workers of another machine can stand behind the same interface later. The
 * local mediasoup objects (to create transports on a Router, say) are reachable through
 * `local`, which only the local backend fills in.
 *
 * Backends: `layerMediasoup` (real Workers, one child process each) and `layerSimulated`
 * (in memory, CPU load from the core's cost model, time from Effect's `Clock`), both in
 * `src/layers/WorkerService.ts`.
 *
 * @module
 */
import { Context, Data, type Effect, type Queue, type Scope, type Stream } from "effect"
import type { types } from "mediasoup"
import type { NodeId, ProducerId, RouterId, SettingsKey, WorkerId } from "../core/Ids.js"
import type { RouterSettings, WorkerSettings } from "./SettingsKeys.js"

/** A Worker, as data. */
export interface WorkerInfo {
  readonly id: WorkerId
  readonly node: NodeId
  readonly settings: SettingsKey
  /** The process id (virtual for simulated Workers). */
  readonly pid: number
}

/** A Router, as data. */
export interface RouterInfo {
  readonly id: RouterId
  readonly worker: WorkerId
  readonly settings: SettingsKey
  readonly rtpCapabilities: types.RtpCapabilities
}

/** A pipe of a producer from one Router to another, as data. */
export interface PipeInfo {
  readonly producer: ProducerId
  readonly from: RouterId
  readonly to: RouterId
  /** The consumer on `from` that feeds the pipe. */
  readonly pipeConsumer: string
  /** The producer on `to` (its id is the original producer's id). */
  readonly pipeProducer: string
}

/**
 * Something that happened to the Workers without being asked: a Worker process died, or a
 * pipe closed (because a Router at one of its ends closed, say).
 */
export type WorkerNotice = Data.TaggedEnum<{
  WorkerDied: { readonly worker: WorkerId; readonly reason: string; readonly at: number }
  PipeClosed: { readonly producer: ProducerId; readonly to: RouterId; readonly at: number }
}>
export const WorkerNotice = Data.taggedEnum<WorkerNotice>()

/** A Worker or Router operation failed. */
export class WorkerServiceError extends Data.TaggedError("WorkerServiceError")<{
  readonly operation: string
  readonly message: string
  readonly cause?: unknown
}> {}

/** The local mediasoup objects behind ids (nothing for simulated or remote Workers). */
export interface LocalMediasoup {
  readonly worker: (id: WorkerId) => types.Worker | undefined
  readonly router: (id: RouterId) => types.Router | undefined
  /** The pipe consumer (on `from`) and pipe producer (on `to`) of a pipe made by `pipe`. */
  readonly pipe: (
    producer: ProducerId,
    to: RouterId
  ) => { readonly consumer: types.Consumer; readonly producer: types.Producer } | undefined
}

export interface WorkerServiceShape {
  /** The Node these Workers run on. */
  readonly node: NodeId
  /** CPUs of the Node: the most Workers per set of settings. */
  readonly cpus: number
  /** Starts a Worker with these settings. Fails when `cpus` Workers with them already run. */
  readonly startWorker: (settings: WorkerSettings) => Effect.Effect<WorkerInfo, WorkerServiceError>
  /** Closes a Worker (and its Routers) and waits for its process to exit. Unknown ids are ignored. */
  readonly closeWorker: (worker: WorkerId) => Effect.Effect<void>
  /** Creates a Router on a Worker. Fails when the Worker already has one with these settings. */
  readonly createRouter: (
    worker: WorkerId,
    settings: RouterSettings
  ) => Effect.Effect<RouterInfo, WorkerServiceError>
  /** Closes a Router (and everything on it). Unknown ids are ignored. */
  readonly closeRouter: (router: RouterId) => Effect.Effect<void>
  /** Pipes a producer that `from` carries into `to`. */
  readonly pipe: (
    producer: ProducerId,
    from: RouterId,
    to: RouterId
  ) => Effect.Effect<PipeInfo, WorkerServiceError>
  /** Closes the pipe of `producer` into `to` (and the consumers of it there). */
  readonly closePipe: (producer: ProducerId, to: RouterId) => Effect.Effect<void>
  /** CPU time the Worker has used so far, in milliseconds (user + system). */
  readonly cpuTime: (worker: WorkerId) => Effect.Effect<number, WorkerServiceError>
  /** The live Workers. */
  readonly workers: Effect.Effect<ReadonlyArray<WorkerInfo>>
  /** Worker deaths and pipe closes, as they happen (from when the stream starts). */
  readonly notices: Stream.Stream<WorkerNotice>
  /** A subscription to the notices, made now and ended with the scope. */
  readonly subscribe: Effect.Effect<Queue.Dequeue<WorkerNotice>, never, Scope.Scope>
  /** The local mediasoup objects. */
  readonly local: LocalMediasoup
}

export class WorkerService extends Context.Tag("mafalda/WorkerService")<
  WorkerService,
  WorkerServiceShape
>() {}
