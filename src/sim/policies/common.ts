/**
 * Helpers shared by the baseline policies: each room has its own Routers (settings per
 * room, as in mediasoup's demo: one Router per room per Worker), Workers come from a fixed
 * pool of one per CPU (started lazily), and consumers that land on a Router that does not
 * carry the producer yet get a pipe from the producer's origin.
 */
import { HashMap } from "effect"
import type { RouterId, SettingsKey, WorkerId } from "../../core/Ids.js"
import { lookup } from "../../core/Snapshot.js"
import type { PolicyCluster, Slot } from "../Cluster.js"
import type { Participant, ProducerRef, Room } from "../Rooms.js"

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

/** The slot with the lowest score on an up Node (lowest index on ties). */
export const bestSlot = (cluster: PolicyCluster, score: (slot: Slot) => number): Slot | undefined => {
  let best: Slot | undefined
  let bestScore = Number.POSITIVE_INFINITY
  for (const slot of cluster.slots) {
    if (!cluster.nodeUp(slot.node)) continue
    const s = score(slot)
    if (s < bestScore) {
      best = slot
      bestScore = s
    }
  }
  return best
}

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
