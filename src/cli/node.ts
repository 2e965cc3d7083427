/**
 * `mafalda node`: runs a Mafalda Node in this process until SIGTERM (or SIGINT, or a
 * `Drain` request), then drains it: no new placement, exit once no client transport is
 * left or the drain timeout passes.
 *
 *   mafalda node --secret S [--redis URL] [--prefix P] [--listen HOST:PORT]
 *                [--announced-ip IP] [--pipe-listen-ip IP] [--node ID] [--cpus N]
 *                [--drain-timeout SECONDS] [--idle-grace MS]
 *   mafalda node drain --address HOST:PORT --secret S
 *
 * The secret may come from `MAFALDA_SECRET` instead (so that it does not show in `ps`).
 * On start it prints one JSON line `{"event":"ready","node":...,"address":...}`; when it
 * drains `{"event":"draining"}`; when it stops `{"event":"stopped","empty":...}`.
 *
 * @module
 */
import { Effect } from "effect"
import { startNode } from "../cluster/MafaldaNode.js"
import { parseAddress } from "../cluster/NodeClients.js"
import { makeClient } from "../rpc/transport.js"

export const nodeUsage = `usage: mafalda node --secret S [options]
       mafalda node drain --address HOST:PORT [--secret S]
  Runs a Mafalda Node: local mediasoup Workers, registered with a lease in the cluster's
  Redis (the Tracker and the Index), serving the Node API over RPC, until SIGTERM or SIGINT
  (or a drain request): then it takes nothing new and exits once no client transport is
  left, or at the drain timeout. "drain" asks a running Node to do so.
  --secret S             the cluster's shared secret (or MAFALDA_SECRET, kept out of ps)
  --redis URL            the cluster's Redis (default redis://127.0.0.1:6379)
  --prefix P             the cluster's key prefix in Redis (default mafalda:)
  --listen HOST:PORT     where the RPC server listens (default 127.0.0.1:0, loopback only)
  --announced-ip IP      the IP other Nodes send pipe media to (default 127.0.0.1)
  --pipe-listen-ip IP    the IP PipeTransports listen on (default: the announced IP)
  --node ID              the Node's id (default: hostname, pid and a random suffix)
  --cpus N               Workers per set of settings at most (default: all CPUs)
  --drain-timeout S      seconds to wait for the last client transport (default 30)
  --idle-grace MS        closes a Worker started for a client once it has had no Router
                         for MS milliseconds (default 30000; 0: never)
  Prints one JSON line when ready: {"event":"ready","node":...,"address":...}.
  Logs on stderr: MAFALDA_LOG_LEVEL (default warning), MAFALDA_LOG_FORMAT (logfmt, json, pretty).
  A second SIGTERM or SIGINT while draining stops the process at once (its lease then
  runs out in the registry).`

const flag = (argv: ReadonlyArray<string>, name: string): string | undefined => {
  const i = argv.indexOf(name)
  return i >= 0 ? argv[i + 1] : undefined
}

const say = (event: Record<string, unknown>) => console.log(JSON.stringify(event))

const fail = (message: string): number => {
  console.error(`mafalda node: ${message}\n${nodeUsage}`)
  return 2
}

const drainRemote = async (argv: ReadonlyArray<string>, secret: string): Promise<number> => {
  const address = parseAddress(flag(argv, "--address") ?? "")
  if (address === undefined) return fail("--address HOST:PORT is required")
  const text = `${address.host}:${address.port}`
  const asked = await Effect.runPromise(
    Effect.scoped(Effect.flatMap(makeClient({ ...address, secret }), (client) => client.Drain())).pipe(
      Effect.timeout("10 seconds"),
      Effect.either
    )
  )
  if (asked._tag === "Left") {
    const e = asked.left as { readonly _tag?: string; readonly message?: string }
    console.error(`mafalda node drain: no drain at ${text}: ${e._tag ?? "Error"}: ${e.message ?? String(e)}`)
    return 1
  }
  say({ event: "drain-requested", address: text })
  return 0
}

const options = {
  node: [
    "--secret",
    "--redis",
    "--prefix",
    "--listen",
    "--announced-ip",
    "--pipe-listen-ip",
    "--node",
    "--cpus",
    "--drain-timeout",
    "--idle-grace"
  ],
  drain: ["--secret", "--address"]
}

/** The first argument that is not one of `known` followed by its value, if any. */
const unknownArgument = (argv: ReadonlyArray<string>, known: ReadonlyArray<string>): string | undefined => {
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i]!
    if (!known.includes(name)) return name
    const value = argv[i + 1]
    if (value === undefined || value.startsWith("--")) return `${name} (without its value)`
  }
  return undefined
}

export const runNodeCommand = async (argv: ReadonlyArray<string>): Promise<number> => {
  const draining = argv[0] === "drain"
  const rest = draining ? argv.slice(1) : argv
  const unknown = unknownArgument(rest, draining ? options.drain : options.node)
  if (unknown !== undefined) return fail(`unknown or incomplete option: ${unknown}`)
  const secret = flag(argv, "--secret") ?? process.env.MAFALDA_SECRET ?? ""
  if (secret === "") return fail("a cluster secret is required (--secret or MAFALDA_SECRET)")
  if (draining) return drainRemote(rest, secret)
  const listenText = flag(argv, "--listen") ?? "127.0.0.1:0"
  const match = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(listenText)
  if (match === null || Number(match[2]) > 65535) return fail(`--listen must be HOST:PORT, not ${listenText}`)
  const cpus = flag(argv, "--cpus") === undefined ? undefined : Number(flag(argv, "--cpus"))
  if (cpus !== undefined && (!Number.isInteger(cpus) || cpus < 1))
    return fail("--cpus must be a positive whole number")
  const drainTimeout = Number(flag(argv, "--drain-timeout") ?? 30)
  if (!Number.isFinite(drainTimeout) || drainTimeout < 0) return fail("--drain-timeout must be seconds >= 0")
  const idleGrace = Number(flag(argv, "--idle-grace") ?? 30_000)
  if (!Number.isFinite(idleGrace) || idleGrace < 0) return fail("--idle-grace must be milliseconds >= 0")
  if (secret.length < 16)
    console.error("warning: a cluster secret of fewer than 16 characters is easy to guess")

  const node = await startNode({
    secret,
    redis: flag(argv, "--redis"),
    prefix: flag(argv, "--prefix"),
    listenHost: match[1],
    listenPort: Number(match[2]),
    announcedIp: flag(argv, "--announced-ip"),
    pipeListenIp: flag(argv, "--pipe-listen-ip"),
    node: flag(argv, "--node"),
    cpus,
    idleGraceMillis: idleGrace
  })
  say({ event: "ready", node: node.node, address: node.address })

  return new Promise<number>((resolve) => {
    let stopping = false
    const stop = async () => {
      if (stopping) return
      stopping = true
      clearInterval(watch)
      say({ event: "draining", node: node.node })
      try {
        const { empty } = await node.drainAndClose(drainTimeout * 1000)
        say({ event: "stopped", node: node.node, empty })
        resolve(0)
      } catch (error) {
        console.error(error)
        resolve(1)
      }
    }
    process.once("SIGTERM", stop)
    process.once("SIGINT", stop)
    // A Drain request over RPC drains the process too.
    const watch = setInterval(() => {
      node.draining().then(
        (draining) => (draining ? stop() : undefined),
        () => undefined
      )
    }, 250)
  })
}
