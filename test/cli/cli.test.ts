/**
 * The `mafalda` command line, run as a process (`src/cli/bin.ts`, what `bin/mafalda.js`
 * runs once compiled): for each case, its exit code and the first line it prints.
 */
import { execFile } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { type AddressInfo, createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, describe, expect, it } from "vitest"
import { findMediasoup, packageVersion, workerBinary } from "../../src/cli/environment.js"
import { builtinScenarioInputs } from "../../src/sim/scenarios.js"
import { startOpsMafalda } from "../ops/support.js"
import { liveWorkerPids } from "../router/support.js"

const root = fileURLToPath(new URL("../../", import.meta.url))

interface Run {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
  /** The first line of stdout, or of stderr when stdout is empty. */
  readonly first: string
}

const mafalda = (args: ReadonlyArray<string>, env: Record<string, string> = {}): Promise<Run> =>
  new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", "src/cli/bin.ts", ...args],
      { cwd: root, env: { ...process.env, ...env }, timeout: 120_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1
        const first = (stdout === "" ? stderr : stdout).split("\n")[0] ?? ""
        resolve({ code, stdout, stderr, first })
      }
    )
  })

const dir = mkdtempSync(join(tmpdir(), "mafalda-cli-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe("mafalda: help and version", () => {
  it.each([
    [[]],
    [["--help"]],
    [["-h"]],
    [["help"]]
  ])("%j prints the command list on stdout, exit 0", async (args) => {
    const r = await mafalda(args)
    expect(r.code).toBe(0)
    expect(r.first).toBe("usage: mafalda <command> [options]")
    expect(r.stdout).toContain("mafalda build-worker")
    expect(r.stdout).toContain("mafalda status --url URL")
    expect(r.stderr).toBe("")
  })

  it.each([
    ["demo", "usage: mafalda demo [--consumers N] [--json]"],
    ["pipe-demo", "usage: mafalda pipe-demo [--json]"],
    ["simulate", "usage: mafalda simulate (--scenario NAME | --scenario-file FILE) [options]"],
    ["calibrate", "usage: mafalda calibrate [--json] [--window MS] [--repeats N] [--ports MIN-MAX]"],
    ["status", "usage: mafalda status --url URL [--json]"],
    ["build-worker", "usage: mafalda build-worker"]
  ])("%s --help prints its help on stdout, runs nothing, exit 0", async (command, first) => {
    const r = await mafalda([command, "--help"])
    expect(r.code).toBe(0)
    expect(r.first).toBe(first)
    expect(r.stderr).toBe("")
  })

  it("-h after a command, and help COMMAND, print the same help", async () => {
    for (const args of [
      ["simulate", "-h"],
      ["help", "simulate"]
    ]) {
      const r = await mafalda(args)
      expect(r.code).toBe(0)
      expect(r.first).toBe("usage: mafalda simulate (--scenario NAME | --scenario-file FILE) [options]")
    }
  })

  it.each([
    [["--version"]],
    [["-V"]],
    [["demo", "--version"]],
    [["simulate", "--version"]],
    [["status", "-V"]]
  ])("%j prints the version, exit 0", async (args) => {
    const r = await mafalda(args)
    expect(r.code).toBe(0)
    expect(r.first).toBe(
      `mafalda ${packageVersion()} (mediasoup ${findMediasoup()!.version}, Node ${process.version})`
    )
  })

  it("an unknown command is an error on stderr, exit 2", async () => {
    const r = await mafalda(["nope"])
    expect(r.code).toBe(2)
    expect(r.stdout).toBe("")
    expect(r.first).toBe('mafalda: unknown command "nope"')
  })
})

