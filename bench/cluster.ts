/**
 * Benchmark of Mafalda across processes (issue 8): real Redis (a key prefix of its own,
 * deleted afterwards), a real `mafalda node` process (node-b) and this process as the app, a
 * Mafalda instance in cluster mode (`createMafalda({ cluster })`) whose one Worker is full
 * after two transports, so that the next ones are delegated to node-b.
 *
 * - `consume.local`: `consume()` on a transport of the app's Node of a producer its Router
 *   has (no pipe); `consume.crossNode`: `consume()` on a transport delegated to node-b of
 *   the same producer, already piped into node-b's Router (one RPC and the bookkeeping);
 *   blocks of 20 alternating, each consumer closed after its block.
 *   `consume.crossNodeWithPipe`: the first `consume()` on node-b of a new producer of the
 *   app's: the pipe handshake across the processes (SRTP) included.
 * - `trackerPicksPerSecond`: "which Node has room?" (`NodeRegistry.pick`, one Lua script on
 *   Redis that also charges a reservation) answered per second, 16 in flight; one at a
 *   time too (`trackerPicks.sequentialPerSecond`).
 * - `nodeDeathDetectionMs`: from node-b's SIGKILL to its eviction from the registry (its
 *   lease runs out 3 s after its last report, made every second; the reaper looks every
 *   250 ms); `nodeDeath.routercloseMs`: to the app-side `routerclose` of its transport there
 *   (its RPC socket closes); `nodeDeath.appSnapshotMs`: until node-b left the app's snapshot.
 *   Picks charge reservations (cost 1 % each) until the Nodes' next reports: many answers
 *   are "no room" (`trackerPicks.noRoomAnswers`), answered by the same script.
 *
 * Every Node process is killed in a `finally`, and checked gone with its Workers, the app's
 * Workers too; the Redis keys of the prefix are deleted and checked gone. The machine's load
 * average is printed with the figures: on a loaded machine the timings are noisy.
 *
 *   node --import tsx bench/cluster.ts          a table
 *   node --import tsx bench/cluster.ts --json   one JSON object
 */
import { randomUUID } from "node:crypto"
import { cpus, loadavg } from "node:os"
import { performance } from "node:perf_hooks"
import { setTimeout as sleep } from "node:timers/promises"
import { Effect, HashMap, Layer, ManagedRuntime, Option, Queue } from "effect"
import type { types } from "mediasoup"
import { createClient } from "redis"
import { parseAddress } from "../src/cluster/NodeClients.js"
import { RemoteTransport } from "../src/cluster/RemoteTransport.js"
import { NodeId, SettingsKey } from "../src/core/Ids.js"
import * as RegistryRedis from "../src/layers/NodeRegistryRedis.js"
import * as RedisConnection from "../src/layers/RedisConnection.js"
import { processExists } from "../src/media/worker.js"
import { createMafalda, type MafaldaInstance } from "../src/promise.js"
import { makeClient } from "../src/rpc/transport.js"
import { defaultLeaseMillis, defaultReapMillis, NodeRegistry } from "../src/services/NodeRegistry.js"
import { type NodeProcess, spawnNode } from "../test/multi/nodeProcesses.js"

const json = process.argv.includes("--json")
const redisUrl = process.env.MAFALDA_BENCH_REDIS ?? "redis://127.0.0.1:6379"
const prefix = `mafalda-bench:cluster:${randomUUID().slice(0, 8)}:`
const secret = `bench-${randomUUID()}`

/** Consumes per side, in alternating blocks. */
const CONSUMES = 200
const BLOCK = 20
/** First consumes on node-b of new producers (each with its pipe handshake). */
const PIPED = 20
const SEQUENTIAL_PICK_MILLIS = 2000
const CONCURRENT_PICK_MILLIS = 3000
const PICK_CONCURRENCY = 16

const opus = { kind: "audio", mimeType: "audio/opus", clockRate: 48000, channels: 2 } as const
const listenInfo = { protocol: "udp", ip: "127.0.0.1" } as const
const rtpParameters = (ssrc: number): types.RtpParameters => ({
  codecs: [{ mimeType: "audio/opus", payloadType: 111, clockRate: 48000, channels: 2 }],
  encodings: [{ ssrc }]
})

const log = (line: string) => {
  if (!json) console.log(line)
}

const stats = (samples: ReadonlyArray<number>) => {
  const sorted = [...samples].sort((a, b) => a - b)
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN
  const round = (x: number) => Math.round(x * 1000) / 1000
  return {
    n: sorted.length,
    medianMs: round(at(0.5)),
    p95Ms: round(at(0.95)),
    maxMs: round(sorted.at(-1) ?? 0)
  }
}

/** Deletes the keys of the prefix; how many are left afterwards. */
const cleanPrefix = async (): Promise<number> => {
  const client = createClient({ url: redisUrl })
  client.on("error", () => {})
  await client.connect()
  try {
    const keys = async () => {
      const found: Array<string> = []
      for await (const batch of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 }))
        found.push(...(batch as Array<string>))
      return found
    }
    const all = await keys()
    if (all.length > 0) await client.unlink(all)
    return (await keys()).length
  } finally {
    await client.close()
  }
}

