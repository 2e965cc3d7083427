/**
 * `Placement` on this Node: decisions of the core carried out through `WorkerService`,
 * recorded in the `SnapshotStore` through the core's interpreter, under `ClusterLocks`.
 *
 * Plans on other Nodes (the core's `Delegate`) and pipes to or from them go through
 * `Delegation` (embedded when the context has none: it never delegates, and such a plan
 * fails with `NoCapacityError`). When it delegates, the snapshot is kept in line with the
 * other Nodes (`peerEvents`, every `syncMillis`).
 *
 * That view of another Node may be a report behind (it just started a Worker for another
 * client, or the registry restarted empty): the core then plans to start a Worker there, and
 * the Node refuses (its Workers with these settings run already). The placement then syncs at
 * once (the cluster's `Delegation` brings in the Workers that Node lists now) and asks the core
 * again (`replanning`, at most `maxReplans` times): the decision stays the core's.
 *
 * This Node can refuse too: its CPUs may run Workers its `NodeHost` started for other apps,
 * which its snapshot leaves out (they are that host's to scale down, not this instance's). When
 * they take every CPU for the settings or the Node's cap on Worker processes
 * (`WorkerService.startRefusal` says so), or a plan to start a Worker here is refused all the
 * same (a start under way), the core decides on a view of the snapshot where this Node starts
 * no Worker (`noStartsOn`): the transport goes to a Worker this instance runs here, or to
 * another Node.
 *
 * @module
 */
import { Effect, Either, FiberRef, HashMap, Layer, Option, Schedule } from "effect"
import type { InvalidEvent } from "../core/applyEvent.js"
import { decideConsumerPlacement } from "../core/consumerPlacement.js"
import type {
  MafaldaRouterId,
  NodeId,
  ProducerId,
  RouterId,
  RtpObserverId,
  SettingsKey
} from "../core/Ids.js"
import { type PlacementPlan, pipeEvents, placementEvents, planTransportPlacement } from "../core/interpret.js"
import type { PolicyOptions } from "../core/PolicyOptions.js"
import { decidePipeToRouter } from "../core/pipeToRouter.js"
import { type ClusterSnapshot, lookup, setNode, workerOfRouter, workersOn } from "../core/Snapshot.js"
import * as Metrics from "../ops/metrics.js"
import * as Observe from "../ops/observe.js"
import { constrainSnapshot, placementConstraint } from "../router/relocation.js"
import { ClusterLocks } from "../services/ClusterLocks.js"
import { delegationOrEmbedded } from "../services/Delegation.js"
import {
  MafaldaRouterClosedError,
  NoCapacityError,
  ProducerNotFoundError,
  routerGoneOperation,
  type WorkerServiceError
} from "../services/errors.js"
import { PipeToRouterOutcome, type Placed, Placement, type PlacementShape } from "../services/Placement.js"
import type { RouterSettings, WorkerSettings } from "../services/SettingsKeys.js"
import { routerSettingsKey, workerSettingsKey } from "../services/SettingsKeys.js"
import { SnapshotStore } from "../services/SnapshotStore.js"
import { type PipeInfo, WorkerService } from "../services/WorkerService.js"

interface MafaldaSettings {
  readonly worker: WorkerSettings
  readonly router: RouterSettings
  readonly workerKey: SettingsKey
}

/** How many times a placement is decided again after a Node (another, or this one) failed to start its Worker. */
export const maxReplans = 2

type CarryOut = (
  settings: MafaldaSettings,
  plan: PlacementPlan
) => Effect.Effect<Placed, NoCapacityError | WorkerServiceError | InvalidEvent>

/** How a placement sees the snapshot (see `replanning`). */
type View = (snapshot: ClusterSnapshot) => ClusterSnapshot

/**
 * A plan a Node (another one, or this one) did not carry out: a Worker start it refused, or
 * (another Node) anything at all, as it is draining (`NoCapacityError` from the cluster's
 * `Delegation`; the embedded one never carries out a plan on another Node).
 */
