/**
 * Relocation of a transport to another Worker: the shell's side of it.
 *
 * A transport lives on one underlying Router, so its consumers (and what it costs) live on
 * that Router's Worker. To move it, a new transport of the same kind and options is made on
 * another Worker, the same producers are consumed there (piped as needed, by the usual
 * `consume`), the client switches to it, and the old transport closes. The client's part
 * (a new transport in mediasoup-client, consume again) is the application's, so each move
 * is *offered* to it: the Mafalda Router and the Mafalda instance's observer emit
 * `relocation` with a `TransportRelocation`, whose helper does the server's part:
 *
 * - `prepare()`: the new transport, placed by the normal placement but never on the old
 *   Worker (or only on the move's target Worker, when one is given), and on it a consumer
 *   for each open consumer of the old transport (same producer, same options, same paused
 *   state) and a data consumer for each data consumer; resolves to what the application
 *   sends its client (`parameters`) and the new objects;
 * - `complete()`: the client has switched; closes the old transport;
 * - `abandon()`: gives up; closes the new transport (if any), keeps the old one.
 *
 * Producers are not moved: a send transport's client must produce again on the new
 * transport (its old producers close with the old transport, and their consumers elsewhere
 * with them, as in mediasoup).
 *
 * Offers come from `MafaldaRouter.relocateTransport(id, { reason, target })` (operators,
 * tests), from the core's decisions when the option `relocation` is `"offer"` (after each
 * load sampling round, and in cluster mode while another Node drains: see
 * `layers/Mafalda.ts`), and, with reason `WorkerLost`, from a Worker's death: each transport
 * that was on it is offered right when mediasoup closes it, before it emits `routerclose`
 * (which it still does, as in mediasoup), so the application can re-establish it. Moves are
 * counted (`mafalda_relocations_total`, by outcome: `offered`, `done`, `failed`,
 * `abandoned`).
 *
 * Cluster mode: the old transport, the new one, or both may be on other Nodes (a
 * `RemoteTransport`): a transport the Mafalda Router delegated is tracked as its own are
 * (with its Node), the new one goes where the core places it (this Node's Workers
 * or another Node that is up; a target Worker may be another Node's), its consumers pipe
 * their producers across Nodes as any consume does, and `complete()` closes the old one on
 * its Node. A remote transport lost with its Worker or Node is offered with `WorkerLost`
 * (for a lost Node, the new one is placed away from it, though the registry may still list
 * it for a few seconds).
 *
 * @module
 */
import { Cause, Effect, Exit, FiberRef, Runtime } from "effect"
import type { types } from "mediasoup"
import type { NodeId, RouterId, TransportId, WorkerId } from "../core/Ids.js"
import {
  type ClusterSnapshot,
  lookup,
  setNode,
  setWorker,
  type TransportKind,
  workerOfRouter
} from "../core/Snapshot.js"
import * as Observe from "../ops/observe.js"
import { ClosedError, InvalidArgumentError, type MafaldaRouterError, toMediasoupError } from "./errors.js"
import { call, type MafaldaContext, runPromise, visibleTo } from "./MafaldaContext.js"
import type { MafaldaRouter } from "./MafaldaRouter.js"

/** Why a transport is offered for relocation. */
export type RelocationReason = "Overload" | "Drain" | "WorkerLost" | "Consolidate" | "Forced"

const reasons: ReadonlySet<string> = new Set(["Overload", "Drain", "WorkerLost", "Consolidate", "Forced"])

/** Where a transport is, or was. */
export interface RelocationPlace {
  readonly node: string
  readonly worker: string
  readonly router: string
}

/**
 * Where a move goes, when it names it (a decision's target): an existing Worker, or a
 * Worker not in use yet (`newWorker`: placement starts one).
 */
export type RelocationTarget = { readonly worker: string } | { readonly newWorker: true }

/** What `relocateTransport` takes. */
export interface RelocateTransportOptions {
  /** Default `"Forced"`. */
  readonly reason?: RelocationReason | undefined
  /** Where to move to; default: any other Worker, as placement decides. */
  readonly target?: RelocationTarget | undefined
}

