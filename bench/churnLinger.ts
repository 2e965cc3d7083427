/**
 * Lingering peak users in `churn`: how many of the participants present at the bound's peak
 * are still present later, and optimistic no-move floors on the Workers they keep in use; then
 * what an idealized online repacker without foresight (rooms whole, no seats reserved, moves
 * instant) moves to keep the Workers in use within 1.5x the bound from its peak on.
 *
 *   node --import tsx bench/churnLinger.ts [policy]      (default policy: mafalda)
 *
 * The workload (who joins which room when, and when they leave) comes from the scenario and
 * its seed alone; the policy only decides placement (checked: the join/leave log is compared
 * across two policies). The run is the same as `simulateSync` (an Engine on a VirtualClock
 * at 0, the scenario's seed), built by hand so the workload's `leave` can be wrapped before
 * the run to log leave times; joins are logged from the workload's `join` too.
 */

import { kindCosts } from "../src/core/PolicyOptions.js"
import { lookup, workerOfRouter } from "../src/core/Snapshot.js"
import { Engine } from "../src/sim/Engine.js"
import { AFTER_PEAK_FLOOR, AFTER_PEAK_MIN, type SimResult } from "../src/sim/Metrics.js"
import type { PolicyName } from "../src/sim/policies/Policy.js"
import type { Participant } from "../src/sim/Rooms.js"
import { makePolicy, simulateSync } from "../src/sim/run.js"
import { builtinScenario } from "../src/sim/scenarios.js"
import { VirtualClock } from "../src/sim/VirtualClock.js"

const policyName = (process.argv[2] ?? "mafalda") as PolicyName
const scenario = builtinScenario("churn")

interface Rec {
  num: number
  room: number
  join: number // s
  leave: number // s, Infinity if still present at the end
}

interface WorkloadHooks {
  join(group: unknown, into?: unknown): void
  leave(p: Participant): void
  readonly nextParticipant: number
}

const runLogged = (name: PolicyName) => {
  const clock = new VirtualClock(0)
  const engine = new Engine(scenario, clock)
  const recs = new Map<number, Rec>()
  // The workload's private join and leave, wrapped to log (an analysis script, not an API).
  const w = engine.workload as unknown as WorkloadHooks
  const origJoin = w.join.bind(w)
  const origLeave = w.leave.bind(w)
  let arrivals = 0
  w.join = (group: unknown, into?: unknown) => {
    const before = w.nextParticipant
    origJoin(group, into)
    if (w.nextParticipant > before) {
      arrivals++
      // The new participant is the last member of its room.
      const num = before
      for (const g of engine.workload.groups)
        for (const room of g.rooms)
          for (const p of room.members)
            if (p.num === num)
              recs.set(num, { num, room: room.index, join: engine.loop.now / 1000, leave: Infinity })
    }
  }
  w.leave = (p: Participant) => {
    const wasPresent = p.present
    origLeave(p)
    if (wasPresent && !p.present) recs.get(p.num)!.leave = engine.loop.now / 1000
  }
  // At each sample: the Worker of each present participant's transport (actual placement).
  const people = new Map<number, Participant>()
  const placement = new Map<number, Map<number, string>>() // t -> num -> worker
  const origSample = engine.metrics.sample.bind(engine.metrics)
  engine.metrics.sample = (now: number) => {
    const snap = engine.cluster.snapshot
    const m = new Map<number, string>()
    for (const g of engine.workload.groups)
      for (const room of g.rooms)
        for (const p of room.members) {
          people.set(p.num, p)
          if (p.transport === null) continue
          const tr = lookup(snap.transports, p.transport)
          const wk = tr === undefined ? undefined : workerOfRouter(snap, tr.router)
          if (wk !== undefined) m.set(p.num, wk.id)
        }
    placement.set(now / 1000, m)
    return origSample(now)
  }
  const result = engine.run(makePolicy(name, engine.cluster, scenario))
  return { result, recs, arrivals, joins: engine.workload.joins, engine, placement }
}

const main = runLogged(policyName)
const { result, recs } = main

// --- Cross-checks ---------------------------------------------------------------------------
const ref: SimResult = simulateSync(scenario, policyName)
const same =
  JSON.stringify(ref.workersOverBoundAfterPeak) === JSON.stringify(result.workersOverBoundAfterPeak)