interface Refused {
  readonly node: NodeId
  readonly error: WorkerServiceError | NoCapacityError
  readonly draining: boolean
}

/** The snapshot as a placement sees it when Node `id` is draining: nothing placed there. */
export const drainingIn = (snapshot: ClusterSnapshot, id: NodeId): ClusterSnapshot => {
  const n = lookup(snapshot.nodes, id)
  return n === undefined || n.state !== "up" ? snapshot : setNode(snapshot, id, { ...n, state: "draining" })
}

/**
 * The snapshot as a placement of Workers with `settings` sees it when Node `id` can start none
 * (this Node: its CPUs for them or its cap on Worker processes taken, by Workers the snapshot
 * may leave out; any Node: a start of it refused during the placement): the Workers it runs
 * stay usable.
 */
export const noStartsOn = (snapshot: ClusterSnapshot, id: NodeId, settings: SettingsKey): ClusterSnapshot => {
  const n = lookup(snapshot.nodes, id)
  if (n === undefined || n.state !== "up") return snapshot
  const running = workersOn(snapshot, id, settings).length
  // Already none to start in the snapshot (every CPU runs one of this instance's).
  if (running >= n.cpus) return snapshot
  return running === 0
    ? setNode(snapshot, id, { ...n, state: "draining" })
    : setNode(snapshot, id, { ...n, cpus: running })
}

