/**
 * The Worker of `mafalda/mediasoup`: what `createWorker()` resolves to. It is a mediasoup
 * `Worker` to the type checker and to `instanceof`, and stands for one real Worker process
 * of a shared Mafalda instance (its "primary": `pid`, `dump()`, `getResourceUsage()`,
 * `updateSettings()`, `died`, `subprocessclose`), while the Routers made on it are Mafalda
 * Routers with its settings: their transports go to any Worker of the instance with those
 * settings, the primary included, and producers are piped between them as needed.
 *
 * Differences from a mediasoup Worker (documented in the README, "Drop-in for mediasoup
 * apps"): its process may serve other Workers' Routers too, and stays up after `close()`
 * while it does (`subprocessclose` is emitted when this Worker's part is done, or when the
 * process exits if it dies); `updateSettings()` applies to its own process only; a death of
 * another process behind its Routers closes the transports there (`routerclose`) and is
 * reported as the Router's `workerdied`, not as this Worker's `died`.
 *
 * @module
 */
import { randomUUID } from "node:crypto"
import { types } from "mediasoup"
import { EnhancedEventEmitter } from "mediasoup/node/lib/enhancedEvents.js"
import type { WorkerId } from "../core/Ids.js"
import type { MafaldaInstance } from "../promise.js"
import type { MafaldaRouter } from "../router/MafaldaRouter.js"
import type { MafaldaWebRtcServer } from "../router/webRtcServer.js"
import type { WorkerSettings } from "../services/SettingsKeys.js"

/** The base class: mediasoup's `Worker` to the type checker, an `EnhancedEventEmitter` at run time. */
const WorkerBase = EnhancedEventEmitter as unknown as abstract new <
  A extends types.AppData = types.AppData
>() => types.Worker<A>

/** What a Worker needs of the shared instance. */
export interface WorkerHost {
  readonly instance: MafaldaInstance
  /** This Worker is done: the host may release its process, then calls `done`. */
  readonly release: (worker: Worker, done: () => void) => void
}

export class Worker<WorkerAppData extends types.AppData = types.AppData> extends WorkerBase<WorkerAppData> {
  readonly #host: WorkerHost
  readonly #primary: types.Worker
  readonly #primaryId: WorkerId
  readonly #settings: WorkerSettings
  readonly #observer = new EnhancedEventEmitter<types.WorkerObserverEvents>()
  readonly #routers = new Set<types.Router>()
  readonly #webRtcServers = new Set<types.WebRtcServer>()
  readonly #releaseHold: () => void
  /** Its Routers' `pipeGroup`: pipeToRouter between them fails, as in mediasoup. */
  readonly #group = randomUUID()
  #appData: WorkerAppData
  #closed = false
  #died = false
  #subprocessClosed = false

  /** @internal Made by `createWorker`. */
  constructor(args: {
    readonly host: WorkerHost
    readonly primary: types.Worker
    readonly primaryId: WorkerId
    readonly settings: WorkerSettings
    readonly appData: WorkerAppData | undefined
  }) {
    super()
    // The run-time prototype chain includes mediasoup's Worker: `instanceof` holds.
    this.#host = args.host
    this.#primary = args.primary
    this.#primaryId = args.primaryId
    this.#settings = args.settings
    this.#appData = args.appData ?? ({} as WorkerAppData)
    this.#releaseHold = args.host.instance.internals.holds.holdWorker(args.primaryId)
    const onDied = (error: Error) => this.#processDied(error)
    args.primary.once("died", onDied)
    args.primary.once("subprocessclose", () => {
      if (this.#died) this.#markSubprocessClosed()
    })
    this.#observer.once("close", () => args.primary.off("died", onDied))
  }

  /** The process id of the Worker process it stands for. */
  override get pid(): number {
    return this.#primary.pid
  }
  override get closed(): boolean {
    return this.#closed
  }
  override get died(): boolean {
    return this.#died
  }
  override get subprocessClosed(): boolean {
    return this.#subprocessClosed
  }
  override get appData(): WorkerAppData {
    return this.#appData
  }
  override set appData(appData: WorkerAppData) {
    this.#appData = appData
  }
  override get observer(): EnhancedEventEmitter<types.WorkerObserverEvents> {
    return this.#observer
  }
  override get webRtcServersForTesting(): Set<types.WebRtcServer> {
    return this.#webRtcServers
  }
  override get routersForTesting(): Set<types.Router> {
    return this.#routers
  }
  /** @internal The Worker process it stands for (in the shared instance). */
  get primaryId(): WorkerId {
    return this.#primaryId
  }
  /** @internal Its Worker settings (`appData` left out): those of its Routers. */
  get settings(): WorkerSettings {
    return this.#settings
  }

  /** Closes its Routers (`workerclose`) and WebRtcServers; its process goes once nothing else uses it. */
  override close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#closeChildren()
    this.#observer.safeEmit("close")
    this.#releaseHold()
    this.#host.release(this, () => this.#markSubprocessClosed())
  }

