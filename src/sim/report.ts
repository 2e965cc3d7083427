/**
 * Output of a comparison: the plain summary table, the JSON line per policy, and one
 * self-contained HTML report with inline SVG charts (no script, no external resource).
 */
import type { Bound, LowerBounds } from "./Demand.js"
import type { SeriesPoint, SimResult, TreeDrawing } from "./Metrics.js"
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

/** One line that says what the lower bounds are. */
export const boundsLine = (b: LowerBounds, watermark: number): string =>
  `lower bounds, from the scenario's demand (the same for every policy): ${fmt(b.workers.atWatermark)} Workers at the ${watermark} % watermark, ${fmt(b.workers.at100)} at 100 %; ${fmt(b.pipes.atWatermark)} pipes at the watermark, ${fmt(b.pipes.at100)} at 100 %`

export const summaryTable = (results: ReadonlyArray<SimResult>, watermark?: number): string => {
  const shared = sharedBounds(results)
  const head = [
    "policy",
    "overloaded Worker-s",
    "over 100 %",
    shared === undefined ? "workers (lb)" : `workers (lb ${bound(shared.workers)})`,
    "nodes",
    "cpu mean/p95/max %",
    "overload events",
    shared === undefined ? "pipes (lb)" : `pipes (lb ${bound(shared.pipes)})`,
    "depth max/mean",
    "rejected joins",
    "rejected consumers",
    "decisions/s",
    "wall s",
    "rss MiB"
  ]
  const rows = results.map((r) => [
    r.policy,
    fmt(r.overloadedWorkerSeconds),
    pct(r.overloadedShare),
    shared === undefined ? `${fmt(r.peakWorkers)} (${bound(r.lowerBounds.workers)})` : fmt(r.peakWorkers),
    fmt(r.peakNodes),
    `${fmt(r.cpu.mean, 1)}/${fmt(r.cpu.p95, 1)}/${fmt(r.cpu.max, 1)}`,
    fmt(r.overloadEvents),
    shared === undefined ? `${fmt(r.pipeConsumers)} (${bound(r.lowerBounds.pipes)})` : fmt(r.pipeConsumers),
    `${r.maxDepth}/${fmt(r.meanDepth, 2)}`,
    fmt(r.rejected),
    fmt(r.rejectedConsumers),
    r.decisions === 0 ? "-" : fmt(r.decisionsPerSecond),
    fmt(r.wallSeconds, 1),
    fmt(r.peakRssBytes / 1048576)
  ])
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ")
  return [
    ...(shared === undefined || watermark === undefined ? [] : [boundsLine(shared, watermark)]),
    line(head),
    widths.map((w) => "-".repeat(w)).join("  "),
    ...rows.map(line)
  ].join("\n")
}

// --- HTML ---------------------------------------------------------------------------------

const esc = (s: string): string =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]

/** At most `n` points, evenly picked (keeping the last). */
const thin = (series: ReadonlyArray<SeriesPoint>, n: number): ReadonlyArray<SeriesPoint> => {
  if (series.length <= n) return series
  const out: Array<SeriesPoint> = []
  const step = series.length / n
  for (let i = 0; i < n; i++) out.push(series[Math.floor(i * step)]!)
  out.push(series[series.length - 1]!)
  return out
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
  readonly dashed?: boolean
  readonly points: ReadonlyArray<readonly [number, number]>
}