/** What the application sends its client for a transport (depends on its kind). */
export type RelocatedTransportParameters =
  | {
      readonly kind: "webrtc"
      readonly id: string
      readonly iceParameters: types.IceParameters
      readonly iceCandidates: ReadonlyArray<types.IceCandidate>
      readonly dtlsParameters: types.DtlsParameters
      readonly sctpParameters: types.SctpParameters | undefined
    }
  | {
      readonly kind: "plain" | "pipe"
      readonly id: string
      readonly tuple: types.TransportTuple
      readonly rtcpTuple: types.TransportTuple | undefined
      readonly srtpParameters: types.SrtpParameters | undefined
    }
  | { readonly kind: "direct"; readonly id: string }

/** A consumer of the new transport, as the client needs it (mediasoup-client's `consume`). */
export interface RelocatedConsumerParameters {
  /** The old consumer it replaces. */
  readonly replaces: string
  readonly id: string
  readonly producerId: string
  readonly kind: types.MediaKind
  readonly rtpParameters: types.RtpParameters
  readonly type: types.ConsumerType
  readonly paused: boolean
  readonly producerPaused: boolean
  readonly appData: types.AppData
}

/** A data consumer of the new transport, as the client needs it (`consumeData`). */
export interface RelocatedDataConsumerParameters {
  readonly replaces: string
  readonly id: string
  readonly dataProducerId: string
  readonly sctpStreamParameters: types.SctpStreamParameters | undefined
  readonly label: string
  readonly protocol: string
  readonly appData: types.AppData
}

/** What `prepare()` resolves to. */
export interface PreparedRelocation {
  /** The new transport (a transport of the same Mafalda Router, on another Worker). */
  readonly transport: types.Transport
  /** The new consumers, each with the id of the old one it replaces. */
  readonly consumers: ReadonlyArray<{ readonly replaces: string; readonly consumer: types.Consumer }>
  readonly dataConsumers: ReadonlyArray<{
    readonly replaces: string
    readonly dataConsumer: types.DataConsumer
  }>
  /**
   * Old consumers not re-created because their producer is gone meanwhile (with a Worker
   * that died, say): the client drops them.
   */
  readonly dropped: ReadonlyArray<string>
  /** Where the new transport is. */
  readonly to: RelocationPlace
  /** What the application sends its client: plain JSON. */
  readonly parameters: {
    readonly transport: RelocatedTransportParameters
    readonly consumers: ReadonlyArray<RelocatedConsumerParameters>
    readonly dataConsumers: ReadonlyArray<RelocatedDataConsumerParameters>
    readonly dropped: ReadonlyArray<string>
  }
}

export type RelocationState = "offered" | "preparing" | "prepared" | "completed" | "abandoned"

// --- What the shell remembers of each transport ---------------------------------------------

interface ConsumeRecord {
  readonly options: types.ConsumerOptions
  /** As the application got it (its `paused` is the application's). */
  readonly consumer: types.Consumer
}

interface ConsumeDataRecord {
  readonly options: types.DataConsumerOptions
  readonly dataConsumer: types.DataConsumer
}

interface TransportOrigin {
  readonly ctx: MafaldaContext
  readonly owner: MafaldaRouter
  readonly kind: TransportKind
  readonly options: unknown
  readonly from: RelocationPlace
  /** Open consumers (and, once the transport closed, those open when it closed). */
  readonly consumers: Map<string, ConsumeRecord>
  readonly dataConsumers: Map<string, ConsumeDataRecord>
  pending: TransportRelocation | undefined
}

/** By wrapped transport (as the application holds it). */
const origins = new WeakMap<object, TransportOrigin>()
/** Open tracked transports, by id. */
const openById = new Map<string, TransportOrigin>()

/**
 * @internal Whether a move of this open transport is under way (offered, preparing or
 * prepared); undefined when no such transport is open in this process.
 */
export const relocationUnderWay = (transportId: string): boolean | undefined => {
  const origin = openById.get(transportId)
  return origin === undefined ? undefined : origin.pending !== undefined
}

/**
 * @internal Called by the Mafalda Router for each transport it makes: remembers how it was
 * made and where, and offers it for relocation (`WorkerLost`) if its Worker dies.
 * `real` is the mediasoup transport behind `transport` (or a transport of another Node:
 * then `made.node` is that Node, and `WorkerLost` is offered when its Worker or Node is
 * lost, as `RemoteTransport.lostWith` tells).
 */
