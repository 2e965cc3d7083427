/**
 * The `ClusterState` shell for one Node: snapshot, locks, decisions carried out through
 * `WorkerService`, loads from `TrackerService`, Worker deaths and pipe closes from
 * `WorkerService.notices`, and scale-down on an interval.
 *
 * @module
 */
import { Clock, Duration, Effect, Either, HashMap, Layer, PubSub, Schedule, Stream } from "effect"
import { applyEvent, type InvalidEvent } from "../core/applyEvent.js"
import type { ClusterEvent } from "../core/ClusterEvent.js"
import { decideConsumerPlacement } from "../core/consumerPlacement.js"
import type { MafaldaRouterId, ProducerId, RouterId, RtpObserverId, SettingsKey } from "../core/Ids.js"
import {
  type PlacementPlan,
  pipeEvents,
  placementEvents,
  planTransportPlacement,
  scaleDownEvent,
  settingsOfAction
} from "../core/interpret.js"
import type { PolicyOptions } from "../core/PolicyOptions.js"
import { decidePipeToRouter } from "../core/pipeToRouter.js"
import {
  type ClusterSnapshot,
  emptySnapshot,
  lookup,
  mafaldaRoutersOnWorkers,
  type TransportKind
} from "../core/Snapshot.js"
import { decideScaleDown, isScaleDownDue, type ScaleDownAction } from "../core/scaleDown.js"
import {
  ClusterNotice,
  ClusterState,
  type ClusterStateShape,
  type DistributiveOmit,
  MafaldaRouterClosedError,
  NoCapacityError,
  PipeToRouterOutcome,
  type Placement,
  ProducerNotFoundError
} from "../services/ClusterState.js"
import type { RouterSettings, WorkerSettings } from "../services/SettingsKeys.js"
import { routerSettingsKey, workerSettingsKey } from "../services/SettingsKeys.js"
import { TrackerService } from "../services/TrackerService.js"
import { type PipeInfo, WorkerService, type WorkerServiceError } from "../services/WorkerService.js"

export interface ClusterStateOptions {
  readonly policy: PolicyOptions
  /** How often idle things are looked for (default: a quarter of the grace period, 250 ms to 10 s). */
  readonly scaleDownInterval?: Duration.DurationInput | undefined
}

/** A lock per key, made on first use. */
const keyedLocks = () => {
  const locks = new Map<string, Effect.Semaphore>()
  return {
    with:
      (key: string) =>
      <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => {
        let lock = locks.get(key)
        if (lock === undefined) {
          lock = Effect.unsafeMakeSemaphore(1)
          locks.set(key, lock)
        }
        return lock.withPermits(1)(effect)
      },
    drop: (key: string) => void locks.delete(key)
  }
}

interface MafaldaSettings {
  readonly worker: WorkerSettings
  readonly router: RouterSettings
  readonly workerKey: SettingsKey
}

