import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"

// The functional core is pure: it imports only `effect` and its own modules, and reads no
// clock, no randomness and no I/O.
const coreDir = join(import.meta.dirname, "..", "..", "src", "core")
const files = readdirSync(coreDir).filter((f) => f.endsWith(".ts"))

describe("src/core stays pure", () => {
  it("has modules to check", () => {
    expect(files.length).toBeGreaterThan(5)
  })

  it.each(files)("%s imports only effect and the core", (file) => {
    const source = readFileSync(join(coreDir, file), "utf8")
    const imports = [...source.matchAll(/from\s+"([^"]+)"/g)].map((m) => m[1])
    for (const specifier of imports) {
      expect(
        specifier === "effect" || /^\.\/[A-Za-z]+\.js$/.test(specifier ?? ""),
        `${file}: ${specifier}`
      ).toBe(true)
    }
  })

  it.each(files)("%s reads no clock, randomness or I/O", (file) => {
    const source = readFileSync(join(coreDir, file), "utf8")
    for (const forbidden of [
      "Date.now",
      "new Date",
      "Math.random",
      "performance.now",
      "setTimeout",
      "setInterval",
      "process.",
      "require("
    ]) {
      expect(source.includes(forbidden), `${file} uses ${forbidden}`).toBe(false)
    }
  })
})
