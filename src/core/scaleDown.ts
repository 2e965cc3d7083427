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
  const groups = new Map<string, { node: NodeId; settings: SettingsKey; idle: Array<ClusterWorker> }>()
  for (const worker of HashMap.values(snapshot.workers)) {
    if (!worker.alive || !expired(worker.idleSince, now, grace)) continue
    const key = `${worker.node}\u0000${worker.settings}`
    const group = groups.get(key) ?? { node: worker.node, settings: worker.settings, idle: [] }
    group.idle.push(worker)
    groups.set(key, group)
  }
  const workers: Array<ScaleDownAction> = []
  for (const group of groups.values()) {
    const all = workersOn(snapshot, group.node, group.settings)
    const busy = all.filter((w) => !group.idle.includes(w))
    // A Node that is draining (or down) keeps nothing warm: it is meant to empty.
    const up = lookup(snapshot.nodes, group.node)?.state === "up"
    const busyLoad = busy.length === 0 ? 0 : busy.reduce((sum, w) => sum + effectiveLoad(w), 0) / busy.length
    if (up && busy.length > 0 && busyLoad > options.watermark - options.scaleDownHysteresis) continue
    const warm = up ? options.warmWorkers : 0
    const closable = Math.max(0, Math.min(group.idle.length, all.length - warm))
    const ordered = group.idle.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    for (const worker of ordered.slice(0, closable))
      workers.push(ScaleDownAction.CloseWorker({ worker: worker.id }))
  }
  const byKey = (a: ScaleDownAction, b: ScaleDownAction) => {
    const ka = actionKey(a)
    const kb = actionKey(b)
    return ka < kb ? -1 : ka > kb ? 1 : 0
  }
  return [...pipes.sort(byKey), ...routers.sort(byKey), ...workers.sort(byKey)]
}

const actionKey = (a: ScaleDownAction): string =>
  ScaleDownAction.$match(a, {
    ClosePipe: (x) => `${x.producer}\u0000${x.router}`,
    CloseRouter: (x) => x.router,
    CloseWorker: (x) => x.worker
  })
