/**
 * The clusters the placement benchmark decides on, built deterministically (seeded) from
 * events applied with the core's own `applyEvents`: no index is made by hand.
 *
 * One cluster, seen at two moments:
 *  - `day`: exactly `workers` Workers on Nodes of 16 CPUs. Most Nodes run 16 Workers with
 *    mixed loads (about a third at or over the watermark); one in ten is hot (every Worker
 *    over the watermark); about one in seven is still growing (6 to 15 Workers: spare CPUs,
 *    Workers mostly busy); one in fifty is draining. Most Workers have a Router with the
 *    default settings, some one with the second Router settings (rooms that need another
 *    codec set), some both, a few none (warm Workers).
 *  - `peak`: later the same day: every spare CPU runs a Worker and every Worker reports 45 to
 *    110 %, so that large rooms find no room anywhere (Reject).
 *
 * Rooms (Mafalda Routers) of three shapes: small meetings (most; one Router, sometimes two or
 * three; one in ten has no producer yet), large meetings (8 to 40 producers over 2 to 6
 * Routers, on the home Node or delegated to others) and broadcasts (one or two producers
 * piped to 8 to 40 Routers across Nodes). Each producer's stream tree reaches some of its
 * room's Routers through pipes, up to the maximum depth of 4; almost every pipe has a
 * consumer. Broadcast ingest Workers and half of their first relays are hot (80 to 100 %),
 * so consumers of a broadcast are piped from relays at several depths. A few producers are
 * closed again, and consumer requests for them are refused.
 */
import { Either } from "effect"
import {
  applyEvents,
  type ClusterEvent,
  type ClusterSnapshot,
  ConsumerId,
  emptySnapshot,
  MafaldaRouterId,
  NodeId,
  ProducerId,
  RouterId,
  SettingsKey,
  TransportId,
  WorkerId
} from "../src/core/index.js"
import { makeCosts } from "../src/core/PolicyOptions.js"
import { Prng } from "../src/sim/Prng.js"

export const CPUS = 16
const MAX_DEPTH = 4
/** Rooms per Worker of the `day` cluster. */
const ROOMS_PER_WORKER = 0.2
const workerSettings = SettingsKey.make("worker-default")
/** Router settings: the default codec set, and a second one (rarer). */
const routerSettings = [SettingsKey.make("router-default"), SettingsKey.make("router-h264")] as const
type Codec = 0 | 1

type NodeKind = "steady" | "hot" | "growing" | "draining"
interface NodePlan {
  readonly id: NodeId
  readonly kind: NodeKind
  readonly workers: Array<WorkerId>
  /** Routers on this Node, per router settings. */
  readonly routers: [Array<RouterId>, Array<RouterId>]
}

export type RoomKind = "small" | "large" | "broadcast"
export interface Room {
  readonly id: MafaldaRouterId
  readonly kind: RoomKind
  readonly home: NodeId
  readonly routers: ReadonlyArray<RouterId>
}

export interface LiveProducer {
  readonly id: ProducerId
  readonly room: Room
}

export interface PlacementCluster {
  readonly day: ClusterSnapshot
  readonly peak: ClusterSnapshot
  readonly nodes: ReadonlyArray<NodeId>
  readonly rooms: ReadonlyArray<Room>
  readonly producers: ReadonlyArray<LiveProducer>
  readonly closedProducers: ReadonlyArray<ProducerId>
  /** When the `day` snapshot was taken (every load report is at or before it). */
  readonly dayAt: number
  readonly counts: {
    readonly dayWorkers: number
    readonly peakWorkers: number
    readonly nodes: number
    readonly rooms: number
    readonly producers: number
    readonly pipes: number
    readonly consumers: number
    readonly events: number
  }
}

const pick = <A>(rand: Prng, xs: ReadonlyArray<A>): A => xs[Math.floor(rand.next() * xs.length)]!
const uniform = (rand: Prng, min: number, max: number) => min + rand.next() * (max - min)

/** A Worker's CPU % in the `day` snapshot, by the kind of its Node. */
const dayLoad = (rand: Prng, kind: NodeKind): number => {
  switch (kind) {
    case "steady":
      return rand.next() < 0.3 ? uniform(rand, 60, 95) : uniform(rand, 5, 58)
    case "hot":
      return uniform(rand, 60, 110)
    case "growing":
      return uniform(rand, 45, 95)
    case "draining":
      return uniform(rand, 10, 60)
  }
}
/** ... and at peak: nearly everything at or over the watermark. */
const peakLoad = (rand: Prng): number => (rand.next() < 0.88 ? uniform(rand, 60, 110) : uniform(rand, 45, 60))

/**
 * Events are applied without cost estimates: every Worker's load report comes after all of
 * them and absorbs the reservations they would make, so the snapshots are the same, and the
 * build is faster (no load-index update per placement).
 */
