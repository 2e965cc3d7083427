/**
 * Output of a comparison: the plain summary table, the JSON line per policy, and one
 * self-contained HTML report with inline SVG charts (no script, no external resource).
 */
import { loadBands, loadColour } from "../ops/loadColours.js"
import type { Bound, LowerBounds } from "./Demand.js"
import {
  AFTER_PEAK_FLOOR,
  AFTER_PEAK_MIN,
  type SeriesPoint,
  type SimResult,
  type TreeDrawing
} from "./Metrics.js"
import type { Scenario } from "./Scenario.js"

/** The JSON object printed for one policy (everything but the time series and the tree). */
export const resultJson = (r: SimResult): Record<string, unknown> => {
  const { series: _series, tree: _tree, ...rest } = r
  return rest
}

const fmt = (n: number, digits = 0): string =>
  Number.isFinite(n)
    ? n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : "-"

const pct = (share: number): string => `${fmt(share * 100, 1)} %`

const bound = (b: Bound): string => `${fmt(b.atWatermark)}/${fmt(b.at100)}`

/** The lower bounds shared by every result, or undefined when they differ (other scenarios or seeds). */
const sharedBounds = (results: ReadonlyArray<SimResult>): LowerBounds | undefined => {
  const first = results[0]?.lowerBounds
  const key = (b: LowerBounds) => JSON.stringify(b)
  return first !== undefined && results.every((r) => key(r.lowerBounds) === key(first)) ? first : undefined
}

/**
 * Relocations in all, then by reason when there are any: overload/drain/lost/consolidate.
 * Results written before relocations were counted have none.
 */
export const relocationsCell = (r: SimResult): string => {
  const total = r.relocations ?? 0
  const by = r.relocationsByReason
  if (total === 0 || by === undefined) return fmt(total)
  return `${fmt(total)} (${fmt(by.Overload)}/${fmt(by.Drain)}/${fmt(by.WorkerLost)}/${fmt(by.Consolidate)})`
}

/** Why a policy has no decision time. */
const noDecisions = (policies: ReadonlyArray<string>): string =>
  `${policies.join(", ")} ${policies.length === 1 ? "places" : "place"} by ${policies.length === 1 ? "its" : "their"} own rule without the core's placement decisions, so there is no decision time to measure`

/** One line that says what the lower bounds are. */
export const boundsLine = (b: LowerBounds, watermark: number): string => {
  const inf = b.infeasibleRooms
  const infeasible =
    inf === undefined
      ? ""
      : inf.atWatermark.total === 0 && inf.at100.total === 0
        ? "; no room infeasible"
        : `; rooms infeasible (no placement keeps their Workers under the capacity; at once at most, and ever): ${fmt(inf.atWatermark.peak)} and ${fmt(inf.atWatermark.total)} at the watermark, ${fmt(inf.at100.peak)} and ${fmt(inf.at100.total)} at 100 %`
  const demandOnly =
    b.demandOnly === undefined
      ? ""
      : `; demand only (no pipes, valid for any placement): ${fmt(b.demandOnly.atWatermark)} Workers at the watermark, ${fmt(b.demandOnly.at100)} at 100 %`
  return `lower bounds, from the scenario's demand with the pipes its rooms must have (the same for every policy): ${fmt(b.workers.atWatermark)} Workers at the ${watermark} % watermark, ${fmt(b.workers.at100)} at 100 %; ${fmt(b.pipes.atWatermark)} pipes at the watermark, ${fmt(b.pipes.at100)} at 100 %${infeasible}${demandOnly}`
}

/** The largest ratio of Workers in use to the bound of the moment, from the bound's peak on. */
export const afterPeakCell = (r: SimResult): string => {
  const a = r.workersOverBoundAfterPeak
  return a === undefined || a.maxRatio === null ? "-" : `${fmt(a.maxRatio, 2)}x`
}

