/**
 * Helpers shared by the baseline policies: each room has its own Routers (settings per
 * room, as in mediasoup's demo: one Router per room per Worker), Workers come from a fixed
 * pool of one per CPU (started lazily), and consumers that land on a Router that does not
 * carry the producer yet get a pipe from the producer's origin.
 */
import { HashMap } from "effect"
import type { NodeId, RouterId, SettingsKey, WorkerId } from "../../core/Ids.js"
import { lookup } from "../../core/Snapshot.js"
import type { PolicyCluster, Slot } from "../Cluster.js"
import type { Participant, ProducerRef, Room } from "../Rooms.js"
import type { WorkerStat } from "../WorkerStats.js"

export const roomSettings = (room: Room): SettingsKey => `r${room.index}` as SettingsKey

/** The room's Router on a Worker, created and registered when missing. */
export const roomRouterOn = (
  cluster: PolicyCluster,
  room: Room,
  byWorker: Map<WorkerId, RouterId>,
  worker: WorkerId
) => {
  const existing = byWorker.get(worker)
  if (existing !== undefined && HashMap.has(cluster.snapshot.routers, existing))
    return { router: existing, created: false }
  const router = cluster.createRouter(worker, roomSettings(room))
  cluster.register(room, router)
  byWorker.set(worker, router)
  return { router, created: true }
}

/**
 * The slot with the lowest score on an up Node (lowest index on ties). A Node's slots are
 * next to each other: whether it is up is looked up once for them all (`score` changes
 * nothing).
 */
export const bestSlot = (cluster: PolicyCluster, score: (slot: Slot) => number): Slot | undefined => {
  let best: Slot | undefined
  let bestScore = Number.POSITIVE_INFINITY
  let node: NodeId | undefined
  let up = false
  for (const slot of cluster.slots) {
    if (slot.node !== node) {
      node = slot.node
      up = cluster.nodeUp(node)
    }
    if (!up) continue
    const s = score(slot)
    if (s < bestScore) {
      best = slot
      bestScore = s
    }
  }
  return best
}

/**
 * What the live Worker of a slot carries, or undefined when it has none yet (or it died):
 * `workerStat(slotLiveWorker(...))` in one look-up.
 */
export const slotStat = (cluster: PolicyCluster, slot: Slot): WorkerStat | undefined =>
  slot.worker === null ? undefined : cluster.workerStat(slot.worker)

/** The live Worker of a slot, or undefined when it has none yet (or it died). */
export const slotLiveWorker = (cluster: PolicyCluster, slot: Slot): WorkerId | undefined =>
  slot.worker !== null && HashMap.has(cluster.snapshot.workers, slot.worker) ? slot.worker : undefined

/** Consume on the participant's own transport, piping from the origin if needed. */
export const consumeOnOwnRouter = (
  cluster: PolicyCluster,
  p: Participant,
  producer: ProducerRef
): boolean => {
  if (p.transport === null || p.router === null || !cluster.hasTransport(p.transport)) return false
  const prod = lookup(cluster.snapshot.producers, producer.id)
  if (prod === undefined) return false
  if (!cluster.carries(p.router, producer.id)) cluster.pipe(producer.id, prod.origin, p.router)
  cluster.createConsumer(p, p.transport, p.router, producer)
  return true
}
