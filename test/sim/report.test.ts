/**
 * The HTML report of a comparison: what a reader needs to tell the policies apart and read
 * the charts (checked on the markup; `mafalda simulate --html` and a look at it in Chromium
 * at 1400 px are the visual check).
 */

import { Either } from "effect"
import { describe, expect, it } from "vitest"
import { htmlReport, summaryTable } from "../../src/sim/report.js"
import { simulateSync } from "../../src/sim/run.js"
import { decodeScenario } from "../../src/sim/Scenario.js"
import { handCosts } from "../support/handCosts.js"

// One room of 2,500 viewers: round-robin pins it to one Worker (far over 400 %), chain
// makes a deep tree; mafalda spreads it.
const scenario = Either.getOrThrow(
  decodeScenario({
    name: "report",
    durationSeconds: 60,
    nodes: { count: 4, cpus: 8 },
    rooms: [{ rooms: 1, size: { min: 2500, max: 2500 }, publishers: 1, joinsPerSecond: 100 }],
    // Pinned (the costs before 2026-12-06's calibration), so the drawings' sizes checked below
    // (chain over 10 levels deep) do not move with the defaults.
    policy: { costs: handCosts }
  })
)
const results = (["mafalda", "round-robin", "chain"] as const).map((p) => simulateSync(scenario, p))
const html = htmlReport(scenario, results)
const svgs = html.match(/<svg [^>]*>/g) ?? []

describe("the HTML report", () => {
  it("gives every policy its own colour, dashes and marker, in the charts and their key", () => {
    const looks = results.map((r) => {
      const entry = new RegExp(`<svg width="46" height="12" class="inline">(.*?)</svg>${r.policy}`).exec(html)
      expect(entry, r.policy).not.toBeNull()
      return entry![1]
    })
    expect(new Set(looks).size).toBe(results.length)
    // Markers are drawn on the lines (8 per line and chart), not only in the key.
    expect((html.match(/<rect x="[\d.]+" y="[\d.]+" width="7" height="7"/g) ?? []).length).toBeGreaterThan(8)
  })

  it("draws the watermark and 100 % on the CPU charts, and cuts them at one cap, said in the title", () => {
    expect(html.match(/class="markt">watermark 60 %</g)).toHaveLength(2)
    expect(html.match(/class="markt">100 %: overloaded</g)).toHaveLength(2)
    expect(html).toContain("Busiest Worker's CPU (axis cut at 400 %: higher values drawn there)")
    expect(html).toContain(">≥ 400<")
    expect(html).not.toMatch(/>(500|≥ 500)</)
  })

  it("shows the lower bounds and one small chart per policy on one scale", () => {
    expect(html).toContain("lower bound at the watermark")
    for (const r of results) expect(html).toContain(`class="t">${r.policy}</text>`)
  })

  it("has a colour key for the trees and keeps every drawing within a 1400 px page", () => {
    expect(html).toContain("Circle colour, by the Worker's CPU when drawn:")
    for (const label of ["under 30 % (half the watermark)", "100 % or more (overloaded)"])
      expect(html).toContain(label)
    for (const svg of svgs) {
      const width = Number(/width="([\d.]+)"/.exec(svg)?.[1])
      expect(width).toBeLessThanOrEqual(1300)
    }
    expect(html).toContain("svg{") // and they scale down with the page
    expect(html).toMatch(/svg\{[^}]*max-width:100%/)
    // The chain's deep tree: the first levels, and a count of the rest.
    expect(html).toMatch(/more levels \(depth 10 to \d+\): [\d,]+ Routers, [\d,]+ consumers/)
  })

  it('explains every "-": the policies without decision times, in the page and the table', () => {
    expect(html).toContain("–<sup>a</sup>")
    expect(html).toContain(
      "<sup>a</sup> –: round-robin, chain place by their own rule without the core's placement decisions"
    )
    expect(summaryTable(results)).toContain(
      'decisions/s "-": round-robin, chain place by their own rule without the core\'s placement decisions'
    )
  })

  it("is self-contained: no script, no link out", () => {
    expect(html).not.toMatch(/<script|https?:\/\//)
  })
})