const until = async (check: () => boolean | Promise<boolean>, millis: number): Promise<boolean> => {
  const deadline = Date.now() + millis
  while (!(await check())) {
    if (Date.now() > deadline) return false
    await sleep(10)
  }
  return true
}

const main = async () => {
  const loadBefore = loadavg()
  const started: Array<NodeProcess> = []
  const workerPids: Array<number> = []
  const nodeWorkerPids: Array<number> = []
  let mafalda: MafaldaInstance | undefined
  const store = ManagedRuntime.make(
    RegistryRedis.layerRedis({}).pipe(Layer.provide(RedisConnection.layer({ url: redisUrl, prefix })))
  )
  const result: Record<string, unknown> = {}
  try {
    // node-b: a `mafalda node` process; the app: this process.
    const b = await spawnNode(
      ["--redis", redisUrl, "--prefix", prefix, "--node", "node-b", "--cpus", "2", "--drain-timeout", "1"],
      { MAFALDA_SECRET: secret }
    )
    started.push(b)
    const readyB = await b.ready
    const nodeB = NodeId.make(readyB.node)
    mafalda = await createMafalda({
      cpus: 1,
      watermark: 60,
      // Two transports fill the app's one Worker; its load is not sampled meanwhile (measured
      // CPU would replace the costs charged), so the next transports go to node-b.
      costs: { transport: 25 },
      samplingInterval: 600_000,
      cluster: { secret, redis: redisUrl, prefix, node: "bench-app", heartbeatMillis: 250, syncMillis: 100 }
    })
    const app = mafalda
    if (!(await until(() => HashMap.has(app.snapshot().nodes, nodeB), 5000)))
      throw new Error("the app never saw node-b")
    const router = await app.createRouter({ mediaCodecs: [opus] })
    const ingress = await router.createPlainTransport({ listenInfo, comedia: true })
    const local = await router.createPlainTransport({ listenInfo, comedia: true })
    const remote = await router.createPlainTransport({ listenInfo, comedia: true })
    const isRemote = (t: object) => t instanceof RemoteTransport
    if (isRemote(ingress) || isRemote(local) || !isRemote(remote))
      throw new Error(
        `expected two transports on the app's Node and the third on node-b: ${[ingress, local, remote].map(isRemote)}`
      )
    for (const w of await app.workers()) workerPids.push(w.pid)
    const infoB = await Effect.runPromise(
      Effect.scoped(
        Effect.flatMap(makeClient({ ...parseAddress(readyB.address)!, secret }), (client) =>
          client.NodeInfo()
        )
      )
    )
    for (const w of infoB.workers) nodeWorkerPids.push(w.pid)
    let ssrc = 0x0b000000
    const producer = await ingress.produce({ kind: "audio", rtpParameters: rtpParameters(ssrc++) })
    const caps = router.rtpCapabilities
    // Warm-up: the pipe into node-b, and one consume each side.
    for (const t of [local, remote])
      (await t.consume({ producerId: producer.id, rtpCapabilities: caps })).close()

    const localMs: Array<number> = []
    const crossMs: Array<number> = []
    for (let i = 0; i < CONSUMES / BLOCK; i++) {
      const sides: Array<[types.Transport, Array<number>]> = [
        [local, localMs],
        [remote, crossMs]
      ]
      if (i % 2 === 1) sides.reverse()
      for (const [transport, samples] of sides) {
        const made: Array<types.Consumer> = []
        for (let k = 0; k < BLOCK; k++) {
          const t0 = performance.now()
          made.push(await transport.consume({ producerId: producer.id, rtpCapabilities: caps }))
          samples.push(performance.now() - t0)
        }
        for (const c of made) c.close()
        await sleep(25)
      }
    }
    const pipedMs: Array<number> = []
    for (let i = 0; i < PIPED; i++) {
      const p = await ingress.produce({ kind: "audio", rtpParameters: rtpParameters(ssrc++) })
      const t0 = performance.now()
      const c = await remote.consume({ producerId: p.id, rtpCapabilities: caps })
      pipedMs.push(performance.now() - t0)
      c.close()
      p.close()
      await sleep(25)
    }
    result.consume = { local: stats(localMs), crossNode: stats(crossMs), crossNodeWithPipe: stats(pipedMs) }
    log(`consume() (ms)            n    median   p95      max`)
    for (const [name, s] of Object.entries(result.consume as Record<string, ReturnType<typeof stats>>))
      log(
        `  ${name.padEnd(22)}${String(s.n).padStart(4)}  ${s.medianMs.toFixed(2).padStart(7)}  ${s.p95Ms.toFixed(2).padStart(7)}  ${s.maxMs.toFixed(2).padStart(7)}`
      )

    // "Which Node has room?" on the real Redis, as the Tracker answers it.
    const registry = await store.runPromise(NodeRegistry)
    const records = await store.runPromise(registry.nodes)
    const settings =
      records.find((r) => r.node === nodeB)?.workers[0]?.settings ?? SettingsKey.make("default")
    const request = { workerSettings: settings, cost: 1, watermark: 85 }
    let answered = 0
    let none = 0
    const pickOnce = registry.pick(request).pipe(
      Effect.tap((picked) =>
        Effect.sync(() => {
          answered++
          if (Option.isNone(picked)) none++
        })
      )
    )
    const picksFor = (millis: number, concurrency: number) =>
      Effect.gen(function* () {
        const deadline = performance.now() + millis
        let n = 0
        const worker = Effect.whileLoop({
          while: () => performance.now() < deadline,
          body: () => Effect.map(pickOnce, () => void n++),
          step: () => undefined
        })
        const t0 = performance.now()
        yield* Effect.all(
          Array.from({ length: concurrency }, () => worker),
          { concurrency: "unbounded" }
        )
        return (n * 1000) / (performance.now() - t0)
      })
    const sequential = await store.runPromise(picksFor(SEQUENTIAL_PICK_MILLIS, 1))
    const concurrent = await store.runPromise(picksFor(CONCURRENT_PICK_MILLIS, PICK_CONCURRENCY))
    result.trackerPicksPerSecond = Math.round(concurrent)
    result.trackerPicks = {
      concurrency: PICK_CONCURRENCY,
      concurrentPerSecond: Math.round(concurrent),
      sequentialPerSecond: Math.round(sequential),
      answered,
      noRoomAnswers: none
    }
    log(
      `Tracker picks per second: ${Math.round(concurrent)} (${PICK_CONCURRENCY} in flight), ${Math.round(sequential)} one at a time (${answered} answers, ${none} "no room")`
    )

    // node-b is killed: the app's transport there closes when its socket does; the registry
    // evicts it when its lease runs out.
    const bWorkers = (await store.runPromise(registry.node(nodeB).pipe(Effect.map(Option.getOrUndefined))))
      ?.workers.length
    let routercloseAt: number | undefined
    remote.on("routerclose", () => {
      routercloseAt = performance.now()
    })
    const death = await store.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const gone = yield* registry.subscribe
          const killedAt = performance.now()
          b.child.kill("SIGKILL")
          for (;;) {
            const g = yield* Queue.take(gone).pipe(Effect.timeout("20 seconds"))
            if (g.node === nodeB) return { killedAt, evictedAt: performance.now(), reason: g.reason }
          }
        })
      )
    )
    await until(() => !HashMap.has(app.snapshot().nodes, nodeB), 5000)
    const leftSnapshotAt = performance.now()
    result.nodeDeathDetectionMs = Math.round(death.evictedAt - death.killedAt)
    result.nodeDeath = {
      evictionMs: Math.round(death.evictedAt - death.killedAt),
      reason: death.reason,
      routercloseMs: routercloseAt === undefined ? null : Math.round(routercloseAt - death.killedAt),
      appSnapshotMs: Math.round(leftSnapshotAt - death.killedAt),
      leaseMillis: defaultLeaseMillis,
      reapMillis: defaultReapMillis,
      workersOfNode: bWorkers
    }
    log(
      `node-b SIGKILL -> evicted (${death.reason}) ${result.nodeDeathDetectionMs} ms, app-side routerclose ${
        routercloseAt === undefined ? "never" : `${Math.round(routercloseAt - death.killedAt)} ms`
      }, out of the app's snapshot ${Math.round(leftSnapshotAt - death.killedAt)} ms (lease ${defaultLeaseMillis} ms from its last report, made every 1000 ms; reaper every ${defaultReapMillis} ms)`
    )
  } finally {
    // Nothing may outlive the benchmark: the app, every Node process and their Workers.
    await mafalda?.close().catch(() => undefined)
    for (const p of started) if (!p.hasExited()) p.child.kill("SIGKILL")
    await Promise.all(started.map((p) => p.exited))
    await store.dispose()
    const allPids = [...started.map((p) => p.pid), ...workerPids, ...nodeWorkerPids]
    await until(() => allPids.every((pid) => !processExists(pid)), 5000)
    result.processesLeft = allPids.filter((pid) => processExists(pid)).length
    result.redisKeysLeft = await cleanPrefix()
  }
  const loadAfter = loadavg()
  result.machine = {
    cpus: cpus().length,
    loadAverageBefore: loadBefore.map((x) => Math.round(x * 100) / 100),
    loadAverageAfter: loadAfter.map((x) => Math.round(x * 100) / 100)
  }
  log(`processes left: ${result.processesLeft}, Redis keys of the prefix left: ${result.redisKeysLeft}`)
  log(
    `machine: ${cpus().length} CPUs, load average ${loadBefore.map((x) => x.toFixed(2)).join(" ")} before, ${loadAfter
      .map((x) => x.toFixed(2))
      .join(" ")} after (timings are noisy on a loaded machine)`
  )
  if (json) console.log(JSON.stringify(result))
  if (result.processesLeft !== 0 || result.redisKeysLeft !== 0) process.exitCode = 1
}

await main()
