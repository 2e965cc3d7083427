/**
 * A WebRtcServer made through Mafalda stands for one mediasoup WebRtcServer per Worker: a
 * transport created with it lands on whatever Worker the core chooses, and uses that
 * Worker's instance of the server, made there on first use. Clients see what they see with
 * one server: the ICE candidates of their transport (host, its instance's ports), one port
 * per protocol and listen address on each Worker, many transports per port.
 *
 * Port plan.
 *  - The first instance (on the Worker the server was created on, its "home") listens
 *    exactly as asked: the `listenInfos` given, fixed `port`s included. Errors (a port in
 *    use, an address not on this machine) surface from `createWebRtcServer` itself.
 *  - Every other instance listens, for each listen info, on a port of the info's own
 *    `portRange` when it has one; otherwise of the Mafalda option `webRtcServerPorts`
 *    (`{ min, max }`) when set; otherwise of the Worker's own RTC port range
 *    (`rtcMinPort`-`rtcMaxPort`), as mediasoup does for a listen info without a port. So
 *    a firewall opens the fixed ports plus that range, which a mediasoup app that also makes
 *    WebRtcTransports without a server opens already.
 *  - When the instance holding the fixed ports goes (its Worker died), the next instance
 *    made takes them again (or, if they cannot be bound, follows the plan above).
 * The home Worker is held against scale-down while its instance is open.
 *
 * @module
 */
import { Effect } from "effect"
import { types } from "mediasoup"
import type { WorkerId } from "../core/Ids.js"
import { lookup } from "../core/Snapshot.js"
import type { WorkerSettings } from "../services/SettingsKeys.js"
import { ClosedError, type MafaldaRouterError, MediasoupCallError } from "./errors.js"
import { inertChannel } from "./inertChannel.js"
import type { MafaldaContext } from "./MafaldaContext.js"

export interface MafaldaWebRtcServerOptions<AppData extends types.AppData = types.AppData>
  extends types.WebRtcServerOptions<AppData> {
  /** Worker settings of the Worker it first listens on (default: Mafalda's). */
  readonly workerSettings?: WorkerSettings | undefined
}

/** Ports of the listeners of an instance on a Worker other than the home one. */
export type WebRtcServerPorts = "workerRange" | { readonly min: number; readonly max: number }

interface Instance {
  readonly server: types.WebRtcServer
  /** Made with the listen infos as given (fixed ports included). */
  readonly primary: boolean
}

/** The listen infos of an instance that is not the primary one (see the port plan). */
export const plannedListenInfos = (
  listenInfos: ReadonlyArray<types.TransportListenInfo>,
  plan: WebRtcServerPorts
): Array<types.TransportListenInfo> =>
  listenInfos.map((info) => {
    const { port: _port, portRange, ...rest } = info
    if (portRange !== undefined) return { ...rest, portRange }
    return plan === "workerRange" ? rest : { ...rest, portRange: { min: plan.min, max: plan.max } }
  })

export class MafaldaWebRtcServer<
  AppData extends types.AppData = types.AppData
