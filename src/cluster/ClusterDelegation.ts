/**
 * `Delegation` in cluster mode: the other Nodes come from the `NodeRegistry`
 * (`registryEvents`), a delegated plan is carried out over RPC (`carryOutRemotely`), a
 * transport there is made by the Node API and returned as a `RemoteTransport` (mediasoup's
 * API), and a pipe across Nodes is the RPC pipe handshake, driven by the destination Node
 * (`PipeFrom`, SRTP on).
 *
 * One session per Node in use: its client (`NodeClients`) and its `Notices` stream, which
 * routes what happens there on its own to the remote objects (a close, a producer's pause,
 * a Worker's death). When the stream ends (the Node died, its socket broke, it left the
 * registry), every remote object of that Node closes as mediasoup's do when their Router
 * goes: transports emit `routerclose`, their producers and consumers `transportclose`.
 *
 * @module
 */
import {
  Cause,
  Clock,
  Effect,
  Either,
  Exit,
  Fiber,
  HashMap,
  Layer,
  ParseResult,
  Runtime,
  Stream
} from "effect"
import { types } from "mediasoup"
import type { ClusterEvent } from "../core/ClusterEvent.js"
import type { NodeId, SettingsKey, WorkerId } from "../core/Ids.js"
import type { NodeCallError, NodeNotice } from "../rpc/NodeRpcs.js"
import type { NodeClient } from "../rpc/transport.js"
import { Delegation, type DelegationShape, type RemoteTransportRequest } from "../services/Delegation.js"
import { NoCapacityError, routerGoneOperation, WorkerServiceError } from "../services/errors.js"
import { NodeRegistry } from "../services/NodeRegistry.js"
import type { PipeInfo } from "../services/WorkerService.js"
import { WorkerService } from "../services/WorkerService.js"
import { carryOutRemotely, registryEvents } from "./delegation.js"
import { NodeClients } from "./NodeClients.js"
import { type RemoteObject, type RemoteSession, RemoteTransport } from "./RemoteTransport.js"
import { plainTransportOptions, webRtcTransportOptions } from "./remoteTransportOptions.js"

/** How long closing waits for the closes sent to other Nodes. */
const closeTimeoutMillis = 2000

/** How long a Worker `carryOut` started is left out of the syncs if the snapshot never learns of it. */
const startedHereMillis = 10_000

/** How long the syncs offer a Worker a Node listed after refusing a start, if the snapshot never takes it. */
const listedMillis = 10_000

/** How long `carryOut` waits for a Node's `NodeInfo` after it refused to start a Worker. */
const nodeInfoTimeoutMillis = 2000

export interface ClusterDelegationOptions {
  /** How often the snapshot is brought in line with the registry (default 500 ms). */
  readonly syncMillis?: number | undefined
}

/** The message of a failure of a call to another Node. */
const messageOf = (e: unknown): string =>
  typeof e === "object" && e !== null && "message" in e ? String(e.message) : String(e)

const tagOf = (e: unknown): string | undefined =>
  typeof e === "object" && e !== null && "_tag" in e ? String(e._tag) : undefined

/**
 * A Node refused or failed to start a Worker (`StartWorker`): a `NodeCallError` of its
 * `WorkerService`'s `startWorker` (`NodeHost` carries the operation over). Its Workers with
 * these settings may be a report ahead of the snapshot ("N Workers with these settings already
 * run (one per CPU)"): `carryOut` then asks the Node for its Workers (`NodeInfo`).
 */
export const isStartRefusal = (e: unknown): e is NodeCallError =>
  tagOf(e) === "NodeCallError" && (e as NodeCallError).operation === "startWorker"

/** A failure of the Node API as the error mediasoup would throw. */
export const toMediasoupError = (e: unknown): Error => {
  const tag = tagOf(e)
  if (tag === "NodeCallError") {
    const { errorName, message } = e as { errorName: string; message: string }
    if (errorName === "TypeError") return new TypeError(message)
    if (errorName === "InvalidStateError") return new types.InvalidStateError(message)
    if (errorName === "UnsupportedError") return new types.UnsupportedError(message)
    return new Error(message)
  }
  if (tag === "UnknownObjectError") {
    const { what, id } = e as { what: string; id: string }
    return new types.InvalidStateError(`${what} ${id} not found on its Node (closed)`)
  }
  if (tag === "NodeDrainingError") return new Error(`the Node is draining: ${messageOf(e)}`)
  return new Error(`the Node did not answer: ${messageOf(e)}`)
}

/**
 * Arguments the Node API's schema refuses (the RPC client fails to encode them: a defect) as
 * mediasoup's `TypeError` for bad arguments; undefined for any other defect.
 */
