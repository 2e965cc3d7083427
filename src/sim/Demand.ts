/**
 * What a scenario asks of the cluster, whatever the policy: the demand of everyone present,
 * as if every participant were placed, and the lower bounds it implies. The workload tells
 * it every change of a room's membership (who sits in which room, and who publishes, come
 * from the scenario and its seed alone), so the figures are the same for every policy.
 *
 * A room's demand `D` (cost model, media scaled per kind by the bitrate factors) is its `n`
 * present participants' transports and the producers and consumers `roomMedia` counts: each
 * publisher's producers (its role's kinds), and a consumer of each producer for every other
 * participant (with last-N, of at most N video producers). A participant's own share of it
 * (its transport, its producers, its consumers) is its demand. `P` is the sum, over the
 * producers that every member but their owner consumes (all of them; with last-N the audio
 * ones only, as which video a member takes is the workload's choice), of one pipe end of
 * the producer's kind (`pipe × factor`).
 *
 * Pipe-aware bounds, for a capacity `cap` per Worker (the watermark, and 100 %), valid for
 * any placement that keeps every Worker at or under `cap` and gives each participant ONE
 * transport, on which its producers and all its consumers sit (the Mafalda Router's model,
 * and how mafalda, round-robin, mesh, chain and room-per-node place):
 *
 *  - A room over `T` >= 2 Workers that hold its transports: each of those Workers carries
 *    at least `P` of pipe ends. Its members consume each of those producers but their own; one
 *    hosted elsewhere reaches them only through a pipe into a Router of theirs on that
 *    Worker (a pipe-in end), and a producer it hosts must leave it for the other Workers (at
 *    least one pipe-out end). So `d_w + P <= cap` on each, where `d_w`, its share of `D`,
 *    holds at least one whole participant: the room needs `T >= ceil(D / (cap - P))`
 *    (`T*`), and if its largest participant's demand plus `P` is over `cap` (or that
 *    participant alone is over `cap`) while `D > cap`, NO such placement exists: the room is
 *    infeasible at `cap`. The largest participant is estimated low (the mean of the room's,
 *    or a subscriber's exact demand), so a room is never said infeasible wrongly.
 *  - Every one of the `T - 1` Workers that do not host a producer holds a pipe-in of it, each
 *    pipe with its two ends somewhere (relays outside those `T` Workers only add pipes): at
 *    least `(T - 1)` pipes per such producer and `D + 2 P (T - 1)` of CPU for the room, both
 *    growing with `T`, so at their least at `T*`. The room alone takes at least
 *    `max(T*, ceil((D + 2 P (T* - 1)) / cap))` Workers (relays included).
 *  - Rooms' objects are disjoint and every Worker is at or under `cap`, so Workers >=
 *    ceil(sum over rooms of their least CPU / cap) and pipes >= the sum over rooms of
 *    those producers × (T* - 1), each at its peak over time.
 *
 * The edge case of a Worker holding only one publisher's transport: it hosts that
 * publisher's producers (no pipe-in for them) and needs every other producer (the publisher
 * consumes them), so the count above holds. It would not if a publisher's producers could
 * sit on one transport and its consumers on another (separate send and receive transports),
 * or if a participant had several receive transports: `least-loaded` pins subscribers to
 * each producer's Router with a receive transport there, trading pipes for transports, and
 * is outside this model: only the demand-only bound (`demandOnly`, `ceil(sum D / cap)`,
 * valid for every placement) holds for it.
 *
 * A room infeasible at a capacity is counted (at once, at its peak, and rooms ever
 * infeasible) and adds only its demand `D` to that capacity's Worker bound and no pipe (what
 * any placement of it carries at least, overloaded or not), so the bound stays low.
 *
 * Each membership change costs O(1): one room's figures are recomputed and the sums updated.
 */
import { kindCosts, type PolicyOptions } from "../core/PolicyOptions.js"
import { type Room, roomMedia } from "./Rooms.js"
import type { KindFactors } from "./WorkerStats.js"

/** Lower bounds at the watermark and with Workers filled to 100 %. */
export interface Bound {
  readonly atWatermark: number
  readonly at100: number
}

