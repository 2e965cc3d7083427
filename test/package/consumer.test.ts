/**
 * The package as an app gets it: this repository compiled with its build configuration into
 * `node_modules/mafalda/dist` of a consumer project (with `package.json`, so its `exports`
 * decide what resolves), under `.cache/` so that the package's own dependencies resolve to
 * this repository's `node_modules`, one copy each, as npm would install them.
 *
 * - A strict TypeScript consumer (NodeNext, `skipLibCheck: false`) compiles code typed with
 *   mediasoup's `types` given Mafalda Routers, transports, consumers..., and misspelt event
 *   names do not compile (each its own TS2345).
 * - A CommonJS consumer `require`s `mafalda` and `mafalda/mediasoup` and runs a Worker on
 *   Node >= 20.19 / 22.12 (which load ES modules with `require()`), or fails with
 *   `ERR_REQUIRE_ESM` on older Node, as the README says.
 * - Every target of `exports` exists in the build.
 *
 * About 50 s on a quiet 2-core machine: the build and the strict type check take most of it.
 */
import { execFile } from "node:child_process"
import { existsSync } from "node:fs"
import { cp, mkdir, readFile, rm, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { processExists } from "../../src/media/worker.js"
import {
  commonJsSource,
  compilingSource,
  consumerPackageJson,
  consumerTsconfig,
  misspeltFirstLine,
  misspeltNames,
  misspeltSource
} from "./consumerFixture.js"

const root = fileURLToPath(new URL("../../", import.meta.url))
const consumer = join(root, ".cache", `package-consumer-${process.pid}`)
const installed = join(consumer, "node_modules", "mafalda")
const tsc = join(root, "node_modules", "typescript", "bin", "tsc")

interface Run {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

const run = (args: ReadonlyArray<string>, cwd: string, env: Record<string, string> = {}): Promise<Run> =>
  new Promise((resolve) => {
    execFile(
      process.execPath,
      args,
      { cwd, env: { ...process.env, ...env }, timeout: 290_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1
        resolve({ code, stdout, stderr })
      }
    )
  })

beforeAll(async () => {
  await rm(consumer, { recursive: true, force: true })
  await mkdir(join(consumer, "src"), { recursive: true })
  await mkdir(installed, { recursive: true })
  await cp(join(root, "package.json"), join(installed, "package.json"))
  const build = await run([tsc, "-p", "tsconfig.build.json", "--outDir", join(installed, "dist")], root)
  expect(build.stdout + build.stderr).toBe("")
  expect(build.code).toBe(0)
  await writeFile(join(consumer, "package.json"), consumerPackageJson)
  await writeFile(join(consumer, "tsconfig.json"), consumerTsconfig)
  await writeFile(join(consumer, "src", "app.ts"), compilingSource)
  await writeFile(join(consumer, "src", "misspelt.ts"), misspeltSource)
  await writeFile(join(consumer, "app.cjs"), commonJsSource)
}, 300_000)

afterAll(() => rm(consumer, { recursive: true, force: true }))

describe("the built package", () => {
  it("has every target its exports name", async () => {
    const pkg = JSON.parse(await readFile(join(installed, "package.json"), "utf8")) as {
      exports: Record<string, string | Record<string, string>>
    }
    const targets = Object.values(pkg.exports).flatMap((e) =>
      typeof e === "string" ? [e] : Object.values(e)
    )
    expect(targets.length).toBeGreaterThan(10)
    expect(targets.filter((t) => !existsSync(join(installed, t)))).toEqual([])
  })
})

describe("a strict TypeScript consumer (NodeNext, skipLibCheck false)", () => {
  it("compiles Mafalda objects where mediasoup's types are expected, and no misspelt event name", async () => {
    const r = await run([tsc, "-p", "tsconfig.json", "--pretty", "false"], consumer)
    const errors = r.stdout.split("\n").filter((l) => l.includes("error TS"))
    // Nothing but the misspelt lines fails: app.ts and every declaration file compile.
    expect(errors.filter((l) => !l.startsWith("src/misspelt.ts("))).toEqual([])
    // Each misspelt name fails on its own line, as an argument not assignable to the event names.
    expect(errors).toHaveLength(misspeltNames.length)
    misspeltNames.forEach((name, i) => {
      const error = errors.find((l) => l.startsWith(`src/misspelt.ts(${misspeltFirstLine + i},`))
      expect(error, name).toBeDefined()
      expect(error).toContain(`error TS2345: Argument of type '"${name}"' is not assignable`)
    })
    expect(r.code).toBe(2)
  }, 300_000)
})

describe("a CommonJS consumer", () => {
  const [major = 0, minor = 0] = process.versions.node.split(".").map(Number)
  const requireLoadsEsm = major >= 23 || (major === 22 && minor >= 12) || (major === 20 && minor >= 19)

  it(`require("mafalda") and require("mafalda/mediasoup") ${requireLoadsEsm ? "work" : "fail with ERR_REQUIRE_ESM"} on Node ${process.versions.node}`, async () => {
    const r = await run(["app.cjs"], consumer)
    if (!requireLoadsEsm) {
      expect(r.code).toBe(1)
      expect(r.stderr).toContain("ERR_REQUIRE_ESM")
      return
    }
    expect(r.stderr).toBe("")
    expect(r.code).toBe(0)
    const seen = JSON.parse(r.stdout) as {
      createMafalda: string
      version: string
      workerIsMediasoupWorker: boolean
      pid: number
      iceCandidates: number
    }
    expect(seen).toMatchObject({
      createMafalda: "function",
      version: "3.14.7",
      workerIsMediasoupWorker: true,
      iceCandidates: 1
    })
    expect(processExists(seen.pid)).toBe(false)
  }, 60_000)

  it("an ES module consumer imports the same entry points", async () => {
    const r = await run(
      [
        "--input-type=module",
        "-e",
        'const [a, b] = await Promise.all([import("mafalda"), import("mafalda/mediasoup")]); console.log(typeof a.createMafalda, typeof b.createWorker, b.version)'
      ],
      consumer
    )
    expect(r.stderr).toBe("")
    expect(r.stdout.trim()).toBe("function function 3.14.7")
  }, 60_000)
})
