/**
 * Helpers shared by the baseline policies: each room has its own Routers (settings per
 * room, as in mediasoup's demo: one Router per room per Worker), Workers come from a fixed
 * pool of one per CPU (started lazily), and consumers that land on a Router that does not
 * carry the producer yet get a pipe from the producer's origin.
 */
import { HashMap } from "effect"
import type { RouterId, SettingsKey, WorkerId } from "../../core/Ids.js"
import { lookup } from "../../core/Snapshot.js"
import type { Engine, Participant, ProducerRef, Room, Slot } from "../Engine.js"

export const roomSettings = (room: Room): SettingsKey => `r${room.index}` as SettingsKey

/** The room's Router on a Worker, created and registered when missing. */
export const roomRouterOn = (
  engine: Engine,
  room: Room,
  byWorker: Map<WorkerId, RouterId>,
  worker: WorkerId
) => {
  const existing = byWorker.get(worker)
  if (existing !== undefined && HashMap.has(engine.snapshot.routers, existing))
    return { router: existing, created: false }
  const router = engine.createRouter(worker, roomSettings(room))
  engine.register(room, router)
  byWorker.set(worker, router)
  return { router, created: true }
}

/** The slot with the lowest score on an up Node (lowest index on ties). */
export const bestSlot = (engine: Engine, score: (slot: Slot) => number): Slot | undefined => {
  let best: Slot | undefined
  let bestScore = Number.POSITIVE_INFINITY
  for (const slot of engine.slots) {
    if (!engine.nodeUp(slot.node)) continue
    const s = score(slot)
    if (s < bestScore) {
      best = slot
      bestScore = s
    }
  }
  return best
}

/** The live Worker of a slot, or undefined when it has none yet (or it died). */
export const slotLiveWorker = (engine: Engine, slot: Slot): WorkerId | undefined =>
  slot.worker !== null && HashMap.has(engine.snapshot.workers, slot.worker) ? slot.worker : undefined

/** Consume on the participant's own transport, piping from the origin if needed. */
export const consumeOnOwnRouter = (engine: Engine, p: Participant, producer: ProducerRef): boolean => {
  if (p.transport === null || p.router === null || !engine.hasTransport(p.transport)) return false
  const prod = lookup(engine.snapshot.producers, producer.id)
  if (prod === undefined) return false
  if (!engine.carries(p.router, producer.id)) engine.pipe(producer.id, prod.origin, p.router)
  engine.createConsumer(p, p.transport, p.router, producer)
  return true
}
