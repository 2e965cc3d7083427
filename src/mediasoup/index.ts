/**
 * `mafalda/mediasoup`: mediasoup's own module surface, backed by Mafalda. An app that
 * writes
 *
 * ```ts
 * import * as mediasoup from "mafalda/mediasoup"
 * ```
 *
 * keeps its code: `createWorker()` resolves to a `Worker` (a real Worker process of a shared
 * Mafalda instance), whose `createRouter()` Routers are Mafalda Routers with that Worker's
 * settings: Routers of the same settings spread their transports over all the Workers of
 * the instance (up to one per CPU), and producers are piped between them as consumers need.
 * `observer` (`newworker`), `types`, `version`, `workerBin`, `getSupportedRtpCapabilities`
 * and `parseScalabilityMode` are mediasoup's own.
 *
 * The shared instance is made with the first Worker and closed with the last; its options
 * come from `configure()` (or the `MAFALDA_MEDIASOUP_OPTIONS` environment variable, JSON),
 * as for `createMafalda`.
 *
 * @module
 */
import { getSupportedRtpCapabilities, parseScalabilityMode, types, version, workerBin } from "mediasoup"
import { EnhancedEventEmitter } from "mediasoup/node/lib/enhancedEvents.js"
import type { WorkerId } from "../core/Ids.js"
import { createMafalda, type MafaldaInstance } from "../promise.js"
import { badAppData } from "../router/checks.js"
import type { MafaldaOptionsInput } from "../router/MafaldaOptions.js"
import { validateWorkerSettings } from "../router/MafaldaOptions.js"
import type { WorkerSettings } from "../services/SettingsKeys.js"
import { Worker, type WorkerHost } from "./Worker.js"

export { getSupportedRtpCapabilities, parseScalabilityMode, types, version, workerBin }
export { Worker }

/** mediasoup's module events: `newworker`. */
export type ObserverEvents = { newworker: [types.Worker] }

/** Emits `newworker` for each Worker `createWorker` makes, as mediasoup's does. */
export const observer = new EnhancedEventEmitter<ObserverEvents>()

let options: MafaldaOptionsInput | undefined
/** The shared instance (made with the first Worker), and its Workers. */
let current: { readonly instance: Promise<MafaldaInstance>; readonly workers: Set<Worker> } | undefined
/** The instance being closed, if any: a new one waits for it. */
let closing: Promise<void> = Promise.resolve()

const optionsFromEnvironment = (): MafaldaOptionsInput => {
  const raw = process.env.MAFALDA_MEDIASOUP_OPTIONS
  if (raw === undefined || raw.trim() === "") return {}
  try {
    return JSON.parse(raw) as MafaldaOptionsInput
  } catch (error) {
    throw new TypeError(`MAFALDA_MEDIASOUP_OPTIONS is not JSON: ${(error as Error).message}`)
  }
}

/**
 * The options of the shared Mafalda instance (those of `createMafalda`), for the next one
 * made: call it before the first `createWorker()` (or after every Worker is closed).
 */
export const configure = (mafaldaOptions: MafaldaOptionsInput): void => {
  options = mafaldaOptions
}

/** The shared Mafalda instance, while a Worker is open (for `status()`, its events...). */
export const mafalda = (): Promise<MafaldaInstance> | undefined => current?.instance

/** mediasoup's defaults for the settings that define a Worker. */
const withDefaults = (settings: WorkerSettings): WorkerSettings => ({
  ...settings,
  logLevel: settings.logLevel ?? "error",
  rtcMinPort: settings.rtcMinPort ?? 10000,
  rtcMaxPort: settings.rtcMaxPort ?? 59999
})

/** How many Workers stand for each process (a new Worker takes the least shared one). */
const sharing = new Map<WorkerId, number>()

const release = (worker: Worker, done: () => void): void => {
  const n = (sharing.get(worker.primaryId) ?? 1) - 1
  if (n <= 0) sharing.delete(worker.primaryId)
  else sharing.set(worker.primaryId, n)
  const shared = current
  if (shared === undefined || !shared.workers.delete(worker)) {
    queueMicrotask(done)
    return
  }
  if (shared.workers.size > 0) {
    // Its process serves the others' Routers (or goes with scale-down): this Worker is done.
    queueMicrotask(done)
    return
  }
  // The last Worker: the instance closes, and with it every Worker process.
  current = undefined
  closing = shared.instance.then(
    (instance) => instance.close(),
    () => undefined
  )
  closing.then(done, done)
}

/**
 * Creates a Worker: checks its settings as mediasoup does (`TypeError`), then starts a Worker
 * process with them in the shared instance (or, when the instance already runs one per CPU
 * with these settings, stands for the least shared of them).
 */
export async function createWorker<WorkerAppData extends types.AppData = types.AppData>(
  settings: types.WorkerSettings<WorkerAppData> = {}
): Promise<types.Worker<WorkerAppData>> {
  if (typeof settings !== "object" || settings === null) throw new TypeError("settings must be an object")
  const bad = badAppData(settings.appData)
  if (bad !== undefined) throw new TypeError(bad)
  const { appData, ...rest } = settings
  const checked = validateWorkerSettings(withDefaults(rest))
  if (checked._tag === "Left") throw new TypeError(checked.left.message)
  const workerSettings = checked.right

  if (current === undefined) {
    await closing
    if (current === undefined) {
      current = { instance: createMafalda(options ?? optionsFromEnvironment()), workers: new Set() }
    }
  }
  const shared = current
  let instance: MafaldaInstance
  try {
    instance = await shared.instance
  } catch (error) {
    if (current === shared) current = undefined
    throw error
  }
  const pick = (candidates: ReadonlyArray<WorkerId>): WorkerId =>
    candidates.reduce((best, id) => ((sharing.get(id) ?? 0) < (sharing.get(best) ?? 0) ? id : best))
  // Counted at once, so that the instance is not closed under a Worker being made.
  const placeholder = {} as Worker
  shared.workers.add(placeholder)
  try {
    const primaryId = await instance.run(
      instance.internals.acquireWorker(workerSettings, { prefer: "new", pick })
    )
    const primary = instance.internals.local.worker(primaryId)
    if (primary === undefined) throw new types.InvalidStateError("the Worker process died at start")
    sharing.set(primaryId, (sharing.get(primaryId) ?? 0) + 1)
    const host: WorkerHost = { instance, release }
    const worker = new Worker<WorkerAppData>({ host, primary, primaryId, settings: workerSettings, appData })
    shared.workers.add(worker as unknown as Worker)
    observer.safeEmit("newworker", worker as unknown as types.Worker)
    return worker
  } finally {
    shared.workers.delete(placeholder)
    if (shared.workers.size === 0 && current === shared) {
      current = undefined
      closing = instance.close()
    }
  }
}
