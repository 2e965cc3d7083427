/**
 * An Effect `Clock` whose time only moves when the simulator says so. The scenario loop
 * reads it (through Effect's `Clock` service) to stamp every event, and advances it from
 * one scheduled event to the next: a simulated hour takes as long as its events do.
 */
import { Clock, Duration, Effect } from "effect"

export class VirtualClock implements Clock.Clock {
  readonly [Clock.ClockTypeId]: Clock.ClockTypeId = Clock.ClockTypeId
  private now: number

  constructor(startMillis = 0) {
    this.now = startMillis
  }

  unsafeCurrentTimeMillis(): number {
    return this.now
  }

  unsafeCurrentTimeNanos(): bigint {
    return BigInt(Math.round(this.now * 1_000_000))
  }

  get currentTimeMillis(): Effect.Effect<number> {
    return Effect.sync(() => this.now)
  }

  get currentTimeNanos(): Effect.Effect<bigint> {
    return Effect.sync(() => this.unsafeCurrentTimeNanos())
  }

  /** Sleeping on a virtual clock moves it forward; nothing actually waits. */
  sleep(duration: Duration.Duration): Effect.Effect<void> {
    return Effect.sync(() => {
      this.now += Duration.toMillis(duration)
    })
  }

  /** Moves the clock to `millis` (never backwards). */
  advanceTo(millis: number): void {
    if (millis > this.now) this.now = millis
  }
}
