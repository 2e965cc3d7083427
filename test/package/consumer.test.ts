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
 * - An app on Effect 3.21 (outside this repository, with only effect, mafalda and mediasoup
 *   installed, as npm installs them without the optional multi-machine packages): npm
 *   accepts the tree with one `effect`, the embedded entry points and a real Worker run on
 *   that one copy without a version warning, the CLI's embedded commands run, and
 *   `mafalda node` says which packages to install.
 *
 * About 50 s on a quiet 2-core machine, plus about 25 s for the Effect 3.21 app (120 s in all
 * on a busy one): the build and the strict type check take most of it.
 */
import { execFile } from "node:child_process"
import { existsSync } from "node:fs"
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
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
  misspeltSource,
  olderEffectAppSource,
  olderEffectPackageJson,
  olderEffectVersion
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

const run = (
  args: ReadonlyArray<string>,
  cwd: string,
  env: Record<string, string> = {},
  command: string = process.execPath
): Promise<Run> =>
  new Promise((resolve) => {
    execFile(
      command,
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

describe(`an app on effect ${olderEffectVersion}, without the optional multi-machine packages`, () => {
  let app = ""
  const mafaldaBin = () => join(app, "node_modules", "mafalda", "bin", "mafalda.js")
  // No version-mismatch warning ("Executing an Effect versioned ... with a Runtime of version ...").
  const noWarning = (r: Run) => expect(`${r.stdout}\n${r.stderr}`).not.toMatch(/versioned|dedupe|warn/i)

  beforeAll(async () => {
    // Outside this repository, so that nothing resolves from its node_modules by walking up:
    // effect and mediasoup are linked in as npm would install them, mafalda is the build.
    app = await mkdtemp(join(tmpdir(), "mafalda-effect-3-21-"))
    await mkdir(join(app, "node_modules"), { recursive: true })
    await cp(installed, join(app, "node_modules", "mafalda"), { recursive: true })
    await cp(join(root, "bin"), join(app, "node_modules", "mafalda", "bin"), { recursive: true })
    await symlink(join(root, "node_modules", "effect-3-21"), join(app, "node_modules", "effect"), "dir")
    await symlink(join(root, "node_modules", "mediasoup"), join(app, "node_modules", "mediasoup"), "dir")
    await writeFile(join(app, "package.json"), olderEffectPackageJson)
    await writeFile(join(app, "app.mjs"), olderEffectAppSource)
  }, 60_000)

  afterAll(() => (app === "" ? undefined : rm(app, { recursive: true, force: true })))

  it("npm accepts the tree: one effect, the app's, satisfies every peer range", async () => {
    const npm = await run(["ls", "effect", "--all", "--json"], app, {}, "npm")
    const tree = JSON.parse(npm.stdout) as {
      problems?: ReadonlyArray<string>
      dependencies: Record<string, { version: string; dependencies?: Record<string, { version: string }> }>
    }
    expect(tree.problems ?? []).toEqual([])
    expect(npm.code).toBe(0)
    expect(tree.dependencies.effect?.version).toBe(olderEffectVersion)
    expect(tree.dependencies.mafalda?.dependencies?.effect).toMatchObject({ version: olderEffectVersion })
  }, 60_000)

  it("runs the embedded entry points and a real Worker on that one effect, without a warning", async () => {
    const r = await run(["app.mjs"], app)
    expect(r.stderr).toBe("")
    noWarning(r)
    expect(r.code).toBe(0)
    const seen = JSON.parse(r.stdout) as {
      appEffect: { path: string; version: string }
      mafaldaEffect: { path: string; version: string }
    }
    expect(seen.appEffect.version).toBe(olderEffectVersion)
    expect(seen.mafaldaEffect).toEqual(seen.appEffect)
    expect(seen).toMatchObject({
      entryPoints: [true, true, true, true, true],
      consumer: { kind: "audio", producer: true },
      workers: [1],
      viaEffect: { transport: "string", workers: 1 }
    })
  }, 120_000)

  it("runs the CLI's embedded commands", async () => {
    const version = await run([mafaldaBin(), "--version"], app)
    expect(version.stderr).toBe("")
    expect(version.stdout).toMatch(/^mafalda 0\.1\.0 \(mediasoup 3\.14\.7, Node /)
    const help = await run([mafaldaBin(), "help"], app)
    expect(help.code).toBe(0)
    // The modules of every command but "node" load (each only when its command runs).
    const commands = [
      "demo/broadcastDemo",
      "demo/pipeDemo",
      "cli/simulate",
      "cli/calibrate",
      "cli/status",
      "cli/buildWorker"
    ]
    const loaded = await run(
      [
        "--input-type=module",
        "-e",
        `for (const m of ${JSON.stringify(commands)}) await import("./node_modules/mafalda/dist/" + m + ".js"); console.log("loaded")`
      ],
      app
    )
    expect(loaded.stderr).toBe("")
    expect(loaded.stdout.trim()).toBe("loaded")
    const demo = await run([mafaldaBin(), "demo", "--consumers", "3", "--json"], app)
    expect(demo.stderr).toBe("")
    noWarning(demo)
    expect(demo.code).toBe(0)
    expect(JSON.parse(demo.stdout)).toMatchObject({ consumers: 3, rtp: { consumersComplete: 3 } })
  }, 120_000)

  it("mafalda node names the packages to install, and the Effect they need", async () => {
    for (const args of [
      ["node", "--secret", "s"],
      ["node", "--help"]
    ]) {
      const r = await run([mafaldaBin(), ...args], app)
      expect(r.code).toBe(1)
      expect(r.stdout).toBe("")
      const pkg = JSON.parse(await readFile(join(root, "package.json"), "utf8")) as {
        peerDependencies: Record<string, string>
      }
      const wanted = ["@effect/platform", "@effect/platform-node", "@effect/rpc", "redis"]
      expect(r.stderr).toContain(
        "the multi-machine mode (mafalda node) needs packages that are not installed"
      )
      expect(r.stderr).toContain(
        `npm install ${wanted.map((p) => `"${p}@${pkg.peerDependencies[p]}"`).join(" ")}`
      )
      expect(r.stderr).toContain(`They need effect ^3.22.2 (this app has effect ${olderEffectVersion})`)
    }
  }, 60_000)
})
