/**
 * The live view's status: the cluster status (`status.ts` of the Mafalda Router: Workers,
 * loads, stream trees, pipes) with the rooms, each tree's room and kind, and the totals the
 * metrics report. Plain JSON-able data, served as `/status`.
 *
 * @module
 */
import { HashMap, HashSet } from "effect"
import { type ClusterSnapshot, lookup } from "../core/Snapshot.js"
import { type ClusterStatus, clusterStatus, type TreeHopStatus } from "../router/status.js"
import { type ClusterCounts, clusterCounts } from "./metrics.js"

/** A room: one Mafalda Router, with what it has on the cluster. */
export interface RoomStatus {
  readonly id: string
  /** The mediasoup Routers it uses. */
  readonly routers: ReadonlyArray<string>
  /** The Workers of those Routers. */
  readonly workers: ReadonlyArray<string>
  readonly transports: number
  readonly producers: number
  readonly consumers: number
}

export interface OpsTreeStatus {
  readonly producer: string
  /** The room (Mafalda Router) the producer belongs to. */
  readonly room: string | undefined
  readonly kind: string | undefined
  readonly hops: ReadonlyArray<TreeHopStatus>
}

export interface OpsStatus extends Omit<ClusterStatus, "trees"> {
  /** The snapshot's time (milliseconds on the cluster's clock). */
  readonly at: number
  /** The watermark (CPU %) the placement uses, when known: the page draws loads against it. */
  readonly watermark: number | undefined
  readonly totals: ClusterCounts
  readonly rooms: ReadonlyArray<RoomStatus>
  readonly trees: ReadonlyArray<OpsTreeStatus>
}

export const opsStatus = (
  snapshot: ClusterSnapshot,
  node: string,
  pidOf: (worker: string) => number | undefined,
  watermark?: number
): OpsStatus => {
  const base = clusterStatus(snapshot, node, pidOf)
  const rooms = new Map<
    string,
    { routers: Array<string>; workers: Set<string>; t: number; p: number; c: number }
  >()
  for (const m of HashMap.values(snapshot.mafaldaRouters)) {
    const workers = new Set<string>()
    const routers = Array.from(m.routers).sort()
    for (const r of routers) {
      const w = lookup(snapshot.routers, r)?.worker
      if (w !== undefined) workers.add(w)
    }
    rooms.set(m.id, { routers, workers, t: 0, p: 0, c: 0 })
  }
  for (const t of HashMap.values(snapshot.transports)) {
    const room = rooms.get(t.mafaldaRouter)
    if (room === undefined) continue
    room.t++
    room.p += HashSet.size(t.producers)
    room.c += HashSet.size(t.consumers)
  }
  return {
    node: base.node,
    at: snapshot.now,
    watermark,
    totals: clusterCounts(snapshot),
    workers: base.workers,
    rooms: Array.from(rooms, ([id, r]) => ({
      id,
      routers: r.routers,
      workers: Array.from(r.workers).sort(),
      transports: r.t,
      producers: r.p,
      consumers: r.c
    })).sort((a, b) => (a.id < b.id ? -1 : 1)),
    trees: base.trees
      .map((t) => {
        const p = lookup(snapshot.producers, t.producer as never)
        return { producer: t.producer, room: p?.mafaldaRouter, kind: p?.kind, hops: t.hops }
      })
      .sort((a, b) => (a.producer < b.producer ? -1 : 1)),
    pipes: base.pipes
  }
}