export const summaryTable = (results: ReadonlyArray<SimResult>, watermark?: number): string => {
  const shared = sharedBounds(results)
  const head = [
    "policy",
    "overloaded Worker-s",
    "over 100 %",
    shared === undefined ? "workers (lb)" : `workers (lb ${bound(shared.workers)})`,
    "workers/lb after its peak",
    "nodes",
    "cpu mean/p95/max %",
    "overload events",
    shared === undefined ? "pipes (lb)" : `pipes (lb ${bound(shared.pipes)})`,
    "depth max/mean",
    "rejected joins",
    "rejected consumers",
    "relocations",
    "decisions/s",
    "wall s",
    "rss MiB"
  ]
  const rows = results.map((r) => [
    r.policy,
    fmt(r.overloadedWorkerSeconds),
    pct(r.overloadedShare),
    shared === undefined ? `${fmt(r.peakWorkers)} (${bound(r.lowerBounds.workers)})` : fmt(r.peakWorkers),
    afterPeakCell(r),
    fmt(r.peakNodes),
    `${fmt(r.cpu.mean, 1)}/${fmt(r.cpu.p95, 1)}/${fmt(r.cpu.max, 1)}`,
    fmt(r.overloadEvents),
    shared === undefined ? `${fmt(r.pipeConsumers)} (${bound(r.lowerBounds.pipes)})` : fmt(r.pipeConsumers),
    `${r.maxDepth}/${fmt(r.meanDepth, 2)}`,
    fmt(r.rejected),
    fmt(r.rejectedConsumers),
    relocationsCell(r),
    r.decisions === 0 ? "-" : fmt(r.decisionsPerSecond),
    fmt(r.wallSeconds, 1),
    fmt(r.peakRssBytes / 1048576)
  ])
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ")
  const undecided = results.filter((r) => r.decisions === 0).map((r) => r.policy)
  return [
    ...(shared === undefined || watermark === undefined ? [] : [boundsLine(shared, watermark)]),
    line(head),
    widths.map((w) => "-".repeat(w)).join("  "),
    ...rows.map(line),
    ...(undecided.length === 0 ? [] : [`decisions/s "-": ${noDecisions(undecided)}`])
  ].join("\n")
}

// --- HTML ---------------------------------------------------------------------------------

const esc = (s: string): string =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
/** Dash patterns, one per policy (solid first). */
const DASHES = ["", "9 4", "2 3", "12 3 2 3", "5 5", "1 6"]
/** Marker shapes, one per policy. */
const MARKERS = ["circle", "square", "triangle", "diamond", "cross", "ex"] as const
type Marker = (typeof MARKERS)[number]

/** The look of the i-th policy: colour, dashes and marker, so that lines that coincide stay apart. */
const styleOf = (i: number) => ({
  color: COLORS[i % COLORS.length]!,
  dash: DASHES[i % DASHES.length]!,
  marker: MARKERS[i % MARKERS.length]!
})

const markerSvg = (shape: Marker, x: number, y: number, color: string, r = 3.5): string => {
  const p = (n: number) => n.toFixed(1)
  switch (shape) {
    case "circle":
      return `<circle cx="${p(x)}" cy="${p(y)}" r="${r}" fill="${color}"/>`
    case "square":
      return `<rect x="${p(x - r)}" y="${p(y - r)}" width="${2 * r}" height="${2 * r}" fill="${color}"/>`
    case "triangle":
      return `<path d="M${p(x)},${p(y - r - 0.8)}L${p(x + r + 0.8)},${p(y + r)}L${p(x - r - 0.8)},${p(y + r)}Z" fill="${color}"/>`
    case "diamond":
      return `<path d="M${p(x)},${p(y - r - 1)}L${p(x + r + 1)},${p(y)}L${p(x)},${p(y + r + 1)}L${p(x - r - 1)},${p(y)}Z" fill="${color}"/>`
    case "cross":
      return `<path d="M${p(x - r)},${p(y)}H${p(x + r)}M${p(x)},${p(y - r)}V${p(y + r)}" stroke="${color}" stroke-width="2.2"/>`
    case "ex":
      return `<path d="M${p(x - r)},${p(y - r)}L${p(x + r)},${p(y + r)}M${p(x - r)},${p(y + r)}L${p(x + r)},${p(y - r)}" stroke="${color}" stroke-width="2.2"/>`
  }
}