const other = runLogged(policyName === "round-robin" ? "mafalda" : "round-robin")
let sameWorkload = other.recs.size === recs.size
for (const [k, r] of recs) {
  const o = other.recs.get(k)
  if (o === undefined || o.room !== r.room || o.join !== r.join || o.leave !== r.leave) sameWorkload = false
}

// --- Samples --------------------------------------------------------------------------------
const series = result.series
const ap = result.workersOverBoundAfterPeak
const peakT = ap.peakAtSeconds
const floorBound = Math.max(AFTER_PEAK_MIN, Math.ceil(AFTER_PEAK_FLOOR * ap.peakBound))
const presentAt = (r: Rec, t: number) => r.join <= t && r.leave > t
const all = [...recs.values()]
const peakUsers = all.filter((r) => presentAt(r, peakT))

// Presence check against the series' participant count.
let presenceMismatch = 0
for (const p of series) if (all.filter((r) => presentAt(r, p.t)).length !== p.participants) presenceMismatch++

// --- Cost model: a room of n, everyone publishing audio + video and consuming all others ------
const opts = main.engine.cluster.options
const f = main.engine.cluster.factors
const a = kindCosts(opts.costs, "audio")
const v = kindCosts(opts.costs, "video")
const perMember = opts.costs.transport + a.producer * f.audio + v.producer * f.video
const perPair = a.consumer * f.audio + v.consumer * f.video
const roomLoad = (n: number) => (n <= 0 ? 0 : n * perMember + n * (n - 1) * perPair)

// Peak-time rooms: their members present at the peak.
const byRoom = new Map<number, Rec[]>()
for (const r of peakUsers) {
  const l = byRoom.get(r.room) ?? []
  l.push(r)
  byRoom.set(r.room, l)
}
const rooms = [...byRoom.entries()].map(([room, members]) => ({
  room,
  members,
  load: roomLoad(members.length),
  lastLeave: Math.max(...members.map((m) => m.leave))
}))

type RoomT = (typeof rooms)[number]
/** First fit of whole rooms, in the given order, into bins of `cap` %. */
const firstFit = (order: RoomT[], cap: number): RoomT[][] => {
  const bins: { load: number; rooms: RoomT[] }[] = []
  for (const r of order) {
    let b = bins.find((x) => x.load + r.load <= cap + 1e-9)
    if (b === undefined) {
      b = { load: 0, rooms: [] }
      bins.push(b)
    }
    b.load += r.load
    b.rooms.push(r)
  }
  return bins.map((b) => b.rooms)
}
const ffd = (cap: number) =>
  firstFit(
    [...rooms].sort((x, y) => y.load - x.load || x.room - y.room),
    cap
  )
// Clairvoyant variant: rooms ordered by when their last peak member leaves (latest first), so
// long-lingering rooms share Workers: what a policy that knew every departure could do.
const clair = (cap: number) =>
  firstFit(
    [...rooms].sort((x, y) => y.lastLeave - x.lastLeave || y.load - x.load),
    cap
  )

const bins60 = ffd(opts.watermark)
const bins100 = ffd(100)
const clair60 = clair(opts.watermark)
const clair100 = clair(100)
const lingerers = (bin: RoomT[], t: number) =>
  bin.reduce((n, r) => n + r.members.filter((m) => presentAt(m, t)).length, 0)
const held = (bins: RoomT[][], t: number) => bins.filter((b) => lingerers(b, t) > 0).length

// Moves: keep the floor(1.5 x bound) Workers (of the 60 % FFD packing) with the most
// lingerers; the lingerers on the others must move.
const movesAt = (bins: RoomT[][], t: number, bound: number) => {
  const allowed = Math.floor(1.5 * bound)
  const counts = bins.map((b) => lingerers(b, t)).sort((x, y) => y - x)
  return counts.slice(allowed).reduce((s, c) => s + c, 0)
}

// Cumulative moves with a fixed order of emptying (the packing's Workers ranked by when their
// last peak member leaves, latest kept longest): a lingerer is moved once, the first sample
// at which its Worker falls beyond floor(1.5 x bound), if still present then.
const cumulativeMoves = (bins: RoomT[][]) => {
  const rank = bins
    .map((b, i) => ({ i, last: Math.max(...b.map((r) => r.lastLeave)) }))
    .sort((x, y) => y.last - x.last)
    .map((x) => x.i)
  const moved = new Set<number>()
  for (const p of series) {
    if (p.t < peakT || p.lowerBoundAtWatermark < floorBound) continue
    const allowed = Math.floor(1.5 * p.lowerBoundAtWatermark)
    for (const bi of rank.slice(allowed))
      for (const r of bins[bi]!) for (const m of r.members) if (presentAt(m, p.t)) moved.add(m.num)
  }
  return moved.size
}

