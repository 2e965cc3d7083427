/**
 * The multi-machine acceptance scenario, on one machine: the app (this test process, a
 * Mafalda instance in cluster mode whose one Worker is filled by one transport) and three
 * `mafalda node` processes, A, B and C, over the real Redis (a prefix of the test's own).
 *
 * A producer fed with real RTP on a transport the core delegates to Node A; then consumer
 * transports, until A is over the watermark: the core, on the loads the Tracker (the Redis
 * `NodeRegistry`) holds, delegates them to B and C; the RTP reaches the consumers there
 * across PipeTransports between the processes (SRTP on). Then a second app process
 * (`fixtures/secondApp.ts`, with the first app's costs) finds the producer in the Index,
 * pipes it into its own Mafalda Router (`pipeFromCluster`) and consumes it on B or C, where
 * the first app piped it already: both apps' Routers there are the one Router of that
 * Worker, with one pipe into it, and RTP reaches both apps' consumers; the first app closing
 * its consumer transports there (its scale-down then lets go of its pipe and Router) does
 * not stop the second app's RTP; the Router closes when the second app, its last holder,
 * goes. Closing the producer closes every consumer of it, in both apps, with
 * `producerclose`. Afterwards no process, Worker, Redis key of the prefix or listening
 * socket is left.
 *
 * Also: the origin's Node killed closes the second app's pipe (`originclose`) and consumer
 * (`producerclose`); and without cluster mode, `mafalda.index` answers for the instance's
 * own producers and `pipeFromCluster` rejects with mediasoup's error kinds.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, HashMap, Option } from "effect"
import { build } from "esbuild"
import { types as mediasoupTypes, type types } from "mediasoup"
import { parseAddress } from "../../src/cluster/NodeClients.js"
import { RemoteTransport } from "../../src/cluster/RemoteTransport.js"
import { NodeId } from "../../src/core/Ids.js"
import { effectiveLoad, lookup } from "../../src/core/Snapshot.js"
import {
  indexedPayload,
  makeRtpPackets,
  makeRtpReceiver,
  payloadIndex,
  type RtpReceiver
} from "../../src/media/rtp.js"
import { processExists } from "../../src/media/worker.js"
import { createMafalda } from "../../src/promise.js"
import { makeClient } from "../../src/rpc/transport.js"
import { fedProducer, feedContinuously } from "./appMedia.js"
import { fullClusterApp, refused, until } from "./clusterSupport.js"
import { nodeArgs, nodeProcessPool } from "./nodeProcesses.js"
import { cleanPrefix, clusterStore, keysOf, redisAvailable, redisUrl, testPrefix } from "./redisSupport.js"

const secret = "three-nodes-secret-0123456789"
const prefix = testPrefix("three-nodes")
const deathPrefix = testPrefix("origin-death")
const nodes = nodeProcessPool()
const apps: Array<ChildProcess> = []
const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, "..", "..")

const opus = { kind: "audio", mimeType: "audio/opus", clockRate: 48000, channels: 2 } as const
const listenInfo = { protocol: "udp", ip: "127.0.0.1" } as const
const payloadType = 111
const watermark = 60

const startNode = async (name: string, onPrefix = prefix) => {
  return nodes.start(
    nodeArgs({ redis: redisUrl, prefix: onPrefix, node: name, cpus: 1, drainTimeoutSeconds: 1 }),
    { MAFALDA_SECRET: secret }
  )
}

/** The second app: its JSON lines, as they come, and its exit. */
/** `fixtures/secondApp.ts` as one ES module, bundled once (it starts in a second, not ten). */
let bundledApp: Promise<string> | undefined
const bundleSecondApp = (): Promise<string> => {
  bundledApp ??= (async () => {
    const outfile = join(root, ".cache", "multi", "secondApp.mjs")
    await build({
      entryPoints: [join(here, "fixtures", "secondApp.ts")],
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      outfile,
      external: ["mediasoup", "esbuild", "playwright-core"],
      banner: {
        js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);"
      },
      logLevel: "error"
    })
    return outfile
  })()
  return bundledApp
}

