/**
 * The event loop of a simulation: items scheduled in a heap over virtual time. The loop pops
 * the next item, moves the `VirtualClock` (the Effect `Clock` the run is given) to its time
 * and hands the item over; it stops at the end of the scenario. A simulated hour takes as
 * long as its events do.
 */
import { EventHeap } from "./Heap.js"
import type { VirtualClock } from "./VirtualClock.js"

/** Virtual time and the scheduling of items, as the parts of a simulation see them. */
export interface Scheduler<Item> {
  /** The virtual time, in milliseconds since the start. */
  readonly now: number
  /** Runs `item` at `at` ms; items at the same time run in the order they were scheduled. */
  schedule(at: number, item: Item): void
}

export class EventLoop<Item> implements Scheduler<Item> {
  private readonly heap = new EventHeap<Item>()

  constructor(
    private readonly clock: VirtualClock,
    readonly durationMs: number
  ) {}

  get now(): number {
    return this.clock.unsafeCurrentTimeMillis()
  }

  schedule(at: number, item: Item): void {
    this.heap.push(at, item)
  }

  /** Schedules `item` again `everyMs` from now, unless that is past the end. */
  repeat(everyMs: number, item: Item): void {
    if (this.now + everyMs <= this.durationMs) this.heap.push(this.now + everyMs, item)
  }

  /**
   * Runs the items in time order until none is left before the end, then moves the clock to
   * the end. `onProgress` hears the fraction of simulated time done, now and then.
   */
  run(handle: (item: Item) => void, onProgress?: (fraction: number) => void): void {
    let steps = 0
    while (this.heap.size > 0) {
      if (this.heap.peekTime() > this.durationMs) break
      const entry = this.heap.pop()!
      this.clock.advanceTo(entry.at)
      handle(entry.item)
      if (onProgress !== undefined && (++steps & 0x3fff) === 0) onProgress(this.now / this.durationMs)
    }
    this.clock.advanceTo(this.durationMs)
  }
}