/** At most `n` points, evenly picked (keeping the last). */
const thin = (series: ReadonlyArray<SeriesPoint>, n: number): ReadonlyArray<SeriesPoint> => {
  if (series.length <= n) return series
  const out: Array<SeriesPoint> = []
  const step = series.length / n
  for (let i = 0; i < n; i++) out.push(series[Math.floor(i * step)]!)
  out.push(series[series.length - 1]!)
  return out
}

/** The smallest of 1, 2, 5, 10, 20, 50... at least `v` (a whole-number tick step). */
const niceStep = (v: number): number => {
  if (v <= 1) return 1
  const p = 10 ** Math.floor(Math.log10(v))
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p
  return 10 * p
}

const niceMax = (v: number): number => {
  if (v <= 0) return 1
  const p = 10 ** Math.floor(Math.log10(v))
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p
  return 10 * p
}

interface Line {
  readonly label: string
  readonly color: string
  readonly dash?: string
  readonly marker?: Marker
  /** A reference (a lower bound): thin, grey, drawn under the policies. */
  readonly reference?: boolean
  readonly points: ReadonlyArray<readonly [number, number]>
}

interface ChartOptions {
  /** Values above it are drawn at it; the axis stops there. */
  readonly cap?: number
  /** Horizontal lines (the watermark, 100 %). */
  readonly marks?: ReadonlyArray<{ readonly value: number; readonly label: string }>
  /** Whole numbers only on the y axis (counts). */
  readonly integer?: boolean
  /** The top of the y axis (charts that share a scale). */
  readonly yMax?: number
  readonly width?: number
  readonly height?: number
  /** No legend (small multiples share one). */
  readonly legend?: boolean
}