const lineChart = (title: string, yLabel: string, lines: ReadonlyArray<Line>, yCap?: number): string => {
  const W = 760
  const H = 300
  const m = { l: 60, r: 170, t: 28, b: 36 }
  const xs = lines.flatMap((l) => l.points.map((p) => p[0]))
  const ys = lines.flatMap((l) => l.points.map((p) => p[1]))
  const xMax = Math.max(1, ...xs)
  const yMax = niceMax(Math.min(yCap ?? Number.POSITIVE_INFINITY, Math.max(0, ...ys)))
  const x = (v: number) => m.l + (v / xMax) * (W - m.l - m.r)
  const y = (v: number) => H - m.b - (Math.min(v, yMax) / yMax) * (H - m.t - m.b)
  const parts: Array<string> = []
  parts.push(`<text x="${m.l}" y="18" class="t">${esc(title)}</text>`)
  for (let i = 0; i <= 4; i++) {
    const v = (yMax * i) / 4
    parts.push(
      `<line x1="${m.l}" x2="${W - m.r}" y1="${y(v)}" y2="${y(v)}" class="g"/>`,
      `<text x="${m.l - 6}" y="${y(v) + 4}" text-anchor="end">${fmt(v, v < 10 ? 1 : 0)}</text>`
    )
  }
  for (let i = 0; i <= 4; i++) {
    const v = (xMax * i) / 4
    parts.push(`<text x="${x(v)}" y="${H - m.b + 16}" text-anchor="middle">${fmt(v)} s</text>`)
  }
  parts.push(
    `<text x="14" y="${(H - m.b + m.t) / 2}" transform="rotate(-90 14 ${(H - m.b + m.t) / 2})" text-anchor="middle">${esc(yLabel)}</text>`
  )
  lines.forEach((l, i) => {
    const d = l.points
      .map((p, j) => `${j === 0 ? "M" : "L"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`)
      .join("")
    parts.push(
      `<path d="${d}" fill="none" stroke="${l.color}" stroke-width="1.6"${l.dashed ? ' stroke-dasharray="5 4"' : ""}/>`,
      `<line x1="${W - m.r + 12}" x2="${W - m.r + 32}" y1="${m.t + 8 + i * 18}" y2="${m.t + 8 + i * 18}" stroke="${l.color}" stroke-width="2"${l.dashed ? ' stroke-dasharray="5 4"' : ""}/>`,
      `<text x="${W - m.r + 38}" y="${m.t + 12 + i * 18}">${esc(l.label)}</text>`
    )
  })
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
  const W = 760
  const H = 300
  const m = { l: 60, r: 170, t: 28, b: 36 }
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
        `<rect x="${(gx + 3 + p * barW).toFixed(1)}" y="${y(v).toFixed(1)}" width="${(barW - 1).toFixed(1)}" height="${(H - m.b - y(v)).toFixed(1)}" fill="${COLORS[p % COLORS.length]}"><title>${esc(results[p]!.policy)} depth ${label}: ${(v * 100).toFixed(1)} %</title></rect>`
      )
    })
  })
  results.forEach((r, i) => {
    parts.push(
      `<rect x="${W - m.r + 12}" y="${m.t + i * 18}" width="14" height="10" fill="${COLORS[i % COLORS.length]}"/>`,
      `<text x="${W - m.r + 32}" y="${m.t + 9 + i * 18}">${esc(r.policy)}</text>`
    )
  })
  return `<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img">${parts.join("")}</svg>`
}

const loadColor = (load: number): string => {
  if (load > 100) return "#b30000"
  if (load >= 80) return "#e34a33"
  if (load >= 60) return "#fc8d59"
  if (load >= 30) return "#fdbb84"
  return "#c7e9c0"
}

/** A layered drawing of a stream tree: depth downwards, hops in order across. */
const treeChart = (policy: string, tree: TreeDrawing): string => {
  const MAX_HOPS = 160
  const hops = tree.hops.slice(0, MAX_HOPS)
  const shown = new Set(hops.map((h) => h.router))
  const levels = new Map<number, Array<(typeof hops)[number]>>()
  for (const h of hops) levels.set(h.depth, [...(levels.get(h.depth) ?? []), h])
  const depths = [...levels.keys()].sort((a, b) => a - b)
  const widest = Math.max(...[...levels.values()].map((l) => l.length))
  const W = Math.max(420, Math.min(1400, widest * 22 + 80))
  const rowH = depths.length > 30 ? 14 : 56
  const H = 50 + depths.length * rowH
  const pos = new Map<string, readonly [number, number]>()
  depths.forEach((d, row) => {
    const level = levels.get(d)!
    level.forEach((h, i) => {
      pos.set(h.router, [40 + ((i + 0.5) * (W - 80)) / level.length, 36 + row * rowH])
    })
  })
  const parts: Array<string> = [
    `<text x="10" y="18" class="t">${esc(policy)}: producer ${esc(tree.producer)} (${esc(tree.kind)}) at ${fmt(tree.atSeconds)} s — ${tree.hops.length} Routers${tree.hops.length > MAX_HOPS ? ` (first ${MAX_HOPS} drawn)` : ""}</text>`
  ]
  for (const h of hops) {
    if (h.parent === null || !shown.has(h.parent)) continue
    const a = pos.get(h.parent)!
    const b = pos.get(h.router)!
    parts.push(
      `<line x1="${a[0].toFixed(1)}" y1="${a[1].toFixed(1)}" x2="${b[0].toFixed(1)}" y2="${b[1].toFixed(1)}" class="e"/>`
    )
  }
  const r = rowH < 20 ? 4 : 8
  for (const h of hops) {
    const [cx, cy] = pos.get(h.router)!
    parts.push(
      `<circle cx="${cx.toFixed(1)}" cy="${cy.toFixed(1)}" r="${h.parent === null ? r + 3 : r}" fill="${loadColor(h.load)}" stroke="#333" stroke-width="0.7"><title>${esc(h.router)} on ${esc(h.worker)} @ ${esc(h.node)}: depth ${h.depth}, ${h.consumers} consumers, Worker at ${h.load.toFixed(1)} %</title></circle>`
    )
  }
  return `<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img">${parts.join("")}</svg>`
}

