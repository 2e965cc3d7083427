/**
 * `chain`, as Dyte's second design: a room's Routers form a chain, one per Worker. New
 * participants join the last link while its Worker is under the watermark; then a new link
 * is added on another Worker (same Node first, then the first Node with room) and every
 * producer is piped along from the previous link. A producer is piped link by link in both
 * directions from its own link, so each link has one upstream source per producer, and the
 * depth of a consumer is its link's distance from the producer's link.
 */
import { HashMap } from "effect"
import type { NodeId, RouterId, WorkerId } from "../../core/Ids.js"
import { effectiveLoad, lookup } from "../../core/Snapshot.js"
import type { PolicyCluster, Slot } from "../Cluster.js"
import type { ProducerRef, Room } from "../Rooms.js"
import { roomSettings, slotLiveWorker } from "./common.js"
import type { SimPolicy } from "./Policy.js"

interface ChainRoom {
  links: Array<RouterId>
  position: Map<RouterId, number>
  workers: Set<WorkerId>
}

export const chainPolicy = (cluster: PolicyCluster): SimPolicy => {
  const watermark = cluster.options.watermark
  const live = (router: RouterId) => HashMap.has(cluster.snapshot.routers, router)
  const loadOf = (worker: WorkerId): number => {
    const w = lookup(cluster.snapshot.workers, worker)
    return w === undefined ? Number.POSITIVE_INFINITY : effectiveLoad(w)
  }

  /** A Worker for a new link on `node`: the least loaded under the watermark, else a fresh CPU. */
  const workerOn = (node: NodeId, data: ChainRoom): WorkerId | undefined => {
    if (!cluster.nodeUp(node)) return undefined
    let best: { slot: Slot; load: number } | undefined
    let fresh: Slot | undefined
    for (const slot of cluster.slots) {
      if (slot.node !== node) continue
      const w = slotLiveWorker(cluster, slot)
      if (w === undefined) {
        fresh ??= slot
        continue
      }
      if (data.workers.has(w)) continue
      const load = loadOf(w)
      if (load < watermark && (best === undefined || load < best.load)) best = { slot, load }
    }
    const slot = best?.slot ?? fresh
    return slot === undefined ? undefined : cluster.slotWorker(slot)
  }

  /** Pipes `producer` link by link from its own link to link `target`. */
  const extendTo = (data: ChainRoom, producer: ProducerRef, target: number): boolean => {
    const prod = lookup(cluster.snapshot.producers, producer.id)
    if (prod === undefined) return false
    const start = data.position.get(prod.origin)
    if (start === undefined) return false
    const step = target >= start ? 1 : -1
    for (let i = start + step; step > 0 ? i <= target : i >= target; i += step) {
      const to = data.links[i]!
      if (!cluster.carries(to, producer.id)) cluster.pipe(producer.id, data.links[i - step]!, to)
    }
    return true
  }

  const addLink = (data: ChainRoom, room: Room): RouterId | undefined => {
    const tail = data.links[data.links.length - 1]
    const tailNode =
      tail === undefined
        ? undefined
        : lookup(cluster.snapshot.workers, lookup(cluster.snapshot.routers, tail)?.worker ?? ("" as WorkerId))
            ?.node
    let worker = tailNode === undefined ? undefined : workerOn(tailNode, data)
    if (worker === undefined) {
      for (const node of cluster.nodesWithRoom(4, tailNode ?? null)) {
        worker = workerOn(node, data)
        if (worker !== undefined) break
      }
    }
    if (worker === undefined) return undefined
    const router = cluster.createRouter(worker, roomSettings(room))
    cluster.register(room, router)
    data.position.set(router, data.links.length)
    data.links.push(router)
    data.workers.add(worker)
    for (const producer of room.producers) extendTo(data, producer, data.links.length - 1)
    return router
  }

  /** Drops links that died (a failure): the chain closes over the gap. */
  const prune = (data: ChainRoom): void => {
    if (data.links.every(live)) return
    data.links = data.links.filter(live)
    data.position = new Map(data.links.map((r, i) => [r, i]))
    data.workers = new Set(data.links.map((r) => lookup(cluster.snapshot.routers, r)!.worker))
  }

  return {
    name: "chain",
    openRoom(room) {
      cluster.openMafaldaRouter(room, roomSettings(room))
      room.data = { links: [], position: new Map(), workers: new Set() } satisfies ChainRoom
    },
    join(p) {
      const data = p.room.data as ChainRoom
      prune(data)
      const tail = data.links[data.links.length - 1]
      const tailWorker = tail === undefined ? undefined : lookup(cluster.snapshot.routers, tail)?.worker
      let router: RouterId | undefined
      if (tail !== undefined && tailWorker !== undefined && loadOf(tailWorker) < watermark) router = tail
      else router = addLink(data, p.room)
      if (router === undefined) return false
      p.transport = cluster.createTransport(p.room, router)
      p.router = router
      return true
    },
    produce(p, kind) {
      const producer = cluster.createProducer(p, kind)
      if (producer === undefined) return producer
      const data = p.room.data as ChainRoom
      extendTo(data, producer, data.links.length - 1)
      extendTo(data, producer, 0)
      return producer
    },
    consume(p, producer) {
      if (p.transport === null || p.router === null || !cluster.hasTransport(p.transport)) return false
      const data = p.room.data as ChainRoom
      if (!cluster.carries(p.router, producer.id)) {
        prune(data)
        const target = data.position.get(p.router)
        if (target === undefined || !extendTo(data, producer, target)) return false
      }
      cluster.createConsumer(p, p.transport, p.router, producer)
      return true
    },
    connected: (p) => cluster.hasTransport(p.transport),
    closeRoom: (room) => cluster.closeMafaldaRouter(room, true),
    tick: () => {}
  }
}
