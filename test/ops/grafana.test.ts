/**
 * The Grafana dashboard (`ops/grafana.json`) asks only for metrics Mafalda exports.
 */
import { readFileSync } from "node:fs"
import { describe, expect, it } from "vitest"

const root = new URL("../../", import.meta.url)
const dashboard = JSON.parse(readFileSync(new URL("ops/grafana.json", root), "utf8")) as {
  readonly panels: ReadonlyArray<{ readonly targets?: ReadonlyArray<{ readonly expr: string }> }>
}
const metricsSource = readFileSync(new URL("src/ops/metrics.ts", root), "utf8")

describe("the Grafana dashboard", () => {
  it("queries metrics that src/ops/metrics.ts defines", () => {
    const exprs = dashboard.panels.flatMap((p) => p.targets ?? []).map((t) => t.expr)
    expect(exprs.length).toBeGreaterThan(10)
    const names = new Set(
      exprs
        .flatMap((e) => e.match(/mafalda_[a-z_]+/g) ?? [])
        .map((n) => n.replace(/_(bucket|sum|count)$/, ""))
    )
    for (const name of names) expect(metricsSource, name).toContain(`"${name}"`)
    // Every gauge and counter is on the dashboard.
    const defined = metricsSource.match(/"mafalda_[a-z_]+"/g)!.map((q) => q.slice(1, -1))
    for (const name of defined) {
      if (name.startsWith("mafalda_worker_") && name !== "mafalda_worker_deaths_total") continue
      if (name === "mafalda_nodes") continue
      expect(names, name).toContain(name)
    }
  })
})
