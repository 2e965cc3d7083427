/**
 * `NodeHost`: what a Mafalda Node does for its RPC clients. It keeps the mediasoup objects
 * made through the Node API (transports, producers, consumers, pipes) on the Node's own
 * Workers (`WorkerService` and `LocalMediasoup`), records its producers in the Index,
 * publishes what happens to them on its own (`NodeNotice`), carries out the pipe handshake
 * with other Nodes (see `src/rpc/NodeRpcs.ts`) and drains.
 *
 * Routers and pipes are shared between its clients (each RPC connection is one): a Worker
 * has at most one Router per set of settings and a Router one pipe per producer, whoever
 * asks; each client holds what it asked for until it lets go (`CloseRouter`, `ClosePipe`,
 * the end of its `PipeHold`, the end of its last `Notices` stream), and an object closes
 * with its last holder (see `routerHolds` and `pipesIn`). A consumer's `Closed` notice says
 * why it closed when not on request (`transportclose`, `producerclose`).
 *
 * Upstream pipes are held by the Nodes they feed. A pipe into a Router here may feed a pipe
 * into a Router on another Node (a tree A -> B -> C: this Node is B): that Node leases its
 * end here (`PipeLease`, over its own RPC connection), and from the end's `PipeConsume`
 * until the lease ends it holds what feeds that end here, as a holder of its own (one per
 * lease, never a client's id): the pipe that carries the producer into this Router (if
 * `PipeFrom` made it) and this Router (if `CreateRouter` made or found it). So the clients
 * that asked for them may all let go while another app still consumes the producer
 * downstream (it holds the pipe on C, which holds this lease): they close when the lease
 * ends (C's pipe closed), in turn, and this Node's lease on A with them. A producer made
 * here by a client is not held by a lease: it lives by its maker's rules (see
 * `holdUpstream`). A Router of this process' own Mafalda instance (cluster mode: `own`, or
 * not made by `CreateRouter` at all) is closed by that instance's scale-down: a pipe end opened
 * there (`PipeOpen`) tells it to keep the Router while the end lives, and a consumer there (a
 * client's, or a pipe end's) to keep the pipe that carries its producer in, if the instance
 * piped it there (`ScaleDownHolds`, `keepOwnPipe`).
 *
 * Its own scale-down (`idleGraceMillis`): a Worker it started for a client (`StartWorker`)
 * is closed once it has had no Router (so no transport and no pipe either) for the idle
 * grace, and a Router held by a lease only counts as a Router (`watchIdle`): its Worker
 * stays; its next load report leaves it out of the registry. No idle Worker is kept warm
 * here: a Node's Workers exist because clients asked for them, and a client asks again
 * (`StartWorker`) when it needs one. Workers the host did not start (cluster mode's own) are
 * its owner's to scale down.
 *
 * Every handler returns typed errors (`NodeCallError` with mediasoup's error name,
 * `UnknownObjectError`, `NodeDrainingError`) and never dies, so one bad request never
 * fails the other requests of its connection.
 *
 * @module
 */
import { Context, Effect, Fiber, Layer, Option, PubSub, Queue, Ref, Runtime, Schedule, Stream } from "effect"
import type { types } from "mediasoup"
import { MafaldaRouterId, type NodeId, ProducerId, RouterId, type WorkerId } from "../core/Ids.js"
import { ScaleDownAction } from "../core/scaleDown.js"
import * as Observe from "../ops/observe.js"
import {
  type ConsumerData,
  NodeCallError,
  NodeDrainingError,
  type NodeError,
  type NodeInfo,
  type NodeNotice,
  NodeRpcs,
  type PipeData,
  type PipeEnd,
  type PipeSignal,
  type ProducerData,
  takesNotice,
  UnknownObjectError
} from "../rpc/NodeRpcs.js"
import type { RtpParameters, Stats, TransportState, TransportTuple } from "../rpc/schemas.js"
import type { NodeHandlers } from "../rpc/transport.js"
import { IndexService, type ProducerLocation } from "../services/IndexService.js"
import { LocalMediasoup } from "../services/LocalMediasoup.js"
import { NodeRegistry } from "../services/NodeRegistry.js"
import { ScaleDownHolds } from "../services/ScaleDownHolds.js"
import { type RouterSettings, routerSettingsKey, type WorkerSettings } from "../services/SettingsKeys.js"
import { WorkerService, type WorkerServiceError } from "../services/WorkerService.js"
import { NodeClients } from "./NodeClients.js"

export interface NodeHostOptions {
  /** The IP other Nodes send pipe media to (announced in PipeTransports). */
  readonly announcedIp: string
  /** The IP PipeTransports listen on (default: `announcedIp`). */
  readonly pipeListenIp?: string | undefined
  /** How long a PipeTransport opened for another Node waits for its lease (default 10 s). */
  readonly pipeLeaseGraceMillis?: number | undefined
  /**
   * How long a Worker started by `StartWorker` may have no Router before it is closed
   * (default 0: never closed; `startNode` and `mafalda node` default to 30 s).
   */
  readonly idleGraceMillis?: number | undefined
}

export interface NodeHostShape {
  readonly node: NodeId
  /** The handlers of the Node API. */
  readonly handlers: Context.Context<NodeHandlers>
  /** Stops new placements here (Workers, Routers, transports, pipes in). */
  readonly drain: Effect.Effect<void>
  readonly draining: Effect.Effect<boolean>
  /** Transports made by clients (pipes not counted) that are open. */
  readonly clientTransports: Effect.Effect<number>
  /** What happens on the Node on its own. */
  readonly notices: Stream.Stream<NodeNotice>
  /** Writes the Index entries of every producer made here again (after the Node registered anew). */
  readonly republish: Effect.Effect<void>
}

export class NodeHost extends Context.Tag("mafalda/NodeHost")<NodeHost, NodeHostShape>() {}

type TransportKind = "webrtc" | "plain" | "pipe"

interface Hosted {
  readonly transport: types.Transport
  readonly router: RouterId
  readonly kind: TransportKind
  /** The RPC client (connection) that made it; pipes have none (their holders keep them). */
  readonly client: number | undefined
  leased: boolean
}

/**
 * The RPC connection a request came on (`@effect/rpc`'s `clientId`, from 0 up): a holder;
 * a negative one is another Node's lease on a pipe end here (`holdUpstream`).
 */
