/**
 * The `mafalda` command line.
 *
 *   mafalda demo [--consumers N] [--json]   a real broadcast through one Mafalda Router
 *   mafalda pipe-demo [--json]              two Workers, one pipe, real RTP (raw mediasoup)
 *   mafalda simulate --scenario NAME ...    the placement policies on simulated clusters
 *   mafalda calibrate [--json]              the cost-model options measured on this machine
 */
import { Effect } from "effect"
import { runPipeDemo } from "../demo/pipeDemo.js"
import { type BroadcastDemoResult, runBroadcastDemo } from "../router/broadcastDemo.js"

const usage = `usage:
  mafalda demo [--consumers N] [--json]    one producer with real RTP, N consumers (default 300),
                                           one Mafalda Router over all local CPUs
  mafalda pipe-demo [--json]               two Workers, one pipe, real RTP
  mafalda simulate --scenario NAME [--policy a,b] [--json] [--html FILE]
                                           compare placement policies on a simulated cluster
  mafalda calibrate [--json] [--window MS] [--repeats N]
                                           measure what producers, consumers and pipes cost
                                           a Worker here (audio, video) and print the costs
  mafalda help`

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
  const children = new Map<string | null, Array<(typeof r.tree)[number]>>()
  for (const hop of r.tree) children.set(hop.parent, [...(children.get(hop.parent) ?? []), hop])
  const walk = (parent: string | null, indent: string) => {
    for (const hop of children.get(parent) ?? []) {
      out.push(
        `${indent}router ${hop.router} on ${hop.worker ?? "?"}: depth ${hop.depth}, ${hop.consumers} consumers`
      )
      walk(hop.router, `${indent}  `)
    }
  }
  walk(null, "  ")
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

export const main = async (argv: ReadonlyArray<string>): Promise<number> => {
  const [command = "demo", ...rest] = argv
  const json = rest.includes("--json")
  switch (command) {
    case "demo": {
      const consumers = Number(flag(rest, "--consumers") ?? 300)
      if (!Number.isInteger(consumers) || consumers < 1) {
        console.error("--consumers must be a positive whole number")
        return 2
      }
      const result = await runBroadcastDemo({ consumers })
      if (json) console.log(JSON.stringify(result))
      else printBroadcast(result)
      return result.rtp.consumersComplete === result.consumers ? 0 : 1
    }
    case "pipe-demo": {
      const summary = await Effect.runPromise(runPipeDemo())
      console.log(json ? JSON.stringify(summary) : JSON.stringify(summary, null, 2))
      return summary.packetsReceived > 0 ? 0 : 1
    }
    case "simulate": {
      const { runSimulateCommand } = await import("./simulate.js")
      return runSimulateCommand(rest)
    }
    case "calibrate": {
      const { runCalibrateCommand } = await import("./calibrate.js")
      return runCalibrateCommand(rest)
    }
    case "help":
    case "--help":
    case "-h":
      console.log(usage)
      return 0
    default:
      console.error(`unknown command: ${command}\n${usage}`)
      return 2
  }
}