const make = (options: ClusterStateOptions) =>
  Effect.gen(function* () {
    const workers = yield* WorkerService
    const tracker = yield* TrackerService
    const clock = yield* Effect.clock
    const policy = options.policy
    const costs = policy.costs
    const node = workers.node
    const notices = yield* Effect.acquireRelease(PubSub.unbounded<ClusterNotice>(), PubSub.shutdown)
    const settingsOf = new Map<MafaldaRouterId, MafaldaSettings>()
    const placementLocks = keyedLocks()
    const pipeLocks = keyedLocks()

    // The snapshot. Each change is one synchronous pure `applyEvent`, hence atomic on the
    // one JavaScript thread; multi-step work is serialised by the keyed locks above.
    let snapshot: ClusterSnapshot = emptySnapshot

    // Write-behind for the hot path: `ConsumerCreated`/`ConsumerClosed` reported by
    // `recordNow` are queued and applied, in order, before anything else is applied or the
    // snapshot is read for a decision (or 20 ms later at the latest).
    // They never change which Routers receive a producer, so the consume fast path may read
    // the trees without applying them.
    let pending: Array<ClusterEvent> = []
    let flushScheduled = false
    const flush = (): void => {
      if (pending.length === 0) return
      const events = pending
      pending = []
      for (const event of events) {
        // A consumer closed with its transport or Router is gone already: nothing to apply
        // (and no error to build).
        if (event._tag === "ConsumerClosed" && !HashMap.has(snapshot.consumers, event.consumer)) continue
        const next = applyEvent(snapshot, event, costs)
        if (Either.isRight(next)) snapshot = next.right
      }
    }
    const scheduledFlush = () => {
      flushScheduled = false
      flush()
    }

    const applyNow = (event: ClusterEvent): Either.Either<void, InvalidEvent> => {
      flush()
      const next = applyEvent(snapshot, event, costs)
      if (Either.isLeft(next)) return Either.left(next.left)
      snapshot = next.right
      if (event._tag === "ProducerClosed") pipeLocks.drop(event.producer)
      return Either.void
    }
    const apply = (event: ClusterEvent): Effect.Effect<void, InvalidEvent> =>
      Effect.suspend(() => applyNow(event))
    const record = (event: ClusterEvent): Effect.Effect<void> => Effect.sync(() => void applyNow(event))
    const recordNow = (event: DistributiveOmit<ClusterEvent, "at">): void => {
      const stamped = { ...event, at: clock.unsafeCurrentTimeMillis() } as ClusterEvent
      if (stamped._tag === "ConsumerCreated" || stamped._tag === "ConsumerClosed") {
        pending.push(stamped)
        if (!flushScheduled) {
          flushScheduled = true
          setTimeout(scheduledFlush, 20).unref()
        }
        return
      }
      applyNow(stamped)
    }
    const read = (): ClusterSnapshot => {
      flush()
      return snapshot
    }
    const now = Clock.currentTimeMillis

    yield* apply({ _tag: "NodeUp", node, cpus: workers.cpus, address: "127.0.0.1", at: yield* now }).pipe(
      Effect.orDie
    )

    const settingsFor = (id: MafaldaRouterId) =>
      Effect.suspend(() => {
        const s = settingsOf.get(id)
        return s === undefined
          ? Effect.fail(
              new MafaldaRouterClosedError({ mafaldaRouter: id, message: `Mafalda Router ${id} is closed` })
            )
          : Effect.succeed(s)
      })

    const applyAll = (events: ReadonlyArray<ClusterEvent>): Effect.Effect<void, InvalidEvent> =>
      Effect.forEach(events, apply, { discard: true })

    /**
     * Carries out a placement plan (under the settings lock): starts the Worker and creates
     * the Router it needs, recording each as soon as it exists; returns the Router to use.
     */
    const carryOut = (
      settings: MafaldaSettings,
      plan: PlacementPlan
    ): Effect.Effect<Placement, NoCapacityError | WorkerServiceError | InvalidEvent> =>
      Effect.gen(function* () {
        if (plan.node !== node) {
          return yield* new NoCapacityError({ message: `no room on this Node (Node ${plan.node} has some)` })
        }
        let worker = plan.worker
        if (worker === null) {
          const started = yield* workers.startWorker(settings.worker)
          worker = started.id
          yield* applyAll(placementEvents(plan, { worker }, yield* now))
        }
        const router = plan.router ?? (yield* workers.createRouter(worker, settings.router)).id
        yield* applyAll(placementEvents({ ...plan, worker }, { worker, router }, yield* now))
        return { router, worker, added: plan.register }
      })

    const placeRouterLocked = (mafaldaRouter: MafaldaRouterId, settings: MafaldaSettings) =>
      Effect.suspend(() => {
        const plan = planTransportPlacement(read(), policy, { node, mafaldaRouter })
        return Either.isLeft(plan)
          ? Effect.fail(new NoCapacityError({ message: plan.left.message }))
          : carryOut(settings, plan.right)
      })

    const placeTransport: ClusterStateShape["placeTransport"] = <A, E>(
      mafaldaRouter: MafaldaRouterId,
      kind: TransportKind,
      create: (router: RouterId) => Effect.Effect<A, E>,
      idOf: (transport: A) => string
    ) =>
      Effect.flatMap(settingsFor(mafaldaRouter), (settings) =>
        placementLocks.with(settings.workerKey)(
          Effect.gen(function* () {
            const placement = yield* placeRouterLocked(mafaldaRouter, settings)
            const transport = yield* create(placement.router)
            yield* apply({
              _tag: "TransportCreated",
              transport: idOf(transport) as never,
              kind,
              router: placement.router,
              mafaldaRouter,
              at: yield* now
            })
            return { ...placement, transport }
          })
        )
      )

    const placeRtpObserver: ClusterStateShape["placeRtpObserver"] = <A, E>(
      mafaldaRouter: MafaldaRouterId,
      create: (router: RouterId) => Effect.Effect<A, E>,
      idOf: (observer: A) => string
    ) =>
      Effect.flatMap(settingsFor(mafaldaRouter), (settings) =>
        placementLocks.with(settings.workerKey)(
          Effect.gen(function* () {
            const placement = yield* placeRouterLocked(mafaldaRouter, settings)
            const observer = yield* create(placement.router)
            yield* apply({
              _tag: "RtpObserverCreated",
              observer: idOf(observer) as RtpObserverId,
              router: placement.router,
              at: yield* now
            })
            return { ...placement, transport: observer }
          })
        )
      )

    const placeRouter: ClusterStateShape["placeRouter"] = (mafaldaRouter) =>
      Effect.flatMap(settingsFor(mafaldaRouter), (settings) =>
        placementLocks.with(settings.workerKey)(placeRouterLocked(mafaldaRouter, settings))
      )

    const makePipe = (producer: ProducerId, from: RouterId, to: RouterId, pinned = false) =>
      Effect.gen(function* () {
        const pipe = yield* workers.pipe(producer, from, to)
        yield* applyAll(pipeEvents([{ producer, from, to }], yield* now, pinned))
        return pipe
      })

    const noProducer = (producer: ProducerId, message: string) =>
      new ProducerNotFoundError({ producer, message })

    const ensureSlow = (producer: ProducerId, router: RouterId) =>
      pipeLocks.with(producer)(
        Effect.suspend(
          (): Effect.Effect<
            ReadonlyArray<PipeInfo>,
            ProducerNotFoundError | WorkerServiceError | InvalidEvent
          > => {
            const decision = decideConsumerPlacement(read(), policy, { producer, router })
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
    const ensureProducer: ClusterStateShape["ensureProducer"] = (producer, router) =>
      Effect.suspend(() => {
        // Fast path: the Router already receives the producer; two O(1) lookups, no lock.
        const tree = lookup(snapshot.trees, producer)
        if (tree !== undefined && HashMap.has(tree, router)) return Effect.succeed(noPipes)
        return ensureSlow(producer, router)
      })

    const pipeToMafaldaRouter: ClusterStateShape["pipeToMafaldaRouter"] = (producer, from, to) =>
      Effect.gen(function* () {
        yield* settingsFor(from)
        const toSettings = yield* settingsFor(to)
        return yield* pipeLocks.with(producer)(
          Effect.gen(function* () {
            const decision = decidePipeToRouter(read(), policy, { producer, from, to, node })
            switch (decision._tag) {
              case "Reject":
                switch (decision.reason) {
                  case "UnknownProducer":
                    return yield* Effect.fail(noProducer(producer, decision.message))
                  case "NoRoom":
                  case "UnknownNode":
                    return yield* Effect.fail(new NoCapacityError({ message: decision.message }))
                  default:
                    return yield* Effect.fail(
                      new MafaldaRouterClosedError({ mafaldaRouter: to, message: decision.message })
                    )
                }
              case "Share": {
                if (decision.register) {
                  yield* apply({
                    _tag: "RouterRegistered",
                    mafaldaRouter: to,
                    router: decision.router,
                    at: yield* now
                  })
                }
                const worker = lookup(snapshot.routers, decision.router)?.worker
                return PipeToRouterOutcome.Shared({
                  router: decision.router,
                  added: decision.register,
                  worker: worker as NonNullable<typeof worker>
                })
              }
              case "Pipe": {
                const placement = yield* placementLocks.with(toSettings.workerKey)(
                  carryOut(toSettings, decision.plan)
                )
                const pipe = yield* makePipe(producer, decision.from, placement.router, true)
                return PipeToRouterOutcome.Piped({ pipe, placement })
              }
            }
          })
        )
      })

    const createMafaldaRouter: ClusterStateShape["createMafaldaRouter"] = (
      id,
      workerSettings,
      routerSettings
    ) =>
      Effect.gen(function* () {
        const workerKey = workerSettingsKey(workerSettings)
        yield* apply({
          _tag: "MafaldaRouterCreated",
          mafaldaRouter: id,
          workerSettings: workerKey,
          routerSettings: routerSettingsKey(routerSettings),
          at: yield* now
        })
        settingsOf.set(id, { worker: workerSettings, router: routerSettings, workerKey })
      })

    const closeMafaldaRouter: ClusterStateShape["closeMafaldaRouter"] = (id) =>
      Effect.gen(function* () {
        settingsOf.delete(id)
        yield* record({ _tag: "MafaldaRouterClosed", mafaldaRouter: id, at: yield* now })
      })

    // --- Scale-down ---------------------------------------------------------------------

    const scaleDown: ClusterStateShape["scaleDown"] = Effect.gen(function* () {
      const at = yield* now
      const done: Array<ScaleDownAction> = []
      for (const action of decideScaleDown(read(), policy, at)) {
        const carry = Effect.gen(function* () {
          if (!isScaleDownDue(read(), policy, action, at)) return
          // Out of the snapshot first, so nothing is placed there while it closes.
          yield* record(scaleDownEvent(action, at))
          switch (action._tag) {
            case "ClosePipe":
              yield* workers.closePipe(action.producer, action.router)
              break
            case "CloseRouter":
              yield* workers.closeRouter(action.router)
              break
            case "CloseWorker":
              yield* workers.closeWorker(action.worker)
              break
          }
          done.push(action)
        })
        if (action._tag === "ClosePipe") {
          yield* pipeLocks.with(action.producer)(carry)
          continue
        }
        const settings = settingsOfAction(read(), action)
        if (settings !== undefined) yield* placementLocks.with(settings)(carry)
      }
      if (done.length > 0) yield* PubSub.publish(notices, ClusterNotice.ScaledDown({ actions: done }))
      return done
    })

    const grace = policy.idleGraceMillis
    const interval =
      options.scaleDownInterval === undefined
        ? Duration.millis(Math.min(10_000, Math.max(250, grace / 4)))
        : Duration.decode(options.scaleDownInterval)
    yield* scaleDown.pipe(Effect.repeat(Schedule.spaced(interval)), Effect.interruptible, Effect.forkScoped)

    // --- What happens on its own: loads, deaths, pipe closes --------------------------------

    // Subscribe now (not when the fibers start), so nothing published from here on is missed.
    const loads = yield* tracker.subscribe
    const workerNotices = yield* workers.subscribe
    yield* Stream.fromQueue(loads).pipe(
      Stream.runForEach((report) => record(report)),
      Effect.interruptible,
      Effect.forkScoped
    )
    yield* Stream.fromQueue(workerNotices).pipe(
      Stream.runForEach((notice) =>
        Effect.gen(function* () {
          if (notice._tag === "PipeClosed") {
            yield* record({ _tag: "PipeClosed", producer: notice.producer, to: notice.to, at: notice.at })
            return
          }
          const mafaldaRouters = mafaldaRoutersOnWorkers(read(), [notice.worker])
          yield* record({ _tag: "WorkerDied", worker: notice.worker, at: notice.at })
          yield* PubSub.publish(
            notices,
            ClusterNotice.WorkerLost({
              worker: notice.worker,
              reason: notice.reason,
              mafaldaRouters
            })
          )
        })
      ),
      Effect.interruptible,
      Effect.forkScoped
    )

    const service: ClusterStateShape = {
      node,
      options: policy,
      snapshot: Effect.sync(read),
      current: read,
      receives: (producer, router) => {
        const tree = lookup(snapshot.trees, producer)
        return tree !== undefined && HashMap.has(tree, router)
      },
      apply,
      record,
      recordNow,
      createMafaldaRouter,
      closeMafaldaRouter,
      placeTransport,
      placeRtpObserver,
      placeRouter,
      ensureProducer,
      pipeToMafaldaRouter,
      scaleDown,
      notices: Stream.fromPubSub(notices),
      subscribe: PubSub.subscribe(notices)
    }
    return service
  })

export const layer = (
  options: ClusterStateOptions
): Layer.Layer<ClusterState, never, WorkerService | TrackerService> =>
  Layer.scoped(ClusterState, make(options))