> extends types.WebRtcServer<AppData> {
  readonly #ctx: MafaldaContext
  readonly #listenInfos: ReadonlyArray<types.TransportListenInfo>
  readonly #instances = new Map<WorkerId, Promise<Instance>>()
  /** The instances made (those of `#instances` that resolved), for what must be synchronous. */
  readonly #ready = new Map<WorkerId, Instance>()
  readonly #transports = new Map<string, types.WebRtcTransport>()
  readonly #releases = new Map<WorkerId, () => void>()
  #closed = false

  /** @internal Made by `Mafalda.createWebRtcServer` (or a `mafalda/mediasoup` Worker). */
  constructor(args: {
    readonly ctx: MafaldaContext
    readonly id: string
    readonly listenInfos: ReadonlyArray<types.TransportListenInfo>
    readonly appData: AppData | undefined
  }) {
    super({
      internal: { webRtcServerId: args.id },
      channel: inertChannel,
      ...(args.appData === undefined ? {} : { appData: args.appData })
    })
    this.#ctx = args.ctx
    this.#listenInfos = structuredClone([...args.listenInfos])
  }

  override get closed(): boolean {
    return this.#closed
  }

  /** The transports using it, on every Worker (the wrapped ones the application holds). */
  override get webRtcTransportsForTesting(): Map<string, types.WebRtcTransport> {
    return this.#transports
  }

  /** The Workers it listens on now. */
  get workerIds(): ReadonlyArray<string> {
    return Array.from(this.#instances.keys())
  }

  /** Closes every instance; their transports close with `listenserverclose`. */
  override close(): void {
    if (!this.#shutdown()) return
    this.emit("@close")
    this.observer.safeEmit("close")
  }

  /** @internal The Worker it stands for closed (a `mafalda/mediasoup` Worker). */
  override workerClosed(): void {
    if (!this.#shutdown()) return
    this.safeEmit("workerclose")
    this.observer.safeEmit("close")
  }

  #shutdown(): boolean {
    if (this.#closed) return false
    this.#closed = true
    const pending = Array.from(this.#instances.entries()).filter(([w]) => !this.#ready.has(w))
    const ready = Array.from(this.#ready.values())
    this.#instances.clear()
    this.#ready.clear()
    // Those made close now (their transports with them, `listenserverclose`); the others once made.
    for (const i of ready) i.server.close()
    for (const [, p] of pending)
      p.then(
        (i) => i.server.close(),
        () => undefined
      )
    for (const release of this.#releases.values()) release()
    this.#releases.clear()
    return true
  }

  /** The instances' dumps, merged, with this server's id. */
  override async dump(): Promise<types.WebRtcServerDump> {
    if (this.#closed) throw new types.InvalidStateError("WebRtcServer closed")
    const dumps = await Promise.all(
      Array.from(this.#ready.values()).flatMap((i) => (i.server.closed ? [] : [i.server.dump()]))
    )
    return {
      id: this.id,
      udpSockets: dumps.flatMap((d) => d.udpSockets),
      tcpServers: dumps.flatMap((d) => d.tcpServers),
      webRtcTransportIds: dumps.flatMap((d) => d.webRtcTransportIds),
      localIceUsernameFragments: dumps.flatMap((d) => d.localIceUsernameFragments),
      tupleHashes: dumps.flatMap((d) => d.tupleHashes)
    }
  }

  /** @internal Not for Mafalda's servers: a transport is handed the instance of its Worker. */
  override handleWebRtcTransport(): void {
    throw new types.UnsupportedError("a Mafalda WebRtcServer is used through a Mafalda Router only")
  }

  /**
   * @internal The instance on `worker`, made on first use: the primary one (the listen infos
   * as given) while no primary instance is open, else one that follows the port plan.
   */
  instanceOn(worker: WorkerId): Effect.Effect<types.WebRtcServer, MafaldaRouterError> {
    return Effect.suspend((): Effect.Effect<types.WebRtcServer, MafaldaRouterError> => {
      if (this.#closed) return Effect.fail(new ClosedError({ message: "WebRtcServer closed" }))
      let pending = this.#instances.get(worker)
      if (pending === undefined) {
        pending = this.#make(worker)
        this.#instances.set(worker, pending)
        const made = pending
        pending.catch(() => {
          if (this.#instances.get(worker) === made) this.#instances.delete(worker)
        })
      }
      const instance = pending
      return Effect.tryPromise({
        try: () => instance,
        catch: (cause) => new MediasoupCallError({ operation: "createWebRtcServer", cause })
      }).pipe(Effect.map((i) => i.server))
    })
  }

  async #make(worker: WorkerId): Promise<Instance> {
    const mediasoupWorker = this.#ctx.local.worker(worker)
    if (mediasoupWorker === undefined) throw new types.InvalidStateError(`Worker ${worker} is gone`)
    // The instances on the other Workers: is one of them the primary?
    const others = Array.from(this.#instances.entries()).flatMap(([w, p]) => (w === worker ? [] : [p]))
    const settled = await Promise.allSettled(others)
    const primaryOpen = settled.some(
      (s) => s.status === "fulfilled" && s.value.primary && !s.value.server.closed
    )
    const create = (listenInfos: ReadonlyArray<types.TransportListenInfo>) =>
      mediasoupWorker.createWebRtcServer({
        listenInfos: structuredClone([...listenInfos]),
        appData: { mafaldaWebRtcServerId: this.id }
      })
    let primary = !primaryOpen
    let server: types.WebRtcServer
    if (primary) {
      try {
        server = await create(this.#listenInfos)
      } catch (error) {
        // The home instance reports its errors; a later one falls back to the port plan.
        if (others.length === 0) throw error
        primary = false
        server = await create(plannedListenInfos(this.#listenInfos, this.#ctx.webRtcServerPorts))
      }
    } else {
      server = await create(plannedListenInfos(this.#listenInfos, this.#ctx.webRtcServerPorts))
    }
    if (this.#closed) {
      server.close()
      throw new types.InvalidStateError("WebRtcServer closed")
    }
    if (primary) this.#releases.set(worker, this.#ctx.holds.holdWorker(worker))
    const instance: Instance = { server, primary }
    this.#ready.set(worker, instance)
    server.observer.once("close", () => {
      this.#releases.get(worker)?.()
      this.#releases.delete(worker)
      if (this.#ready.get(worker) === instance) {
        this.#ready.delete(worker)
        this.#instances.delete(worker)
      }
    })
    return instance
  }

  /** @internal A transport made with it on some Worker: tracked, and announced on the observer. */
  adopt(real: types.WebRtcTransport, wrapped: types.WebRtcTransport): void {
    this.#transports.set(wrapped.id, wrapped)
    this.observer.safeEmit("webrtctransporthandled", wrapped)
    real.observer.once("close", () => {
      if (this.#transports.delete(wrapped.id)) this.observer.safeEmit("webrtctransportunhandled", wrapped)
    })
  }

  /** @internal The Worker of an underlying Router. */
  workerOf(router: string): WorkerId | undefined {
    return lookup(this.#ctx.store.current().routers, router as never)?.worker
  }
}