const spawnSecondApp = async (
  producer: string,
  node: string,
  onPrefix = prefix,
  closePipe = false,
  full?: { readonly sharedNodes: ReadonlyArray<string> }
) => {
  const child = spawn(process.execPath, [await bundleSecondApp()], {
    cwd: root,
    env: {
      ...process.env,
      MAFALDA_LOG_LEVEL: "warning",
      MAFALDA_SECRET: secret,
      MAFALDA_TEST_PREFIX: onPrefix,
      MAFALDA_TEST_REDIS: redisUrl,
      MAFALDA_TEST_PRODUCER: producer,
      MAFALDA_TEST_NODE: node,
      MAFALDA_TEST_CLOSE_PIPE: closePipe ? "1" : "0",
      MAFALDA_TEST_FULL: full === undefined ? "0" : "1",
      MAFALDA_TEST_SHARED_NODES: full?.sharedNodes.join(",") ?? "",
      MAFALDA_TEST_SPAWNED_AT: String(Date.now())
    },
    stdio: [full === undefined ? "ignore" : "pipe", "pipe", "pipe"]
  })
  apps.push(child)
  const events: Array<{ readonly event: string } & Record<string, unknown>> = []
  const output: Array<string> = []
  let buffered = ""
  child.stdout?.on("data", (chunk: Buffer) => {
    buffered += chunk.toString()
    const lines = buffered.split("\n")
    buffered = lines.pop() ?? ""
    for (const line of lines) {
      output.push(line)
      if (line.startsWith('{"event"')) events.push(JSON.parse(line))
    }
  })
  child.stderr?.on("data", (chunk: Buffer) => output.push(chunk.toString()))
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
  const next = (event: string, millis: number) =>
    Effect.gen(function* () {
      const seen = yield* until(
        () => events.some((e) => e.event === event) || child.exitCode !== null,
        millis
      )
      const found = events.find((e) => e.event === event)
      if (!seen || found === undefined) {
        throw new Error(`the second app did not report ${event}:\n${output.join("\n")}`)
      }
      return found
    })
  /** A line on its stdin (a full second app waits for one before `received-again`). */
  const proceed = () => void child.stdin?.write("go\n")
  return { child, events, output, exited, next, proceed }
}

/** The packets of `receiver` since `before` that carry indexes [first, first + count) intact. */
const intactSince = (receiver: RtpReceiver, before: number, ssrc: number, first: number, count: number) =>
  Effect.map(receiver.packets, (all) => {
    const intact = new Set<number>()
    for (const p of all.slice(before)) {
      const index = payloadIndex(p.payload)
      if (index === undefined || index < first || index >= first + count || p.ssrc !== ssrc) continue
      if (Buffer.from(p.payload).equals(Buffer.from(indexedPayload(index)))) intact.add(index)
    }
    return intact.size
  })

const recordEvents = (
  object: { on(e: string, l: () => void): unknown; observer: { on(e: string, l: () => void): unknown } },
  names: ReadonlyArray<string>
) => {
  const seen: Array<string> = []
  for (const name of names) object.on(name, () => seen.push(name))
  object.observer.on("close", () => seen.push("observer:close"))
  return seen
}

afterAll(async () => {
  for (const app of apps) if (app.exitCode === null && app.signalCode === null) app.kill("SIGKILL")
  await nodes.killAll()
  if (redisAvailable) for (const p of [prefix, deathPrefix]) await cleanPrefix(p)
})

describe("pipeFromCluster and the Index without cluster mode", () => {
  it("the Index answers for the instance's own producers; pipeFromCluster rejects with mediasoup's errors", async () => {
    const mafalda = await createMafalda({ cpus: 1 })
    try {
      const router = await mafalda.createRouter({ mediaCodecs: [opus] })
      const transport = await router.createPlainTransport({ listenInfo, comedia: true })
      const producer = await transport.produce({
        kind: "audio",
        rtpParameters: {
          codecs: [{ mimeType: "audio/opus", payloadType, clockRate: 48000, channels: 2 }],
          encodings: [{ ssrc: 1234 }]
        }
      })
      await Effect.runPromise(until(async () => (await mafalda.index.find(producer.id)) !== undefined, 2000))
      expect(await mafalda.index.find(producer.id)).toMatchObject({ producer: producer.id, kind: "audio" })
      expect(await mafalda.index.find("no-such-producer")).toBeUndefined()
      await expect(mafalda.index.find(42 as never)).rejects.toThrow(TypeError)
      await expect(router.pipeFromCluster({} as never)).rejects.toThrow(TypeError)
      await expect(router.pipeFromCluster({ producerId: producer.id })).rejects.toBeInstanceOf(
        mediasoupTypes.UnsupportedError
      )
      await expect(router.pipeFromCluster({ producerId: "another-process-producer" })).rejects.toThrow(
        "needs cluster mode"
      )
      router.close()
      await expect(router.pipeFromCluster({ producerId: "x" })).rejects.toBeInstanceOf(
        mediasoupTypes.InvalidStateError
      )
    } finally {
      await mafalda.close()
    }
  })
})