// --- Output -------------------------------------------------------------------------------
const totalArrivals = all.length
console.log(`policy ${policyName}; scenario seed ${scenario.seed}; watermark ${opts.watermark} %`)
console.log(
  `cost/member ${perMember.toFixed(3)} %, per ordered pair ${perPair.toFixed(3)} %; room of 8 = ${roomLoad(8).toFixed(2)} %, of 2 = ${roomLoad(2).toFixed(2)} %`
)
console.log(
  `afterPeak (${policyName}): ${JSON.stringify(ap)}; equals simulateSync: ${same}; workload identical under another policy: ${sameWorkload}; presence mismatches vs series: ${presenceMismatch}`
)
console.log(
  `arrivals ${totalArrivals}, workload.joins ${main.joins}, relocations ${JSON.stringify(result.relocations ?? null)}`
)
console.log(
  `peak t=${peakT}: bound ${ap.peakBound}, present ${peakUsers.length} in ${rooms.length} rooms, demand ${rooms.reduce((s, r) => s + r.load, 0).toFixed(1)} %; FFD bins 60 %: ${bins60.length}, 100 %: ${bins100.length}; counted floor ${floorBound}`
)
console.log("")
console.log(
  "t\tbound\tpresent\tpeakLeft\texp\tused\twPeakU\tpeakW\tFFD60\tr60\tFFD100\tr100\tclair60\trc60\tclair100\trc100\tmoves60"
)
let max60 = 0,
  max100 = 0,
  maxC60 = 0,
  maxC100 = 0,
  maxMoves = 0,
  at60 = 0,
  maxUsed = 0,
  maxActualPeakHeld = 0
for (const p of series) {
  if (p.t < peakT) continue
  const b = p.lowerBoundAtWatermark
  const counted = b >= floorBound
  const left = peakUsers.filter((r) => presentAt(r, p.t)).length
  const h60 = held(bins60, p.t)
  const h100 = held(bins100, p.t)
  const c60 = held(clair60, p.t)
  const c100 = held(clair100, p.t)
  const mv = movesAt(bins60, p.t, b)
  if (counted) {
    if (h60 / b > max60) {
      max60 = h60 / b
      at60 = p.t
    }
    max100 = Math.max(max100, h100 / b)
    maxC60 = Math.max(maxC60, c60 / b)
    maxC100 = Math.max(maxC100, c100 / b)
    maxMoves = Math.max(maxMoves, mv)
    maxUsed = Math.max(maxUsed, p.workersInUse / b)
  }
  // Actual placement: Workers holding a still-present peak user, and of the peak's Workers.
  const pl = main.placement.get(p.t)!
  const peakPl = main.placement.get(peakT)!
  const wPeakUsers = new Set<string>()
  const stillPeakWorkers = new Set<string>()
  for (const r of peakUsers)
    if (presentAt(r, p.t)) {
      const w = pl.get(r.num)
      if (w !== undefined) wPeakUsers.add(w)
      const w0 = peakPl.get(r.num)
      if (w0 !== undefined) stillPeakWorkers.add(w0)
    }
  if (counted) maxActualPeakHeld = Math.max(maxActualPeakHeld, wPeakUsers.size / b)
  const expLeft = peakUsers.length * Math.exp(-(p.t - peakT) / 90)
  console.log(
    [
      p.t,
      b + (counted ? "" : "*"),
      p.participants,
      left,
      expLeft.toFixed(1),
      p.workersInUse,
      wPeakUsers.size,
      stillPeakWorkers.size,
      h60,
      (h60 / b).toFixed(2),
      h100,
      (h100 / b).toFixed(2),
      c60,
      (c60 / b).toFixed(2),
      c100,
      (c100 / b).toFixed(2),
      mv
    ].join("\t")
  )
}
console.log("")
console.log(`max over counted samples (bound >= ${floorBound}):`)
console.log(`  FFD 60 % floor ratio ${max60.toFixed(2)} (at t=${at60}), FFD 100 % ${max100.toFixed(2)}`)
console.log(`  clairvoyant 60 % ${maxC60.toFixed(2)}, clairvoyant 100 % ${maxC100.toFixed(2)}`)
console.log(
  `  ${policyName} Workers in use / bound ${maxUsed.toFixed(2)}; its Workers holding a peak user / bound ${maxActualPeakHeld.toFixed(2)}`
)
console.log(
  `  ${policyName} Workers in use at the peak: ${[...new Set(main.placement.get(peakT)!.values())].length} holding peak users`
)
console.log(
  `  moves needed at one sample (FFD 60 %): max ${maxMoves} = ${((100 * maxMoves) / totalArrivals).toFixed(2)} % of ${totalArrivals} joins`
)
const cum = cumulativeMoves(bins60)
console.log(
  `  cumulative distinct lingerers moved (fixed emptying order, FFD 60 %): ${cum} = ${((100 * cum) / totalArrivals).toFixed(2)} % of joins`
)
const cumC = cumulativeMoves(clair60)
console.log(
  `  the same on the clairvoyant 60 % packing: ${cumC} = ${((100 * cumC) / totalArrivals).toFixed(2)} %`
)

