/**
 * What to close because nothing uses it: pipes nobody consumes below, Routers with no
 * transport and nothing carried, Workers with no Router, each once it has been idle for the
 * grace period. Never below the warm Workers kept per `up` Node and settings (busy or idle),
 * and never a Worker whose siblings are near the watermark (hysteresis: it would soon be
 * started again). A draining Node keeps nothing warm, so that it empties.
 */
import { Data, HashMap } from "effect"
import type { NodeId, ProducerId, RouterId, SettingsKey, WorkerId } from "./Ids.js"
import type { PolicyOptions } from "./PolicyOptions.js"
import { type ClusterSnapshot, type ClusterWorker, effectiveLoad, lookup, workersOn } from "./Snapshot.js"

export type ScaleDownAction = Data.TaggedEnum<{
  ClosePipe: { readonly producer: ProducerId; readonly router: RouterId }
  CloseRouter: { readonly router: RouterId }
  CloseWorker: { readonly worker: WorkerId }
}>
export const ScaleDownAction = Data.taggedEnum<ScaleDownAction>()

const expired = (idleSince: number | null, now: number, grace: number): boolean =>
  idleSince !== null && now - idleSince >= grace

/** A Worker idle for the grace period. */
const idleWorker = (worker: ClusterWorker, now: number, grace: number): boolean =>
  worker.alive && expired(worker.idleSince, now, grace)

/**
 * Of the idle Workers of one Node and set of settings, those that may close, smallest id
 * first: none while the busy ones average more than `watermark - scaleDownHysteresis` on
 * an `up` Node; never below the warm Workers an `up` Node keeps (a draining Node keeps none).
 */
const closableOfGroup = (
  snapshot: ClusterSnapshot,
  options: PolicyOptions,
  node: NodeId,
  settings: SettingsKey,
  now: number
): Array<ClusterWorker> => {
  const all = workersOn(snapshot, node, settings)
  const idle = all.filter((w) => idleWorker(w, now, options.idleGraceMillis))
  const busy = all.filter((w) => !idle.includes(w))
  const up = lookup(snapshot.nodes, node)?.state === "up"
  const busyLoad = busy.length === 0 ? 0 : busy.reduce((sum, w) => sum + effectiveLoad(w), 0) / busy.length
  if (up && busy.length > 0 && busyLoad > options.watermark - options.scaleDownHysteresis) return []
  const warm = up ? options.warmWorkers : 0
  const closable = Math.max(0, Math.min(idle.length, all.length - warm))
  return idle.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).slice(0, closable)
}

const idlePipe = (
  snapshot: ClusterSnapshot,
  producer: ProducerId,
  router: RouterId,
  now: number,
  grace: number
) => {
  const tree = lookup(snapshot.trees, producer)
  const hop = tree === undefined ? undefined : lookup(tree, router)
  return hop !== undefined && hop.parent !== null && expired(hop.idleSince, now, grace)
}

export const decideScaleDown = (
  snapshot: ClusterSnapshot,
  options: PolicyOptions,
  now: number
): ReadonlyArray<ScaleDownAction> => {
  const grace = options.idleGraceMillis
  const pipes: Array<ScaleDownAction> = []
  for (const [producer, tree] of snapshot.trees) {
    for (const hop of HashMap.values(tree)) {
      if (hop.parent !== null && expired(hop.idleSince, now, grace)) {
        pipes.push(ScaleDownAction.ClosePipe({ producer, router: hop.router }))
      }
    }
  }
  const routers: Array<ScaleDownAction> = []
  for (const router of HashMap.values(snapshot.routers)) {
    if (expired(router.idleSince, now, grace))
      routers.push(ScaleDownAction.CloseRouter({ router: router.id }))
  }
  // Idle Workers, grouped by Node and settings so that warm Workers and hysteresis apply per group.
  const groups = new Map<string, { node: NodeId; settings: SettingsKey }>()
  for (const worker of HashMap.values(snapshot.workers)) {
    if (idleWorker(worker, now, grace))
      groups.set(`${worker.node}\u0000${worker.settings}`, { node: worker.node, settings: worker.settings })
  }
  const workers: Array<ScaleDownAction> = []
  for (const group of groups.values()) {
    for (const worker of closableOfGroup(snapshot, options, group.node, group.settings, now))
      workers.push(ScaleDownAction.CloseWorker({ worker: worker.id }))
  }
  const byKey = (a: ScaleDownAction, b: ScaleDownAction) => {
    const ka = actionKey(a)
    const kb = actionKey(b)
    return ka < kb ? -1 : ka > kb ? 1 : 0
  }
  return [...pipes.sort(byKey), ...routers.sort(byKey), ...workers.sort(byKey)]
}

/**
 * Whether an action `decideScaleDown` gave still holds in a later snapshot: what it closes
 * is still there and idle for the grace period (a consumer may have come through a pipe
 * meanwhile), and a Worker is still one that warm Workers and hysteresis let go (closing
 * one Worker of a group may make the next one the warm one). The shell carries actions out
 * one by one under its locks and asks this before each.
 */
export const isScaleDownDue = (
  snapshot: ClusterSnapshot,
  options: PolicyOptions,
  action: ScaleDownAction,
  now: number
): boolean => {
  const grace = options.idleGraceMillis
  switch (action._tag) {
    case "ClosePipe":
      return idlePipe(snapshot, action.producer, action.router, now, grace)
    case "CloseRouter": {
      const router = lookup(snapshot.routers, action.router)
      return router !== undefined && expired(router.idleSince, now, grace)
    }
    case "CloseWorker": {
      const worker = lookup(snapshot.workers, action.worker)
      if (worker === undefined || !idleWorker(worker, now, grace)) return false
      return closableOfGroup(snapshot, options, worker.node, worker.settings, now).some(
        (w) => w.id === worker.id
      )
    }
  }
}

const actionKey = (a: ScaleDownAction): string =>
  ScaleDownAction.$match(a, {
    ClosePipe: (x) => `${x.producer}\u0000${x.router}`,
    CloseRouter: (x) => x.router,
    CloseWorker: (x) => x.worker
  })