export const trackTransport = (
  ctx: MafaldaContext,
  owner: MafaldaRouter,
  transport: types.Transport,
  real: types.Transport,
  made: {
    readonly kind: TransportKind
    readonly options: unknown
    readonly router: RouterId
    readonly worker: WorkerId
    /** Its Node when it is on another one (default: this Node). */
    readonly node?: NodeId | undefined
  }
): void => {
  const remote = made.node !== undefined && made.node !== ctx.node
  const origin: TransportOrigin = {
    ctx,
    owner,
    kind: made.kind,
    options: made.options,
    from: { node: made.node ?? ctx.node, worker: made.worker, router: made.router },
    consumers: new Map(),
    dataConsumers: new Map(),
    pending: undefined
  }
  origins.set(transport, origin)
  openById.set(real.id, origin)
  real.observer.once("close", () => {
    if (openById.get(real.id) === origin) openById.delete(real.id)
  })
  // mediasoup closes the transports of a dead Worker's Routers (`routerclose`) before it
  // emits `died`; this listener, the transport's first, offers the relocation then. A
  // transport of another Node emits `routerclose` when its Worker or Node is lost.
  real.on("routerclose", () => {
    if (owner.closed) return
    if (remote) {
      if (lostWith(real) === undefined) return
    } else {
      const worker = ctx.local.worker(made.worker)
      if (worker === undefined || !worker.died) return
    }
    if (origin.pending !== undefined && origin.pending.state !== "abandoned") return
    offer(origin, transport, "WorkerLost", undefined)
  })
}

/** What a transport of another Node (`RemoteTransport`) was lost with, if it was. */
const lostWith = (transport: types.Transport): "worker" | "node" | undefined =>
  (transport as { readonly lostWith?: "worker" | "node" }).lostWith

/** @internal Called by a wrapped transport's `consume` with what it made. */
export const consumed = (
  transport: types.Transport,
  options: types.ConsumerOptions,
  consumer: types.Consumer | Promise<types.Consumer>
): void => {
  const origin = origins.get(transport)
  if (origin === undefined) return
  const remember = (c: types.Consumer) => {
    origin.consumers.set(c.id, { options, consumer: c })
    // Closed with its transport: kept (a relocation re-creates it); closed alone: forgotten.
    c.observer.once("close", () => {
      if (!transport.closed) origin.consumers.delete(c.id)
    })
  }
  if (consumer instanceof Promise) consumer.then(remember, () => undefined)
  else remember(consumer)
}

/** @internal Called by a wrapped transport's `consumeData` with what it made. */
export const consumedData = (
  transport: types.Transport,
  options: types.DataConsumerOptions,
  dataConsumer: types.DataConsumer
): void => {
  const origin = origins.get(transport)
  if (origin === undefined) return
  origin.dataConsumers.set(dataConsumer.id, { options, dataConsumer })
  dataConsumer.observer.once("close", () => {
    if (!transport.closed) origin.dataConsumers.delete(dataConsumer.id)
  })
}

// --- Placement away from a Worker -----------------------------------------------------------

/**
 * Workers placement must not choose (`avoid`), or the only one it may choose (`only`;
 * `"new"`: none of those running now).
 */
export interface PlacementConstraint {
  readonly avoid: ReadonlyArray<WorkerId>
  readonly only: WorkerId | "new" | undefined
  /** Nodes placement must not use at all (a lost Node the registry may not have evicted yet). */
  readonly avoidNodes?: ReadonlyArray<NodeId> | undefined
}

/**
 * @internal The constraint on transport placements made in this fiber (none by default):
 * `Placement` reads it, and a relocation sets it around the new transport's creation.
 */
export const placementConstraint: FiberRef.FiberRef<PlacementConstraint | undefined> = FiberRef.unsafeMake<
  PlacementConstraint | undefined
>(undefined)

/** A load no watermark lets a placement add to. */
const FULL = Number.MAX_SAFE_INTEGER / 4

/**
 * @internal The snapshot a constrained placement decides on: the Workers it must not choose
 * look full (so the decision neither uses them nor, counting them still, starts more
 * Workers than the limit allows).
 */
export const constrainSnapshot = (
  snapshot: ClusterSnapshot,
  constraint: PlacementConstraint | undefined
): ClusterSnapshot => {
  if (constraint === undefined) return snapshot
  let s = snapshot
  const mask = (id: WorkerId) => {
    const w = lookup(s.workers, id)
    if (w?.alive) s = setWorker(s, { ...w, load: FULL })
  }
  for (const id of constraint.avoid) mask(id)
  for (const id of constraint.avoidNodes ?? []) {
    const node = lookup(s.nodes, id)
    if (node === undefined) continue
    for (const w of node.workers) mask(w)
    // Taking nothing new: no Worker started there either.
    if (node.state === "up") s = setNode(s, id, { ...node, state: "draining" })
  }
  if (constraint.only !== undefined) {
    const only = constraint.only
    for (const [, node] of s.nodes) for (const id of node.workers) if (id !== only) mask(id)
  }
  return s
}