const badArguments = (defect: unknown): TypeError | undefined =>
  ParseResult.isParseError(defect) ? new TypeError(defect.message) : undefined

/** A call that died: bad arguments as mediasoup's `TypeError` (`badArguments`), anything else as it is. */
const fromDefect = (cause: Cause.Cause<unknown>): unknown => {
  const defect = Cause.squash(cause)
  return badArguments(defect) ?? defect
}

/** A failure of the Node API, with mediasoup's error kind as its cause (see `toMediasoupError`). */
const toWorkerError = (operation: string) => (e: unknown) =>
  new WorkerServiceError({ operation, message: messageOf(e), cause: toMediasoupError(e) })

/**
 * A failure of a call that makes something on Node `node` (`carryOut`, `createTransport`) as
 * `Placement` reads it: the Node draining (it started since the last sync) as
 * `NoCapacityError` ("Node … is draining"), the Router gone from it (it let go of it) as a
 * `WorkerServiceError` of `routerGoneOperation`, bad arguments (a `TypeError`) kept as the
 * cause, anything else as `toWorkerError` says.
 */
const toDelegationError =
  (node: NodeId, operation: string) =>
  (e: unknown): NoCapacityError | WorkerServiceError => {
    const tag = tagOf(e)
    if (tag === "NodeDrainingError") return new NoCapacityError({ message: `Node ${node} is draining` })
    if (tag === "UnknownObjectError" && (e as { readonly what: string }).what === "Router")
      return new WorkerServiceError({
        operation: routerGoneOperation,
        message: messageOf(e),
        cause: toMediasoupError(e)
      })
    if (e instanceof TypeError) return new WorkerServiceError({ operation, message: e.message, cause: e })
    return toWorkerError(operation)(e)
  }

interface Session extends RemoteSession {
  readonly objects: Map<string, { readonly object: RemoteObject; readonly worker?: WorkerId }>
}