type Client = number

/** A pipe into one of this Node's Routers (made by `PipeFrom`) and the clients that hold it. */
interface PipeIn {
  readonly data: PipeData
  readonly producer: types.Producer
  /** Clients, and the leases of other Nodes on pipe ends it feeds here (`holdUpstream`). */
  readonly holders: Set<Client>
  lease?: Fiber.RuntimeFiber<void, never>
}

/** A mediasoup call as an Effect whose failure keeps mediasoup's error name. */
const attempt = <A>(operation: string, f: () => Promise<A> | A): Effect.Effect<A, NodeCallError> =>
  Effect.tryPromise({
    try: async () => f(),
    catch: (cause) =>
      new NodeCallError({
        operation,
        errorName: cause instanceof Error ? cause.name : "Error",
        message: cause instanceof Error ? cause.message : String(cause)
      })
  })

/**
 * `attempt` for a call that makes an object the caller keeps (`keep`: a transport hosted),
 * kept in the same step as it is made. When the caller is interrupted meanwhile (its client
 * went away), mediasoup makes it all the same, and nobody would keep it: it is closed as soon
 * as it exists.
 */
const attemptMaking = <A extends { close(): void }>(
  operation: string,
  f: () => Promise<A>,
  keep: (made: A) => void = () => {}
): Effect.Effect<A, NodeCallError> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.suspend(() => {
      let made: A | undefined
      let abandoned = false
      const promise = (async () => f())()
      promise.then(
        (a) => {
          made = a
          if (abandoned) a.close()
        },
        () => {}
      )
      return restore(attempt(operation, () => promise)).pipe(
        Effect.onInterrupt(() =>
          Effect.sync(() => {
            abandoned = true
            made?.close()
          })
        ),
        Effect.tap((a) => Effect.sync(() => keep(a)))
      )
    })
  )

/** `WorkerService`'s refusal of a second Router with the same settings on one Worker: that Router's id. */
const sameSettingsTaken = /already has Router (\S+) with these settings/

/**
 * `WorkerService`'s failure as the Node API's, named after mediasoup's error kind (a TypeError
 * for Worker settings mediasoup refuses, say).
 */
const fromWorkerError = (e: WorkerServiceError) =>
  new NodeCallError({
    operation: e.operation,
    errorName: e.cause instanceof Error ? e.cause.name : "Error",
    message: e.message
  })

/** A failure of a call to another Node, as one of this Node's errors. */
const remote = (operation: string) => (e: unknown) =>
  typeof e === "object" &&
  e !== null &&
  "_tag" in e &&
  ["NodeCallError", "UnknownObjectError", "NodeDrainingError"].includes(String(e._tag))
    ? (e as NodeError)
    : new NodeCallError({
        operation,
        errorName: "RemoteError",
        message: e instanceof Error ? e.message : String((e as { message?: unknown })?.message ?? e)
      })

/** The object without its `undefined` fields (mediasoup's options are exact). */
const compact = <T extends object>(o: T): { [K in keyof T]: Exclude<T[K], undefined> } =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as never

const producerData = (p: types.Producer): ProducerData => ({
  id: ProducerId.make(p.id),
  kind: p.kind,
  type: p.type,
  rtpParameters: p.rtpParameters as RtpParameters,
  paused: p.paused
})

const consumerData = (c: types.Consumer): ConsumerData => ({
  id: c.id,
  producer: ProducerId.make(c.producerId),
  kind: c.kind,
  type: c.type,
  rtpParameters: c.rtpParameters as RtpParameters,
  paused: c.paused,
  producerPaused: c.producerPaused
})