interface Egress {
  readonly transport: types.PlainTransport
  readonly node: NodeId
  readonly receiver: RtpReceiver
  readonly consumer: types.Consumer
  /** A's Worker in the app's snapshot just before the transport was placed. */
  readonly aBefore: { readonly effective: number; readonly ratio: number }
}

describe.skipIf(!redisAvailable)("Three Nodes, two apps", () => {
  it.scopedLive(
    "a producer on Node A, consumers placed on B and C once A is over the watermark, RTP across the processes; another app finds it in the Index and consumes it",
    () =>
      Effect.gen(function* () {
        const a = yield* Effect.promise(() => startNode("node-a"))
        const nodeA = NodeId.make(a.node)
        const clientA = yield* makeClient({ ...parseAddress(a.address)!, secret })
        const { registry, index } = yield* clusterStore(prefix)

        // The app: its one Worker full after one transport (never sampled: it stays full).
        const { mafalda, closeApp } = yield* fullClusterApp({
          secret,
          prefix,
          node: "app-1",
          options: { idleGraceMillis: 1000 }
        })
        const appRecord = (yield* registry.nodes).find((n) => n.node === "app-1")
        expect(yield* until(() => HashMap.has(mafalda.snapshot().nodes, nodeA), 3000)).toBe(true)
        const router = yield* Effect.promise(() => mafalda.createRouter({ mediaCodecs: [opus] }))
        const filler = yield* Effect.promise(() => router.createPlainTransport({ listenInfo, comedia: true }))
        expect(filler).not.toBeInstanceOf(RemoteTransport)
        const appWorkerPids = (yield* Effect.promise(() => mafalda.workers())).map((w) => w.pid)

        // The producer, fed with real RTP, on a transport the core delegates to Node A.
        const ssrc = 0x3a0de5
        const { ingress, producer, sender } = yield* fedProducer(router, ssrc)
        expect(ingress).toBeInstanceOf(RemoteTransport)
        expect((ingress as unknown as RemoteTransport).node).toBe(nodeA)
        // The Index, as every process of the cluster reads it: on A, the app's Mafalda Router.
        expect(yield* until(async () => (await mafalda.index.find(producer.id)) !== undefined, 3000)).toBe(
          true
        )
        expect(yield* Effect.promise(() => mafalda.index.find(producer.id))).toMatchObject({
          producer: producer.id,
          node: nodeA,
          kind: "audio"
        })
        const workerA = (yield* clientA.NodeInfo()).workers[0]!

        // B and C join; the app's snapshot learns of them from the registry.
        const [b, c] = yield* Effect.promise(() => Promise.all([startNode("node-b"), startNode("node-c")]))
        const nodeB = NodeId.make(b.node)
        const nodeC = NodeId.make(c.node)
        const clientB = yield* makeClient({ ...parseAddress(b.address)!, secret })
        const clientC = yield* makeClient({ ...parseAddress(c.address)!, secret })
        expect(
          yield* until(() => {
            const nodes = mafalda.snapshot().nodes
            return HashMap.has(nodes, nodeB) && HashMap.has(nodes, nodeC)
          }, 5000)
        ).toBe(true)

        // Consumer transports until A is over the watermark and the core has put them on
        // both B and C (A's reports lower its load again: it may take a few more meanwhile).
        const egresses: Array<Egress> = []
        const rtpCapabilities = router.rtpCapabilities
        while (
          egresses.length < 24 &&
          !(egresses.some((e) => e.node === nodeB) && egresses.some((e) => e.node === nodeC))
        ) {
          const w = lookup(mafalda.snapshot().workers, workerA.id)!
          const aBefore = { effective: effectiveLoad(w), ratio: w.ratio }
          const transport = yield* Effect.promise(() =>
            router.createPlainTransport({ listenInfo, rtcpMux: true, comedia: false })
          )
          expect(transport).toBeInstanceOf(RemoteTransport)
          const receiver = yield* makeRtpReceiver()
          yield* Effect.promise(() => transport.connect({ ip: "127.0.0.1", port: receiver.local.port }))
          const consumer = yield* Effect.promise(() =>
            transport.consume({ producerId: producer.id, rtpCapabilities })
          )
          const node = (transport as unknown as RemoteTransport).node
          egresses.push({ transport, node, receiver, consumer, aBefore })
        }
        console.log(
          `consumer transports: ${egresses
            .map(
              (e) =>
                `${e.node} (A before: ${e.aBefore.effective.toFixed(1)} %, ratio ${e.aBefore.ratio.toFixed(2)})`
            )
            .join(", ")}`
        )
        const onB = egresses.filter((e) => e.node === nodeB)
        const onC = egresses.filter((e) => e.node === nodeC)
        expect(onB.length).toBeGreaterThan(0)
        expect(onC.length).toBeGreaterThan(0)
        // Each transport the core put on B or C came when A had no room for it: A's Worker
        // at its effective load, plus the transport's cost (40 %, scaled by A's ratio), over
        // the watermark.
        for (const e of [...onB, ...onC]) {
          expect(e.aBefore.effective + 40 * e.aBefore.ratio).toBeGreaterThan(watermark)
        }
        // The Nodes' own view: B and C carry the consumer transports, A the producer's.
        const infoB = yield* clientB.NodeInfo()
        const infoC = yield* clientC.NodeInfo()
        expect(infoB.transports).toBe(onB.length)
        expect(infoC.transports).toBe(onC.length)
        expect((yield* clientA.NodeInfo()).transports).toBe(
          1 + egresses.filter((e) => e.node === nodeA).length
        )
        // The registry (the Tracker) lists their Workers with their loads.
        expect(
          yield* until(async () => {
            const records = await Effect.runPromise(registry.nodes)
            return [nodeA, nodeB, nodeC].every((n) => records.find((r) => r.node === n)?.workers.length === 1)
          }, 3000)
        ).toBe(true)
        // Pipes out of A's Router into B's and C's, SRTP between the processes.
        expect(infoB.pipes).toBeGreaterThan(0)
        expect(infoC.pipes).toBeGreaterThan(0)

        // RTP at every consumer, B's and C's across the pipes.
        const befores = yield* Effect.forEach(egresses, (e) =>
          Effect.map(e.receiver.packets, (p) => p.length)
        )
        yield* sender.sendAll(
          makeRtpPackets({ ssrc, payloadType, count: 100, firstSequenceNumber: 1 }).map((p, i) => ({
            ...p,
            payload: indexedPayload(i)
          })),
          { interval: "4 millis" }
        )
        yield* Effect.forEach(egresses, (e, i) =>
          e.receiver
            .awaitPackets(befores[i]! + 100, { timeout: "5 seconds" })
            .pipe(Effect.catchAll(() => Effect.void))
        )
        const intact = yield* Effect.forEach(egresses, (e, i) =>
          intactSince(e.receiver, befores[i]!, e.consumer.rtpParameters.encodings?.[0]?.ssrc ?? 0, 0, 100)
        )
        console.log(
          `RTP intact per consumer: ${egresses.map((e, i) => `${e.node} ${intact[i]}/100`).join(", ")}`
        )
        for (const n of intact) expect(n).toBeGreaterThanOrEqual(98)

        // The second app, with the first app's costs: its own Worker full after one
        // transport, its consumer transports on other Nodes until one lands on B or C, where
        // the first app piped the producer already. The Index answers there; it consumes the
        // producer through its own Mafalda Router. RTP is sent meanwhile.
        const t0 = Date.now()
        const mark = (what: string) =>
          console.log(`${what}: ${Date.now() - t0} ms after the second app started`)
        const second = yield* Effect.promise(() =>
          spawnSecondApp(producer.id, "app-2", prefix, false, { sharedNodes: [nodeB, nodeC] })
        )
        const feeding = yield* feedContinuously(sender, ssrc, 100)
        const app1Befores = yield* Effect.forEach(egresses, (e) =>
          Effect.map(e.receiver.packets, (p) => p.length)
        )
        const consuming = yield* second.next("consuming", 30_000)
        mark(`consuming (its steps, ms since it started: ${JSON.stringify(consuming.timings)})`)
        expect(consuming.unknown).toMatchObject({
          name: "TypeError",
          message: expect.stringContaining("Producer not found")
        })
        expect(consuming.location).toMatchObject({ producer: producer.id, node: nodeA, kind: "audio" })
        expect(consuming.samePipe).toBe(true)
        expect(consuming.pipe).toMatchObject({ id: producer.id, kind: "audio", srtp: true })
        expect(consuming.canConsume).toBe(true)
        const app2Record = (yield* registry.nodes).find((n) => n.node === "app-2")
        expect(app2Record).toBeDefined()
        const app2Consumers = consuming.consumers as Array<{ node: string; router?: string; ssrc: number }>
        console.log(
          `second app: pipe into ${(consuming.pipe as { node: string }).node}, its consumer transports on ${app2Consumers
            .map((c) => c.node)
            .join(", ")}`
        )
        // One of them on B or C, in the very Router the first app's consumers there use (one
        // Router per Worker and settings, shared), which receives the producer through the
        // first app's pipe: no second pipe into it.
        const sharedIndex = app2Consumers.findIndex((c) => c.node === nodeB || c.node === nodeC)
        expect(sharedIndex).toBeGreaterThanOrEqual(0)
        const shared = app2Consumers[sharedIndex]!
        const sharedNode = NodeId.make(shared.node)
        const app1There = egresses.filter((e) => e.node === sharedNode)
        expect(app1There.length).toBeGreaterThan(0)
        for (const e of app1There)
          expect((e.transport as unknown as RemoteTransport).routerId).toBe(shared.router)
        const clientShared = sharedNode === nodeB ? clientB : clientC
        const infoShared = yield* clientShared.NodeInfo()
        expect(infoShared.pipes).toBe((sharedNode === nodeB ? infoB : infoC).pipes)
        const app2There = app2Consumers.filter((c) => c.node === sharedNode).length
        expect(infoShared.transports).toBe(app1There.length + app2There)

        // RTP at both apps' consumers.
        const received = yield* second.next("received", 30_000)
        console.log(
          `second app: packets of the producer received per consumer: ${JSON.stringify(received.perConsumer)}`
        )
        for (const n of received.perConsumer as Array<number>) expect(n).toBeGreaterThanOrEqual(40)
        const app1Since = yield* Effect.forEach(egresses, (e, i) =>
          Effect.map(e.receiver.packets, (p) => p.length - app1Befores[i]!)
        )
        for (const n of app1Since) expect(n).toBeGreaterThanOrEqual(40)

        // The first app closes its consumer transports there; its scale-down lets go of its
        // pipe and Router there (its idle grace is 1 s): the second app's RTP goes on.
        // If the first app's pipe into the shared Router also feeds its Router on the other
        // Node (A -> B -> C, a tree the core may choose by load), the first app rightly keeps
        // the shared Router: it carries its pipe on. Otherwise it lets go of it.
        const sharedRouter = shared.router as never
        const hops = HashMap.get(mafalda.snapshot().trees, producer.id as never).pipe(
          Option.map((tree) => Array.from(HashMap.values(tree))),
          Option.getOrElse(() => [])
        )
        const feedsOn = hops.some((hop) => hop.parent === sharedRouter)
        for (const e of app1There) e.transport.close()
        if (feedsOn) {
          yield* Effect.sleep("4 seconds")
          expect(HashMap.has(mafalda.snapshot().routers, sharedRouter)).toBe(true)
          mark("app-1 keeps the shared Router: its pipe there feeds its Router on the other Node")
        } else {
          // (6.6-8.9 s on a quiet machine: two scale-down rounds, pipe then Router.)
          expect(yield* until(() => !HashMap.has(mafalda.snapshot().routers, sharedRouter), 30_000)).toBe(
            true
          )
          mark("app-1 let go of the shared Router")
          const afterRelease = yield* clientShared.NodeInfo()
          expect(afterRelease.transports).toBe(app2There)
          expect(afterRelease.pipes).toBe(infoShared.pipes)
        }
        const afterRelease = yield* clientShared.NodeInfo()
        // Another client of that Node asking for a Router there with these settings gets the
        // same; letting go of it leaves it to the second app.
        expect(afterRelease.workers.length).toBe(1)
        const sharedWorker = afterRelease.workers[0]!.id
        const third = yield* clientShared.CreateRouter({
          worker: sharedWorker,
          settings: { mediaCodecs: [opus] }
        })
        expect(third.id).toBe(shared.router)
        yield* clientShared.CloseRouter({ router: third.id })
        second.proceed()
        const again = yield* second.next("received-again", 30_000)
        console.log(
          `second app, after app-1 let go of the shared Router: packets received per consumer: ${JSON.stringify(again.perConsumer)}`
        )
        for (const n of again.perConsumer as Array<number>) expect(n).toBeGreaterThanOrEqual(40)
        yield* Fiber.interrupt(feeding)

        // The producer closes: every consumer of it, in both apps, closes with producerclose.
        const open = egresses.filter((e) => !app1There.includes(e))
        const consumerEvents = open.map((e) => recordEvents(e.consumer, ["producerclose", "transportclose"]))
        producer.close()
        expect(yield* until(() => open.every((e) => e.consumer.closed), 5000)).toBe(true)
        for (const seen of consumerEvents) expect(seen).toEqual(["producerclose", "observer:close"])
        mark("producer closed, app-1's consumers closed")
        const closed = yield* second.next("closed", 20_000)
        mark("app-2's consumers closed")
        for (const seen of closed.perConsumer as Array<Array<string>>) {
          expect(seen).toEqual(["producerclose", "observer:close"])
        }
        expect(closed.pipeEvents).toEqual(["originclose", "observer:close"])
        yield* second.next("exit", 20_000)
        expect(yield* Effect.promise(() => second.exited)).toBe(0)
        mark("app-2 exited")
        // Its last holder gone (the second app's connection ended), the shared Router closed:
        // asking again makes a new one (closed when this client lets go).
        const afterExit = yield* until(async () => {
          const r = await Effect.runPromise(
            clientShared.CreateRouter({ worker: sharedWorker, settings: { mediaCodecs: [opus] } })
          )
          await Effect.runPromise(clientShared.CloseRouter({ router: r.id }))
          return r.id !== shared.router
        }, 5000)
        expect(afterExit).toBe(true)
        expect(
          yield* until(
            async () => (await Effect.runPromise(index.find(producer.id as never))).pipe(Option.isNone),
            3000
          )
        ).toBe(true)

        // Everything closes: the app, the Nodes (SIGTERM: they drain and stop).
        const nodePids = [a, b, c].map((n) => n.process.pid)
        const workerPids = [
          ...appWorkerPids,
          ...(consuming.workers as Array<number>),
          ...[workerA, ...infoB.workers, ...infoC.workers].map((w) => w.pid)
        ]
        yield* closeApp
        for (const n of [a, b, c]) n.process.child.kill("SIGTERM")
        const exits = yield* Effect.promise(() => Promise.all([a, b, c].map((n) => n.process.exited)))
        for (const exit of exits) expect(exit.code).toBe(0)
        mark("app-1 closed, Nodes exited")
        for (const pid of nodePids) expect(processExists(pid)).toBe(false)
        expect(yield* until(() => workerPids.every((pid) => !processExists(pid)), 5000)).toBe(true)
        for (const address of [a.address, b.address, c.address, appRecord!.address, app2Record!.address]) {
          expect(yield* Effect.promise(() => refused(address))).toBe(true)
        }
        expect(yield* Effect.promise(() => keysOf(prefix))).toEqual([])
      }),
    120_000
  )
})