const noCosts = makeCosts({ transport: 0, producer: 0, consumer: 0, pipe: 0 })

export const buildPlacementCluster = (workers: number, seed: number): PlacementCluster => {
  const costs = noCosts
  const rand = new Prng(seed)
  const events: Array<ClusterEvent> = []
  let at = 0
  const tick = () => ++at

  // --- Nodes, Workers, Routers ---------------------------------------------------------
  const nodes: Array<NodePlan> = []
  const routerWorker = new Map<RouterId, WorkerId>()
  const workerKind = new Map<WorkerId, NodeKind>()
  let placed = 0
  while (placed < workers) {
    const n = nodes.length
    const r = rand.next()
    const kind: NodeKind = r < 0.02 ? "draining" : r < 0.12 ? "hot" : r < 0.27 ? "growing" : "steady"
    const count = Math.min(workers - placed, kind === "growing" ? rand.int(6, 15) : CPUS)
    const node: NodePlan = { id: NodeId.make(`n${n}`), kind, workers: [], routers: [[], []] }
    nodes.push(node)
    events.push({
      _tag: "NodeUp",
      node: node.id,
      cpus: CPUS,
      address: `10.${n >> 16}.${(n >> 8) & 255}.${n & 255}`,
      at: tick()
    })
    for (let c = 0; c < count; c++) {
      const worker = WorkerId.make(`w${n}.${c}`)
      node.workers.push(worker)
      workerKind.set(worker, kind)
      events.push({ _tag: "WorkerStarted", worker, node: node.id, settings: workerSettings, at: tick() })
      const x = rand.next()
      // 83 % the default Router only, 8 % both, 5 % the second only, 4 % none (a warm Worker).
      const codecs: ReadonlyArray<Codec> = x < 0.83 ? [0] : x < 0.91 ? [0, 1] : x < 0.96 ? [1] : []
      for (const codec of codecs) {
        const router = RouterId.make(`r${n}.${c}.${codec}`)
        node.routers[codec].push(router)
        routerWorker.set(router, worker)
        events.push({ _tag: "RouterCreated", router, worker, settings: routerSettings[codec], at: tick() })
      }
    }
    placed += count
  }

  // --- Rooms, producers, stream trees -----------------------------------------------------
  const rooms: Array<Room> = []
  const producers: Array<LiveProducer> = []
  const closedProducers: Array<ProducerId> = []
  const hotWorkers = new Set<WorkerId>()
  let pipes = 0
  let consumers = 0
  const roomCount = Math.max(1, Math.round(workers * ROOMS_PER_WORKER))
  const routerElsewhere = (codec: Codec, not: ReadonlySet<RouterId>): RouterId | undefined => {
    for (let tries = 0; tries < 50; tries++) {
      const candidates = pick(rand, nodes).routers[codec]
      if (candidates.length === 0) continue
      const router = pick(rand, candidates)
      if (!not.has(router)) return router
    }
    return undefined
  }
  for (let i = 0; i < roomCount; i++) {
    const r = rand.next()
    const kind: RoomKind = r < 0.72 ? "small" : r < 0.97 ? "large" : "broadcast"
    const codec: Codec = rand.next() < 0.12 ? 1 : 0
    let producerCount: number
    let routerCount: number
    if (kind === "small") {
      producerCount = rand.next() < 0.1 ? 0 : rand.int(1, 6)
      routerCount = producerCount === 0 ? rand.int(0, 1) : rand.next() < 0.8 ? 1 : rand.int(2, 3)
    } else if (kind === "large") {
      producerCount = rand.int(8, 40)
      routerCount = rand.int(2, 6)
    } else {
      producerCount = rand.int(1, 2)
      routerCount = rand.int(8, 40)
    }
    // The home Node: a Node with a Router of the room's settings.
    let home = pick(rand, nodes)
    for (let tries = 0; tries < 50 && home.routers[codec].length === 0; tries++) home = pick(rand, nodes)
    if (home.routers[codec].length === 0) continue
    const chosen = new Set<RouterId>()
    for (let j = 0; j < routerCount; j++) {
      const local = home.routers[codec].filter((x) => !chosen.has(x))
      const stayHome = j === 0 || (kind !== "broadcast" && rand.next() < 0.75)
      const router = stayHome && local.length > 0 ? pick(rand, local) : routerElsewhere(codec, chosen)
      if (router !== undefined) chosen.add(router)
    }
    const room: Room = {
      id: MafaldaRouterId.make(`m${i}`),
      kind,
      home: home.id,
      routers: [...chosen]
    }
    rooms.push(room)
    events.push({
      _tag: "MafaldaRouterCreated",
      mafaldaRouter: room.id,
      workerSettings,
      routerSettings: routerSettings[codec],
      at: tick()
    })
    const transportOn = (j: number) => TransportId.make(`t${i}.${j}`)
    room.routers.forEach((router, j) => {
      events.push({
        _tag: "TransportCreated",
        transport: transportOn(j),
        kind: "webrtc",
        router,
        mafaldaRouter: room.id,
        at: tick()
      })
    })
    if (room.routers.length === 0) continue
    for (let p = 0; p < producerCount; p++) {
      const producer = ProducerId.make(`p${i}.${p}`)
      const origin = kind === "broadcast" ? 0 : rand.int(0, room.routers.length - 1)
      events.push({
        _tag: "ProducerCreated",
        producer,
        kind: rand.next() < 0.5 ? "audio" : "video",
        transport: transportOn(origin),
        at: tick()
      })
      const originRouter = room.routers[origin]!
      if (kind === "broadcast") hotWorkers.add(routerWorker.get(originRouter)!)
      // The tree: each other Router of the room is reached with some probability, from the
      // last hop added (a chain) or from a random hop, never below the maximum depth.
      const reach = kind === "small" ? 0.9 : kind === "large" ? 0.6 : 1
      const hops: Array<{ router: RouterId; depth: number }> = [{ router: originRouter, depth: 0 }]
      const others = room.routers.map((_, j) => j).filter((j) => j !== origin)
      for (let k = others.length - 1; k > 0; k--) {
        const x = Math.floor(rand.next() * (k + 1))
        ;[others[k], others[x]] = [others[x]!, others[k]!]
      }
      for (const j of others) {
        if (rand.next() >= reach) continue
        const last = hops[hops.length - 1]!
        const open = hops.filter((h) => h.depth < MAX_DEPTH)
        const parent = rand.next() < 0.5 && last.depth < MAX_DEPTH ? last : pick(rand, open)
        const to = room.routers[j]!
        hops.push({ router: to, depth: parent.depth + 1 })
        pipes++
        events.push({ _tag: "PipeCreated", producer, from: parent.router, to, at: tick() })
        if (kind === "broadcast" && parent.depth === 0 && rand.next() < 0.5) {
          hotWorkers.add(routerWorker.get(to)!)
        }
        if (rand.next() < 0.95) {
          consumers++
          events.push({
            _tag: "ConsumerCreated",
            consumer: ConsumerId.make(`c${i}.${p}.${j}`),
            producer,
            transport: transportOn(j),
            at: tick()
          })
        }
      }
      if (rand.next() < 0.03) {
        closedProducers.push(producer)
        events.push({ _tag: "ProducerClosed", producer, at: tick() })
      } else {
        producers.push({ id: producer, room })
      }
    }
  }

  // --- The day's load reports; draining Nodes --------------------------------------------
  for (const node of nodes) {
    if (node.kind === "draining") events.push({ _tag: "NodeDraining", node: node.id, at: tick() })
  }
  const dayAt = tick()
  for (const node of nodes) {
    for (const worker of node.workers) {
      const load = hotWorkers.has(worker) ? uniform(rand, 80, 100) : dayLoad(rand, node.kind)
      events.push({ _tag: "LoadReported", worker, load, at: dayAt })
    }
  }
  const day = Either.getOrThrow(applyEvents(emptySnapshot, events, costs))

  // --- Peak: every spare CPU runs a Worker, and everything is busy ------------------------
  const peakEvents: Array<ClusterEvent> = []
  let peakWorkers = workers
  for (const [n, node] of nodes.entries()) {
    if (node.kind === "draining") continue
    for (let c = node.workers.length; c < CPUS; c++) {
      const worker = WorkerId.make(`w${n}.${c}`)
      node.workers.push(worker)
      peakWorkers++
      peakEvents.push(
        { _tag: "WorkerStarted", worker, node: node.id, settings: workerSettings, at: tick() },
        {
          _tag: "RouterCreated",
          router: RouterId.make(`r${n}.${c}.0`),
          worker,
          settings: routerSettings[0],
          at: tick()
        }
      )
    }
  }
  const peakAt = tick()
  for (const node of nodes) {
    for (const worker of node.workers) {
      const load = hotWorkers.has(worker) ? uniform(rand, 80, 100) : peakLoad(rand)
      peakEvents.push({ _tag: "LoadReported", worker, load, at: peakAt })
    }
  }
  const peak = Either.getOrThrow(applyEvents(day, peakEvents, costs))

  return {
    day,
    peak,
    nodes: nodes.map((n) => n.id),
    rooms,
    producers,
    closedProducers,
    dayAt,
    counts: {
      dayWorkers: workers,
      peakWorkers,
      nodes: nodes.length,
      rooms: rooms.length,
      producers: producers.length,
      pipes,
      consumers,
      events: events.length + peakEvents.length
    }
  }
}
