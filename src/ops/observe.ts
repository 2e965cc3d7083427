/**
 * What the shell tells operators as things happen: one call per event, which logs it
 * (structured, through Effect's `Logger`) and counts it (`metrics.ts`). The layers call
 * these at the places an operator needs; each is an Effect that never fails.
 *
 * @module
 */
import { Effect, Either } from "effect"
import type { PlacementPlan } from "../core/interpret.js"
import type { ScaleDownAction } from "../core/scaleDown.js"
import type { TransportRejection } from "../core/transportPlacement.js"
import * as Metrics from "./metrics.js"

type Fields = Record<string, string | number | boolean | undefined>

const annotated = (effect: Effect.Effect<void>, fields: Fields) =>
  Effect.annotateLogs(effect, Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)))

const counted = (counter: Parameters<typeof Metrics.count>[0], labels?: Record<string, string>) =>
  Effect.sync(() => Metrics.count(counter, labels))

/** A Worker process started. */
export const workerStarted = (worker: { readonly id: string; readonly pid: number }) =>
  Effect.zipRight(
    counted(Metrics.workersStarted),
    annotated(Effect.logInfo("Worker started"), { worker: worker.id, pid: worker.pid })
  )

/** A Worker Mafalda closed has exited (`why`: `"closed"` by scale-down, `"shutdown"`). */
export const workerExited = (worker: { readonly id: string; readonly pid: number }, why: string) =>
  Effect.zipRight(
    counted(Metrics.workersExited),
    annotated(Effect.logInfo("Worker exited"), { worker: worker.id, pid: worker.pid, why })
  )

/** A Worker process died on its own. */
export const workerDied = (worker: { readonly id: string; readonly pid: number }, reason: string) =>
  Effect.zipRight(
    counted(Metrics.workerDeaths),
    annotated(Effect.logError("Worker died"), { worker: worker.id, pid: worker.pid, reason })
  )

const outcomeOf = (plan: PlacementPlan, node: string): string =>
  plan.node !== node
    ? "delegated"
    : plan.worker === null
      ? "new_worker"
      : plan.router === null
        ? "new_router"
        : "existing_router"

/**
 * Decides a transport placement with `decide` (timed), counts its outcome, and logs a
 * rejection (warning), a delegation to another Node (info, naming it) or another decision
 * (debug); returns the decision.
 */
export const transportPlan = (
  mafaldaRouter: string,
  node: string,
  decide: () => Either.Either<PlacementPlan, TransportRejection>
): Effect.Effect<Either.Either<PlacementPlan, TransportRejection>> =>
  Effect.suspend((): Effect.Effect<Either.Either<PlacementPlan, TransportRejection>> => {
    const plan = Metrics.timed("transport", decide)
    if (Either.isLeft(plan)) return Effect.as(placementRejected(mafaldaRouter, plan.left.message), plan)
    const outcome = outcomeOf(plan.right, node)
    Metrics.count(Metrics.placements, { outcome })
    // Delegated: placed on another Node (`node`), which had room when this one had none.
    const log =
      outcome === "delegated"
        ? Effect.logInfo(`transport delegated to Node ${plan.right.node} (no room on this Node)`)
        : Effect.logDebug("transport placed")
    return Effect.as(
      annotated(log, {
        mafaldaRouter,
        outcome,
        node: plan.right.node,
        worker: plan.right.worker ?? undefined,
        router: plan.right.router ?? undefined
      }),
      plan
    )
  })

/** A placement was rejected (a `NoCapacityError`). */
export const placementRejected = (mafaldaRouter: string, message: string, what = "transport") =>
  Effect.zipRight(
    counted(Metrics.placements, { outcome: "rejected" }),
    annotated(Effect.logWarning("placement rejected"), { mafaldaRouter, what, message })
  )

/** A producer was piped from one Router into another. */
export const pipeMade = (pipe: { readonly producer: string; readonly from: string; readonly to: string }) =>
  Effect.zipRight(
    counted(Metrics.pipesCreated),
    annotated(Effect.logInfo("pipe made"), { producer: pipe.producer, from: pipe.from, to: pipe.to })
  )

/** The pipe of a producer into a Router closed. */
export const pipeClosed = (producer: string, to: string) =>
  Effect.zipRight(counted(Metrics.pipesClosed), annotated(Effect.logInfo("pipe closed"), { producer, to }))

const actionLabel = {
  ClosePipe: "close_pipe",
  CloseRouter: "close_router",
  CloseWorker: "close_worker"
} as const

/** Scale-down closed these idle things (`nodeOf`: the other Node one was closed on, if any). */
export const scaledDown = (
  actions: ReadonlyArray<ScaleDownAction>,
  nodeOf: (action: ScaleDownAction) => string | undefined = () => undefined
) =>
  Effect.forEach(
    actions,
    (a) =>
      Effect.zipRight(
        counted(Metrics.scaleDownActions, { action: actionLabel[a._tag] }),
        annotated(Effect.logInfo("scale-down"), {
          action: actionLabel[a._tag],
          worker: a._tag === "CloseWorker" ? a.worker : undefined,
          router: a._tag === "CloseWorker" ? undefined : a.router,
          producer: a._tag === "ClosePipe" ? a.producer : undefined,
          node: nodeOf(a)
        })
      ),
    { discard: true }
  )

/**
 * A relocation (of a consumer or a pipe to another Router) happened or failed: counted
 * by `outcome` and logged with `fields` (info; warning when it failed).
 */
export const relocation = (outcome: "done" | "failed" | (string & {}), fields: Fields = {}) =>
  Effect.zipRight(
    counted(Metrics.relocations, { outcome }),
    annotated(outcome === "failed" ? Effect.logWarning("relocation failed") : Effect.logInfo("relocation"), {
      outcome,
      ...fields
    })
  )