const lineChart = (
  title: string,
  yLabel: string,
  lines: ReadonlyArray<Line>,
  o: ChartOptions = {}
): string => {
  const W = o.width ?? 660
  const H = o.height ?? 300
  const legend = o.legend ?? true
  const m = { l: 60, r: legend ? 190 : 14, t: 28, b: 36 }
  const xs = lines.flatMap((l) => l.points.map((p) => p[0]))
  const ys = lines.flatMap((l) => l.points.map((p) => p[1]))
  const xMax = Math.max(1, ...xs)
  const dataMax = Math.max(
    0,
    ...ys,
    ...(o.marks ?? []).map((k) => (o.cap !== undefined && k.value > o.cap ? 0 : k.value))
  )
  let yMax = o.yMax ?? (o.integer ? 4 * niceStep(dataMax / 4) : niceMax(dataMax))
  const clipped = o.cap !== undefined && dataMax > o.cap
  if (o.cap !== undefined && yMax > o.cap) yMax = o.cap
  const x = (v: number) => m.l + (v / xMax) * (W - m.l - m.r)
  const y = (v: number) => H - m.b - (Math.min(v, yMax) / yMax) * (H - m.t - m.b)
  const parts: Array<string> = []
  parts.push(`<text x="${m.l}" y="18" class="t">${esc(title)}</text>`)
  for (let i = 0; i <= 4; i++) {
    const v = (yMax * i) / 4
    const label = `${i === 4 && clipped ? "≥ " : ""}${fmt(v, Number.isInteger(v) ? 0 : 1)}`
    parts.push(
      `<line x1="${m.l}" x2="${W - m.r}" y1="${y(v)}" y2="${y(v)}" class="g"/>`,
      `<text x="${m.l - 6}" y="${y(v) + 4}" text-anchor="end">${label}</text>`
    )
  }
  for (let i = 0; i <= 4; i++) {
    const v = (xMax * i) / 4
    parts.push(`<text x="${x(v)}" y="${H - m.b + 16}" text-anchor="middle">${fmt(v)} s</text>`)
  }
  parts.push(
    `<text x="14" y="${(H - m.b + m.t) / 2}" transform="rotate(-90 14 ${(H - m.b + m.t) / 2})" text-anchor="middle">${esc(yLabel)}</text>`
  )
  for (const k of o.marks ?? []) {
    if (k.value > yMax) continue
    parts.push(
      `<line x1="${m.l}" x2="${W - m.r}" y1="${y(k.value)}" y2="${y(k.value)}" class="mark"/>`,
      `<text x="${W - m.r - 4}" y="${y(k.value) - 4}" text-anchor="end" class="markt">${esc(k.label)}</text>`
    )
  }
  // References first, then the policies from the last to the first, so the first is on top.
  const order = [...lines.filter((l) => l.reference), ...lines.filter((l) => !l.reference).reverse()]
  const policies = lines.filter((l) => !l.reference).length
  for (const l of order) {
    const d = l.points
      .map((p, j) => `${j === 0 ? "M" : "L"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`)
      .join("")
    const dash = l.dash ? ` stroke-dasharray="${l.dash}"` : ""
    parts.push(
      `<path d="${d}" fill="none" stroke="${l.color}" stroke-width="${l.reference ? 1.2 : 2}"${dash}${l.reference ? "" : ' stroke-opacity="0.9"'}/>`
    )
    if (l.marker !== undefined && l.points.length > 0) {
      // Markers every eighth of the way, shifted per policy so that they never sit on one another.
      const index = lines.filter((q) => !q.reference).indexOf(l)
      const n = l.points.length
      for (let k = 0; k < 8; k++) {
        const j = Math.min(n - 1, Math.floor(((k + (index + 0.5) / Math.max(1, policies)) * n) / 8))
        const [px, py] = l.points[j]!
        parts.push(markerSvg(l.marker, x(px), y(py), l.color))
      }
    }
  }
  if (legend) {
    lines.forEach((l, i) => {
      const ly = m.t + 8 + i * 18
      const lx = W - m.r + 12
      parts.push(
        `<line x1="${lx}" x2="${lx + 30}" y1="${ly}" y2="${ly}" stroke="${l.color}" stroke-width="${l.reference ? 1.2 : 2}"${l.dash ? ` stroke-dasharray="${l.dash}"` : ""}/>`,
        l.marker === undefined ? "" : markerSvg(l.marker, lx + 15, ly, l.color),
        `<text x="${lx + 36}" y="${ly + 4}">${esc(l.label)}</text>`
      )
    })
  }
  return `<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img">${parts.join("")}</svg>`
}

const DEPTH_BUCKETS: ReadonlyArray<readonly [string, number, number]> = [
  ["0", 0, 0],
  ["1", 1, 1],
  ["2", 2, 2],
  ["3", 3, 3],
  ["4", 4, 4],
  ["5-9", 5, 9],
  ["10-49", 10, 49],
  ["50-199", 50, 199],
  ["200+", 200, Number.POSITIVE_INFINITY]
]