describe("mafalda simulate", () => {
  it("checks the report's path before simulating anything, exit 2", async () => {
    const r = await mafalda(["simulate", "--scenario", "broadcast", "--html", "/nonexistent/r.html"])
    expect(r.code).toBe(2)
    expect(r.stdout).toBe("")
    expect(r.first).toBe(
      "mafalda simulate: --html /nonexistent/r.html: the directory /nonexistent does not exist"
    )
    expect(r.stderr).not.toContain("% done")
  })

  it("checks the scenario file before simulating anything, exit 2", async () => {
    const r = await mafalda(["simulate", "--scenario-file", "/nonexistent/s.json"])
    expect(r.code).toBe(2)
    expect(r.first).toMatch(/^mafalda simulate: cannot read \/nonexistent\/s\.json: .*ENOENT/)
  })

  it("an unknown option is an error with the usage, exit 2", async () => {
    const r = await mafalda(["simulate", "--scenario", "broadcast", "--fast"])
    expect(r.code).toBe(2)
    expect(r.first).toBe("mafalda simulate: unknown argument --fast")
  })

  it("--jobs must be a whole number, at least 1, exit 2", async () => {
    const r = await mafalda(["simulate", "--scenario", "broadcast", "--jobs", "0"])
    expect(r.code).toBe(2)
    expect(r.first).toBe("mafalda simulate: --jobs must be a whole number, at least 1")
  })

  it("--jobs 3 (policies side by side, in child processes) prints what --jobs 1 prints, in the same order", async () => {
    const file = join(dir, "jobs.json")
    writeFileSync(
      file,
      JSON.stringify({
        ...builtinScenarioInputs.burst,
        name: "jobs",
        durationSeconds: 40,
        rooms: [{ ...builtinScenarioInputs.burst.rooms[0], rooms: 4, bursts: [] }]
      })
    )
    const policies = "round-robin,mafalda,chain,mesh"
    const args = ["simulate", "--scenario-file", file, "--policy", policies, "--json", "--no-progress"]
    const [one, three] = await Promise.all([
      mafalda([...args, "--jobs", "1"]),
      mafalda([...args, "--jobs", "3"])
    ])
    expect(one.code).toBe(0)
    expect(three.code).toBe(0)
    expect(three.stderr).toBe("")
    // What depends on the machine (time, memory) left out.
    const measured = (stdout: string) =>
      stdout
        .trim()
        .split("\n")
        .map((line) => {
          const { wallSeconds, peakRssBytes, decisionsPerSecond, meanDecisionMicros, ...rest } =
            JSON.parse(line)
          return rest as { readonly policy: string }
        })
    const sequential = measured(one.stdout)
    expect(sequential.map((o) => o.policy)).toEqual(policies.split(","))
    expect(measured(three.stdout)).toEqual(sequential)
  })

  it("--print-scenario prints a built-in scenario as JSON, a template for --scenario-file", async () => {
    const r = await mafalda(["simulate", "--print-scenario", "burst"])
    expect(r.code).toBe(0)
    expect(r.first).toBe("{")
    expect(JSON.parse(r.stdout)).toEqual(builtinScenarioInputs.burst)
  })

  it("prints progress lines with the policy (k of n) and an ETA when stderr is not a terminal", async () => {
    const file = join(dir, "small.json")
    writeFileSync(
      file,
      JSON.stringify({
        ...builtinScenarioInputs.burst,
        name: "small",
        durationSeconds: 60,
        rooms: [{ ...builtinScenarioInputs.burst.rooms[0], rooms: 5, bursts: [] }]
      })
    )
    const html = join(dir, "report.html")
    const r = await mafalda([
      "simulate",
      "--scenario-file",
      file,
      "--policy",
      "mafalda,mesh",
      "--json",
      "--html",
      html,
      "--progress-every",
      "0"
    ])
    expect(r.code).toBe(0)
    expect(JSON.parse(r.first)).toMatchObject({ scenario: "small", policy: "mafalda" })
    const progress = r.stderr.split("\n").filter((l) => l !== "")
    expect(progress.length).toBeGreaterThanOrEqual(2)
    for (const line of progress) {
      expect(line).toMatch(
        /^mafalda simulate: policy [12] of 2 \((mafalda|mesh)\): \d+% done, ETA (\d+:\d\d(, all \d+:\d\d)?|unknown)$/
      )
    }
    expect(progress.some((l) => l.includes("policy 1 of 2 (mafalda)"))).toBe(true)
    expect(progress.some((l) => l.includes("policy 2 of 2 (mesh)"))).toBe(true)
  })
})

