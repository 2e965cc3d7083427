/**
 * What a scenario asks of the cluster, whatever the policy: the demand of everyone present,
 * as if every participant were placed, and the lower bounds it implies. The workload tells
 * it every change of a room's membership (who sits in which room, and who publishes, come
 * from the scenario and its seed alone), so the figures are the same for every policy.
 *
 * A room of `n` present participants and `k` publishers, each making producers of the kinds
 * its group produces, costs (cost model, media scaled per kind by the bitrate factors):
 * `n` transports, the producers, and a consumer of each producer for every other participant,
 * each producer and consumer at the costs of its media kind.
 *
 *  - Workers: ceil(total demand / capacity), at its peak over time;
 *  - pipes: per room, each producer must reach every other Router the room needs
 *    (ceil(room demand / capacity) of them), summed over rooms, at its peak over time;
 *
 * with the capacity of a Worker at the watermark (the policy's target) and at 100 % (none
 * could do with fewer Workers without overloading one). Pipes' own cost is left out, so the
 * bounds can only be low.
 */
import { kindCosts, type PolicyOptions } from "../core/PolicyOptions.js"
import type { Room } from "./Rooms.js"
import type { KindFactors } from "./WorkerStats.js"

/** Lower bounds at the watermark and with Workers filled to 100 %. */
export interface Bound {
  readonly atWatermark: number
  readonly at100: number
}

export interface LowerBounds {
  readonly workers: Bound
  readonly pipes: Bound
}

/** Fewest Workers (or Routers) of `capacity` % each that carry `demand` %. */
export const workersFor = (demand: number, capacity: number): number => Math.ceil(demand / capacity - 1e-9)

export class Demand {
  private readonly watermark: number
  // Per room (by index): its demand and the pipes it needs, at the watermark and at 100 %.
  private readonly roomDemand: Float64Array
  private readonly roomPipes: Float64Array
  private readonly roomPipes100: Float64Array
  private total = 0
  private pipes = 0
  private pipes100 = 0
  private peakTotal = 0
  private peakPipes = 0
  private peakPipes100 = 0
  /** Participants present now. */
  present = 0

  constructor(
    private readonly options: PolicyOptions,
    private readonly factors: KindFactors,
    rooms: number
  ) {
    this.watermark = options.watermark
    this.roomDemand = new Float64Array(rooms)
    this.roomPipes = new Float64Array(rooms)
    this.roomPipes100 = new Float64Array(rooms)
  }

  /** What the room costs with `members` present and `publishers` of them publishing. */
  private roomCost(room: Room, members: number, publishers: number): number {
    const c = this.options.costs
    let perPublisher = 0
    for (const kind of room.group.spec.produces) {
      const k = kindCosts(c, kind)
      perPublisher += this.factors[kind] * (k.producer + Math.max(0, members - 1) * k.consumer)
    }
    return members * c.transport + publishers * perPublisher
  }

  /** The room's membership changed (a join or a leave): `delta` participants more. */
  changed(room: Room, delta: number): void {
    this.present += delta
    const i = room.index
    const members = room.members.length
    const demand = members === 0 ? 0 : this.roomCost(room, members, room.publishers)
    const producers = room.publishers * room.group.spec.produces.length
    const pipes = producers * Math.max(0, workersFor(demand, this.watermark) - 1)
    const pipes100 = producers * Math.max(0, workersFor(demand, 100) - 1)
    this.total += demand - this.roomDemand[i]!
    this.pipes += pipes - this.roomPipes[i]!
    this.pipes100 += pipes100 - this.roomPipes100[i]!
    this.roomDemand[i] = demand
    this.roomPipes[i] = pipes
    this.roomPipes100[i] = pipes100
    if (this.total > this.peakTotal) this.peakTotal = this.total
    if (this.pipes > this.peakPipes) this.peakPipes = this.pipes
    if (this.pipes100 > this.peakPipes100) this.peakPipes100 = this.pipes100
  }

  /** Fewest Workers that carry the demand of now. */
  workersNow(): Bound {
    return { atWatermark: workersFor(this.total, this.watermark), at100: workersFor(this.total, 100) }
  }

  /** The lower bounds: the peaks over the run so far. */
  bounds(): LowerBounds {
    return {
      workers: {
        atWatermark: workersFor(this.peakTotal, this.watermark),
        at100: workersFor(this.peakTotal, 100)
      },
      pipes: { atWatermark: this.peakPipes, at100: this.peakPipes100 }
    }
  }
}
