/**
 * The `mafalda` command line. `mafalda` alone, `mafalda --help` and `mafalda help` print the
 * commands; `--help` (`-h`) after any command prints its help, `--version` (`-V`) anywhere
 * prints the version. Help goes to stdout, errors to stderr (exit code 2 for a bad command
 * line, 1 for a failure).
 *
 *   mafalda demo [--consumers N] [--json]   a real broadcast through one Mafalda Router
 *   mafalda pipe-demo [--json]              two Workers, one pipe, real RTP (raw mediasoup)
 *   mafalda simulate --scenario NAME ...    the placement policies on simulated clusters
 *   mafalda calibrate [--json]              the cost-model options measured on this machine
 *   mafalda node --secret S ...             a Mafalda Node of a cluster (Redis, RPC)
 *   mafalda status --url URL                a running instance's status, from its live view
 *   mafalda build-worker                    builds mediasoup's worker (an app installed from npm)
 */
import type { BroadcastDemoResult } from "../demo/broadcastDemo.js"
import { findMediasoup, packageVersion, workerProblem } from "./environment.js"
import { treeLines } from "./status.js"

interface Command {
  /** The command's usage line(s) and what it does, for the command list. */
  readonly summary: string
  /** Its full help. */
  readonly help: () => Promise<string> | string
  /** It starts mediasoup Workers (with these arguments): the worker binary must be there. */
  readonly needsWorker?: boolean | ((argv: ReadonlyArray<string>) => boolean)
  readonly run: (argv: ReadonlyArray<string>) => Promise<number>
}

const flag = (argv: ReadonlyArray<string>, name: string): string | undefined => {
  const i = argv.indexOf(name)
  return i >= 0 ? argv[i + 1] : undefined
}

const printBroadcast = (r: BroadcastDemoResult): void => {
  const out: Array<string> = []
  out.push(`broadcast: 1 producer (ssrc ${r.producer.ssrc}) -> ${r.consumers} consumers`)
  out.push("", "Workers:")
  for (const w of r.workers) {
    const cpu =
      w.cpuWhileStreaming === undefined ? "" : `, CPU while streaming ${w.cpuWhileStreaming.toFixed(1)} %`
    out.push(
      `  ${w.id} (pid ${w.pid ?? "-"}): ${w.consumers} consumers (${w.consumersComplete} got every packet), ` +
        `estimated load ${w.load.toFixed(1)} %${cpu}`
    )
  }
  out.push("", "Stream tree of the producer (each level is one pipe hop from its origin Router):")
  out.push(...treeLines(r.tree))
  out.push("", `Pipes: ${r.pipes.length}`)
  for (const p of r.pipes) out.push(`  producer ${p.producer}: router ${p.from} -> router ${p.to}`)
  out.push(
    "",
    `RTP: ${r.rtp.packetsSent} packets sent; ${r.rtp.consumersReceiving}/${r.consumers} consumers receiving, ` +
      `${r.rtp.consumersComplete} got every packet (fewest received: ${r.rtp.minimumReceived})`,
    `setup ${Math.round(r.setupMs)} ms, total ${Math.round(r.elapsedMs)} ms`
  )
  console.log(out.join("\n"))
}

const demoHelp = `usage: mafalda demo [--consumers N] [--json]
  A real broadcast through one Mafalda Router over every local CPU: one producer fed with real
  RTP, N consumers (default 300), one Worker per CPU. Prints the Workers with their consumers
  and load, the producer's stream tree and pipes, and how many consumers got every packet.
  --consumers N   the audience (default 300)
  --json          print the result as one JSON object`

