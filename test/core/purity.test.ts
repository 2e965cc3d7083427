import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { impurities } from "../support/corePurity.js"

// The functional core is pure: it imports only pure modules of `effect` and its own modules,
// and reads no clock, no randomness and no I/O. The check parses each module.
const coreDir = join(import.meta.dirname, "..", "..", "src", "core")
const files = readdirSync(coreDir).filter((f) => f.endsWith(".ts"))

describe("src/core stays pure", () => {
  it("finds the core's modules", () => {
    for (const module of [
      "index.ts",
      "Snapshot.ts",
      "applyEvent.ts",
      "scaleDown.ts",
      "transportPlacement.ts"
    ]) {
      expect(files).toContain(module)
    }
  })

  it.each(files)("%s imports only pure modules and reads no clock, randomness or I/O", (file) => {
    expect(impurities(file, readFileSync(join(coreDir, file), "utf8"))).toEqual([])
  })
})

describe("the purity check itself", () => {
  it("flags ambient imports from effect, foreign modules and ambient globals, each on its line", () => {
    const bad = [
      'import { Clock, Data, Random, type Effect } from "effect"',
      'import { DateTime as D, Schedule } from "effect"',
      'import * as E from "effect"',
      'import { Effect as Fx } from "effect/Effect"',
      'import { readFileSync } from "node:fs"',
      'import "node:timers"',
      'import { helper } from "../shell/helper.js"',
      'export { Random } from "effect"',
      "export const seed = () => Math.random()",
      "export const now = () => Date.now()",
      "export const later = (f: () => void) => setTimeout(f, 10)",
      "export const env = process.env.HOME",
      "export const t = performance.now()",
      'export const load = () => import("node:os")',
      "export const log = (x: unknown) => console.log(x)",
      "export const g = globalThis"
    ].join("\n")
    expect(impurities("bad.ts", bad)).toEqual([
      'bad.ts:1: imports Clock from "effect": the clock',
      'bad.ts:1: imports Random from "effect": randomness',
      'bad.ts:2: imports DateTime from "effect": the clock (DateTime.now)',
      'bad.ts:2: imports Schedule from "effect": timing (real time)',
      'bad.ts:3: imports all of "effect" (* as E): that reaches Random and Clock',
      'bad.ts:4: imports Effect from "effect": effects: sleep, timeouts, the clock, randomness, I/O (through "effect/Effect")',
      'bad.ts:5: imports "node:fs": only "effect" and the core\'s own modules may be imported',
      'bad.ts:6: imports "node:timers": only "effect" and the core\'s own modules may be imported',
      'bad.ts:7: imports "../shell/helper.js": only "effect" and the core\'s own modules may be imported',
      'bad.ts:8: re-imports Random from "effect": randomness',
      "bad.ts:9: Math.random: randomness",
      "bad.ts:10: uses Date: the clock",
      "bad.ts:11: uses setTimeout: timers",
      "bad.ts:12: uses process: the environment",
      "bad.ts:13: uses performance: the clock",
      "bad.ts:14: dynamic import()",
      "bad.ts:15: uses console: I/O",
      "bad.ts:16: uses globalThis: globals"
    ])
  })

  it("accepts pure imports, type-only imports, and names that only look ambient", () => {
    const good = [
      'import { Data, HashMap, Option, pipe, type Effect } from "effect"',
      'import type { Clock, Random } from "effect"',
      'import type { Snapshot } from "./Snapshot.js"',
      'export * from "./Ids.js"',
      "export interface Stamp { readonly Date: number; readonly process: string }",
      "export const stamp = (s: { Date: number }) => ({ Date: s.Date, random: Math.max(1, 2) })",
      "// Date.now() and Math.random() in a comment, and in a string:",
      'export const text = "setTimeout(process.exit)"'
    ].join("\n")
    expect(impurities("good.ts", good)).toEqual([])
  })
})