describe.skipIf(!redisAvailable)("pipeFromCluster, the origin's Node killed", () => {
  it.scopedLive(
    "an app closing its pipe closes its consumer and the pipe's end on A; another app's pipe closes with originclose when A dies, its consumer with producerclose; nothing leaks",
    () =>
      Effect.gen(function* () {
        const a = yield* Effect.promise(() => startNode("node-a", deathPrefix))
        const nodeA = NodeId.make(a.node)
        const clientA = yield* makeClient({ ...parseAddress(a.address)!, secret })
        const { registry, gone } = yield* clusterStore(deathPrefix)
        const { mafalda, closeApp } = yield* fullClusterApp({ secret, prefix: deathPrefix, node: "app-1" })
        expect(yield* until(() => HashMap.has(mafalda.snapshot().nodes, nodeA), 3000)).toBe(true)
        const router = yield* Effect.promise(() => mafalda.createRouter({ mediaCodecs: [opus] }))
        yield* Effect.promise(() => router.createPlainTransport({ listenInfo, comedia: true }))
        const ssrc = 0x0de7a
        const { ingress, producer, sender } = yield* fedProducer(router, ssrc)
        expect((ingress as unknown as RemoteTransport).node).toBe(nodeA)
        const producerEvents = recordEvents(producer, ["transportclose"])
        expect(yield* until(async () => (await mafalda.index.find(producer.id)) !== undefined, 3000)).toBe(
          true
        )
        const aWorkerPids = (yield* clientA.NodeInfo()).workers.map((w) => w.pid)
        const appWorkerPids = (yield* Effect.promise(() => mafalda.workers())).map((w) => w.pid)

        const feeding = yield* feedContinuously(sender, ssrc, 0)

        // A first other app closes its pipe: its consumer goes with producerclose, and the
        // pipe's end on A with it.
        const first = yield* Effect.promise(() => spawnSecondApp(producer.id, "app-2", deathPrefix, true))
        yield* first.next("consuming", 30_000)
        expect((yield* clientA.NodeInfo()).pipes).toBe(1)
        expect((yield* first.next("received", 30_000)).intact).toBeGreaterThanOrEqual(40)
        const pipeClosed = yield* first.next("closed", 20_000)
        expect(pipeClosed.consumerEvents).toEqual(["producerclose", "observer:close"])
        expect(pipeClosed.pipeEvents).toEqual(["observer:close"])
        expect(
          yield* until(async () => (await Effect.runPromise(clientA.NodeInfo())).pipes === 0, 3000)
        ).toBe(true)
        expect(producer.closed).toBe(false)
        yield* first.next("exit", 20_000)
        expect(yield* Effect.promise(() => first.exited)).toBe(0)
        const firstWorkers = (yield* first.next("consuming", 0)).workers as Array<number>

        // Another app consumes it; then Node A dies.
        const second = yield* Effect.promise(() => spawnSecondApp(producer.id, "app-3", deathPrefix))
        const consuming = yield* second.next("consuming", 30_000)
        expect(consuming.location).toMatchObject({ producer: producer.id, node: nodeA })
        const app3Record = (yield* registry.nodes).find((n) => n.node === "app-3")
        const received = yield* second.next("received", 30_000)
        expect(received.intact).toBeGreaterThanOrEqual(40)
        yield* Fiber.interrupt(feeding)

        // Node A dies: the pipe into the second app goes with its lease, and with it the
        // consumer there; the first app's remote producer goes as under a dead Worker.
        const killedAt = Date.now()
        a.process.child.kill("SIGKILL")
        const closed = yield* second.next("closed", 20_000)
        console.log(
          `the second app's consumer closed within ${Date.now() - killedAt} ms of SIGKILL of node-a`
        )
        expect(closed.consumerEvents).toEqual(["producerclose", "observer:close"])
        expect(closed.pipeEvents).toEqual(["originclose", "observer:close"])
        yield* second.next("exit", 20_000)
        expect(yield* Effect.promise(() => second.exited)).toBe(0)
        expect(yield* until(() => producer.closed, 5000)).toBe(true)
        expect(producerEvents).toEqual(["transportclose", "observer:close"])

        // A is evicted; everything else closes; nothing is left.
        // (app-2 and app-3 left the registry already, when they closed.)
        const eviction = yield* gone.take.pipe(
          Effect.repeat({ until: (g) => g.node === nodeA }),
          Effect.timeout("6 seconds")
        )
        expect(eviction.node).toBe(nodeA)
        yield* Effect.promise(() => a.process.exited)
        yield* closeApp
        const workerPids = [
          ...aWorkerPids,
          ...appWorkerPids,
          ...firstWorkers,
          ...(consuming.workers as Array<number>)
        ]
        expect(yield* until(() => workerPids.every((pid) => !processExists(pid)), 5000)).toBe(true)
        expect(processExists(a.process.pid)).toBe(false)
        for (const address of [a.address, app3Record!.address]) {
          expect(yield* Effect.promise(() => refused(address))).toBe(true)
        }
        expect(yield* until(async () => (await keysOf(deathPrefix)).length === 0, 3000)).toBe(true)
      }),
    60_000
  )
})