export const htmlReport = (scenario: Scenario, results: ReadonlyArray<SimResult>): string => {
  const shared = sharedBounds(results)
  const color = (i: number) => COLORS[i % COLORS.length]!
  const series = results.map((r) => thin(r.series, 400))
  const workers: Array<Line> = results.map((r, i) => ({
    label: r.policy,
    color: color(i),
    points: series[i]!.map((p) => [p.t, p.workersInUse] as const)
  }))
  if (results.length > 0) {
    workers.push(
      {
        label: "bound, watermark",
        color: "#555",
        dashed: true,
        points: series[0]!.map((p) => [p.t, p.lowerBoundAtWatermark] as const)
      },
      {
        label: "bound, 100 %",
        color: "#aaa",
        dashed: true,
        points: series[0]!.map((p) => [p.t, p.lowerBoundAt100] as const)
      }
    )
  }
  const overloaded = results.map((r, i) => ({
    label: r.policy,
    color: color(i),
    points: series[i]!.map((p) => [p.t, p.workersOverloaded] as const)
  }))
  const meanLoad = results.map((r, i) => ({
    label: r.policy,
    color: color(i),
    points: series[i]!.map((p) => [p.t, p.meanLoad] as const)
  }))
  const maxLoad = results.map((r, i) => ({
    label: r.policy,
    color: color(i),
    points: series[i]!.map((p) => [p.t, p.maxLoad] as const)
  }))
  const nodes = results.map((r, i) => ({
    label: r.policy,
    color: color(i),
    points: series[i]!.map((p) => [p.t, p.nodesInUse] as const)
  }))
  const rows = results
    .map(
      (r) =>
        `<tr><td>${esc(r.policy)}</td><td>${fmt(r.overloadedWorkerSeconds)}</td><td>${pct(r.overloadedShare)}</td><td>${fmt(r.peakWorkers)}</td><td>${bound(r.lowerBounds.workers)}</td><td>${fmt(r.peakNodes)}</td><td>${fmt(r.cpu.mean, 1)}</td><td>${fmt(r.cpu.p95, 1)}</td><td>${fmt(r.cpu.max, 1)}</td><td>${fmt(r.overloadEvents)}</td><td>${fmt(r.pipeConsumers)}</td><td>${bound(r.lowerBounds.pipes)}</td><td>${r.maxDepth}</td><td>${fmt(r.meanDepth, 2)}</td><td>${fmt(r.rejected)}</td><td>${fmt(r.rejectedConsumers)}</td><td>${fmt(r.reconnects)}</td><td>${r.decisions === 0 ? "-" : fmt(r.meanDecisionMicros, 1)}</td><td>${fmt(r.wallSeconds, 2)}</td></tr>`
    )
    .join("")
  const trees = results
    .filter((r) => r.tree !== null)
    .map((r) => `<figure>${treeChart(r.policy, r.tree!)}</figure>`)
    .join("")
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>mafalda simulate: ${esc(scenario.name)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1450px}
table{border-collapse:collapse;margin:12px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}th{background:#f3f3f3}
svg{background:#fff;border:1px solid #ddd;margin:6px 0;font:11px system-ui,sans-serif}
svg .t{font-size:13px;font-weight:600}svg .g{stroke:#eee}svg .e{stroke:#888;stroke-width:0.8}
figure{margin:0}
</style></head><body>
<h1>Cluster simulation: ${esc(scenario.name)}</h1>
<p>${esc(scenario.description)}</p>
<p>${scenario.nodes.count} Nodes × ${scenario.nodes.cpus} CPUs, ${fmt(scenario.durationSeconds)} s simulated, load reports every ${scenario.reportIntervalSeconds} s (${scenario.reportDelaySeconds} s late), watermark ${scenario.policy.watermark} %, seed ${results[0]?.seed ?? scenario.seed}.</p>
${shared === undefined ? "" : `<p>${esc(boundsLine(shared, scenario.policy.watermark))}.</p>`}
<p>Overload is measured in time: the Worker-seconds spent over 100 % CPU, and their share of the Worker-seconds in use (sampled at every load report); overload events count crossings of 100 %. CPU figures are over the Worker-seconds in use.</p>
<table><thead><tr><th>policy</th><th>overloaded Worker-s</th><th>share over 100 %</th><th>peak Workers</th><th>Workers lower bound (watermark/100 %)</th><th>peak Nodes</th><th>CPU mean %</th><th>p95 %</th><th>max %</th><th>overload events</th><th>pipes</th><th>pipes lower bound (watermark/100 %)</th><th>max depth</th><th>mean depth</th><th>rejected joins</th><th>rejected consumers</th><th>reconnects</th><th>µs/decision</th><th>wall s</th></tr></thead><tbody>${rows}</tbody></table>
${lineChart("Workers over 100 % CPU over time", "Workers", overloaded)}
${lineChart("Workers in use (dashed: the lower bounds, at the watermark and at 100 %)", "Workers", workers)}
${lineChart("Nodes in use over time", "Nodes", nodes)}
${lineChart("Mean CPU of the Workers in use (capped at 400 %)", "CPU %", meanLoad, 400)}
${lineChart("Busiest Worker's CPU (capped at 400 %)", "CPU %", maxLoad, 400)}
${depthChart(results)}
<h2>One producer's stream tree per policy</h2>
<p>The largest tree when consumers peaked; circles are Routers (colour: their Worker's CPU; hover for details), lines are pipes, depth grows downwards.</p>
${trees}
</body></html>
`
}