// --- The offer ------------------------------------------------------------------------------

const placeOf = (ctx: MafaldaContext, transport: string): RelocationPlace | undefined => {
  const snapshot = ctx.store.current()
  const router = lookup(snapshot.transports, transport as TransportId)?.router
  const worker = router === undefined ? undefined : workerOfRouter(snapshot, router)
  return router === undefined || worker === undefined
    ? undefined
    : { node: worker.node, worker: worker.id, router }
}

const transportParameters = (kind: TransportKind, t: types.Transport): RelocatedTransportParameters => {
  if (kind === "webrtc") {
    const w = t as types.WebRtcTransport
    return {
      kind,
      id: w.id,
      iceParameters: w.iceParameters,
      iceCandidates: w.iceCandidates,
      dtlsParameters: w.dtlsParameters,
      sctpParameters: w.sctpParameters
    }
  }
  if (kind === "plain" || kind === "pipe") {
    const p = t as types.PlainTransport
    return {
      kind,
      id: p.id,
      tuple: p.tuple,
      rtcpTuple: kind === "plain" ? p.rtcpTuple : undefined,
      srtpParameters: p.srtpParameters
    }
  }
  return { kind: "direct", id: t.id }
}

const createLike = (origin: TransportOrigin): Effect.Effect<types.Transport, MafaldaRouterError> => {
  const e = origin.owner.effect
  const options = origin.options as never
  switch (origin.kind) {
    case "webrtc":
      return e.createWebRtcTransport(options)
    case "plain":
      return e.createPlainTransport(options)
    case "pipe":
      return e.createPipeTransport(options)
    case "direct":
      return e.createDirectTransport(options)
  }
}

const invalidState = (message: string) => new ClosedError({ message })

/**
 * Re-creates each remembered (data) consumer with `make`, in order; those whose (data)
 * producer `visible` no longer has go to `dropped`.
 */
const recreate = <R extends { readonly options: object }, A extends object>(
  records: ReadonlyMap<string, R>,
  visible: ReadonlySet<string>,
  dropped: Array<string>,
  make: (record: R) => Effect.Effect<A, MafaldaRouterError>
): Effect.Effect<Array<A & { readonly replaces: string }>, MafaldaRouterError> =>
  Effect.gen(function* () {
    const out: Array<A & { readonly replaces: string }> = []
    for (const [id, record] of records) {
      const options = record.options as { readonly producerId?: string; readonly dataProducerId?: string }
      if (!visible.has(options.producerId ?? options.dataProducerId ?? "")) {
        dropped.push(id)
        continue
      }
      out.push({ replaces: id, ...(yield* make(record)) })
    }
    return out
  })

/**
 * A transport offered for relocation (the `relocation` event's argument): what moves, why,
 * from where, and the server-side helper that carries the move out.
 */
export class TransportRelocation {
  /** The transport to move (the old one). */
  readonly transport: types.Transport
  readonly reason: RelocationReason
  /** Where it is (was, for `WorkerLost`). */
  readonly from: RelocationPlace
  /** The Worker to move to, when the move names one. */
  readonly target: RelocationTarget | undefined
  readonly #origin: TransportOrigin
  #state: RelocationState = "offered"
  #prepared: PreparedRelocation | undefined

  /** @internal Made by `relocateTransport` or a Worker's death. */
  constructor(
    origin: TransportOrigin,
    transport: types.Transport,
    reason: RelocationReason,
    target: RelocationTarget | undefined
  ) {
    this.#origin = origin
    this.transport = transport
    this.reason = reason
    this.from = origin.from
    this.target = target
  }

  /** The Mafalda Router of the transport. */
  get router(): MafaldaRouter {
    return this.#origin.owner
  }

  get state(): RelocationState {
    return this.#state
  }

  /** What `prepare()` made, once it has. */
  get prepared(): PreparedRelocation | undefined {
    return this.#prepared
  }

  readonly effect = {
    prepare: (): Effect.Effect<PreparedRelocation, MafaldaRouterError> => this.#prepare(),
    complete: (): Effect.Effect<void, MafaldaRouterError> => this.#complete(),
    abandon: (): Effect.Effect<void> => this.#abandon()
  }