const depthChart = (results: ReadonlyArray<SimResult>): string => {
  const W = 660
  const H = 300
  const m = { l: 60, r: 190, t: 28, b: 36 }
  const shares = results.map((r) => {
    const total = r.depthHistogram.reduce((a, b) => a + b, 0) || 1
    return DEPTH_BUCKETS.map(([, lo, hi]) => {
      let n = 0
      for (let d = lo; d <= Math.min(hi, r.depthHistogram.length - 1); d++) n += r.depthHistogram[d] ?? 0
      return n / total
    })
  })
  const groupW = (W - m.l - m.r) / DEPTH_BUCKETS.length
  const barW = Math.max(2, (groupW - 6) / Math.max(1, results.length))
  const y = (v: number) => H - m.b - v * (H - m.t - m.b)
  const parts: Array<string> = [
    `<text x="${m.l}" y="18" class="t">Consumers by depth in their producer's tree (share of consumers)</text>`
  ]
  for (let i = 0; i <= 4; i++) {
    const v = i / 4
    parts.push(
      `<line x1="${m.l}" x2="${W - m.r}" y1="${y(v)}" y2="${y(v)}" class="g"/>`,
      `<text x="${m.l - 6}" y="${y(v) + 4}" text-anchor="end">${v * 100} %</text>`
    )
  }
  DEPTH_BUCKETS.forEach(([label], b) => {
    const gx = m.l + b * groupW
    parts.push(`<text x="${gx + groupW / 2}" y="${H - m.b + 16}" text-anchor="middle">${label}</text>`)
    shares.forEach((s, p) => {
      const v = s[b]!
      if (v <= 0) return
      parts.push(
        `<rect x="${(gx + 3 + p * barW).toFixed(1)}" y="${y(v).toFixed(1)}" width="${(barW - 1).toFixed(1)}" height="${(H - m.b - y(v)).toFixed(1)}" fill="${styleOf(p).color}"><title>${esc(results[p]!.policy)} depth ${label}: ${(v * 100).toFixed(1)} %</title></rect>`
      )
    })
  })
  parts.push(
    `<text x="${(W - m.r + m.l) / 2}" y="${H - 4}" text-anchor="middle">pipe hops from the origin Router</text>`
  )
  results.forEach((r, i) => {
    parts.push(
      `<rect x="${W - m.r + 12}" y="${m.t + i * 18}" width="14" height="10" fill="${styleOf(i).color}"/>`,
      `<text x="${W - m.r + 32}" y="${m.t + 9 + i * 18}">${esc(r.policy)}</text>`
    )
  })
  return `<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img">${parts.join("")}</svg>`
}

/** Levels and Routers per level a tree drawing shows; the rest is counted. */
const TREE_LEVELS = 10
const TREE_WIDTH = 48

/**
 * A layered drawing of a stream tree (depth downwards, hops in order across) that fits the
 * page: at most `TREE_LEVELS` levels and `TREE_WIDTH` Routers per level are drawn, and what
 * is left out is counted on the drawing.
 */
const treeChart = (tree: TreeDrawing, watermark: number): string => {
  const levels = new Map<number, Array<TreeDrawing["hops"][number]>>()
  for (const h of tree.hops) levels.set(h.depth, [...(levels.get(h.depth) ?? []), h])
  const depths = [...levels.keys()].sort((a, b) => a - b)
  const drawnDepths = depths.slice(0, TREE_LEVELS)
  const widest = Math.min(TREE_WIDTH, Math.max(...drawnDepths.map((d) => levels.get(d)!.length)))
  const hiddenLevels = depths.slice(TREE_LEVELS)
  const W = Math.max(hiddenLevels.length > 0 ? 640 : 380, Math.min(1300, widest * 22 + 330))
  const rowH = 44
  const H = 26 + drawnDepths.length * rowH + (hiddenLevels.length > 0 ? 30 : 0)
  const pos = new Map<string, readonly [number, number]>()
  const parts: Array<string> = []
  drawnDepths.forEach((d, row) => {
    const level = levels.get(d)!
    const shown = level.slice(0, TREE_WIDTH)
    const cy = 22 + row * rowH
    const span = W - 330
    shown.forEach((h, i) => void pos.set(h.router, [60 + ((i + 0.5) * span) / shown.length, cy]))
    parts.push(`<text x="6" y="${cy + 4}" class="lvl">depth ${d}</text>`)
    if (level.length > shown.length) {
      const rest = level.slice(shown.length)
      const consumers = rest.reduce((n, h) => n + h.consumers, 0)
      parts.push(
        `<text x="${W - 262}" y="${cy + 4}" class="more">+${fmt(rest.length)} more Routers (${fmt(consumers)} consumers)</text>`
      )
    }
  })
  for (const h of tree.hops) {
    if (h.parent === null) continue
    const a = pos.get(h.parent)
    const b = pos.get(h.router)
    if (a === undefined || b === undefined) continue
    parts.push(
      `<line x1="${a[0].toFixed(1)}" y1="${a[1].toFixed(1)}" x2="${b[0].toFixed(1)}" y2="${b[1].toFixed(1)}" class="e"/>`
    )
  }
  for (const h of tree.hops) {
    const p = pos.get(h.router)
    if (p === undefined) continue
    parts.push(
      `<circle cx="${p[0].toFixed(1)}" cy="${p[1].toFixed(1)}" r="${h.parent === null ? 9 : 6}" fill="${loadColour(h.load, watermark)}" stroke="#333" stroke-width="${h.parent === null ? 1.8 : 0.7}"><title>${esc(h.router)} on ${esc(h.worker)} @ ${esc(h.node)}: depth ${h.depth}, ${h.consumers} consumers, Worker at ${h.load.toFixed(1)} %</title></circle>`
    )
  }
  if (hiddenLevels.length > 0) {
    const rest = hiddenLevels.flatMap((d) => levels.get(d)!)
    const consumers = rest.reduce((n, h) => n + h.consumers, 0)
    parts.push(
      `<text x="40" y="${H - 10}" class="more">⋮ ${fmt(hiddenLevels.length)} more levels (depth ${hiddenLevels[0]} to ${hiddenLevels[hiddenLevels.length - 1]}): ${fmt(rest.length)} Routers, ${fmt(consumers)} consumers</text>`
    )
  }
  return `<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" class="tree">${parts.join("")}</svg>`
}