/** Rooms no placement can keep under a capacity: at most at once, and ever. */
export interface Infeasible {
  readonly peak: number
  readonly total: number
}

export interface LowerBounds {
  /** Pipe-aware: ceil(sum of the rooms' least CPU / capacity), at its peak. */
  readonly workers: Bound
  /** Pipe-aware: the sum over rooms of producers × (fewest Workers holding their transports - 1), at its peak. */
  readonly pipes: Bound
  /** Rooms infeasible at the capacity (see the header). */
  readonly infeasibleRooms: { readonly atWatermark: Infeasible; readonly at100: Infeasible }
  /** Demand only (no pipes), valid for any placement: ceil(sum of demand / capacity), at its peak. */
  readonly demandOnly: Bound
}

/** Fewest Workers (or Routers) of `capacity` % each that carry `demand` %. */
export const workersFor = (demand: number, capacity: number): number => Math.ceil(demand / capacity - 1e-9)

/** What one room needs at a capacity (see the header). */
export interface RoomNeeds {
  /** Fewest Workers the room alone takes (relays included); demand only when infeasible. */
  readonly workers: number
  /** Fewest Workers holding its transports (`T*`). */
  readonly transportWorkers: number
  /** Least CPU % it costs in all. */
  readonly cpu: number
  /** Fewest pipes. */
  readonly pipes: number
  readonly infeasible: boolean
}

/**
 * A room's needs at `capacity` %: `demand` its demand, `pipeEnds` one pipe end of each of its
 * producers summed, `largest` its largest participant's demand, `producers` how many.
 */
export const roomNeeds = (
  demand: number,
  pipeEnds: number,
  largest: number,
  producers: number,
  capacity: number
): RoomNeeds => {
  if (demand <= 0) return { workers: 0, transportWorkers: 0, cpu: 0, pipes: 0, infeasible: false }
  const alone = workersFor(demand, capacity)
  if (alone <= 1) return { workers: 1, transportWorkers: 1, cpu: demand, pipes: 0, infeasible: false }
  if (largest + pipeEnds > capacity + 1e-9)
    return { workers: alone, transportWorkers: alone, cpu: demand, pipes: 0, infeasible: true }
  const t = Math.max(2, workersFor(demand, capacity - pipeEnds))
  const cpu = demand + 2 * pipeEnds * (t - 1)
  return {
    workers: Math.max(t, workersFor(cpu, capacity)),
    transportWorkers: t,
    cpu,
    pipes: producers * (t - 1),
    infeasible: false
  }
}

/** Running sums and peaks of the pipe-aware figures at one capacity. */
class AtCapacity {
  readonly cpu: Float64Array
  readonly pipes: Float64Array
  readonly infeasible: Uint8Array
  readonly everInfeasible: Uint8Array
  totalCpu = 0
  totalPipes = 0
  infeasibleNow = 0
  peakCpu = 0
  peakPipes = 0
  peakInfeasible = 0
  infeasibleEver = 0

  constructor(
    readonly capacity: number,
    rooms: number
  ) {
    this.cpu = new Float64Array(rooms)
    this.pipes = new Float64Array(rooms)
    this.infeasible = new Uint8Array(rooms)
    this.everInfeasible = new Uint8Array(rooms)
  }

  set(i: number, demand: number, pipeEnds: number, largest: number, producers: number): void {
    const needs = roomNeeds(demand, pipeEnds, largest, producers, this.capacity)
    this.totalCpu += needs.cpu - this.cpu[i]!
    this.totalPipes += needs.pipes - this.pipes[i]!
    this.cpu[i] = needs.cpu
    this.pipes[i] = needs.pipes
    const inf = needs.infeasible ? 1 : 0
    this.infeasibleNow += inf - this.infeasible[i]!
    this.infeasible[i] = inf
    if (inf === 1 && this.everInfeasible[i] === 0) {
      this.everInfeasible[i] = 1
      this.infeasibleEver++
    }
    if (this.totalCpu > this.peakCpu) this.peakCpu = this.totalCpu
    if (this.totalPipes > this.peakPipes) this.peakPipes = this.totalPipes
    if (this.infeasibleNow > this.peakInfeasible) this.peakInfeasible = this.infeasibleNow
  }

