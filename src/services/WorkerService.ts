/**
 * `WorkerService`: the mediasoup Workers and Routers of one Node, as data.
 *
 * Everything goes by id and settings key and every operation is an Effect returning plain,
 * `Schema`-typed data (and `Schema.TaggedError`s), so that Workers of another process or
 * machine can stand behind the same interface. The mediasoup objects of this process' own
 * Workers are behind `LocalMediasoup`, which only the real mediasoup layer provides.
 *
 * Backends: `layerMediasoup` (real Workers, one child process each) and `layerSimulated`
 * (in memory, CPU load from the core's cost model, time from Effect's `Clock`), both in
 * `src/layers/WorkerService.ts`.
 *
 * @module
 */
import { Context, Data, type Effect, type Option, type Queue, Schema, type Scope, type Stream } from "effect"
import { NodeId, ProducerId, RouterId, SettingsKey, WorkerId } from "../core/Ids.js"
import type { WorkerServiceError } from "./errors.js"
import type { RouterSettings, WorkerSettings } from "./SettingsKeys.js"

export { WorkerServiceError } from "./errors.js"

/** A Worker, as data. */
export const WorkerInfo = Schema.Struct({
  id: WorkerId,
  node: NodeId,
  settings: SettingsKey,
  /** The process id (virtual for simulated Workers). */
  pid: Schema.Int
})
export type WorkerInfo = typeof WorkerInfo.Type

/** A Router, as data. */
export const RouterInfo = Schema.Struct({ id: RouterId, worker: WorkerId, settings: SettingsKey })
export type RouterInfo = typeof RouterInfo.Type

/** A pipe of a producer from one Router to another, as data. */
export const PipeInfo = Schema.Struct({
  producer: ProducerId,
  from: RouterId,
  to: RouterId,
  /** The consumer on `from` that feeds the pipe. */
  pipeConsumer: Schema.String,
  /** The producer on `to` (its id is the original producer's id). */
  pipeProducer: Schema.String
})
export type PipeInfo = typeof PipeInfo.Type

/**
 * Something that happened to the Workers without being asked: a Worker process died, or a
 * pipe closed (because a Router at one of its ends closed, say).
 */
export type WorkerNotice = Data.TaggedEnum<{
  WorkerDied: { readonly worker: WorkerId; readonly reason: string; readonly at: number }
  PipeClosed: { readonly producer: ProducerId; readonly to: RouterId; readonly at: number }
}>
export const WorkerNotice = Data.taggedEnum<WorkerNotice>()

export interface WorkerServiceShape {
  /** The Node these Workers run on. */
  readonly node: NodeId
  /** CPUs of the Node: the most Workers per set of settings. */
  readonly cpus: number
  /** The Node's cap on Worker processes whatever their settings (`maxWorkerProcesses`); undefined: none. */
  readonly maxProcesses?: number | undefined
  /**
   * Starts a Worker with these settings. Fails when `cpus` Workers with them already run or
   * are starting, or when the Node's cap on Worker processes (if any) is reached.
   */
  readonly startWorker: (settings: WorkerSettings) => Effect.Effect<WorkerInfo, WorkerServiceError>
  /**
   * Why `startWorker` with settings of this key would be refused now, or `None` when it would
   * be admitted: the check it makes first. An admitted start may still fail (its process does
   * not come up, or another start takes the last CPU meanwhile).
   */
  readonly startRefusal: (settings: SettingsKey) => Effect.Effect<Option.Option<WorkerServiceError>>
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
}

export class WorkerService extends Context.Tag("mafalda/WorkerService")<
  WorkerService,
  WorkerServiceShape
>() {}
