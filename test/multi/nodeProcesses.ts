/**
 * Mafalda Node processes for the multi-process tests: the `mafalda` command, bundled from
 * the sources with esbuild (into `.cache/multi/`, so that a process starts in a second or
 * two instead of transpiling every module), run as `mafalda node ...` child processes.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdirSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { build } from "esbuild"

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..")
const bundlePath = join(root, ".cache", "multi", "mafalda.mjs")

let bundled: Promise<string> | undefined

/** The `mafalda` command as one ES module (mediasoup stays outside: it finds its worker binary). */
export const bundleCommand = (): Promise<string> => {
  bundled ??= (async () => {
    mkdirSync(dirname(bundlePath), { recursive: true })
    await build({
      entryPoints: [join(root, "src", "cli", "bin.ts")],
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      outfile: bundlePath,
      external: ["mediasoup", "esbuild", "playwright-core"],
      // CommonJS dependencies inside an ES module bundle need `require`.
      banner: {
        js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);"
      },
      logLevel: "error"
    })
    return bundlePath
  })()
  return bundled
}

export interface NodeProcess {
  readonly child: ChildProcess
  readonly pid: number
  /** Every line it printed (stdout and stderr). */
  readonly output: Array<string>
  /** Its `ready` event: its id and RPC address. */
  readonly ready: Promise<{ readonly node: string; readonly address: string }>
  /** Its exit. */
  readonly exited: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
  /** Whether it has exited. */
  readonly hasExited: () => boolean
}

/** Starts `mafalda node` with these arguments. */
export const spawnNode = async (
  args: ReadonlyArray<string>,
  env: NodeJS.ProcessEnv = {}
): Promise<NodeProcess> => {
  const command = await bundleCommand()
  const child = spawn(process.execPath, [command, "node", ...args], {
    cwd: root,
    env: { ...process.env, MAFALDA_LOG_LEVEL: "warning", ...env },
    stdio: ["ignore", "pipe", "pipe"]
  })
  const output: Array<string> = []
  let exited = false
  let onReady: (value: { node: string; address: string }) => void = () => {}
  let onFailed: (error: Error) => void = () => {}
  const ready = new Promise<{ node: string; address: string }>((resolve, reject) => {
    onReady = resolve
    onFailed = reject
  })
  const take = (chunk: Buffer) => {
    for (const line of chunk.toString().split("\n")) {
      if (line.trim() === "") continue
      output.push(line)
      if (line.startsWith('{"event":"ready"')) onReady(JSON.parse(line))
    }
  }
  child.stdout?.on("data", take)
  child.stderr?.on("data", take)
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once("exit", (code, signal) => {
      exited = true
      onFailed(
        new Error(`mafalda node exited (${code ?? signal}) before it was ready:\n${output.join("\n")}`)
      )
      resolve({ code, signal })
    })
  })
  // A command that never gets ready (`mafalda node drain`) leaves `ready` rejected: not an
  // unhandled rejection, whoever awaits it still sees the failure.
  ready.catch(() => undefined)
  if (child.pid === undefined) throw new Error("mafalda node did not start")
  return { child, pid: child.pid, output, ready, exited: exit, hasExited: () => exited }
}

/** The `mafalda node` processes one test file starts, and their end. */
export const nodeProcessPool = () => {
  const started: Array<NodeProcess> = []
  return {
    /** Starts one and waits for its `ready`: the process, its id and RPC address. */
    start: async (args: ReadonlyArray<string>, env: NodeJS.ProcessEnv = {}) => {
      const p = await spawnNode(args, env)
      started.push(p)
      return { process: p, ...(await p.ready) }
    },
    /** Kills (SIGKILL) every one still running, and waits for them all to exit. */
    killAll: async () => {
      for (const p of started) if (!p.hasExited()) p.child.kill("SIGKILL")
      await Promise.all(started.map((p) => p.exited))
    }
  }
}

/** What a test's `mafalda node` is started with (`nodeArgs`). */
export interface NodeArgs {
  readonly redis: string
  readonly prefix: string
  readonly node: string
  readonly cpus: number
  readonly listen?: string
  readonly announcedIp?: string
  readonly drainTimeoutSeconds?: number
  readonly idleGraceMillis?: number
}

/** The command-line arguments of `mafalda node` for a test's Node. */
export const nodeArgs = (o: NodeArgs): Array<string> => [
  "--redis",
  o.redis,
  "--prefix",
  o.prefix,
  ...(o.listen === undefined ? [] : ["--listen", o.listen]),
  ...(o.announcedIp === undefined ? [] : ["--announced-ip", o.announcedIp]),
  "--node",
  o.node,
  "--cpus",
  String(o.cpus),
  ...(o.drainTimeoutSeconds === undefined ? [] : ["--drain-timeout", String(o.drainTimeoutSeconds)]),
  ...(o.idleGraceMillis === undefined ? [] : ["--idle-grace", String(o.idleGraceMillis)])
]