  #processDied(error: Error): void {
    if (this.#closed) return
    this.#closed = true
    this.#died = true
    this.#closeChildren()
    this.safeEmit("died", error)
    this.#observer.safeEmit("close")
    this.#releaseHold()
    this.#host.release(this, () => undefined)
    if (this.#primary.subprocessClosed) this.#markSubprocessClosed()
  }

  #closeChildren(): void {
    for (const router of Array.from(this.#routers)) router.workerClosed()
    this.#routers.clear()
    for (const server of Array.from(this.#webRtcServers)) server.workerClosed()
    this.#webRtcServers.clear()
  }

  #markSubprocessClosed(): void {
    if (this.#subprocessClosed) return
    this.#subprocessClosed = true
    this.safeEmit("subprocessclose")
  }

  #checkOpen(): void {
    if (this.#closed) throw new types.InvalidStateError("Worker closed")
  }

  /** What mediasoup's Worker dump says: its process, its Routers and WebRtcServers. */
  override async dump(): Promise<types.WorkerDump> {
    this.#checkOpen()
    const routerIds = Array.from(this.#routers, (r) => r.id)
    const webRtcServerIds = Array.from(this.#webRtcServers, (s) => s.id)
    return {
      pid: this.pid,
      webRtcServerIds,
      routerIds,
      channelMessageHandlers: {
        channelRequestHandlers: [...webRtcServerIds, ...routerIds],
        channelNotificationHandlers: []
      }
    }
  }

  /** The resource usage of the process it stands for. */
  override async getResourceUsage(): Promise<types.WorkerResourceUsage> {
    this.#checkOpen()
    return this.#primary.getResourceUsage()
  }

  /** Updates the log settings of the process it stands for. */
  override async updateSettings(settings: types.WorkerUpdateableSettings<WorkerAppData> = {}): Promise<void> {
    this.#checkOpen()
    await this.#primary.updateSettings(settings)
  }

  /**
   * A WebRtcServer that listens now on this Worker's process as asked, and on every other
   * Worker a transport using it lands on (see `src/router/webRtcServer.ts`).
   */
  override async createWebRtcServer<A extends types.AppData = types.AppData>(
    options: types.WebRtcServerOptions<A>
  ): Promise<types.WebRtcServer<A>> {
    this.#checkOpen()
    const { instance } = this.#host
    const server = await instance.run(instance.internals.createWebRtcServerOn(options, this.#primaryId))
    if (this.#closed) {
      server.close()
      throw new types.InvalidStateError("Worker closed")
    }
    const generic = server as unknown as MafaldaWebRtcServer
    this.#webRtcServers.add(generic)
    generic.on("@close", () => this.#webRtcServers.delete(generic))
    this.#observer.safeEmit("newwebrtcserver", generic)
    return server
  }

  /** A Mafalda Router with this Worker's settings. */
  override async createRouter<A extends types.AppData = types.AppData>(
    options: types.RouterOptions<A> = {}
  ): Promise<types.Router<A>> {
    this.#checkOpen()
    const router = await this.#host.instance.createRouter<A>({
      ...(typeof options === "object" && options !== null ? options : { appData: options as never }),
      workerSettings: this.#settings
    })
    if (this.#closed) {
      router.close()
      throw new types.InvalidStateError("Worker closed")
    }
    const generic = router as unknown as MafaldaRouter
    generic.pipeGroup = this.#group
    this.#routers.add(generic)
    generic.on("@close", () => this.#routers.delete(generic))
    this.#observer.safeEmit("newrouter", generic)
    return router
  }
}

// mediasoup's Worker in the run-time prototype chain, under this class's own methods.
Object.setPrototypeOf(Worker.prototype, types.Worker.prototype)