const make = (options: NodeHostOptions) =>
  Effect.gen(function* () {
    const workers = yield* WorkerService
    const local = yield* LocalMediasoup
    /** This process' own Mafalda instance's scale-down holds (cluster mode), if any. */
    const scaleDownHolds = Option.getOrUndefined(yield* Effect.serviceOption(ScaleDownHolds))
    const index = yield* IndexService
    const registry = yield* NodeRegistry
    const clients = yield* NodeClients
    const scope = yield* Effect.scope
    const runtime = yield* Effect.runtime<never>()
    const runFork = Runtime.runFork(runtime)
    const node = workers.node
    const announcedIp = options.announcedIp
    const pipeListenIp = options.pipeListenIp ?? announcedIp
    const leaseGrace = options.pipeLeaseGraceMillis ?? 10_000
    const idleGrace = options.idleGraceMillis ?? 0
    const clock = yield* Effect.clock
    const draining = yield* Ref.make(false)
    const notices = yield* Effect.acquireRelease(PubSub.unbounded<NodeNotice>(), PubSub.shutdown)
    const notify = (notice: NodeNotice) => void notices.unsafeOffer(notice)

    const transports = new Map<string, Hosted>()
    const producers = new Map<string, types.Producer>()
    /** Where each producer made here lives, as the Index has it. */
    const locations = new Map<string, ProducerLocation>()
    const consumers = new Map<string, types.Consumer>()
    /** Pipes into this Node's Routers: `producer router` → the pipe producer, its holders and lease. */
    const pipesIn = new Map<string, PipeIn>()
    const pipeKey = (producer: string, router: string) => `${producer} ${router}`

    // Index writes, one at a time and in order; failures logged (the agent re-publishes).
    const indexWrites = yield* Queue.unbounded<Effect.Effect<void, unknown>>()
    yield* Stream.fromQueue(indexWrites).pipe(
      Stream.runForEach((write) =>
        write.pipe(Effect.catchAllCause((cause) => Effect.logWarning("an Index write failed", cause)))
      ),
      Effect.interruptible,
      Effect.forkScoped
    )

    // Worker deaths and pipe closes reported by the Workers.
    yield* Stream.fromQueue(yield* workers.subscribe).pipe(
      Stream.runForEach((notice) =>
        Effect.sync(() => {
          if (notice._tag === "WorkerDied")
            notify({ _tag: "WorkerDied", worker: notice.worker, reason: notice.reason })
        })
      ),
      Effect.interruptible,
      Effect.forkScoped
    )

    // Everything made here is closed with the host (before the Workers go), and the
    // leases of pipes into it are let go.
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        const leases: Array<Fiber.RuntimeFiber<void, never>> = []
        for (const pipe of pipesIn.values()) if (pipe.lease !== undefined) leases.push(pipe.lease)
        for (const pipe of pipesIn.values()) pipe.producer.close()
        for (const hosted of Array.from(transports.values())) hosted.transport.close()
        return Fiber.interruptAll(leases)
      })
    )

    // --- idle Workers ------------------------------------------------------------------

    /**
     * Workers started by `StartWorker`: how many Routers each has (open ones, whoever holds
     * them: clients or other Nodes' leases), and since when none.
     */
    const started = new Map<WorkerId, { routers: number; idleSince: number | null }>()
    /** Held by `CreateRouter` and by closing an idle Worker: no Router lands on a closing Worker. */
    const placing = yield* Effect.makeSemaphore(1)
    /**
     * Held by `StartWorker` while it starts a Worker, and by `NodeInfo` while it lists them:
     * starts run one at a time, and a list never leaves out a Worker still starting, so a
     * client refused a start (its view a report behind) finds the Worker that took the CPU in
     * the list it asks for next.
     */
    const starting = yield* Effect.makeSemaphore(1)

    const watchIdle = (worker: WorkerId) =>
      Effect.sync(() => {
        const w = local.worker(worker)
        if (w === undefined || w.closed) return
        const entry = { routers: 0, idleSince: clock.unsafeCurrentTimeMillis() as number | null }
        started.set(worker, entry)
        w.observer.on("newrouter", (router: types.Router) => {
          entry.routers++
          entry.idleSince = null
          router.observer.once("close", () => {
            entry.routers--
            if (entry.routers === 0) entry.idleSince = clock.unsafeCurrentTimeMillis()
          })
        })
        w.observer.once("close", () => started.delete(worker))
      })

    const idleFor = (worker: WorkerId, now: number): number | undefined => {
      const entry = started.get(worker)
      if (entry === undefined || entry.idleSince === null) return undefined
      const idle = now - entry.idleSince
      return idle >= idleGrace ? idle : undefined
    }

    /** Closes the Workers idle for the grace period (each checked again under `placing`). */
    const closeIdleWorkers = Effect.suspend(() => {
      const now = clock.unsafeCurrentTimeMillis()
      const due = Array.from(started.keys()).filter((w) => idleFor(w, now) !== undefined)
      return Effect.forEach(
        due,
        (worker) =>
          placing.withPermits(1)(
            Effect.suspend(() => {
              const idle = idleFor(worker, clock.unsafeCurrentTimeMillis())
              if (idle === undefined) return Effect.void
              started.delete(worker)
              return workers
                .closeWorker(worker)
                .pipe(
                  Effect.zipRight(Observe.scaledDown([ScaleDownAction.CloseWorker({ worker })])),
                  Effect.annotateLogs({ node, idleMillis: idle, reason: "no Router for the idle grace" })
                )
            })
          ),
        { discard: true }
      )
    })

    if (idleGrace > 0) {
      yield* closeIdleWorkers.pipe(
        Effect.repeat(Schedule.spaced(Math.min(1000, Math.max(50, idleGrace / 4)))),
        Effect.interruptible,
        Effect.forkScoped
      )
    }

    const refuseWhenDraining = Effect.flatMap(Ref.get(draining), (d) =>
      d ? Effect.fail(new NodeDrainingError({ node })) : Effect.void
    )

    // --- Routers and pipes shared between clients ---------------------------------------

    /**
     * The Routers made (or found) by `CreateRouter`, and the clients (RPC connections) that
     * hold each. A Worker has at most one Router per set of settings, shared by every client
     * that asks for one there, as a Mafalda instance shares it between its Mafalda Routers (a
     * mediasoup Worker carries a producer id once: two Routers of one Worker could not both
     * receive it). A client's `CloseRouter` (or its disconnect) lets go of its hold only: its
     * transports there and its holds on the pipes into it go, as they would with the Router,
     * and the Router closes when its last holder lets go, unless it is this process' own
     * (`own`: made by its own Mafalda instance, which closes it by its own rules). Another
     * Node's lease on a pipe end fed by a pipe into the Router holds it too (`holdUpstream`).
     */
    const routerHolds = new Map<
      RouterId,
      { readonly holders: Set<Client>; readonly own: boolean; readonly letGo: () => void }
    >()

    /**
     * While clients hold a Router on a Worker of this process' own Mafalda instance (cluster
     * mode), that instance's scale-down keeps it: its own Router (`own`), or the Worker under
     * a Router made for clients (the instance's snapshot knows neither the clients' transports
     * nor that Router). The release, for when the last holder lets go or the Router closes.
     */
    const keepFromOwnScaleDown = (id: RouterId, worker: WorkerId, own: boolean): (() => void) => {
      if (scaleDownHolds === undefined) return () => {}
      if (own) return scaleDownHolds.holdRouter(id)
      return started.has(worker) ? () => {} : scaleDownHolds.holdWorker(worker)
    }

    /** A Router of this process' own Mafalda instance: not made by `CreateRouter` (found there, or never asked for). */
    const isOwnRouter = (id: RouterId): boolean => routerHolds.get(id)?.own ?? true

    /** The client holds the Router (see `routerHolds`); whether it held it already. */
    const holdRouter = (id: RouterId, worker: WorkerId, client: Client, own: boolean): boolean => {
      let entry = routerHolds.get(id)
      if (entry === undefined) {
        const made = { holders: new Set<Client>(), own, letGo: keepFromOwnScaleDown(id, worker, own) }
        entry = made
        routerHolds.set(id, made)
        local.router(id)?.observer.once("close", () => {
          if (routerHolds.get(id) === made) routerHolds.delete(id)
          made.letGo()
        })
      }
      const held = entry.holders.has(client)
      entry.holders.add(client)
      return held
    }

    /** The client lets go of its hold on a pipe; the pipe closes when it was the last. */
    const releasePipe = (pipe: PipeIn, client: Client) => {
      if (!pipe.holders.delete(client)) return
      if (pipe.holders.size === 0) pipe.producer.close()
    }

    /** The client lets go of its hold on a Router (see `routerHolds`). */
    const releaseRouter = (id: RouterId, client: Client): Effect.Effect<void> =>
      Effect.suspend(() => {
        const entry = routerHolds.get(id)
        // Closed already, or this process' own and held by no client (its owner closes it):
        // nothing of this client's there.
        if (entry === undefined) return Effect.void
        // Another client's Router, not this one's: nothing of this client's there.
        if (!entry.holders.delete(client)) return Effect.void
        for (const h of Array.from(transports.values())) {
          if (h.router === id && h.client === client) h.transport.close()
        }
        for (const pipe of Array.from(pipesIn.values())) if (pipe.data.to === id) releasePipe(pipe, client)
        if (entry.holders.size > 0) return Effect.void
        routerHolds.delete(id)
        entry.letGo()
        return entry.own ? Effect.void : workers.closeRouter(id)
      })

    /** Everything a client held here, let go (its connection ended). */
    const releaseClient = (client: Client) =>
      Effect.suspend(() => {
        for (const pipe of Array.from(pipesIn.values())) releasePipe(pipe, client)
        const held = Array.from(routerHolds).flatMap(([id, e]) => (e.holders.has(client) ? [id] : []))
        return Effect.forEach(held, (id) => releaseRouter(id, client), { discard: true }).pipe(
          // Its transports on Routers it does not hold (another client's, which it used after
          // its own hold went with an earlier connection) go too.
          Effect.andThen(
            Effect.sync(() => {
              for (const h of Array.from(transports.values())) if (h.client === client) h.transport.close()
            })
          )
        )
      })

    /**
     * The `Notices` streams each client has open. A client's connection ends its streams
     * (an app's session with a Node holds one for as long as it uses the Node): when its
     * last one ends, everything it held here is let go (its disconnect). A client that
     * never listens lets go by its requests only (`CloseRouter`, `ClosePipe`, `PipeHold`).
     */
    const listening = new Map<Client, number>()
    const listen = (client: Client): Stream.Stream<NodeNotice> =>
      Stream.unwrapScoped(
        Effect.acquireRelease(
          Effect.sync(() => void listening.set(client, (listening.get(client) ?? 0) + 1)),
          () =>
            Effect.suspend(() => {
              const left = (listening.get(client) ?? 1) - 1
              if (left > 0) {
                listening.set(client, left)
                return Effect.void
              }
              listening.delete(client)
              return releaseClient(client)
            })
        ).pipe(Effect.as(Stream.fromPubSub(notices)))
      )

    /** A Router for the client on the Worker: the one with these settings there already, or a new one. */
    const routerFor = (worker: WorkerId, settings: RouterSettings, client: Client) =>
      Effect.gen(function* () {
        const made = yield* workers.createRouter(worker, settings).pipe(
          Effect.map((info) => ({ info, own: false })),
          Effect.catchAll((e) => {
            const taken = sameSettingsTaken.exec(e.message)
            const existing = taken === null ? undefined : local.router(RouterId.make(taken[1]!))
            if (existing === undefined || existing.closed) return Effect.fail(fromWorkerError(e))
            const id = RouterId.make(existing.id)
            // Made through `CreateRouter` (held) or by this process' own Mafalda instance.
            return Effect.succeed({
              info: { id, worker, settings: routerSettingsKey(settings) },
              own: isOwnRouter(id)
            })
          })
        )
        const heldBefore = holdRouter(made.info.id, worker, client, made.own)
        return { ...made.info, heldBefore }
      })

    const routerOf = (id: RouterId) =>
      Effect.suspend(() => {
        const router = local.router(id)
        return router === undefined || router.closed
          ? Effect.fail(new UnknownObjectError({ what: "Router", id }))
          : Effect.succeed(router)
      })

    const hosted = (id: string) =>
      Effect.suspend(() => {
        const t = transports.get(id)
        return t === undefined
          ? Effect.fail(new UnknownObjectError({ what: "transport", id }))
          : Effect.succeed(t)
      })

    /**
     * A producer or consumer mediasoup made on a transport that closed while the request was
     * under way: mediasoup resolves it all the same, and it never emits `close`. Closed here
     * and refused, so that nothing keeps it (the Index above all).
     */
    const unlessClosedMeanwhile = (
      h: { readonly transport: types.Transport },
      id: string,
      made: { close(): void }
    ): Effect.Effect<void, UnknownObjectError> =>
      Effect.suspend(() => {
        if (!h.transport.closed) return Effect.void
        made.close()
        return Effect.fail(new UnknownObjectError({ what: "transport", id }))
      })

    const host = (
      transport: types.Transport,
      router: RouterId,
      kind: TransportKind,
      client?: Client
    ): Hosted => {
      const entry: Hosted = { transport, router, kind, client, leased: false }
      transports.set(transport.id, entry)
      transport.observer.once("close", () => {
        transports.delete(transport.id)
        notify({ _tag: "Closed", what: "transport", id: transport.id })
      })
      if (kind === "webrtc") forwardStates(transport as types.WebRtcTransport)
      if (kind === "plain") forwardTuples(transport as types.PlainTransport)
      return entry
    }

    /** A client's WebRtcTransport's ICE, DTLS and SCTP state changes, as notices. */
    const forwardStates = (t: types.WebRtcTransport) => {
      const state =
        (event: "icestatechange" | "dtlsstatechange" | "sctpstatechange") => (value: TransportState) =>
          notify({ _tag: "TransportState", transport: t.id, event, state: value })
      t.on("icestatechange", state("icestatechange"))
      t.on("dtlsstatechange", state("dtlsstatechange"))
      t.on("sctpstatechange", state("sctpstatechange"))
      t.on("iceselectedtuplechange", (tuple: types.TransportTuple) =>
        notify({
          _tag: "TransportState",
          transport: t.id,
          event: "iceselectedtuplechange",
          tuple: tuple as TransportTuple
        })
      )
    }

    /** A client's PlainTransport's tuples as it learns them (`comedia`), as notices. */
    const forwardTuples = (t: types.PlainTransport) => {
      const tuple = (event: "tuple" | "rtcptuple") => (value: types.TransportTuple) =>
        notify({ _tag: "TransportState", transport: t.id, event, tuple: value as TransportTuple })
      t.on("tuple", tuple("tuple"))
      t.on("rtcptuple", tuple("rtcptuple"))
    }

    /** The client that made each producer and consumer through `Produce` and `Consume`. */
    const madeBy = new Map<string, Client>()

    /** A transport, producer or consumer the client made (`GetStats`). */
    const ownedBy = (what: "transport" | "producer" | "consumer", id: string, client: Client) =>
      Effect.suspend((): Effect.Effect<{ getStats(): Promise<unknown> }, UnknownObjectError> => {
        const object =
          what === "transport"
            ? transports.get(id)?.client === client
              ? transports.get(id)?.transport
              : undefined
            : madeBy.get(id) === client
              ? what === "producer"
                ? producers.get(id)
                : consumers.get(id)
              : undefined
        return object === undefined || object.closed
          ? Effect.fail(new UnknownObjectError({ what, id }))
          : Effect.succeed(object)
      })

    const keepConsumer = (consumer: types.Consumer) => {
      consumers.set(consumer.id, consumer)
      // Why it closes, when not on request: its transport (or Router, or Worker) closed, or its
      // producer did (mediasoup emits these just before the close).
      let reason: "transportclose" | "producerclose" | undefined
      consumer.on("transportclose", () => {
        reason = "transportclose"
      })
      consumer.on("producerclose", () => {
        reason ??= "producerclose"
      })
      consumer.on("producerpause", () =>
        notify({ _tag: "ProducerPaused", consumer: consumer.id, paused: true })
      )
      consumer.on("producerresume", () =>
        notify({ _tag: "ProducerPaused", consumer: consumer.id, paused: false })
      )
      consumer.observer.once("close", () => {
        consumers.delete(consumer.id)
        notify({
          _tag: "Closed",
          what: "consumer",
          id: consumer.id,
          ...(reason === undefined ? {} : { reason })
        })
      })
    }

    // --- the pipe handshake, origin side ----------------------------------------------

    const openPipe = (router: types.Router, enableSrtp: boolean, keep?: (t: types.PipeTransport) => void) =>
      attemptMaking(
        "createPipeTransport",
        () =>
          router.createPipeTransport({
            listenInfo: { protocol: "udp", ip: pipeListenIp, announcedAddress: announcedIp },
            enableSrtp
          }),
        keep
      )

    const pipeEnd = (t: types.PipeTransport): PipeEnd => ({
      transport: t.id,
      ip: announcedIp,
      port: t.tuple.localPort,
      ...(t.srtpParameters === undefined ? {} : { srtpParameters: t.srtpParameters })
    })

    const PipeOpen = ({ router, enableSrtp }: { router: RouterId; enableSrtp: boolean }) =>
      Effect.gen(function* () {
        const r = yield* routerOf(router)
        let entry: Hosted | undefined
        const t = yield* openPipe(r, enableSrtp, (t) => {
          entry = host(t, router, "pipe")
        })
        // A Router of this process' own Mafalda instance stays for as long as the pipe end
        // does, from its opening (the handshake may take a while before its `PipeConsume`).
        if (scaleDownHolds !== undefined && isOwnRouter(router)) {
          t.observer.once("close", scaleDownHolds.holdRouter(router))
        }
        // A pipe end nobody leases in time (the other Node failed half-way) is closed.
        yield* Effect.sleep(leaseGrace).pipe(
          Effect.andThen(Effect.sync(() => (entry?.leased === true ? undefined : t.close()))),
          Effect.interruptible,
          Effect.forkIn(scope)
        )
        return pipeEnd(t)
      })

    const pipeTransport = (id: string) =>
      Effect.flatMap(hosted(id), (h) =>
        h.kind === "pipe"
          ? Effect.succeed(h.transport as types.PipeTransport)
          : Effect.fail(new UnknownObjectError({ what: "PipeTransport", id }))
      )

    const pipeTransportOfConsumer = new Map<string, string>()
    const findTransportOf = (consumer: types.Consumer): Hosted | undefined => {
      const id = pipeTransportOfConsumer.get(consumer.id)
      return id === undefined ? undefined : transports.get(id)
    }

    /**
     * A lease's own holder: a negative number, never an RPC `clientId` (`@effect/rpc` counts
     * those up from 0), one per pipe end leased (one connection, another Node's, may hold
     * several leases here).
     */
    let leaseHolders = 0
    const nextLeaseHolder = (): Client => --leaseHolders

    /**
     * Holds, for one lease of another Node on a pipe end of `router`, what feeds that end
     * here: the pipe that carries `producer` into `router` (when `PipeFrom` made it, see
     * `pipesIn`) and, with it, `router` (when a client's `CreateRouter` holds it, see
     * `routerHolds`), so that neither closes while a Node downstream still takes the producer
     * from here, whoever else lets go. Returns the release. Taken by `PipeConsume` (so there
     * is no gap before the other Node's `PipeLease` arrives) and let go when the end's pipe
     * consumer closes: the lease's end closes the end's transport, and with it the consumer
     * (an end never leased closes after `pipeLeaseGraceMillis`). A producer made here by a
     * client is not held: it lives by its maker's rules (its transport, its Router); one piped
     * into `router` by this process' own Mafalda instance has its pipe kept (`keepOwnPipe`).
     */
    const holdUpstream = (producer: string, router: RouterId): Effect.Effect<void> => {
      const pipe = pipesIn.get(pipeKey(producer, router))
      const own = Effect.sync(keepOwnPipe(ProducerId.make(producer), router))
      if (pipe === undefined || pipe.producer.closed) return own
      const holder = nextLeaseHolder()
      pipe.holders.add(holder)
      routerHolds.get(router)?.holders.add(holder)
      return Effect.suspend(() => {
        releasePipe(pipe, holder)
        // The Router's hold, if it is still held (not closed meanwhile).
        return routerHolds.get(router)?.holders.has(holder) === true
          ? releaseRouter(router, holder)
          : Effect.void
      }).pipe(Effect.ensuring(own))
    }

    /**
     * A producer this process' own Mafalda instance (cluster mode) piped into `router`, read
     * here by a consumer (a client's, or another Node's pipe end): its pipe is kept from that
     * instance's scale-down until the release (called when the consumer closes). The Router
     * itself is kept by whoever holds it (`routerHolds`, or `PipeOpen` for a pipe end).
     */
    const keepOwnPipe = (producer: ProducerId, router: RouterId): (() => void) => {
      const piped = scaleDownHolds === undefined ? undefined : local.pipe(producer, router)
      return piped === undefined || piped.producer.closed || scaleDownHolds === undefined
        ? () => {}
        : scaleDownHolds.holdPipe(producer, router)
    }

    const PipeLease = ({ consumer: id }: { consumer: string }): Stream.Stream<PipeSignal, NodeError> =>
      Stream.asyncPush<PipeSignal, NodeError>((emit) =>
        Effect.acquireRelease(
          Effect.suspend(() => {
            const consumer = consumers.get(id)
            const entry = consumer === undefined ? undefined : findTransportOf(consumer)
            if (consumer === undefined || entry === undefined || entry.kind !== "pipe") {
              return Effect.fail(new UnknownObjectError({ what: "pipe consumer", id }))
            }
            entry.leased = true
            const pause = () => emit.single("pause")
            const resume = () => emit.single("resume")
            const close = () => {
              emit.single("close")
              emit.end()
            }
            consumer.on("producerpause", pause)
            consumer.on("producerresume", resume)
            consumer.observer.once("close", close)
            // The state now: a change between PipeConsume and this lease is not lost.
            emit.single(consumer.producerPaused ? "pause" : "resume")
            return Effect.succeed({ consumer, entry, pause, resume, close })
          }),
          ({ consumer, entry, pause, resume, close }) =>
            Effect.sync(() => {
              consumer.off("producerpause", pause)
              consumer.off("producerresume", resume)
              consumer.observer.off("close", close)
              // The lease is over: the pipe's end here goes (and with its consumer, what
              // it held upstream: see `PipeConsume`).
              entry.transport.close()
            })
        )
      )

    // --- the pipe handshake, destination side -----------------------------------------

    const pipeLocks = new Map<string, Effect.Semaphore>()
    const lockFor = (key: string) => {
      let lock = pipeLocks.get(key)
      if (lock === undefined) {
        lock = Effect.unsafeMakeSemaphore(1)
        pipeLocks.set(key, lock)
      }
      return lock
    }

    /** The producer as its own pipe's data: `to` carries it already, not through a pipe of `PipeFrom`. */
    const carriedData = (
      request: { producer: ProducerId; from: RouterId; to: RouterId },
      producer: types.Producer,
      pipeConsumer: string
    ): PipeData => ({
      producer: request.producer,
      from: request.from,
      to: request.to,
      pipeConsumer,
      pipeProducer: ProducerId.make(producer.id),
      srtp: false,
      kind: producer.kind,
      rtpParameters: producer.rtpParameters as RtpParameters,
      paused: producer.paused
    })

    /**
     * A pipe into `to`, held by the client that asks (see `pipesIn`): the pipe that carries the
     * producer there already (another client's, say), or a new one (the handshake). A producer
     * `to` carries on its own (made in it here, or piped into it by this process' own
     * Mafalda instance) needs no pipe: its data, not held (its owner closes it).
     */
    const PipeFrom = (
      request: {
        producer: ProducerId
        origin: NodeId
        from: RouterId
        to: RouterId
        enableSrtp: boolean
      },
      holder: Client
    ) => {
      const key = pipeKey(request.producer, request.to)
      return Effect.gen(function* () {
        const existing = pipesIn.get(key)
        if (existing !== undefined && !existing.producer.closed) {
          existing.holders.add(holder)
          return { ...existing.data, paused: existing.producer.paused }
        }
        const own = producers.get(request.producer)
        if (own !== undefined && !own.closed && locations.get(request.producer)?.router === request.to) {
          return carriedData(request, own, own.id)
        }
        const piped = local.pipe(request.producer, request.to)
        if (piped !== undefined && !piped.producer.closed) {
          return carriedData(request, piped.producer, piped.consumer.id)
        }
        yield* refuseWhenDraining
        const router = yield* routerOf(request.to)
        const client = yield* clients.get(request.origin).pipe(Effect.mapError(remote("PipeFrom")))
        const made = (here: types.PipeTransport) =>
          Effect.gen(function* () {
            const there = yield* client
              .PipeOpen({ router: request.from, enableSrtp: request.enableSrtp })
              .pipe(Effect.mapError(remote("PipeOpen")))
            const handshake = Effect.gen(function* () {
              const mine = pipeEnd(here)
              yield* client
                .PipeConnect({
                  transport: there.transport,
                  ip: mine.ip,
                  port: mine.port,
                  ...(mine.srtpParameters === undefined ? {} : { srtpParameters: mine.srtpParameters })
                })
                .pipe(Effect.mapError(remote("PipeConnect")))
              yield* attempt("pipeTransport.connect", () =>
                here.connect({
                  ip: there.ip,
                  port: there.port,
                  ...(there.srtpParameters === undefined ? {} : { srtpParameters: there.srtpParameters })
                })
              )
              const consumed = yield* client
                .PipeConsume({ transport: there.transport, producer: request.producer })
                .pipe(Effect.mapError(remote("PipeConsume")))
              const producer = yield* attempt("pipeTransport.produce", () =>
                here.produce({
                  id: request.producer,
                  kind: consumed.kind,
                  rtpParameters: consumed.rtpParameters as types.RtpParameters,
                  paused: consumed.producerPaused
                })
              ).pipe(
                Effect.mapError((e) =>
                  /already exists/.test(e.message)
                    ? new NodeCallError({
                        operation: e.operation,
                        errorName: e.errorName,
                        message: `the Worker of Router ${request.to} carries producer ${request.producer} already, in another Router (a mediasoup Worker carries a producer id once): ${e.message}`
                      })
                    : e
                )
              )
              return { consumed, producer }
            })
            // Half-way failures or interruption: the other end is told to close its
            // PipeTransport (it would also close it unleased after a grace period).
            return yield* handshake.pipe(
              Effect.onError(() =>
                client
                  .Close({ what: "transport", id: there.transport })
                  .pipe(Effect.ignore, Effect.forkIn(scope))
              )
            )
          })
        // This end closes on any failure of the handshake, and on its interruption (the client
        // gone, say): else it would stay open, unregistered, until its Router closes.
        const { here, consumed, producer } = yield* Effect.uninterruptibleMask((restore) =>
          Effect.flatMap(openPipe(router, request.enableSrtp), (here) =>
            restore(made(here)).pipe(
              Effect.onError(() => Effect.sync(() => here.close())),
              Effect.map((r) => ({ here, ...r }))
            )
          )
        )
        host(here, request.to, "pipe")
        const data: PipeData = {
          producer: request.producer,
          from: request.from,
          to: request.to,
          pipeConsumer: consumed.consumer,
          pipeProducer: ProducerId.make(producer.id),
          srtp: here.srtpParameters !== undefined,
          kind: producer.kind,
          rtpParameters: producer.rtpParameters as RtpParameters,
          paused: producer.paused
        }
        const entry: PipeIn = { data, producer, holders: new Set([holder]) }
        pipesIn.set(key, entry)
        // The lease: the origin's pause, resume and close; when it ends, for whatever
        // reason, the pipe closes here.
        entry.lease = runFork(
          client.PipeLease({ consumer: consumed.consumer }).pipe(
            Stream.runForEach((signal) =>
              Effect.promise(async () => {
                if (producer.closed) return
                if (signal === "pause") await producer.pause()
                else if (signal === "resume") await producer.resume()
                else producer.close()
              })
            ),
            Effect.catchAllCause((cause) => Effect.logDebug("a pipe lease ended", cause)),
            Effect.ensuring(Effect.sync(() => here.close()))
          )
        )
        producer.observer.once("close", () => {
          if (pipesIn.get(key) === entry) pipesIn.delete(key)
          here.close()
          const lease = entry.lease
          if (lease !== undefined) runFork(Fiber.interrupt(lease))
          notify({ _tag: "PipeClosed", producer: request.producer, router: request.to })
        })
        return data
      }).pipe(lockFor(key).withPermits(1))
    }

    /**
     * A pipe into one of this Node's Routers, held by the client (see `PipeHold` in
     * `NodeRpcs.ts`): its state now, its pauses and resumes, the end of the stream when it
     * closes; when the client lets go, its hold goes, and the pipe with its last holder.
     */
    const PipeHold = ({ producer: id, router }: { producer: ProducerId; router: RouterId }, holder: Client) =>
      Stream.asyncPush<PipeSignal, NodeError>((emit) =>
        Effect.acquireRelease(
          Effect.suspend(() => {
            const pipe = pipesIn.get(pipeKey(id, router))
            if (pipe === undefined || pipe.producer.closed) {
              return Effect.fail(new UnknownObjectError({ what: "pipe", id: `${id} into Router ${router}` }))
            }
            const producer = pipe.producer
            const pause = () => emit.single("pause")
            const resume = () => emit.single("resume")
            const close = () => {
              emit.single("close")
              emit.end()
            }
            producer.observer.on("pause", pause)
            producer.observer.on("resume", resume)
            producer.observer.once("close", close)
            pipe.holders.add(holder)
            emit.single(producer.paused ? "pause" : "resume")
            return Effect.succeed({ pipe, pause, resume, close })
          }),
          ({ pipe, pause, resume, close }) =>
            Effect.sync(() => {
              pipe.producer.observer.off("pause", pause)
              pipe.producer.observer.off("resume", resume)
              pipe.producer.observer.off("close", close)
              // The holder let go (or the pipe closed already): its hold goes.
              releasePipe(pipe, holder)
            })
        )
      )

    // --- the handlers ------------------------------------------------------------------

    const drain = Ref.set(draining, true).pipe(
      Effect.andThen(registry.setState(node, "draining")),
      Effect.catchAll((e) => Effect.logWarning("could not mark the Node draining in the registry", e))
    )

    const handlers = yield* Layer.build(
      NodeRpcs.toLayer({
        NodeInfo: () =>
          Effect.gen(function* () {
            let clientTransports = 0
            let pipes = 0
            for (const t of transports.values()) {
              if (t.kind === "pipe") pipes++
              else clientTransports++
            }
            const info: NodeInfo = {
              node,
              cpus: workers.cpus,
              announcedIp,
              state: (yield* Ref.get(draining)) ? "draining" : "up",
              workers: yield* starting.withPermits(1)(workers.workers),
              transports: clientTransports,
              pipes
            }
            return info
          }),
        StartWorker: ({ settings }) =>
          // Under `starting`: a start queued behind others is refused once the Node drains; a
          // Worker started is watched for idleness even if the caller goes meanwhile.
          starting
            .withPermits(1)(
              refuseWhenDraining.pipe(
                Effect.andThen(
                  Effect.uninterruptible(
                    workers
                      .startWorker(settings as WorkerSettings)
                      .pipe(Effect.tap((info) => watchIdle(info.id)))
                  )
                )
              )
            )
            .pipe(Effect.mapError((e) => (e._tag === "WorkerServiceError" ? fromWorkerError(e) : e))),
        CloseWorker: ({ worker }) => workers.closeWorker(worker),
        CreateRouter: ({ worker, settings }, { clientId }) =>
          Effect.gen(function* () {
            yield* refuseWhenDraining
            const info = yield* routerFor(worker, settings as RouterSettings, clientId)
            const router = yield* routerOf(info.id)
            return { ...info, rtpCapabilities: router.rtpCapabilities as never }
          }).pipe(placing.withPermits(1)),
        CloseRouter: ({ router }, { clientId }) => releaseRouter(router, clientId),
        CreateWebRtcTransport: ({ router, listenInfos, ...rest }, { clientId }) =>
          Effect.gen(function* () {
            yield* refuseWhenDraining
            const r = yield* routerOf(router)
            const t = yield* attemptMaking(
              "createWebRtcTransport",
              () =>
                r.createWebRtcTransport({
                  ...compact(rest),
                  listenInfos: [...listenInfos] as types.TransportListenInfo[]
                }),
              (t) => host(t, router, "webrtc", clientId)
            )
            return {
              id: t.id,
              iceRole: t.iceRole,
              iceParameters: t.iceParameters,
              iceCandidates: t.iceCandidates,
              dtlsParameters: t.dtlsParameters
            }
          }),
        CreatePlainTransport: ({ router, listenInfo, rtcpListenInfo, ...rest }, { clientId }) =>
          Effect.gen(function* () {
            yield* refuseWhenDraining
            const r = yield* routerOf(router)
            const t = yield* attemptMaking(
              "createPlainTransport",
              () =>
                r.createPlainTransport({
                  ...compact(rest),
                  listenInfo: listenInfo as types.TransportListenInfo,
                  ...(rtcpListenInfo === undefined
                    ? {}
                    : { rtcpListenInfo: rtcpListenInfo as types.TransportListenInfo })
                }),
              (t) => host(t, router, "plain", clientId)
            )
            return {
              id: t.id,
              tuple: t.tuple,
              ...(t.rtcpTuple === undefined ? {} : { rtcpTuple: t.rtcpTuple }),
              ...(t.srtpParameters === undefined ? {} : { srtpParameters: t.srtpParameters })
            }
          }),
        ConnectTransport: ({ transport, ...parameters }) =>
          Effect.flatMap(hosted(transport), (h) =>
            attempt("transport.connect", () => h.transport.connect(parameters as never))
          ),
        Produce: ({ transport, kind, rtpParameters, paused, mafaldaRouter }, { clientId }) =>
          Effect.gen(function* () {
            const h = yield* hosted(transport)
            const producer = yield* attempt("transport.produce", () =>
              h.transport.produce({
                kind,
                rtpParameters: rtpParameters as types.RtpParameters,
                ...(paused === undefined ? {} : { paused })
              })
            )
            yield* unlessClosedMeanwhile(h, transport, producer)
            const id = ProducerId.make(producer.id)
            producers.set(id, producer)
            const location: ProducerLocation = {
              producer: id,
              node,
              mafaldaRouter: MafaldaRouterId.make(mafaldaRouter ?? ""),
              router: h.router,
              kind
            }
            locations.set(id, location)
            madeBy.set(id, clientId)
            indexWrites.unsafeOffer(index.add(location))
            producer.observer.once("close", () => {
              producers.delete(id)
              madeBy.delete(id)
              locations.delete(id)
              indexWrites.unsafeOffer(index.remove(id))
              notify({ _tag: "Closed", what: "producer", id })
            })
            return producerData(producer)
          }),
        Consume: ({ transport, producer, rtpCapabilities, paused }, { clientId }) =>
          Effect.gen(function* () {
            const h = yield* hosted(transport)
            const consumer = yield* attempt("transport.consume", () =>
              h.transport.consume({
                producerId: producer,
                rtpCapabilities: rtpCapabilities as types.RtpCapabilities,
                ...(paused === undefined ? {} : { paused })
              })
            )
            yield* unlessClosedMeanwhile(h, transport, consumer)
            keepConsumer(consumer)
            madeBy.set(consumer.id, clientId)
            const letGo = keepOwnPipe(ProducerId.make(producer), h.router)
            consumer.observer.once("close", () => {
              madeBy.delete(consumer.id)
              letGo()
            })
            return consumerData(consumer)
          }),
        Close: ({ what, id }) =>
          Effect.sync(() => {
            if (what === "transport") transports.get(id)?.transport.close()
            else if (what === "producer") producers.get(id)?.close()
            else consumers.get(id)?.close()
          }),
        GetStats: ({ what, id }, { clientId }) =>
          Effect.flatMap(ownedBy(what, id, clientId), (object) =>
            attempt(`${what}.getStats`, async () => (await object.getStats()) as Stats)
          ),
        Pause: ({ what, id, paused }) =>
          Effect.suspend((): Effect.Effect<void, NodeError> => {
            const target = what === "producer" ? producers.get(id) : consumers.get(id)
            if (target === undefined) return Effect.fail(new UnknownObjectError({ what, id }))
            return attempt(`${what}.${paused ? "pause" : "resume"}`, () =>
              paused ? target.pause() : target.resume()
            )
          }),
        Notices: (request, { clientId }) =>
          listen(clientId).pipe(Stream.filter((notice) => takesNotice(request, notice))),
        PipeOpen,
        PipeConnect: ({ transport, ...parameters }) =>
          Effect.flatMap(pipeTransport(transport), (t) =>
            attempt("pipeTransport.connect", () => t.connect(parameters as never))
          ),
        PipeConsume: ({ transport, producer }) =>
          Effect.gen(function* () {
            const t = yield* pipeTransport(transport)
            const router = (yield* hosted(transport)).router
            const consumer = yield* attempt("pipeTransport.consume", () =>
              t.consume({ producerId: producer })
            )
            // The end closed while the consumer was being made (its grace ran out, say): the
            // consumer would never close, nor let go of what it holds upstream.
            if (t.closed || consumer.closed) {
              consumer.close()
              return yield* Effect.fail(new UnknownObjectError({ what: "PipeTransport", id: transport }))
            }
            pipeTransportOfConsumer.set(consumer.id, t.id)
            keepConsumer(consumer)
            // What feeds this pipe end stays for as long as the other Node leases it (from
            // now: no gap before its `PipeLease`); the lease's end closes the end's transport,
            // so its consumer, which lets go (so does the grace of an end never leased).
            const upstream = holdUpstream(consumer.producerId, router)
            consumer.observer.once("close", () => {
              pipeTransportOfConsumer.delete(consumer.id)
              runFork(upstream)
            })
            return {
              consumer: consumer.id,
              kind: consumer.kind,
              rtpParameters: consumer.rtpParameters as RtpParameters,
              producerPaused: consumer.producerPaused
            }
          }),
        PipeLease,
        PipeFrom: (request, { clientId }) => PipeFrom(request, clientId),
        ClosePipe: ({ producer, router }, { clientId }) =>
          Effect.sync(() => {
            const pipe = pipesIn.get(pipeKey(producer, router))
            if (pipe !== undefined) releasePipe(pipe, clientId)
          }),
        PipeHold: (request, { clientId }) => PipeHold(request, clientId),
        Drain: () => drain
      })
    )

    const service: NodeHostShape = {
      node,
      handlers: handlers as Context.Context<NodeHandlers>,
      drain,
      draining: Ref.get(draining),
      clientTransports: Effect.sync(() => {
        let n = 0
        for (const t of transports.values()) if (t.kind !== "pipe") n++
        return n
      }),
      notices: Stream.fromPubSub(notices),
      republish: Effect.sync(() => {
        for (const location of locations.values()) indexWrites.unsafeOffer(index.add(location))
      })
    }
    return service
  })

/** The host over this Node's Workers, Index, registry and clients of the other Nodes. */
export const layer = (
  options: NodeHostOptions
): Layer.Layer<NodeHost, never, WorkerService | LocalMediasoup | IndexService | NodeRegistry | NodeClients> =>
  Layer.scoped(NodeHost, make(options))

/** The handlers of a host, as the layer the RPC server needs. */
export const handlersLayer: Layer.Layer<NodeHandlers, never, NodeHost> = Layer.effectContext(
  Effect.map(NodeHost, (host) => host.handlers)
)