describe("mafalda without a worker binary", () => {
  it.each([
    ["demo"],
    ["pipe-demo"],
    ["calibrate"]
  ])("%s prints a hint, not a stack trace, exit 1", async (command) => {
    const missing = "/nonexistent/mediasoup-worker"
    const r = await mafalda([command], { MEDIASOUP_WORKER_BIN: missing })
    expect(r.code).toBe(1)
    expect(r.stdout).toBe("")
    expect(r.first).toBe(`mafalda ${command}: the mediasoup worker binary is missing: ${missing}`)
    expect(r.stderr).toContain("MEDIASOUP_WORKER_BIN")
    expect(r.stderr).not.toMatch(/^\s+at /m)
  })
})

describe("mafalda demo", () => {
  it("runs a real broadcast and closes every Worker, exit 0", async () => {
    const before = new Set(await liveWorkerPids())
    const r = await mafalda(["demo", "--consumers", "20"])
    expect(r.code).toBe(0)
    expect(r.first).toMatch(/^broadcast: 1 producer \(ssrc \d+\) -> 20 consumers$/)
    expect(r.stdout).toContain("20/20 consumers receiving, 20 got every packet")
    expect((await liveWorkerPids()).filter((pid) => !before.has(pid))).toEqual([])
  })

  it("--consumers must be a positive whole number, exit 2", async () => {
    const r = await mafalda(["demo", "--consumers", "many"])
    expect(r.code).toBe(2)
    expect(r.first).toBe("mafalda demo: --consumers must be a positive whole number")
  })
})

describe("mafalda status", () => {
  it("prints a running instance's status from its live view, as text or JSON, exit 0", async () => {
    const m = await startOpsMafalda()
    try {
      await m.listen()
      const text = await mafalda(["status", "--url", m.ops.url])
      expect(text.code).toBe(0)
      expect(text.first).toBe(
        "Node local: 1 Worker, 1 room, 2 transports, 1 producer, 1 consumer, 0 pipes; deepest tree 0 hops (watermark 50 %)"
      )
      const status = await m.status()
      expect(text.stdout).toContain(`  ${status.workers[0]!.id} (pid ${status.workers[0]!.pid}): load`)
      expect(text.stdout).toContain(`  producer ${m.broadcast.producer.id} (audio, room `)

      const json = await mafalda(["status", "--url", `${m.ops.url}status`, "--json"])
      expect(json.code).toBe(0)
      expect(JSON.parse(json.first)).toMatchObject({
        node: "local",
        workers: [{ id: status.workers[0]!.id }]
      })
    } finally {
      await m.close()
    }
  })

  it("says why it cannot read the status, exit 1; without --url, exit 2", async () => {
    // A port nobody listens on: one the system just gave and took back.
    const port = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, "127.0.0.1", () => {
        const { port } = server.address() as AddressInfo
        server.close(() => resolve(port))
      })
    })
    const refused = await mafalda(["status", "--url", `http://127.0.0.1:${port}`])
    expect(refused.code).toBe(1)
    expect(refused.first).toMatch(
      new RegExp(`^mafalda status: cannot read http://127\\.0\\.0\\.1:${port}/status: .*ECONNREFUSED`)
    )
    const none = await mafalda(["status"])
    expect(none.code).toBe(2)
    expect(none.first).toBe("mafalda status: --url is required")
  })
})

describe("mafalda build-worker", () => {
  it("builds nothing when MEDIASOUP_WORKER_BIN names a worker, exit 0", async () => {
    const bin = workerBinary(findMediasoup()!.dir)
    const r = await mafalda(["build-worker"], { MEDIASOUP_WORKER_BIN: bin })
    expect(r.code).toBe(0)
    expect(r.first).toBe(`[mafalda:worker] using MEDIASOUP_WORKER_BIN=${bin}, building nothing`)
  })

  it("refuses arguments it does not know, exit 2", async () => {
    const r = await mafalda(["build-worker", "--fast"])
    expect(r.code).toBe(2)
    expect(r.first).toBe("mafalda build-worker: unknown argument --fast")
  })
})