// --- Departure-agnostic packings ------------------------------------------------------------
// Stays are exponential (memoryless): when a user is placed, nothing the policy can see says
// how long it will stay. So for a policy that does not know departures, which peak rooms share
// a Worker is independent of who lingers: model it as first fit at 60 % of the peak rooms in a
// random order (seeded), and look at the distribution of the held-Workers / bound ratio.
{
  let seed = 12345
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648
    return seed / 2147483648
  }
  const counted = series.filter((p) => p.t >= peakT && p.lowerBoundAtWatermark >= floorBound)
  for (const cap of [opts.watermark, 100]) {
    const maxes: number[] = []
    const at710: number[] = []
    const binsN: number[] = []
    const trials = 2000
    for (let k = 0; k < trials; k++) {
      const order = [...rooms]
      for (let i = order.length - 1; i > 0; i--) {
        const j = Math.floor(rnd() * (i + 1))
        ;[order[i], order[j]] = [order[j]!, order[i]!]
      }
      const bins = firstFit(order, cap)
      binsN.push(bins.length)
      let m = 0
      for (const p of counted) m = Math.max(m, held(bins, p.t) / p.lowerBoundAtWatermark)
      maxes.push(m)
      const p710 = counted.find((p) => p.lowerBoundAtWatermark === 2)!
      at710.push(held(bins, p710.t) / p710.lowerBoundAtWatermark)
    }
    maxes.sort((x, y) => x - y)
    const q = (a: number[], f: number) => a[Math.min(a.length - 1, Math.floor(f * a.length))]!
    const share = maxes.filter((x) => x <= 1.5 + 1e-9).length / trials
    console.log(
      `random-order first fit at ${cap} %: Workers at peak ${Math.min(...binsN)}-${Math.max(...binsN)}; max ratio over counted samples min ${maxes[0]!.toFixed(2)}, median ${q(maxes, 0.5).toFixed(2)}, p90 ${q(maxes, 0.9).toFixed(2)}, max ${maxes[maxes.length - 1]!.toFixed(2)}; share of trials <= 1.5: ${(100 * share).toFixed(1)} %; ratio at first bound-2 sample median ${q(
        at710.sort((x, y) => x - y),
        0.5
      ).toFixed(2)}`
    )
  }
}