const make = (policy: PolicyOptions) =>
  Effect.gen(function* () {
    const workers = yield* WorkerService
    const store = yield* SnapshotStore
    const locks = yield* ClusterLocks
    const delegation = yield* delegationOrEmbedded
    const node = workers.node
    const settingsOf = new Map<MafaldaRouterId, MafaldaSettings>()
    const now = Effect.clockWith((clock) => clock.currentTimeMillis)
    const read = store.current

    const settingsFor = (id: MafaldaRouterId) =>
      Effect.suspend(() => {
        const s = settingsOf.get(id)
        return s === undefined
          ? Effect.fail(
              new MafaldaRouterClosedError({ mafaldaRouter: id, message: `Mafalda Router ${id} is closed` })
            )
          : Effect.succeed(s)
      })

    /**
     * Carries out a placement plan (under the settings lock): starts the Worker and creates
     * the Router it needs, recording each as soon as it exists; returns the Router to use.
     */
    const carryOut = (
      settings: MafaldaSettings,
      plan: PlacementPlan
    ): Effect.Effect<Placed, NoCapacityError | WorkerServiceError | InvalidEvent> =>
      Effect.gen(function* () {
        if (plan.node !== node) {
          // The core's `Delegate`: made on that Node (embedded: NoCapacityError). A hold on a
          // Router there that this plan gave this process is let go again when the Router could
          // not be recorded (its event refused, or the placement interrupted once it was made):
          // else that Node would keep it for this app, unknown to its scale-down, until the
          // connection ends. (Recorded, and only its registration refused, it stays: the
          // snapshot has it, and scale-down closes it when unused. A hold it had before, on
          // a Router the snapshot lost, is not this plan's to let go.)
          return yield* Effect.uninterruptibleMask((restore) =>
            Effect.flatMap(restore(delegation.carryOut(plan, settings)), (made) =>
              // A sync may have recorded the Worker started there first (its Node reported it
              // before these events came back, or listed it when it refused another start of
              // this Node's, see `replanning`): what the snapshot holds is not recorded twice.
              Effect.suspend(() => {
                const known = store.current()
                return store.apply(
                  ...made.events.filter(
                    (e) => e._tag !== "WorkerStarted" || !HashMap.has(known.workers, e.worker)
                  )
                )
              }).pipe(
                restore,
                Effect.onError(() =>
                  Effect.suspend(() =>
                    made.newHold && !HashMap.has(store.current().routers, made.router)
                      ? delegation.closeRouter(plan.node, made.router)
                      : Effect.void
                  )
                ),
                Effect.as({ router: made.router, worker: made.worker, added: made.added })
              )
            )
          )
        }
        let worker = plan.worker
        if (worker === null) {
          worker = (yield* workers.startWorker(settings.worker)).id
          yield* store.apply(...placementEvents(plan, { worker }, yield* now))
        }
        const router = plan.router ?? (yield* workers.createRouter(worker, settings.router)).id
        yield* store.apply(...placementEvents({ ...plan, worker }, { worker, router }, yield* now))
        return { router, worker, added: plan.register }
      })

    /**
     * What a failure of something asked of Node `there` (a plan carried out there, or an object
     * made on a Router there) says of that Node, as the cluster's `Delegation` answers: it is
     * draining (`NoCapacityError`: it started since the last sync), or it no longer has the
     * Router (`routerGoneOperation`); undefined for anything else, or this Node, or embedded
     * (its `NoCapacityError` only says it places nowhere else).
     */
    const refusalBy = (
      there: NodeId | undefined,
      e: { readonly _tag?: unknown; readonly operation?: unknown }
    ): "draining" | "routerGone" | undefined => {
      if (!delegation.delegates || there === undefined || there === node) return undefined
      if (e._tag === "NoCapacityError") return "draining"
      if (e._tag === "WorkerServiceError" && e.operation === routerGoneOperation) return "routerGone"
      return undefined
    }

    /**
     * The other Nodes brought in line now (the periodic sync below, and `replanning`): one by
     * one, as reports, so that one that no longer fits (its object went meanwhile) is dropped.
     */
    const syncNow = Effect.flatMap(delegation.peerEvents(read), (events) =>
      Effect.forEach(events, store.record, { discard: true })
    )

    /**
     * Runs `attempt`: a decision of the core on the current snapshot, carried out through
     * `carry`. When a plan of it asked a Node for a Worker and the Node failed to start one
     * (`WorkerServiceError`: another Node's refusal, `NodeCallError` mapped, the cluster's
     * `Delegation` then asked that Node for its Workers; or this Node's refusal), or another
     * Node refused anything the plan asked as it is draining (its registry record not saying so
     * yet), the snapshot is synced at once (another Node) and `attempt` runs again, at most
     * `maxReplans` times, on a view where every Node that refused a start during this placement
     * starts none (`noStartsOn`) and every Node found draining takes nothing (`drainingIn`),
     * through `view`: the core decides on the Workers those Nodes have, or on other Nodes. So
     * it does from the first round for this Node when it would refuse to start a Worker with
     * `settings` (`WorkerService.startRefusal`: its CPUs for them, or its cap on Worker
     * processes, taken by Workers the snapshot may leave out, its NodeHost's for other apps
     * included); a `NoCapacityError` of that round then says why this Node started none.
     * (The view keeps the core from planning a start on a Node that refused.) A decision that
     * no longer places anywhere after a refusal (`NoCapacityError` before carrying out
     * anything) learnt nothing new: it fails at once with the last refusal.
     */
    const replanning = <A, E extends { readonly _tag: string }>(
      settings: SettingsKey,
      attempt: (carry: CarryOut, view: View) => Effect.Effect<A, E>
    ): Effect.Effect<A, E | WorkerServiceError | NoCapacityError> => {
      const round = (
        refused: ReadonlyArray<Refused>,
        replans: number
      ): Effect.Effect<A, E | WorkerServiceError | NoCapacityError> =>
        Effect.flatMap(
          refused.some((r) => r.node === node) ? Effect.succeedNone : workers.startRefusal(settings),
          (refusal) => {
            let carried = false
            let failed: Refused | undefined
            const view: View = (s) => {
              let seen = Option.isSome(refusal) ? noStartsOn(s, node, settings) : s
              for (const r of refused)
                seen = r.draining ? drainingIn(seen, r.node) : noStartsOn(seen, r.node, settings)
              return seen
            }
            const carry: CarryOut = (settings, plan) => {
              carried = true
              const once = carryOut(settings, plan)
              return Effect.tapError(once, (e) =>
                Effect.sync(() => {
                  // Another Node draining since the snapshot last heard of it: whatever the
                  // plan asked of it (`Delegation` answers NoCapacityError).
                  if (e._tag === "NoCapacityError" && refusalBy(plan.node, e) === "draining")
                    failed = { node: plan.node, error: e, draining: true }
                  // Another Node's refusal to start a Worker (any failure of its start,
                  // `NodeCallError` mapped), or this Node's (not a failure of the Router after it).
                  else if (
                    plan.worker === null &&
                    e._tag === "WorkerServiceError" &&
                    (plan.node !== node || e.operation === "startWorker")
                  )
                    failed = { node: plan.node, error: e, draining: false }
                })
              )
            }
            return Effect.catchAll(
              attempt(carry, view),
              (e): Effect.Effect<A, E | WorkerServiceError | NoCapacityError> => {
                const last = refused[refused.length - 1]
                if (last !== undefined && !carried && e._tag === "NoCapacityError") {
                  return Effect.fail(last.error)
                }
                if (Option.isSome(refusal) && !carried && e instanceof NoCapacityError) {
                  return Effect.fail(
                    new NoCapacityError({
                      message: `${e.message} (this Node starts no Worker: ${refusal.value.message})`
                    })
                  )
                }
                if (failed !== undefined && failed.error === (e as unknown) && replans < maxReplans) {
                  const again = failed
                  const here = again.node === node
                  return Effect.zipRight(
                    Effect.annotateLogs(
                      Effect.logInfo(
                        here
                          ? "This Node did not start a Worker: placing again without starting one here"
                          : again.draining
                            ? `Node ${again.node} is draining: placing again without it`
                            : `Node ${again.node} did not start a Worker: placing again`,
                        again.error
                      ),
                      { node: again.node }
                    ),
                    Effect.zipRight(here ? Effect.void : syncNow, round([...refused, again], replans + 1))
                  )
                }
                return Effect.fail(e)
              }
            )
          }
        )
      return round([], 0)
    }

    // A relocation's new transport is placed away from its old Worker (see relocation.ts).
    const placeLocked = (mafaldaRouter: MafaldaRouterId, settings: MafaldaSettings) =>
      replanning(settings.workerKey, (carry, view) =>
        Effect.flatMap(
          Effect.flatMap(FiberRef.get(placementConstraint), (constraint) =>
            Observe.transportPlan(mafaldaRouter, node, () =>
              planTransportPlacement(view(constrainSnapshot(read(), constraint)), policy, {
                node,
                mafaldaRouter
              })
            )
          ),
          (plan) =>
            Either.isLeft(plan)
              ? Effect.fail(new NoCapacityError({ message: plan.left.message }))
              : carry(settings, plan.right)
        )
      )

    /**
     * Places, creates on the chosen Router and records, all under the placement lock. A Router
     * of another Node that refuses the object is a fact learnt from that Node when the Node is
     * draining (`NoCapacityError` from the cluster's `Delegation`: it started since the last
     * sync; recorded as `NodeDraining`) or no longer has the Router (`routerGoneOperation`: it
     * let go of it, the app's connection to it having dropped; recorded as `RouterClosed`); the
     * placement is then decided again, at most `maxReplans` times (the plans that make a Router
     * or Worker there are re-planned by `replanning`).
     */
    const placeAndCreate = <A, E>(
      mafaldaRouter: MafaldaRouterId,
      create: (router: RouterId) => Effect.Effect<A, E>,
      record: (made: A, router: RouterId) => Effect.Effect<void, InvalidEvent>
    ) =>
      Effect.flatMap(settingsFor(mafaldaRouter), (settings) =>
        locks.placement(settings.workerKey)(
          Effect.gen(function* () {
            for (let replans = 0; ; replans++) {
              const placed = yield* placeLocked(mafaldaRouter, settings)
              const made = yield* Effect.either(create(placed.router))
              if (Either.isRight(made)) {
                yield* record(made.right, placed.router)
                return { ...placed, transport: made.right }
              }
              const there = workerOfRouter(read(), placed.router)?.node
              const refusal = refusalBy(there, made.left as { readonly _tag?: unknown })
              if (refusal === undefined || there === undefined || replans >= maxReplans)
                return yield* Effect.fail(made.left)
              const draining = refusal === "draining"
              yield* Effect.annotateLogs(
                Effect.logInfo(
                  draining
                    ? `Node ${there} is draining: placing again without it`
                    : `Router ${placed.router} is gone from Node ${there}: placing again`,
                  made.left
                ),
                { node: there }
              )
              yield* store.record(
                draining
                  ? { _tag: "NodeDraining", node: there, at: yield* now }
                  : { _tag: "RouterClosed", router: placed.router, at: yield* now }
              )
            }
          })
        )
      )

    const placeTransport: PlacementShape["placeTransport"] = (mafaldaRouter, kind, create, idOf) =>
      placeAndCreate(mafaldaRouter, create, (transport, router) =>
        Effect.flatMap(now, (at) =>
          store.apply({
            _tag: "TransportCreated",
            transport: idOf(transport) as never,
            kind,
            router,
            mafaldaRouter,
            at
          })
        )
      )

    const placeRtpObserver: PlacementShape["placeRtpObserver"] = (mafaldaRouter, create, idOf) =>
      placeAndCreate(mafaldaRouter, create, (observer, router) =>
        Effect.flatMap(now, (at) =>
          store.apply({ _tag: "RtpObserverCreated", observer: idOf(observer) as RtpObserverId, router, at })
        )
      )

    const placeRouter: PlacementShape["placeRouter"] = (mafaldaRouter) =>
      Effect.flatMap(settingsFor(mafaldaRouter), (settings) =>
        locks.placement(settings.workerKey)(placeLocked(mafaldaRouter, settings))
      )

    /** The Node a Router of the snapshot is on (this one when unknown). */
    const nodeOf = (router: RouterId): NodeId => workerOfRouter(read(), router)?.node ?? node

    const makePipe = (producer: ProducerId, from: RouterId, to: RouterId, pinned = false) =>
      Effect.gen(function* () {
        const fromNode = nodeOf(from)
        const toNode = nodeOf(to)
        const pipe =
          fromNode === node && toNode === node
            ? yield* workers.pipe(producer, from, to)
            : yield* delegation.pipe(producer, { node: fromNode, router: from }, { node: toNode, router: to })
        yield* store.apply(...pipeEvents([{ producer, from, to }], yield* now, pinned))
        yield* Observe.pipeMade(pipe)
        return pipe
      })

    const noProducer = (producer: ProducerId, message: string) =>
      new ProducerNotFoundError({ producer, message })

    const ensureSlow = (producer: ProducerId, router: RouterId) =>
      locks.pipes(producer)(
        Effect.suspend(
          (): Effect.Effect<
            ReadonlyArray<PipeInfo>,
            ProducerNotFoundError | WorkerServiceError | InvalidEvent
          > => {
            const decision = Metrics.timed("consumer", () =>
              decideConsumerPlacement(read(), policy, { producer, router })
            )
            switch (decision._tag) {
              case "ConsumeHere":
                return Effect.succeed<ReadonlyArray<PipeInfo>>([])
              case "PipeThenConsume":
                return Effect.forEach(decision.pipes, (p) => makePipe(p.producer, p.from, p.to))
              case "Reject":
                return Effect.fail(noProducer(producer, decision.message))
            }
          }
        )
      )

    const noPipes: ReadonlyArray<PipeInfo> = []
    const ensureProducer: PlacementShape["ensureProducer"] = (producer, router) =>
      Effect.suspend(() =>
        // Fast path: the Router already receives the producer; two O(1) lookups, no lock.
        store.receives(producer, router) ? Effect.succeed(noPipes) : ensureSlow(producer, router)
      )

    /**
     * Decides and carries out, under the placement lock of the destination's Worker settings
     * (like every other placement: a decision must not be carried out on a snapshot another
     * placement has changed since), then makes the pipe after the lock, under the producer's.
     */
    const pipeToMafaldaRouter: PlacementShape["pipeToMafaldaRouter"] = (producer, from, to) =>
      Effect.gen(function* () {
        yield* settingsFor(from)
        const toSettings = yield* settingsFor(to)
        return yield* locks.pipes(producer)(
          Effect.gen(function* () {
            const placed = yield* locks.placement(toSettings.workerKey)(
              replanning(toSettings.workerKey, (carry, view) =>
                Effect.gen(function* () {
                  const decision = decidePipeToRouter(view(read()), policy, {
                    producer,
                    from,
                    to,
                    node
                  })
                  switch (decision._tag) {
                    case "Reject":
                      switch (decision.reason) {
                        case "UnknownProducer":
                          return yield* Effect.fail(noProducer(producer, decision.message))
                        case "NoRoom":
                        case "UnknownNode":
                          yield* Observe.placementRejected(to, decision.message, "pipeToRouter")
                          return yield* Effect.fail(new NoCapacityError({ message: decision.message }))
                        default:
                          return yield* Effect.fail(
                            new MafaldaRouterClosedError({ mafaldaRouter: to, message: decision.message })
                          )
                      }
                    case "Share": {
                      if (decision.register) {
                        yield* store.apply({
                          _tag: "RouterRegistered",
                          mafaldaRouter: to,
                          router: decision.router,
                          at: yield* now
                        })
                      }
                      const worker = lookup(read().routers, decision.router)?.worker
                      return PipeToRouterOutcome.Shared({
                        router: decision.router,
                        added: decision.register,
                        worker: worker as NonNullable<typeof worker>
                      })
                    }
                    case "Pipe":
                      return { from: decision.from, placement: yield* carry(toSettings, decision.plan) }
                  }
                })
              )
            )
            if ("_tag" in placed) return placed
            const pipe = yield* makePipe(producer, placed.from, placed.placement.router, true)
            return PipeToRouterOutcome.Piped({ pipe, placement: placed.placement })
          })
        )
      })

    const createMafaldaRouter: PlacementShape["createMafaldaRouter"] = (
      id,
      workerSettings,
      routerSettings,
      hint
    ) =>
      Effect.gen(function* () {
        const workerKey = workerSettingsKey(workerSettings)
        yield* store.apply({
          _tag: "MafaldaRouterCreated",
          mafaldaRouter: id,
          workerSettings: workerKey,
          routerSettings: routerSettingsKey(routerSettings),
          ...(hint === undefined ? {} : { hint }),
          at: yield* now
        })
        settingsOf.set(id, { worker: workerSettings, router: routerSettings, workerKey })
      })

    const closeMafaldaRouter: PlacementShape["closeMafaldaRouter"] = (id) =>
      Effect.gen(function* () {
        settingsOf.delete(id)
        yield* store.record({ _tag: "MafaldaRouterClosed", mafaldaRouter: id, at: yield* now })
      })

    // The other Nodes, kept in line with the cluster (only when delegating).
    const syncMillis = delegation.syncMillis
    if (syncMillis !== undefined) {
      yield* syncNow.pipe(
        Effect.catchAllCause((cause) => Effect.logWarning("syncing the other Nodes failed", cause)),
        Effect.repeat(Schedule.spaced(syncMillis)),
        Effect.interruptible,
        Effect.forkScoped
      )
    }

    const service: PlacementShape = {
      node,
      options: policy,
      createMafaldaRouter,
      closeMafaldaRouter,
      placeTransport,
      placeRtpObserver,
      placeRouter,
      ensureProducer,
      pipeToMafaldaRouter
    }
    return service
  })

export const layer = (
  policy: PolicyOptions
): Layer.Layer<Placement, never, WorkerService | SnapshotStore | ClusterLocks> =>
  Layer.scoped(Placement, make(policy))