const colourKey = (watermark: number): string =>
  `<p class="key">Circle colour, by the Worker's CPU when drawn: ${loadBands(watermark)
    .map((b) => `<span class="sw" style="background:${b.colour}"></span>${esc(b.label)}`)
    .join(" ")}. A thick outline marks the origin Router.</p>`

const legendKey = (results: ReadonlyArray<SimResult>): string =>
  `<p class="key">${results
    .map((r, i) => {
      const s = styleOf(i)
      return `<svg width="46" height="12" class="inline"><line x1="2" x2="44" y1="6" y2="6" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ""}/>${markerSvg(s.marker, 23, 6, s.color)}</svg>${esc(r.policy)}`
    })
    .join(
      " "
    )} <svg width="46" height="12" class="inline"><line x1="2" x2="44" y1="6" y2="6" stroke="#555" stroke-width="1.2" stroke-dasharray="3 3"/></svg>lower bound at the watermark <svg width="46" height="12" class="inline"><line x1="2" x2="44" y1="6" y2="6" stroke="#aaa" stroke-width="1.2" stroke-dasharray="3 3"/></svg>at 100 %</p>`

export const htmlReport = (scenario: Scenario, results: ReadonlyArray<SimResult>): string => {
  const shared = sharedBounds(results)
  const watermark = scenario.policy.watermark
  const series = results.map((r) => thin(r.series, 400))
  const linesOf = (f: (p: SeriesPoint) => number): Array<Line> =>
    results.map((r, i) => ({
      label: r.policy,
      ...styleOf(i),
      points: series[i]!.map((p) => [p.t, f(p)] as const)
    }))
  const bounds: Array<Line> =
    results.length === 0
      ? []
      : [
          {
            label: "bound, watermark",
            color: "#555",
            dash: "3 3",
            reference: true,
            points: series[0]!.map((p) => [p.t, p.lowerBoundAtWatermark] as const)
          },
          {
            label: "bound, 100 %",
            color: "#aaa",
            dash: "3 3",
            reference: true,
            points: series[0]!.map((p) => [p.t, p.lowerBoundAt100] as const)
          }
        ]
  const workers = linesOf((p) => p.workersInUse)
  const workersMax = Math.max(
    1,
    ...workers.flatMap((l) => l.points.map((p) => p[1])),
    ...bounds.flatMap((l) => l.points.map((p) => p[1]))
  )
  // Small multiples: one panel per policy on one scale, so that lines that coincide in the
  // combined chart (a policy at its lower bound, say) are each seen.
  const multiples = workers
    .map((l, i) =>
      lineChart(results[i]!.policy, "Workers", [...bounds, l], {
        width: 330,
        height: 170,
        legend: false,
        integer: true,
        yMax: 4 * niceStep(workersMax / 4)
      })
    )
    .join("")
  const CPU_CAP = 400
  const cpuMarks = [
    { value: watermark, label: `watermark ${watermark} %` },
    { value: 100, label: "100 %: overloaded" }
  ]
  const meanLoad = linesOf((p) => p.meanLoad)
  const maxLoad = linesOf((p) => p.maxLoad)
  const capNote = (lines: ReadonlyArray<Line>) =>
    lines.some((l) => l.points.some((p) => p[1] > CPU_CAP))
      ? ` (axis cut at ${CPU_CAP} %: higher values drawn there)`
      : ""
  const undecided = results.filter((r) => r.decisions === 0).map((r) => r.policy)
  const rows = results
    .map(
      (r) =>
        `<tr><td>${esc(r.policy)}</td><td>${fmt(r.overloadedWorkerSeconds)}</td><td>${pct(r.overloadedShare)}</td><td>${fmt(r.peakWorkers)}</td>${shared === undefined ? `<td>${bound(r.lowerBounds.workers)}</td>` : ""}<td>${esc(afterPeakCell(r))}</td><td>${fmt(r.peakNodes)}</td><td>${fmt(r.cpu.mean, 1)}</td><td>${fmt(r.cpu.p95, 1)}</td><td>${fmt(r.cpu.max, 1)}</td><td>${fmt(r.overloadEvents)}</td><td>${fmt(r.pipeConsumers)}</td>${shared === undefined ? `<td>${bound(r.lowerBounds.pipes)}</td>` : ""}<td>${r.maxDepth}</td><td>${fmt(r.meanDepth, 2)}</td><td>${fmt(r.rejected)}</td><td>${fmt(r.rejectedConsumers)}</td><td>${fmt(r.reconnects)}</td><td>${esc(relocationsCell(r))}</td><td>${r.decisions === 0 ? "–<sup>a</sup>" : fmt(r.meanDecisionMicros, 1)}</td><td>${fmt(r.wallSeconds, 2)}</td></tr>`
    )
    .join("")
  const trees = results
    .filter((r) => r.tree !== null)
    .map((r) => {
      const t = r.tree!
      const depth = Math.max(0, ...t.hops.map((h) => h.depth))
      return `<figure><figcaption><b>${esc(r.policy)}</b>: producer ${esc(t.producer)} (${esc(t.kind)}) at ${fmt(t.atSeconds)} s: ${fmt(t.hops.length)} Routers, ${fmt(t.hops.length - 1)} pipes, depth ${depth}, ${fmt(t.hops.reduce((n, h) => n + h.consumers, 0))} consumers</figcaption>${treeChart(t, watermark)}</figure>`
    })
    .join("")
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>mafalda simulate: ${esc(scenario.name)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1352px}
table{border-collapse:collapse;margin:12px 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}
td:first-child,th:first-child{text-align:left}th{background:#f3f3f3;font-weight:600}
svg{background:#fff;border:1px solid #ddd;margin:4px 0;font:11px system-ui,sans-serif;max-width:100%;height:auto}
svg.inline{border:0;margin:0 4px 0 12px;vertical-align:middle}
svg .t{font-size:13px;font-weight:600}svg .g{stroke:#eee}svg .e{stroke:#888;stroke-width:0.8}
svg .mark{stroke:#000;stroke-width:1;stroke-dasharray:6 3}
svg .markt{font-size:10px;fill:#000;paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round}
svg .note,svg .more,svg .lvl{fill:#555;font-size:10px}
.charts{display:flex;flex-wrap:wrap;gap:8px}.multiples{display:flex;flex-wrap:wrap;gap:4px}
figure{margin:10px 0}figcaption{font-size:13px}.key{font-size:13px}
.sw{display:inline-block;width:12px;height:12px;border:1px solid #333;border-radius:50%;vertical-align:middle;margin:0 4px 0 10px}
.notes{font-size:13px;color:#333}
</style></head><body>
<h1>Cluster simulation: ${esc(scenario.name)}</h1>
<p>${esc(scenario.description)}</p>
<p>${scenario.nodes.count} Nodes × ${scenario.nodes.cpus} CPUs, ${fmt(scenario.durationSeconds)} s simulated, load reports every ${scenario.reportIntervalSeconds} s (${scenario.reportDelaySeconds} s late), watermark ${watermark} %, seed ${results[0]?.seed ?? scenario.seed}.</p>
${shared === undefined ? "" : `<p>${esc(boundsLine(shared, watermark))}.</p>`}
<p>Overload is measured in time: the Worker-seconds spent over 100 % CPU, and their share of the Worker-seconds in use (sampled at every load report); overload events count crossings of 100 %. CPU figures are over the Worker-seconds in use.</p>
<table><thead><tr><th>policy</th><th>overloaded Worker-s</th><th>share over 100 %</th><th>peak Workers</th>${shared === undefined ? "<th>Workers lower bound (watermark/100 %)</th>" : ""}<th>Workers / bound after its peak (max)<sup>b</sup></th><th>peak Nodes</th><th>CPU mean %</th><th>p95 %</th><th>max %</th><th>overload events</th><th>pipes</th>${shared === undefined ? "<th>pipes lower bound (watermark/100 %)</th>" : ""}<th>max depth</th><th>mean depth</th><th>rejected joins</th><th>rejected consumers</th><th>reconnects</th><th>relocations (overload/drain/lost/consolidate)</th><th>µs/decision</th><th>wall s</th></tr></thead><tbody>${rows}</tbody></table>
<p class="notes">${undecided.length === 0 ? "" : `<sup>a</sup> –: ${esc(noDecisions(undecided))} (µs/decision is the mean time of the core's placement decisions: transport and consumer placements, pipes). `}<sup>b</sup> The largest ratio of Workers in use to the lower bound of the moment at the watermark, over the samples from the bound's peak on, leaving out samples where the bound is under ${AFTER_PEAK_FLOOR * 100} % of its peak or under ${AFTER_PEAK_MIN} Workers. Lower bounds count the pipes a room split over Workers must have, for placements that give each participant one transport (every policy here but least-loaded, which pins subscribers to producers' Routers with more transports: only the demand-only bound holds for it). Pipes: the peak number alive at once. Depth: pipe hops from a producer's origin Router to the Router of its consumer.</p>
<h2>Over time</h2>
${legendKey(results)}
<div class="charts">
${lineChart("Workers in use (dashed grey: the lower bounds)", "Workers", [...bounds, ...workers], { integer: true })}
${lineChart(
  "Workers over 100 % CPU",
  "Workers",
  linesOf((p) => p.workersOverloaded),
  { integer: true }
)}
${lineChart(`Mean CPU of the Workers in use${capNote(meanLoad)}`, "CPU %", meanLoad, {
  cap: CPU_CAP,
  marks: cpuMarks
})}
${lineChart(`Busiest Worker's CPU${capNote(maxLoad)}`, "CPU %", maxLoad, { cap: CPU_CAP, marks: cpuMarks })}
${lineChart(
  "Nodes in use",
  "Nodes",
  linesOf((p) => p.nodesInUse),
  { integer: true }
)}
${depthChart(results)}
</div>
<h2>Workers in use, one policy per chart</h2>
<p class="notes">The same scale in every chart; dashed grey: the lower bounds at the watermark (dark) and at 100 % (light).</p>
<div class="multiples">${multiples}</div>
<h2>One producer's stream tree per policy</h2>
<p class="notes">The largest tree when consumers peaked. Circles are Routers (hover for details), lines are pipes, depth grows downwards; at most ${TREE_WIDTH} Routers per level and ${TREE_LEVELS} levels are drawn, and the rest is counted.</p>
${colourKey(watermark)}
${trees}
</body></html>
`
}