// --- An online repacker without foresight -----------------------------------------------------
// What moving people costs when it is the only tool: rooms packed as they are now (no seats
// reserved for a size hint), each room whole on one Worker, Workers filled fullest first up to
// `fill` x the watermark (a room opens where `headroom` more members would fit); a room that outgrows
// its Worker moves whole; at every sample from the bound's
// peak on, while more Workers are in use than `target` x the bound, the Worker with the fewest
// people is emptied (its rooms moved whole, fullest Worker first). Moves are counted per person.
// Optimistic: moves are instant and free of CPU, and the bound is known at each sample.
{
  const cap = opts.watermark
  for (const [target, headroom, fill] of [
    [1.5, 0, 1],
    [1.3, 0, 1],
    [1.5, 2, 1],
    [1.5, 0, 0.8],
    [1.5, 0, 0.67],
    [1.5, 1, 0.67],
    [1.5, 0, 0.5]
  ] as const) {
    interface Bin {
      load: number
      people: number
      rooms: Set<number>
    }
    const bins: Bin[] = []
    const roomBin = new Map<number, Bin>()
    const present = new Map<number, number>() // room -> members present
    let moves = 0
    let growthMoves = 0
    let overWatermark = 0
    const fits = (b: Bin, extra: number) => b.load + extra <= cap + 1e-9
    // Rooms are put (opened, or moved) where the Worker stays under `fill` x the watermark;
    // they grow on it up to the watermark.
    const fitsFill = (b: Bin, extra: number) => b.load + extra <= fill * cap + 1e-9
    const fullestFor = (extra: number, except?: Bin) =>
      bins
        .filter((b) => b !== except && b.people > 0 && fitsFill(b, extra))
        .sort((x, y) => y.load - x.load)[0]
    const put = (room: number, into: Bin | undefined): Bin => {
      const n = present.get(room) ?? 0
      const b = into ?? { load: 0, people: 0, rooms: new Set<number>() }
      if (into === undefined) bins.push(b)
      b.load += roomLoad(n)
      b.people += n
      b.rooms.add(room)
      roomBin.set(room, b)
      return b
    }
    const take = (room: number) => {
      const b = roomBin.get(room)!
      const n = present.get(room) ?? 0
      b.load -= roomLoad(n)
      b.people -= n
      b.rooms.delete(room)
      roomBin.delete(room)
      return n
    }
    const events = all
      .flatMap((r) => [
        { t: r.join, room: r.room, d: 1 },
        ...(Number.isFinite(r.leave) ? [{ t: r.leave, room: r.room, d: -1 }] : [])
      ])
      .sort((x, y) => x.t - y.t || x.d - y.d)
    let i = 0
    let maxRatio = 0
    let maxAt = 0
    for (const p of series) {
      for (; i < events.length && events[i]!.t <= p.t; i++) {
        const e = events[i]!
        const n = present.get(e.room) ?? 0
        const b = roomBin.get(e.room)
        if (e.d < 0) {
          take(e.room)
          present.set(e.room, n - 1)
          if (n - 1 > 0) put(e.room, b)
          continue
        }
        if (b !== undefined) {
          take(e.room)
          present.set(e.room, n + 1)
          if (fits(b, roomLoad(n + 1))) put(e.room, b)
          else {
            growthMoves += n
            put(e.room, fullestFor(roomLoad(n + 1), b))
          }
        } else {
          // A room (re)opens where `headroom` more members would still fit.
          present.set(e.room, n + 1)
          put(e.room, fullestFor(roomLoad(n + 1 + headroom)))
        }
      }
      for (let k = bins.length - 1; k >= 0; k--) if (bins[k]!.people === 0) bins.splice(k, 1)
      const bound = p.lowerBoundAtWatermark
      if (p.t >= peakT && bound >= floorBound) {
        while (bins.length > Math.floor(target * bound)) {
          const emptiest = [...bins].sort((x, y) => x.people - y.people || x.load - y.load)[0]!
          // Its rooms, largest first, onto the other Workers (fullest first); else it stays.
          const rest = bins.filter((b) => b !== emptiest)
          const trial = rest.map((b) => ({ b, load: b.load }))
          const rooms = [...emptiest.rooms].sort((x, y) => (present.get(y) ?? 0) - (present.get(x) ?? 0))
          const plan: Array<[number, Bin]> = []
          let ok = true
          for (const room of rooms) {
            const l = roomLoad(present.get(room) ?? 0)
            const to = trial.filter((x) => x.load + l <= fill * cap + 1e-9).sort((x, y) => y.load - x.load)[0]
            if (to === undefined) {
              ok = false
              break
            }
            to.load += l
            plan.push([room, to.b])
          }
          if (!ok) break
          for (const [room, to] of plan) {
            moves += take(room)
            put(room, to)
          }
          bins.splice(bins.indexOf(emptiest), 1)
        }
        const ratio = bins.length / bound
        if (ratio > maxRatio) {
          maxRatio = ratio
          maxAt = p.t
        }
      }
      for (const b of bins) if (b.load > cap + 1e-9) overWatermark++
    }
    console.log(
      `online repacker to ${target} x the bound (rooms put where ${headroom} more members fit under ${fill} x the watermark, no seats reserved, rooms whole): max Workers / bound ${maxRatio.toFixed(2)} (t=${maxAt}); people moved to empty Workers ${moves} = ${((100 * moves) / totalArrivals).toFixed(1)} % of joins, with rooms that outgrew their Worker ${growthMoves} more = ${((100 * growthMoves) / totalArrivals).toFixed(1)} %; samples with a Worker over the watermark: ${overWatermark}`
    )
  }
}
