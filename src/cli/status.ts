/**
 * `mafalda status --url URL`: prints the status of a running Mafalda instance, read from
 * its live view (`/status`; see the `OpsServer` layer, or the `ops` option).
 *
 * @module
 */
import type { OpsStatus } from "../ops/status.js"

export const statusUsage = `usage: mafalda status --url URL [--json]
  Prints the status of a running Mafalda instance: its Workers and their loads, rooms, stream
  trees and pipes. URL is the instance's live view (e.g. http://127.0.0.1:9464), which it
  serves when created with the ops option (createMafalda({ ops: { port: 9464 } })) or the
  OpsServer layer.
  --url URL   the live view's address (or its /status)
  --json      print the status as one JSON object`

const plural = (n: number, one: string, many = `${one}s`) =>
  `${n.toLocaleString("en-US")} ${n === 1 ? one : many}`

interface Hop {
  readonly router: string
  readonly worker: string | undefined
  readonly parent: string | null
  readonly depth: number
  readonly consumers: number
}

/** A stream tree as indented text lines, children under their parent. */
export const treeLines = (hops: ReadonlyArray<Hop>, indent = "  "): Array<string> => {
  const out: Array<string> = []
  const known = new Set(hops.map((h) => h.router))
  const children = new Map<string | null, Array<Hop>>()
  for (const hop of hops) {
    const parent = hop.parent !== null && known.has(hop.parent) ? hop.parent : null
    children.set(parent, [...(children.get(parent) ?? []), hop])
  }
  const walk = (parent: string | null, pad: string) => {
    for (const hop of children.get(parent) ?? []) {
      out.push(
        `${pad}router ${hop.router} on ${hop.worker ?? "?"}: depth ${hop.depth}, ${plural(hop.consumers, "consumer")}`
      )
      walk(hop.router, `${pad}  `)
    }
  }
  walk(null, indent)
  return out
}

/** The status as text. */
export const formatStatus = (s: OpsStatus): string => {
  const t = s.totals
  const out = [
    `Node ${s.node}: ${[
      plural(t.workers, "Worker"),
      plural(t.rooms, "room"),
      plural(t.transports, "transport"),
      plural(t.producers, "producer"),
      plural(t.consumers, "consumer"),
      plural(t.pipes, "pipe")
    ].join(", ")}; deepest tree ${plural(t.treeDepthMax, "hop")}${
      s.watermark === undefined ? "" : ` (watermark ${s.watermark} %)`
    }`,
    "",
    "Workers:"
  ]
  for (const w of s.workers) {
    out.push(
      `  ${w.id} (pid ${w.pid ?? "-"}): load ${w.load.toFixed(1)} %, ${plural(w.routers.length, "Router")}, ` +
        `${plural(w.transports, "transport")}, ${plural(w.producers, "producer")}, ${plural(w.consumers, "consumer")}`
    )
  }
  out.push("", "Rooms:")
  for (const r of s.rooms) {
    out.push(
      `  ${r.id}: ${plural(r.routers.length, "Router")} on ${plural(r.workers.length, "Worker")}, ` +
        `${plural(r.transports, "transport")}, ${plural(r.producers, "producer")}, ${plural(r.consumers, "consumer")}`
    )
  }
  out.push("", "Stream trees:")
  for (const tree of s.trees) {
    out.push(
      `  producer ${tree.producer} (${tree.kind ?? "?"}, room ${tree.room ?? "?"}): ${plural(tree.hops.length, "Router")}`
    )
    out.push(...treeLines(tree.hops, "    "))
  }
  return out.join("\n")
}

const isStatus = (u: unknown): u is OpsStatus =>
  typeof u === "object" &&
  u !== null &&
  Array.isArray((u as OpsStatus).workers) &&
  Array.isArray((u as OpsStatus).trees) &&
  typeof (u as OpsStatus).totals === "object"

export const runStatusCommand = async (argv: ReadonlyArray<string>): Promise<number> => {
  let url: string | undefined
  let json = false
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === "--url") url = argv[++i]
    else if (a === "--json") json = true
    else {
      console.error(`mafalda status: unknown argument ${a}\n${statusUsage}`)
      return 2
    }
  }
  let target: URL
  try {
    if (url === undefined) throw new Error("missing")
    target = new URL(url)
    if (target.protocol !== "http:" && target.protocol !== "https:") throw new Error("not http")
  } catch {
    console.error(
      `mafalda status: ${url === undefined ? "--url is required" : `--url ${url} is not an http(s) URL`}\n${statusUsage}`
    )
    return 2
  }
  if (!target.pathname.endsWith("/status")) target.pathname = `${target.pathname.replace(/\/$/, "")}/status`
  let body: unknown
  try {
    const response = await fetch(target, { signal: AbortSignal.timeout(10_000) })
    if (!response.ok) throw new Error(`HTTP ${response.status} ${response.statusText}`)
    body = await response.json()
  } catch (error) {
    const cause = (error as { cause?: { message?: string } }).cause?.message
    console.error(
      `mafalda status: cannot read ${target.href}: ${error instanceof Error ? error.message : String(error)}${
        cause === undefined ? "" : ` (${cause})`
      }`
    )
    return 1
  }
  if (!isStatus(body)) {
    console.error(`mafalda status: ${target.href} did not answer with a Mafalda status`)
    return 1
  }
  console.log(json ? JSON.stringify(body) : formatStatus(body))
  return 0
}
