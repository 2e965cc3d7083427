/**
 * The memos of `projection.ts` (a Router's growth, a room's term, a room's Routers in use, kept
 * across decisions) change no figure: after every event of generated runs, with the policy's
 * decisions warming the memos in between, every Worker's projected load, every room's growth
 * on it and every room's Routers in use are exactly what a plain computation gives (the one
 * before the memos: every room on every Router, worked out again), also on the same snapshot
 * later on (past the peak-hold window: the rooms' recent highs no longer hold) and with other
 * options.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { peakHoldMillis } from "../../src/core/applyEvent.js"
import type { MafaldaRouterId, RouterId } from "../../src/core/Ids.js"
import {
  type ClusterEvent,
  type ClusterSnapshot,
  makePolicyOptions,
  type PolicyOptions
} from "../../src/core/index.js"
import {
  projectedLoad,
  projectedRouters,
  projectRoom,
  roomGrowthOn,
  roomShareOn,
  routersInUse,
  shareGrowth
} from "../../src/core/projection.js"
import { effectiveLoad, lookup, type MafaldaRouter } from "../../src/core/Snapshot.js"
import { anyCommand, growCommand, Sim, scenario } from "./arbitraries.js"
import { assertProperty } from "./coverage.js"

const plainInUse = (s: ClusterSnapshot, m: MafaldaRouter): number => {
  let n = 0
  for (const id of m.routers) if (roomShareOn(s, id, m.id) !== undefined) n++
  return n
}

const plainRouterGrowth = (
  s: ClusterSnapshot,
  o: PolicyOptions,
  router: RouterId,
  only?: MafaldaRouterId
): number => {
  const r = lookup(s.routers, router)
  if (r === undefined) return 0
  let growth = 0
  for (const [room, share] of r.rooms) {
    if (only !== undefined && room !== only) continue
    const m = lookup(s.mafaldaRouters, room)
    if (m === undefined) continue
    const projection = projectRoom(m, s.now, o)
    const routers = projectedRouters(o, projection, plainInUse(s, m))
    const toCome = Math.max(0, Math.ceil(projection.transports) - m.size.transports)
    growth += shareGrowth(share, projection, o, routers, toCome)
  }
  return growth
}

/** Compares the memoised figures with the plain ones on `s`; returns how many were compared. */
const compare = (s: ClusterSnapshot, o: PolicyOptions): number => {
  let n = 0
  for (const [, m] of s.mafaldaRouters) expect(routersInUse(s, m)).toBe(plainInUse(s, m))
  for (const [, w] of s.workers) {
    let growth = 0
    for (const { id } of w.routers) growth += plainRouterGrowth(s, o, id)
    expect(projectedLoad(s, o, w)).toBe(effectiveLoad(w) + growth * w.ratio)
    for (const [room] of s.mafaldaRouters) {
      let own = 0
      for (const { id } of w.routers) own += plainRouterGrowth(s, o, id, room)
      expect(roomGrowthOn(s, o, w, room)).toBe(own * w.ratio)
    }
    n++
  }
  return n
}

/** A run that compares after every event, under its options, others, and later on. */
class CheckedSim extends Sim {
  compared = 0
  constructor(
    options: PolicyOptions,
    readonly other: PolicyOptions
  ) {
    super(options)
  }

  override emit(events: ClusterEvent | ReadonlyArray<ClusterEvent>) {
    super.emit(events)
    const s = this.snapshot
    this.compared += compare(s, this.options)
    this.compared += compare(s, this.other)
    this.compared += compare({ ...s, now: s.now + peakHoldMillis + 1 }, this.options)
  }
}

const other = Either.getOrThrow(makePolicyOptions({ roomGrowth: 1, watermark: 50 }))

describe("projection memos", () => {
  for (const [name, command] of [
    ["any commands", anyCommand],
    ["grow commands", growCommand]
  ] as const) {
    it(`give the plain figures after every event (${name})`, async () => {
      let compared = 0
      await assertProperty(
        scenario(command, 24),
        (sc) => {
          const sim = new CheckedSim(sc.options, other)
          sim.setup(sc.cpus, sc.producers)
          sim.run(sc.commands)
          compared += sim.compared
        },
        { numRuns: 200 }
      )
      expect(compared).toBeGreaterThan(1000)
    }, 300_000)
  }
})