  workersNow(): number {
    return workersFor(this.totalCpu, this.capacity)
  }

  workers(): number {
    return workersFor(this.peakCpu, this.capacity)
  }

  infeasibleRooms(): Infeasible {
    return { peak: this.peakInfeasible, total: this.infeasibleEver }
  }
}

export class Demand {
  private readonly watermark: number
  private readonly atWatermark: AtCapacity
  private readonly at100: AtCapacity
  // Per room (by index): its demand.
  private readonly roomDemand: Float64Array
  private total = 0
  private peakTotal = 0
  /** Per kind of the costs, scaled by the kind's factor: pipe end, producer, consumer. */
  private readonly scaled: Record<"audio" | "video", { pipe: number; producer: number; consumer: number }>
  /** Participants present now. */
  present = 0

  constructor(
    private readonly options: PolicyOptions,
    factors: KindFactors,
    rooms: number
  ) {
    this.watermark = options.watermark
    this.atWatermark = new AtCapacity(options.watermark, rooms)
    this.at100 = new AtCapacity(100, rooms)
    this.roomDemand = new Float64Array(rooms)
    const scale = (kind: "audio" | "video") => {
      const k = kindCosts(options.costs, kind)
      const f = factors[kind]
      return { pipe: k.pipe * f, producer: k.producer * f, consumer: k.consumer * f }
    }
    this.scaled = { audio: scale("audio"), video: scale("video") }
  }

  /** The room's membership changed (a join or a leave): `delta` participants more. */
  changed(room: Room, delta: number): void {
    this.present += delta
    const i = room.index
    const members = room.members.length
    const t = this.options.costs.transport
    const { audio, video } = this.scaled
    const media = roomMedia(room)
    const demand =
      members === 0
        ? 0
        : members * t +
          media.producers.audio * audio.producer +
          media.consumers.audio * audio.consumer +
          media.producers.video * video.producer +
          media.consumers.video * video.consumer
    // Producers every member consumes but its owner: all of them, or with last-N the audio
    // ones only (which video producers a member takes is the workload's choice).
    const lastN = room.group.spec.lastN
    const sharedAudio = media.producers.audio
    const sharedVideo = lastN === undefined ? media.producers.video : 0
    const pipeEnds = sharedAudio * audio.pipe + sharedVideo * video.pipe
    // The largest participant, estimated low: the mean, or a subscriber's exact demand.
    const subscriber =
      members > room.publishers
        ? t +
          media.producers.audio * audio.consumer +
          (lastN === undefined ? media.producers.video : Math.min(lastN, media.producers.video)) *
            video.consumer
        : 0
    const largest = members === 0 ? 0 : Math.max(demand / members, subscriber)
    this.total += demand - this.roomDemand[i]!
    this.roomDemand[i] = demand
    if (this.total > this.peakTotal) this.peakTotal = this.total
    this.atWatermark.set(i, demand, pipeEnds, largest, sharedAudio + sharedVideo)
    this.at100.set(i, demand, pipeEnds, largest, sharedAudio + sharedVideo)
  }

  /** Fewest Workers the rooms of now need (pipe-aware, see the header). */
  workersNow(): Bound {
    return { atWatermark: this.atWatermark.workersNow(), at100: this.at100.workersNow() }
  }

  /** Fewest Workers that carry the demand of now, pipes left out (valid for any placement). */
  demandOnlyNow(): Bound {
    return { atWatermark: workersFor(this.total, this.watermark), at100: workersFor(this.total, 100) }
  }

  /** The lower bounds: the peaks over the run so far. */
  bounds(): LowerBounds {
    return {
      workers: { atWatermark: this.atWatermark.workers(), at100: this.at100.workers() },
      pipes: { atWatermark: this.atWatermark.peakPipes, at100: this.at100.peakPipes },
      infeasibleRooms: {
        atWatermark: this.atWatermark.infeasibleRooms(),
        at100: this.at100.infeasibleRooms()
      },
      demandOnly: {
        atWatermark: workersFor(this.peakTotal, this.watermark),
        at100: workersFor(this.peakTotal, 100)
      }
    }
  }
}
