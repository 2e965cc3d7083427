/**
 * A small seeded pseudo-random generator (mulberry32) so that a simulation is the same
 * for the same seed on every machine. `Math.random` is never used by the simulator.
 */
export class Prng {
  private state: number

  constructor(seed: number) {
    // Mix the seed once so that nearby seeds give unrelated sequences.
    let s = (Math.trunc(seed) ^ 0x9e3779b9) >>> 0
    s = Math.imul(s ^ (s >>> 16), 0x85ebca6b) >>> 0
    s = Math.imul(s ^ (s >>> 13), 0xc2b2ae35) >>> 0
    this.state = (s ^ (s >>> 16)) >>> 0
  }

  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0
    let t = this.state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  /** An integer in [min, max] (both included). */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1))
  }

  /** An exponentially distributed value with the given mean. */
  exponential(mean: number): number {
    return -Math.log(1 - this.next()) * mean
  }

  /** A child generator, for an independent stream (e.g. one per room group). */
  fork(salt: number): Prng {
    return new Prng(Math.floor(this.next() * 4294967296) ^ Math.imul(salt + 1, 0x27d4eb2d))
  }
}
