/**
 * "Which Node has room?": the `NodeRegistry`'s choice, as a pure function. The memory
 * registry calls it; the Redis registry runs the same rule in Lua (`pickScript` in
 * `src/layers/NodeRegistryRedis.ts`), and a test checks that both choose alike.
 *
 * A Node's reservations are keyed by Worker id (a reservation on a Worker it reported) or
 * by `+<settings>#<k>` (a Worker the Node is expected to start for an earlier pick: it
 * occupies a CPU and carries the load reserved on it).
 *
 * @module
 */
import type { NodeRecord, Picked, PickRequest } from "../services/NodeRegistry.js"

/** A Node as `pickNode` sees it: its record and its reservations since its last report. */
export interface PickCandidate {
  readonly record: NodeRecord
  readonly reservations: ReadonlyMap<string, number>
}

/** The choice, and the reservation to charge for it. */
export interface PickOutcome {
  readonly picked: Picked
  /** The reservation field of the Node to raise by `amount`. */
  readonly field: string
  readonly amount: number
}

const PENDING = "+"

/** The reservation field of the `k`-th pending Worker with these settings. */
export const pendingField = (settings: string, k: number): string => `${PENDING}${settings}#${k}`

const pendingSettings = (field: string): string | undefined => {
  if (!field.startsWith(PENDING)) return undefined
  const hash = field.lastIndexOf("#")
  return hash < 0 ? undefined : field.slice(1, hash)
}

/**
 * Picks a Node among `candidates` (which must be the registered Nodes whose lease runs):
 * see `NodeRegistryShape.pick` for the rule. Deterministic whatever the order of
 * `candidates`: ties go to the smaller Worker id, then the smaller Node id.
 */
export const pickNode = (
  candidates: ReadonlyArray<PickCandidate>,
  request: PickRequest
): PickOutcome | undefined => {
  const exclude = new Set<string>(request.exclude ?? [])
  const settings = request.workerSettings
  const eligible = candidates.filter((c) => c.record.state === "up" && !exclude.has(c.record.node))

  // 1. The busiest Worker with these settings that stays under the watermark.
  let best: { candidate: PickCandidate; id: string; load: number; real: boolean } | undefined
  for (const c of eligible) {
    const consider = (id: string, load: number, real: boolean) => {
      if (load + request.cost >= request.watermark) return
      if (
        best === undefined ||
        load > best.load ||
        (load === best.load &&
          (id < best.id || (id === best.id && c.record.node < best.candidate.record.node)))
      ) {
        best = { candidate: c, id, load, real }
      }
    }
    for (const w of c.record.workers) {
      if (w.settings !== settings) continue
      consider(w.worker, w.load + (c.reservations.get(w.worker) ?? 0), true)
    }
    for (const [field, reserved] of c.reservations) {
      if (pendingSettings(field) === settings) consider(field, reserved, false)
    }
  }
  const chosen = best as { candidate: PickCandidate; id: string; real: boolean } | undefined
  if (chosen !== undefined) {
    const { record } = chosen.candidate
    return {
      picked: {
        node: record.node,
        address: record.address,
        announcedIp: record.announcedIp,
        worker: chosen.real ? (record.workers.find((w) => w.worker === chosen.id)?.worker ?? null) : null
      },
      field: chosen.id,
      amount: request.cost
    }
  }

  // 2. A Node that may start a Worker with these settings: with an idle CPU first, then the
  // fullest (Workers per CPU), then the smaller id.
  let start: { candidate: PickCandidate; idle: boolean; ratio: number; pending: number } | undefined
  for (const c of eligible) {
    const { record } = c
    let same = 0
    let total = record.workers.length
    let pending = 0
    for (const w of record.workers) if (w.settings === settings) same++
    for (const field of c.reservations.keys()) {
      const s = pendingSettings(field)
      if (s === undefined) continue
      total++
      if (s === settings) {
        same++
        pending++
      }
    }
    const limit = Math.min(record.cpus, request.maxWorkersPerNode ?? record.cpus)
    if (same >= limit) continue
    // Its cap on Worker processes, whatever their settings.
    if (record.maxWorkerProcesses !== undefined && total >= record.maxWorkerProcesses) continue
    const idle = total < record.cpus
    const ratio = total / record.cpus
    if (
      start === undefined ||
      (idle && !start.idle) ||
      (idle === start.idle &&
        (ratio > start.ratio || (ratio === start.ratio && record.node < start.candidate.record.node)))
    ) {
      start = { candidate: c, idle, ratio, pending }
    }
  }
  if (start === undefined) return undefined
  const { record } = start.candidate
  return {
    picked: { node: record.node, address: record.address, announcedIp: record.announcedIp, worker: null },
    field: pendingField(settings, start.pending + 1),
    amount: request.cost
  }
}