const make = (options: ClusterDelegationOptions) =>
  Effect.gen(function* () {
    const clients = yield* NodeClients
    const registry = yield* NodeRegistry
    const workers = yield* WorkerService
    const self = workers.node
    const scope = yield* Effect.scope
    const runtime = yield* Effect.runtime<never>()
    const runFork = Runtime.runFork(runtime)
    const sessions = new Map<NodeId, Session>()
    /** Calls nobody waits for (closes) still under way. */
    const fired = new Set<Fiber.RuntimeFiber<unknown, never>>()
    /** What the Nodes' notices told (pipes into them closed, Workers died), for the next sync. */
    let noticed: Array<ClusterEvent> = []
    /**
     * Workers `carryOut` is starting on other Nodes: how many starts are under way per Node,
     * and the Workers started whose `WorkerStarted` the snapshot may not hold yet (when each
     * was started). Their Node's report may list them before `Placement` applies the events
     * `carryOut` returned; a sync recording them first would make that apply fail ("exists
     * already"), so the sync leaves them to `carryOut`'s events.
     */
    const startingOn = new Map<NodeId, number>()
    const startedHere = new Map<WorkerId, number>()
    /**
     * Workers a Node listed (`NodeInfo`) when it refused to start one (`carryOut`), with when
     * it answered: the next sync records those the snapshot lacks (its report is behind), so
     * that `Placement`, re-planning on that sync, uses them. Each is offered once (a later
     * `WorkerDied` or `WorkerClosed` of it in the same sync must not be undone by the next), and
     * dropped unoffered when the snapshot holds it already or after `listedMillis`.
     */
    const listed = new Map<
      WorkerId,
      { readonly node: NodeId; readonly settings: SettingsKey; readonly at: number }
    >()
    /**
     * Workers a Node told died (`WorkerDied` notices), with their Node: its registry record
     * may still list one until its next report, and a sync would offer it again as started
     * (the snapshot no longer has it). Kept until the Node's record no longer lists it.
     */
    const died = new Map<WorkerId, NodeId>()
    const loseAll = (session: Session) => {
      if (sessions.get(session.node) === session) sessions.delete(session.node)
      const all = Array.from(session.objects.values())
      session.objects.clear()
      for (const { object } of all) object.lost("node")
    }

    const onNotice = (session: Session, notice: NodeNotice, at: number) => {
      // A consumer that closed with its transport (its Worker died, say): the transport's own
      // `Closed` follows at once and closes it with `transportclose`, as in mediasoup (and a
      // relocation re-makes it). Any other close of a consumer (its producer went) is told now.
      if (notice._tag === "Closed" && notice.what === "consumer" && notice.reason === "transportclose") {
        session.objects.delete(notice.id)
        return
      }
      handleNotice(session, notice, at)
    }

    const handleNotice = (session: Session, notice: NodeNotice, at: number) => {
      switch (notice._tag) {
        case "Closed": {
          const entry = session.objects.get(notice.id)
          session.objects.delete(notice.id)
          entry?.object.closedByNode()
          return
        }
        case "ProducerPaused":
          session.objects.get(notice.consumer)?.object.producerPaused?.(notice.paused)
          return
        case "TransportState":
          session.objects.get(notice.transport)?.object.stateChanged?.(notice)
          return
        case "WorkerDied":
          // Recorded with the next sync: no placement on it meanwhile (the registry would
          // tell only after its next report and a grace period).
          noticed.push({ _tag: "WorkerDied", worker: notice.worker, at })
          died.set(notice.worker, session.node)
          for (const [id, entry] of Array.from(session.objects)) {
            if (entry.worker !== notice.worker) continue
            session.objects.delete(id)
            entry.object.lost("worker")
          }
          return
        case "PipeClosed":
          noticed.push({ _tag: "PipeClosed", producer: notice.producer, to: notice.router, at })
          return
      }
    }

    const openSession = (node: NodeId, client: NodeClient) =>
      Effect.gen(function* () {
        const session: Session = {
          node,
          client,
          objects: new Map(),
          run: <A>(call: (c: NodeClient) => unknown) =>
            Runtime.runPromiseExit(runtime)(call(client) as Effect.Effect<A, unknown>).then((exit) => {
              if (Exit.isSuccess(exit)) return exit.value
              const failure = Cause.failureOption(exit.cause)
              throw failure._tag === "Some" ? toMediasoupError(failure.value) : fromDefect(exit.cause)
            }),
          fire: (call) => {
            const fiber = runFork(
              (call(client) as Effect.Effect<unknown, unknown>).pipe(
                Effect.catchAllCause((cause) => Effect.logDebug(`a call to Node ${node} failed`, cause))
              )
            )
            fired.add(fiber)
            fiber.addObserver(() => fired.delete(fiber))
          },
          track: (id, object, worker) =>
            void session.objects.set(id, worker === undefined ? { object } : { object, worker }),
          forget: (id) => void session.objects.delete(id)
        }
        sessions.set(node, session)
        // The notices; when they stop, for whatever reason, the Node's objects are lost.
        yield* client.Notices({ tuples: true }).pipe(
          Stream.runForEach((notice) =>
            Effect.flatMap(Clock.currentTimeMillis, (at) => Effect.sync(() => onNotice(session, notice, at)))
          ),
          Effect.catchAllCause((cause) => Effect.logInfo(`the notices of Node ${node} ended`, cause)),
          Effect.ensuring(Effect.sync(() => loseAll(session))),
          Effect.interruptible,
          Effect.forkIn(scope)
        )
        return session
      })

    const opening = yield* Effect.makeSemaphore(1)
    const sessionOf = (node: NodeId) =>
      Effect.suspend(() => {
        const known = sessions.get(node)
        if (known !== undefined) return Effect.succeed(known)
        return opening.withPermits(1)(
          Effect.gen(function* () {
            const again = sessions.get(node)
            if (again !== undefined) return again
            const client = yield* clients.get(node)
            return yield* openSession(node, client)
          })
        )
      })

    // A Node gone from the registry (evicted, or it left): its objects are lost.
    yield* Stream.fromQueue(yield* registry.subscribe).pipe(
      Stream.runForEach((gone) =>
        Effect.sync(() => {
          const session = sessions.get(gone.node)
          if (session !== undefined) loseAll(session)
        })
      ),
      Effect.interruptible,
      Effect.forkScoped
    )
    // Closing: the closes under way (the Mafalda Routers closed their remote transports
    // just before) reach their Nodes while the clients are still open, then the rest is lost.
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => Fiber.awaitAll(Array.from(fired))).pipe(
        Effect.timeout(closeTimeoutMillis),
        Effect.ignore,
        Effect.andThen(
          Effect.sync(() => {
            for (const session of Array.from(sessions.values())) loseAll(session)
          })
        )
      )
    )

    const peerEvents: DelegationShape["peerEvents"] = (current) =>
      Effect.gen(function* () {
        const records = yield* registry.nodes.pipe(
          Effect.tapError((e) => Effect.logWarning("the registry did not answer", e)),
          Effect.orElseSucceed(() => undefined)
        )
        const at = yield* Clock.currentTimeMillis
        const pipes = noticed
        noticed = []
        // A Redis outage: the other Nodes stay as they were last seen.
        const snapshot = current()
        for (const [worker, startedAt] of Array.from(startedHere)) {
          // Known to the snapshot (carryOut's events applied), or long enough ago that they never will be.
          if (HashMap.has(snapshot.workers, worker) || at - startedAt > startedHereMillis)
            startedHere.delete(worker)
        }
        if (records !== undefined) {
          for (const [worker, node] of Array.from(died)) {
            const record = records.find((r) => r.node === node)
            if (record === undefined || !record.workers.some((w) => w.worker === worker)) died.delete(worker)
          }
        }
        const nodes = (records === undefined ? [] : registryEvents(snapshot, records, self, at)).filter(
          (e) =>
            e._tag !== "WorkerStarted" ||
            ((startingOn.get(e.node) ?? 0) === 0 && !startedHere.has(e.worker) && !died.has(e.worker))
        )
        // The Workers a Node listed after refusing a start, which neither the snapshot nor the
        // registry's report has yet: started when the Node listed them (no load known yet,
        // and a report older than that does not close them). One this Node's `carryOut` is
        // starting at the same time is recorded by whichever comes first: `Placement` skips a
        // `WorkerStarted` the snapshot holds already.
        const reported = new Set(nodes.flatMap((e) => (e._tag === "WorkerStarted" ? [e.worker] : [])))
        const fresh: Array<ClusterEvent> = []
        for (const [worker, l] of Array.from(listed)) {
          if (HashMap.has(snapshot.workers, worker) || at - l.at > listedMillis || died.has(worker))
            listed.delete(worker)
          else if (!reported.has(worker) && !startedHere.has(worker)) {
            fresh.push({ _tag: "WorkerStarted", worker, node: l.node, settings: l.settings, at: l.at })
            listed.delete(worker)
          }
        }
        return [...nodes, ...fresh, ...pipes]
      })

    /**
     * After `node` refused to start a Worker: its Workers as it lists them now (`NodeInfo`),
     * for the next sync (`listed`). Never fails: a Node that does not answer leaves the view as
     * it was (and the placement fails as it would have).
     */
    const listWorkersOf = (node: NodeId) =>
      clients.get(node).pipe(
        Effect.flatMap((client) => client.NodeInfo()),
        Effect.timeoutFail({
          duration: nodeInfoTimeoutMillis,
          onTimeout: () => new Error(`no answer within ${nodeInfoTimeoutMillis} ms`)
        }),
        Effect.flatMap((info) =>
          Effect.flatMap(Clock.currentTimeMillis, (at) =>
            Effect.sync(() => {
              for (const w of info.workers) {
                if (!startedHere.has(w.id)) listed.set(w.id, { node, settings: w.settings, at })
              }
            })
          )
        ),
        Effect.catchAllCause((cause) =>
          Effect.logDebug(`Node ${node} refused a Worker and did not list its Workers`, cause)
        )
      )

    /** `effect` counted as a Worker start under way on `node` (the syncs leave its Workers alone). */
    const whileStarting = <A, E>(node: NodeId, effect: Effect.Effect<A, E>) =>
      Effect.acquireUseRelease(
        Effect.sync(() => void startingOn.set(node, (startingOn.get(node) ?? 0) + 1)),
        () => effect,
        () =>
          Effect.sync(() => {
            const left = (startingOn.get(node) ?? 1) - 1
            if (left === 0) startingOn.delete(node)
            else startingOn.set(node, left)
          })
      )

    const carryOut: DelegationShape["carryOut"] = (plan, settings) => {
      const remotely = carryOutRemotely(plan, settings).pipe(
        Effect.tap((made) =>
          Effect.flatMap(Clock.currentTimeMillis, (at) =>
            Effect.sync(() => {
              if (plan.worker === null) startedHere.set(made.worker, at)
            })
          )
        ),
        Effect.provideService(NodeClients, clients)
      )
      return (plan.worker === null ? whileStarting(plan.node, remotely) : remotely).pipe(
        // The Node's Workers may be a report ahead of the snapshot: `Placement` re-plans after a
        // sync, which records the Workers the Node lists now.
        Effect.tapError((e) => (isStartRefusal(e) ? listWorkersOf(plan.node) : Effect.void)),
        Effect.mapError(toDelegationError(plan.node, `placement on Node ${plan.node}`))
      )
    }

    const createTransport: DelegationShape["createTransport"] = (request: RemoteTransportRequest) =>
      Effect.gen(function* () {
        const session = yield* sessionOf(request.node).pipe(
          Effect.mapError(toWorkerError(`transport on Node ${request.node}`))
        )
        const o = (request.options ?? {}) as Record<string, unknown>
        // mediasoup's kind for a feature it does not offer: the app gets an UnsupportedError.
        const unsupported = (what: string) => {
          const message = `${what} is not supported on another Node (Node ${request.node})`
          return new WorkerServiceError({
            operation: "createTransport",
            message,
            cause: new types.UnsupportedError(message)
          })
        }
        // A Node draining, or without the Router any more, refuses: `Placement` places again.
        const call = (operation: string, effect: Effect.Effect<unknown, unknown>) =>
          effect.pipe(
            Effect.catchAllDefect((defect) => {
              const bad = badArguments(defect)
              return bad === undefined ? Effect.die(defect) : Effect.fail(bad)
            }),
            Effect.mapError(toDelegationError(request.node, `${operation} on Node ${request.node}`))
          )
        let data: ConstructorParameters<typeof RemoteTransport>[0]["data"]
        if (request.kind === "webrtc") {
          const options = webRtcTransportOptions(o)
          if (Either.isLeft(options)) return yield* unsupported(options.left.what)
          const made = yield* call(
            "createWebRtcTransport",
            session.client.CreateWebRtcTransport({ router: request.router, ...options.right } as never)
          )
          data = { kind: "webrtc", ...(made as Omit<Extract<typeof data, { kind: "webrtc" }>, "kind">) }
        } else if (request.kind === "plain") {
          const options = plainTransportOptions(o)
          if (Either.isLeft(options)) return yield* unsupported(options.left.what)
          const made = yield* call(
            "createPlainTransport",
            session.client.CreatePlainTransport({ router: request.router, ...options.right } as never)
          )
          data = { kind: "plain", ...(made as Omit<Extract<typeof data, { kind: "plain" }>, "kind">) }
        } else {
          return yield* unsupported(`a ${request.kind} transport`)
        }
        const transport = new RemoteTransport({
          session,
          data,
          router: request.router,
          worker: request.worker,
          mafaldaRouter: request.mafaldaRouter,
          appData: o.appData as types.AppData | undefined
        })
        session.track(transport.id, transport.asRemoteObject(), request.worker)
        return transport as unknown as types.Transport
      })

    const pipe: DelegationShape["pipe"] = (producer, from, to) =>
      Effect.gen(function* () {
        const operation = `pipe from Node ${from.node} to Node ${to.node}`
        // The destination's Node drives the handshake (this Node's own server too).
        const client = yield* clients.get(to.node).pipe(Effect.mapError(toWorkerError(operation)))
        const data = yield* client
          .PipeFrom({ producer, origin: from.node, from: from.router, to: to.router })
          .pipe(Effect.mapError(toWorkerError(operation)))
        const info: PipeInfo = {
          producer,
          from: from.router,
          to: to.router,
          pipeConsumer: data.pipeConsumer,
          pipeProducer: data.pipeProducer
        }
        return info
      })

    /** A close sent to a Node by scale-down: awaited (up to `closeTimeoutMillis`), never failing. */
    const closeOn = (
      node: NodeId,
      what: string,
      call: (client: NodeClient) => Effect.Effect<void, unknown>
    ) =>
      clients.get(node).pipe(
        Effect.flatMap(call),
        Effect.timeoutFail({
          duration: closeTimeoutMillis,
          onTimeout: () => new Error(`no answer within ${closeTimeoutMillis} ms`)
        }),
        Effect.catchAllCause((cause) =>
          Effect.annotateLogs(
            Effect.logWarning(`scale-down could not close ${what} on Node ${node}`, cause),
            {
              node
            }
          )
        )
      )

    const closeRouter: DelegationShape["closeRouter"] = (node, router) =>
      closeOn(node, `Router ${router}`, (client) => client.CloseRouter({ router }))

    const closePipe: DelegationShape["closePipe"] = (producer, to) =>
      closeOn(to.node, `the pipe of ${producer} into Router ${to.router}`, (client) =>
        client.ClosePipe({ producer, router: to.router })
      )

    const service: DelegationShape = {
      delegates: true,
      peerEvents,
      syncMillis: options.syncMillis ?? 500,
      carryOut,
      createTransport,
      pipe,
      closeRouter,
      closePipe
    }
    return service
  })

/** Cluster mode: delegates to the Nodes of the registry, over their RPC API. */
export const layer = (
  options: ClusterDelegationOptions = {}
): Layer.Layer<Delegation, never, NodeClients | NodeRegistry | WorkerService> =>
  Layer.scoped(Delegation, make(options))