  /**
   * Makes the new transport on another Worker and the same consumers on it; resolves to
   * what the application sends its client. Once only.
   */
  prepare(): Promise<PreparedRelocation> {
    return runPromise(this.#origin.ctx, this.#prepare())
  }

  /** The client has switched: closes the old transport (if still open). */
  complete(): Promise<void> {
    return runPromise(this.#origin.ctx, this.#complete())
  }

  /** Gives the move up: closes the new transport (if made); the old one stays. */
  abandon(): Promise<void> {
    return runPromise(this.#origin.ctx, this.#abandon())
  }

  #count(outcome: string, fields: Record<string, string | undefined> = {}): void {
    const o = this.#origin
    o.ctx.fork(
      Observe.relocation(outcome, {
        transport: this.transport.id,
        mafaldaRouter: o.owner.id,
        reason: this.reason,
        fromWorker: this.from.worker,
        ...fields
      })
    )
  }

  #prepare(): Effect.Effect<PreparedRelocation, MafaldaRouterError> {
    const o = this.#origin
    return Effect.gen(this, function* () {
      if (this.#state !== "offered") {
        return yield* invalidState(`relocation of transport ${this.transport.id} is ${this.#state}`)
      }
      if (o.owner.closed) return yield* invalidState("Router closed")
      this.#state = "preparing"
      const target = this.target
      const constraint: PlacementConstraint = {
        avoid: [this.from.worker as WorkerId],
        only: target === undefined ? undefined : "worker" in target ? (target.worker as WorkerId) : "new",
        // Its Node lost (another Node's): none of it, though the registry may still list it.
        avoidNodes: lostWith(this.transport) === "node" ? [this.from.node as NodeId] : undefined
      }
      const made = yield* Effect.locally(createLike(o), placementConstraint, constraint)
      const visible = visibleTo(o.ctx, o.owner.id as never)
      const built = yield* Effect.gen(function* () {
        const dropped: Array<string> = []
        const consumers = yield* recreate(o.consumers, visible, dropped, (r) =>
          call("consume", () => made.consume({ ...r.options, paused: r.consumer.paused })).pipe(
            Effect.map((consumer) => ({ consumer }))
          )
        )
        const dataConsumers = yield* recreate(o.dataConsumers, visible, dropped, (r) =>
          call("consumeData", () => made.consumeData({ ...r.options, paused: r.dataConsumer.paused })).pipe(
            Effect.map((dataConsumer) => ({ dataConsumer }))
          )
        )
        return { consumers, dataConsumers, dropped }
      }).pipe(Effect.onError(() => Effect.sync(() => made.close())))
      const to = placeOf(o.ctx, made.id)
      if (to === undefined || made.closed) {
        made.close()
        return yield* invalidState("the new transport closed meanwhile")
      }
      const prepared: PreparedRelocation = {
        transport: made,
        ...built,
        to,
        parameters: {
          transport: transportParameters(o.kind, made),
          consumers: built.consumers.map(({ replaces, consumer: c }) => ({
            replaces,
            id: c.id,
            producerId: c.producerId,
            kind: c.kind,
            rtpParameters: c.rtpParameters,
            type: c.type,
            paused: c.paused,
            producerPaused: c.producerPaused,
            appData: c.appData
          })),
          dataConsumers: built.dataConsumers.map(({ replaces, dataConsumer: d }) => ({
            replaces,
            id: d.id,
            dataProducerId: d.dataProducerId,
            sctpStreamParameters: d.sctpStreamParameters,
            label: d.label,
            protocol: d.protocol,
            appData: d.appData
          })),
          dropped: built.dropped
        }
      }
      this.#prepared = prepared
      this.#state = "prepared"
      return prepared
    }).pipe(
      Effect.tapError((error) =>
        Effect.sync(() => {
          if (this.#state !== "preparing") return
          this.#state = "abandoned"
          if (o.pending === this) o.pending = undefined
          this.#count("failed", { error: error.message })
        })
      )
    )
  }

  #complete(): Effect.Effect<void, MafaldaRouterError> {
    return Effect.suspend(() => {
      const prepared = this.#prepared
      if (this.#state !== "prepared" || prepared === undefined) {
        return Effect.fail(invalidState(`relocation of transport ${this.transport.id} is ${this.#state}`))
      }
      this.#state = "completed"
      if (this.#origin.pending === this) this.#origin.pending = undefined
      if (!this.transport.closed) this.transport.close()
      this.#count("done", { toWorker: prepared.to.worker })
      return Effect.void
    })
  }

  #abandon(): Effect.Effect<void> {
    return Effect.sync(() => {
      if (this.#state === "completed" || this.#state === "abandoned") return
      this.#state = "abandoned"
      if (this.#origin.pending === this) this.#origin.pending = undefined
      this.#prepared?.transport.close()
      this.#count("abandoned")
    })
  }
}

const offer = (
  origin: TransportOrigin,
  transport: types.Transport,
  reason: RelocationReason,
  target: RelocationTarget | undefined
): TransportRelocation => {
  const relocation = new TransportRelocation(origin, transport, reason, target)
  origin.pending = relocation
  origin.ctx.fork(
    Observe.relocation("offered", {
      transport: transport.id,
      mafaldaRouter: origin.owner.id,
      reason,
      fromWorker: origin.from.worker,
      toWorker: target === undefined ? undefined : "worker" in target ? target.worker : "new"
    })
  )
  origin.owner.safeEmit("relocation", relocation)
  origin.ctx.events.safeEmit("relocation", relocation)
  return relocation
}

/**
 * @internal `MafaldaRouter.relocateTransport`: offers `transport` (one of `owner`'s) for
 * relocation and returns the offer.
 */
export const relocateTransport = (
  owner: MafaldaRouter,
  transport: types.Transport | undefined,
  options: RelocateTransportOptions | undefined
): Effect.Effect<TransportRelocation, MafaldaRouterError> =>
  Effect.suspend((): Effect.Effect<TransportRelocation, MafaldaRouterError> => {
    if (owner.closed) return Effect.fail(new ClosedError({ message: "Router closed" }))
    if (options !== undefined && (typeof options !== "object" || options === null)) {
      return Effect.fail(new InvalidArgumentError({ message: "if given, options must be an object" }))
    }
    const origin = transport === undefined ? undefined : origins.get(transport)
    if (transport === undefined || origin === undefined || origin.owner !== owner) {
      return Effect.fail(new InvalidArgumentError({ message: "Transport not found" }))
    }
    if (transport.closed) return Effect.fail(new ClosedError({ message: "Transport closed" }))
    const reason = options?.reason ?? "Forced"
    if (!reasons.has(reason)) {
      return Effect.fail(new InvalidArgumentError({ message: `unknown relocation reason ${String(reason)}` }))
    }
    const target: unknown = options?.target
    let checked: RelocationTarget | undefined
    if (
      typeof target === "object" &&
      target !== null &&
      (target as { newWorker?: unknown }).newWorker === true
    ) {
      checked = { newWorker: true }
    } else if (target !== undefined) {
      const id =
        typeof target === "object" && target !== null ? (target as { worker?: unknown }).worker : undefined
      const worker =
        typeof id === "string" ? lookup(origin.ctx.store.current().workers, id as WorkerId) : undefined
      const snapshot = origin.ctx.store.current()
      // A Worker of this Node, or of another Node that is up (cluster mode).
      if (
        worker === undefined ||
        !worker.alive ||
        (worker.node !== (origin.ctx.node as NodeId) && lookup(snapshot.nodes, worker.node)?.state !== "up")
      ) {
        return Effect.fail(
          new InvalidArgumentError({ message: "target Worker not found on a Node that is up" })
        )
      }
      if (worker.id === origin.from.worker) {
        return Effect.fail(new InvalidArgumentError({ message: "target Worker is the transport's own" }))
      }
      checked = { worker: worker.id }
    }
    if (origin.pending !== undefined) {
      return Effect.fail(
        new ClosedError({ message: `a relocation of transport ${transport.id} is ${origin.pending.state}` })
      )
    }
    return Effect.succeed(offer(origin, transport, reason, checked))
  })

/** @internal Runs a synchronous Effect on the application's runtime: a failure throws mediasoup's error. */
export const runSync = <A>(ctx: MafaldaContext, effect: Effect.Effect<A, MafaldaRouterError>): A => {
  const exit = Runtime.runSyncExit(ctx.runtime)(effect)
  if (Exit.isSuccess(exit)) return exit.value
  const failure = Cause.failureOption(exit.cause)
  throw failure._tag === "Some" ? toMediasoupError(failure.value) : Cause.squash(exit.cause)
}