const commands: Record<string, Command> = {
  demo: {
    summary: "demo [--consumers N] [--json]    a real broadcast through one Mafalda Router",
    help: () => demoHelp,
    needsWorker: true,
    run: async (argv) => {
      const consumers = Number(flag(argv, "--consumers") ?? 300)
      if (!Number.isInteger(consumers) || consumers < 1) {
        console.error(`mafalda demo: --consumers must be a positive whole number\n${demoHelp}`)
        return 2
      }
      const { runBroadcastDemo } = await import("../demo/broadcastDemo.js")
      const result = await runBroadcastDemo({ consumers })
      if (argv.includes("--json")) console.log(JSON.stringify(result))
      else printBroadcast(result)
      return result.rtp.consumersComplete === result.consumers ? 0 : 1
    }
  },
  "pipe-demo": {
    summary: "pipe-demo [--json]               two Workers, one pipe, real RTP (raw mediasoup)",
    help: () =>
      `usage: mafalda pipe-demo [--json]
  Two mediasoup Workers, a producer fed with real RTP on one, piped to the other, a consumer
  there; prints what arrived (as one JSON object with --json).`,
    needsWorker: true,
    run: async (argv) => {
      const [{ Effect }, { runPipeDemo }] = await Promise.all([
        import("effect"),
        import("../demo/pipeDemo.js")
      ])
      const summary = await Effect.runPromise(runPipeDemo())
      console.log(argv.includes("--json") ? JSON.stringify(summary) : JSON.stringify(summary, null, 2))
      return summary.packetsReceived > 0 ? 0 : 1
    }
  },
  simulate: {
    summary:
      "simulate --scenario NAME [--policy a,b] [--json] [--html FILE]\n" +
      "                                    compare placement policies on a simulated cluster",
    help: async () => (await import("./simulate.js")).simulateUsage,
    run: async (argv) => (await import("./simulate.js")).runSimulateCommand(argv)
  },
  calibrate: {
    summary:
      "calibrate [--json] [--window MS] [--repeats N]\n" +
      "                                    measure what producers, consumers and pipes cost a\n" +
      "                                    Worker here (audio, video) and print the costs",
    help: () =>
      `usage: mafalda calibrate [--json] [--window MS] [--repeats N] [--ports MIN-MAX]
  Measures, with real Workers and real RTP, what a producer, a consumer, a piped producer
  (per pipe end, K producers over one shared PipeTransport pair) and a transport cost a
  mediasoup Worker on this machine, for audio and video, and the fixed cost of a
  PipeTransport pair (with and without SCTP); prints the costs option to give createMafalda.
  --window MS       length of each measuring window (default 3000, at least 500)
  --repeats N       up-and-down round trips over the pipe states, two passes each (default 2)
  --streams K       producers of each kind piped over one pair (default 16, at least 3)
  --ports MIN-MAX   UDP ports the Workers may use (default 46000-48999)
  --json            print the result as one JSON object`,
    needsWorker: true,
    run: async (argv) => (await import("./calibrate.js")).runCalibrateCommand(argv)
  },
  status: {
    summary: "status --url URL [--json]        a running instance's status, from its live view",
    help: async () => (await import("./status.js")).statusUsage,
    run: async (argv) => (await import("./status.js")).runStatusCommand(argv)
  },
  node: {
    summary:
      "node --secret S [--redis URL] [--listen HOST:PORT] [--announced-ip IP]\n" +
      "                                    a Mafalda Node of a cluster, until SIGTERM (drains)",
    help: async () => (await import("./node.js")).nodeUsage,
    // "mafalda node drain" only talks to a running Node.
    needsWorker: (argv) => argv[0] !== "drain",
    run: async (argv) => (await import("./node.js")).runNodeCommand(argv)
  },
  "build-worker": {
    summary: "build-worker                     build mediasoup's worker (for an app installed from npm)",
    help: async () => (await import("./buildWorker.js")).buildWorkerUsage,
    run: async (argv) => (await import("./buildWorker.js")).runBuildWorkerCommand(argv)
  }
}

const usage = (): string =>
  [
    "usage: mafalda <command> [options]",
    "",
    "commands:",
    ...Object.entries(commands).map(
      ([name, c]) => `  mafalda ${c.summary.startsWith(name) ? "" : name}${c.summary}`
    ),
    "  mafalda help [command]           this list, or a command's help",
    "",
    "Every command takes --help (-h) and --version (-V).",
    "Logs: MAFALDA_LOG_LEVEL (all, debug, info, warning, error, none), MAFALDA_LOG_FORMAT (logfmt, json, pretty)."
  ].join("\n")

const isHelp = (a: string) => a === "--help" || a === "-h"
const isVersion = (a: string) => a === "--version" || a === "-V"

export const main = async (argv: ReadonlyArray<string>): Promise<number> => {
  if (argv.length === 0) {
    console.log(usage())
    return 0
  }
  if (argv.some(isVersion) || argv[0] === "version") {
    const mediasoup = findMediasoup()
    console.log(
      `mafalda ${packageVersion()} (mediasoup ${mediasoup?.version ?? "not installed"}, Node ${process.version})`
    )
    return 0
  }
  const [name = "", ...rest] = argv
  if (isHelp(name) || name === "help") {
    const topic = rest[0] === undefined ? undefined : commands[rest[0]]
    if (rest[0] !== undefined && topic === undefined) {
      console.error(`mafalda: no command "${rest[0]}"\n${usage()}`)
      return 2
    }
    console.log(topic === undefined ? usage() : await topic.help())
    return 0
  }
  const command = commands[name]
  if (command === undefined) {
    console.error(`mafalda: unknown command "${name}"\n${usage()}`)
    return 2
  }
  if (rest.some(isHelp)) {
    console.log(await command.help())
    return 0
  }
  const needsWorker =
    typeof command.needsWorker === "function" ? command.needsWorker(rest) : command.needsWorker === true
  if (needsWorker) {
    const problem = workerProblem()
    if (problem !== undefined) {
      console.error(`mafalda ${name}: ${problem}`)
      return 1
    }
  }
  return command.run(rest)
}
