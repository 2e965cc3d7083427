/**
 * The `examples/room` app, written against plain mediasoup, run twice with headless Chromium
 * clients (mediasoup-client, fake camera and microphone): as it is, and with its one import
 * swapped for `mafalda/mediasoup` (here the sources of it). Both times media flows both ways
 * through a WebRtcServer, the room's data channel delivers, and `dump()` answers; with
 * Mafalda the send and receive transports land on two Workers (each its WebRtcServer
 * instance) and the stream is piped between them. Every Worker process is gone afterwards.
 */
import * as dgram from "node:dgram"
import { readFile, writeFile } from "node:fs/promises"
import * as net from "node:net"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect } from "@effect/vitest"
import { Effect } from "effect"
import type { InboundRtpStats, PageRunResult } from "../page/protocol.js"
import {
  awaitMediaFlowing,
  expectPageReceivedBoth,
  itWithChromium,
  loadTestPage,
  openAndRunClient
} from "../support/chromiumPage.js"

const root = fileURLToPath(new URL("../../", import.meta.url))
const appSource = join(root, "examples", "room", "server.ts")

type Variant = "mediasoup" | "mafalda/mediasoup"

/**
 * The app module for a variant: the example itself, or a copy beside it whose one import is
 * `mafalda/mediasoup` (resolved to the sources of it, as the package export resolves to the build).
 */
const loadApp = async (variant: Variant) => {
  if (variant === "mediasoup") return import("../../examples/room/server.js")
  const source = await readFile(appSource, "utf8")
  const swapped = source.replace(
    'import * as mediasoup from "mediasoup"',
    'import * as mediasoup from "mafalda/mediasoup"'
  )
  expect(swapped).not.toBe(source)
  const copy = join(root, "examples", "room", ".server.mafalda.ts")
  await writeFile(
    copy,
    swapped.replace(
      /^import \* as mediasoup from "mafalda\/mediasoup"$/m,
      `import * as mediasoup from ${JSON.stringify(join(root, "src", "mediasoup", "index.ts"))}`
    )
  )
  return (await import(/* @vite-ignore */ copy)) as typeof import("../../examples/room/server.js")
}

/** Whether a port is free on 127.0.0.1 for TCP and for UDP (bound and released at once). */
const portFree = async (port: number): Promise<boolean> => {
  const tcp = await new Promise<boolean>((resolve) => {
    const server = net.createServer()
    server.once("error", () => resolve(false))
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)))
  })
  if (!tcp) return false
  return new Promise<boolean>((resolve) => {
    const socket = dgram.createSocket("udp4")
    socket.once("error", () => resolve(false))
    socket.bind(port, "127.0.0.1", () => socket.close(() => resolve(true)))
  })
}

/**
 * A base port with `count` consecutive ports free for TCP and UDP (the app's WebRtcServers
 * listen on `webRtcPort + i`), picked at run time: a fixed port may be held by an earlier
 * test's transport (every Worker's RTC range covers it) or linger in TIME_WAIT.
 */
const freePorts = async (count: number): Promise<number> => {
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = 61000 + Math.floor(Math.random() * 4000)
    let free = true
    for (let i = 0; i < count && free; i++) free = await portFree(base + i)
    if (free) return base
  }
  throw new Error(`no ${count} consecutive free ports found`)
}

const api = async (url: string, endpoint: string, body: unknown = {}) => {
  const response = await fetch(`${url}api/${endpoint}?room=lobby`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body)
  })
  if (!response.ok) throw new Error(`${endpoint}: ${response.status} ${await response.text()}`)
  return response.json() as Promise<unknown>
}

interface Outcome {
  readonly run: PageRunResult
  readonly inbound: ReadonlyArray<InboundRtpStats>
  readonly messages: ReadonlyArray<string>
  readonly dump: { readonly router: { readonly transportIds: ReadonlyArray<string> } }
  readonly workersUsed: number
}

const scenario = (variant: Variant) => (session: { workerPids: Array<number>; pageLog: Array<string> }) =>
  Effect.gen(function* () {
    const app = yield* Effect.promise(() => loadApp(variant))
    let workersUsed = 2
    if (variant === "mafalda/mediasoup") {
      const mafalda = yield* Effect.promise(() => import("../../src/mediasoup/index.js"))
      // A transport costs 16 % under a 50 % watermark: the room's two DirectTransports and the
      // client's send transport fill one Worker, its receive transport goes to the other.
      mafalda.configure({
        maxWorkers: 2,
        watermark: 50,
        costs: { transport: 16 },
        samplingInterval: 3_600_000
      })
    }
    const page = yield* loadTestPage
    const webRtcPort = yield* Effect.promise(() => freePorts(2))
    const server = yield* Effect.acquireRelease(
      Effect.promise(() => app.startRoomServer({ page, numWorkers: 2, webRtcPort })),
      (s) => Effect.promise(() => s.close())
    )
    for (const w of server.workers()) session.workerPids.push(w.pid)
    const { page: browser, run } = yield* openAndRunClient(server.url, session.pageLog)
    const inbound = yield* awaitMediaFlowing(browser)
    yield* Effect.promise(() => api(server.url, "chat", { text: "hello room" }))
    let messages: ReadonlyArray<string> = []
    for (let i = 0; i < 50 && messages.length === 0; i++) {
      messages = (yield* Effect.promise(() => api(server.url, "messages"))) as ReadonlyArray<string>
      if (messages.length === 0) yield* Effect.sleep("50 millis")
    }
    const dump = (yield* Effect.promise(() => api(server.url, "dump"))) as Outcome["dump"]
    if (variant === "mafalda/mediasoup") {
      const mafalda = yield* Effect.promise(() => import("../../src/mediasoup/index.js"))
      const instance = yield* Effect.promise(() => mafalda.mafalda()!)
      const status = yield* Effect.promise(() => instance.status())
      workersUsed = status.workers.filter((w) => w.transports > 0).length
      expect(status.pipes.length).toBeGreaterThan(0)
      // The processes it used are those of the two Workers: the same pids.
      expect(new Set(status.workers.map((w) => w.pid))).toEqual(new Set(session.workerPids))
    }
    return { run, inbound, messages, dump, workersUsed } satisfies Outcome
  })

const check = (outcome: Outcome) => {
  expectPageReceivedBoth(outcome.run, outcome.inbound)
  expect(outcome.messages).toEqual(["hello room"])
  // The client's two WebRtcTransports and the room's two DirectTransports.
  expect(outcome.dump.router.transportIds).toHaveLength(4)
  expect(outcome.workersUsed).toBe(2)
}

describe("examples/room, unchanged, with one import swapped", () => {
  itWithChromium("runs on mediasoup: media both ways, data channel, dump()", scenario("mediasoup"), check)
  itWithChromium(
    "runs on mafalda/mediasoup: the same, its transports on two Workers with one WebRtcServer each, piped",
    scenario("mafalda/mediasoup"),
    check
  )
})
