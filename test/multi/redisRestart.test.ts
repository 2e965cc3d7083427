/**
 * A real Redis restart, the worst case: this test starts its own `redis-server` (a free port
 * on 127.0.0.1, no RDB, no AOF, its own directory), then two `mafalda node` processes and an
 * app in cluster mode against it. Real RTP flows across the Nodes: a producer on Node A
 * piped into B and consumed there, and a producer on the app's Node consumed on a transport
 * the app's Mafalda Router delegated to another Node. Then the redis-server is killed
 * (SIGKILL) and started again on the same port: it comes back EMPTY. The media keeps
 * flowing during and after; every Node registers again, every producer is back in the
 * Index, and the app's Router still places (a new transport delegated, a new consume piped
 * across the Nodes). Afterwards no process (Nodes, Workers, redis-server), Redis key of the
 * prefix, listening socket or temporary directory is left.
 *
 * Without `redis-server` the test is skipped, loudly; under CI it fails.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { randomUUID } from "node:crypto"
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import * as net from "node:net"
import { tmpdir } from "node:os"
import { delimiter, join } from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Context, Effect, Exit, Fiber, HashMap, Layer, Option, Scope } from "effect"
import { createClient } from "redis"
import { parseAddress } from "../../src/cluster/NodeClients.js"
import { RemoteTransport } from "../../src/cluster/RemoteTransport.js"
import { NodeId } from "../../src/core/Ids.js"
import * as IndexRedis from "../../src/layers/IndexServiceRedis.js"
import * as RegistryRedis from "../../src/layers/NodeRegistryRedis.js"
import * as RedisConnection from "../../src/layers/RedisConnection.js"
import { makeRtpReceiver } from "../../src/media/rtp.js"
import { processExists } from "../../src/media/worker.js"
import { createMafalda, type MafaldaInstance } from "../../src/promise.js"
import { makeClient } from "../../src/rpc/transport.js"
import { IndexService } from "../../src/services/IndexService.js"
import { NodeRegistry } from "../../src/services/NodeRegistry.js"
import { isCI } from "../support/ci.js"
import { fedProducer, opusParameters } from "./appMedia.js"
import { keysAt, refusedAt, until } from "./checks.js"
import { type NodeProcess, nodeArgs, spawnNode } from "./nodeProcesses.js"
import { consumerOn, producerOn, routerOn, sendAndCount } from "./pipeScenario.js"

/** `redis-server`: `/usr/bin/redis-server`, or the first one on the PATH. */
const redisServer: string | undefined = ["/usr/bin", ...(process.env.PATH ?? "").split(delimiter)]
  .map((dir) => join(dir, "redis-server"))
  .find((path) => existsSync(path))

if (redisServer === undefined) {
  const message = `redis-server is not installed: the Redis restart test ${isCI() ? "fails" : "is skipped"}`
  if (isCI()) throw new Error(message)
  console.warn(`WARNING: ${message}`)
}

const secret = "redis-restart-secret-0123"
const prefix = `mafalda-test:restart:${randomUUID().slice(0, 8)}:`
const opus = { kind: "audio", mimeType: "audio/opus", clockRate: 48000, channels: 2 } as const
const listenInfo = { protocol: "udp", ip: "127.0.0.1" } as const

/** A port free now on 127.0.0.1 (bound to port 0, then closed). */
const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })

/** Whether a Redis answers PING on `port` (one raw connection, closed). */
const ping = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = net.connect(port, "127.0.0.1")
    let reply = ""
    const done = (answered: boolean) => {
      socket.destroy()
      resolve(answered)
    }
    socket.setTimeout(500, () => done(false))
    socket.once("error", () => done(false))
    socket.once("connect", () => socket.write("PING\r\n"))
    socket.on("data", (chunk) => {
      reply += chunk.toString()
      if (reply.includes("\r\n")) done(reply.startsWith("+PONG"))
    })
  })

interface RedisProcess {
  readonly child: ChildProcess
  readonly pid: number
  readonly exited: Promise<void>
  readonly hasExited: () => boolean
}

/** Starts `redis-server` on `port` with nothing persisted (a restart comes back empty). */
const startRedis = async (port: number, dir: string): Promise<RedisProcess> => {
  const child = spawn(
    redisServer!,
    [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--dir",
      dir,
      "--logfile",
      join(dir, "redis.log"),
      "--daemonize",
      "no"
    ],
    { stdio: "ignore" }
  )
  let exited = false
  const exit = new Promise<void>((resolve) =>
    child.once("exit", () => {
      exited = true
      resolve()
    })
  )
  if (child.pid === undefined) throw new Error("redis-server did not start")
  const deadline = Date.now() + 5000
  while (!(await ping(port))) {
    if (exited) throw new Error(`redis-server exited before it answered on ${port}`)
    if (Date.now() > deadline) throw new Error(`redis-server does not answer on ${port}`)
    await new Promise((r) => setTimeout(r, 10))
  }
  return { child, pid: child.pid, exited: exit, hasExited: () => exited }
}

/** A fresh node-redis client of `url` (no reconnection). */
const connect = async (url: string) => {
  const client = createClient({ url, socket: { connectTimeout: 1000, reconnectStrategy: false } })
  client.on("error", () => {})
  await client.connect()
  return client
}

/** Runs one command with a fresh client, closed afterwards. */
const redisCommand = async (url: string, args: Array<string>) => {
  const client = await connect(url)
  try {
    return await client.sendCommand(args)
  } finally {
    await client.close()
  }
}

/** The cluster's registry and Index on the Redis at `url`, as another process sees them, for the scope. */
const storeAt = (url: string) =>
  Effect.gen(function* () {
    const store = yield* Layer.build(
      Layer.mergeAll(RegistryRedis.layerRedis({ reapMillis: 100 }), IndexRedis.layerRedis).pipe(
        Layer.provide(RedisConnection.layer({ url, prefix }))
      )
    )
    return { registry: Context.get(store, NodeRegistry), index: Context.get(store, IndexService) }
  })

const dir = mkdtempSync(join(tmpdir(), "mafalda-redis-restart-"))
const redisProcesses: Array<RedisProcess> = []
const nodes: Array<NodeProcess> = []
let app: MafaldaInstance | undefined

afterAll(async () => {
  // Whatever a failure left behind.
  await app?.close().catch(() => undefined)
  for (const p of nodes) if (!p.hasExited()) p.child.kill("SIGKILL")
  await Promise.all(nodes.map((p) => p.exited))
  for (const r of redisProcesses) if (!r.hasExited()) r.child.kill("SIGKILL")
  await Promise.all(redisProcesses.map((r) => r.exited))
  rmSync(dir, { recursive: true, force: true })
  expect(existsSync(dir)).toBe(false)
})

describe.skipIf(redisServer === undefined)("a real Redis restart (empty)", () => {
  it.scopedLive(
    "media keeps flowing; every Node registers again, every producer is back in the Index, the app's Router still places",
    () =>
      Effect.gen(function* () {
        const port = yield* Effect.promise(() => freePort())
        const url = `redis://127.0.0.1:${port}`
        redisProcesses.push(yield* Effect.promise(() => startRedis(port, dir)))

        const startNode = async (name: string) => {
          const p = await spawnNode(
            nodeArgs({
              redis: url,
              prefix,
              listen: "127.0.0.1:0",
              node: name,
              cpus: 1,
              drainTimeoutSeconds: 1
            }),
            { MAFALDA_SECRET: secret }
          )
          nodes.push(p)
          return { process: p, ...(await p.ready) }
        }
        const [a, b] = yield* Effect.promise(() => Promise.all([startNode("node-a"), startNode("node-b")]))
        // The app: its own Node, its one Worker full after one transport, so that the next
        // transports are delegated to A or B.
        const mafalda = yield* Effect.promise(() =>
          createMafalda({
            cpus: 1,
            watermark: 60,
            costs: { transport: 40 },
            samplingInterval: 600_000,
            cluster: { secret, redis: url, prefix, node: "app-node", heartbeatMillis: 250, syncMillis: 100 }
          })
        )
        app = mafalda
        // The stores this test reads the cluster with: closed before the redis-server stops.
        const stores = yield* Scope.make()
        const { registry, index } = yield* Scope.extend(storeAt(url), stores)
        const all = ["app-node", "node-a", "node-b"]
        expect((yield* registry.nodes).map((n) => n.node).sort()).toEqual(all)
        const appAddress = (yield* registry.nodes).find((n) => n.node === "app-node")!.address
        const nodeA = NodeId.make(a.node)
        const nodeB = NodeId.make(b.node)
        expect(
          yield* until(
            () =>
              HashMap.has(mafalda.snapshot().nodes, nodeA) && HashMap.has(mafalda.snapshot().nodes, nodeB),
            3000
          )
        ).toBe(true)

        // Flow 1: a producer on A, piped into B (RPC handshake), consumed on B.
        const na = { node: nodeA, client: yield* makeClient({ ...parseAddress(a.address)!, secret }) }
        const nb = { node: nodeB, client: yield* makeClient({ ...parseAddress(b.address)!, secret }) }
        const ra = yield* routerOn(na)
        const rb = yield* routerOn(nb)
        const ssrcA = 0x7e57a001
        const onA = yield* producerOn(na, ra.id, ssrcA)
        yield* nb.client.PipeFrom({ producer: onA.producer.id, origin: nodeA, from: ra.id, to: rb.id })
        const onB = yield* consumerOn(nb, rb, onA.producer.id)
        const flowAB = {
          ssrc: ssrcA,
          expectedSsrc: onB.consumer.rtpParameters.encodings?.[0]?.ssrc ?? 0
        }
        expect(
          (yield* sendAndCount(onA.sender, onB.receiver, { ...flowAB, count: 50, first: 0 })).intact
        ).toBe(50)

        // Flow 2: a producer on the app's Node, consumed on a transport the app's Router
        // delegated to A or B (piped there).
        const router = yield* Effect.promise(() => mafalda.createRouter({ mediaCodecs: [opus] }))
        const ssrcApp = 0x7e57a002
        const { ingress, producer, sender: appSender } = yield* fedProducer(router, ssrcApp)
        expect(ingress).not.toBeInstanceOf(RemoteTransport)
        /** A transport delegated by the app's Router, consuming the app's producer, into a fresh receiver. */
        const remoteConsumer = Effect.gen(function* () {
          const receiver = yield* makeRtpReceiver()
          const egress = yield* Effect.tryPromise(() =>
            router.createPlainTransport({ listenInfo, rtcpMux: true, comedia: false })
          )
          expect(egress).toBeInstanceOf(RemoteTransport)
          yield* Effect.promise(() => egress.connect({ ip: "127.0.0.1", port: receiver.local.port }))
          const consumer = yield* Effect.promise(() =>
            egress.consume({ producerId: producer.id, rtpCapabilities: router.rtpCapabilities })
          )
          return {
            receiver,
            node: (egress as unknown as RemoteTransport).node,
            flow: { ssrc: ssrcApp, expectedSsrc: consumer.rtpParameters.encodings?.[0]?.ssrc ?? 0 }
          }
        })
        const remote = yield* remoteConsumer
        expect([nodeA, nodeB]).toContain(remote.node)
        expect(
          (yield* sendAndCount(appSender, remote.receiver, { ...remote.flow, count: 50, first: 0 })).intact
        ).toBe(50)

        // Both producers in the Index.
        const located = (id: string) =>
          Effect.map(
            index.find(id as never),
            Option.map((l) => l.node)
          )
        expect(yield* located(onA.producer.id)).toEqual(Option.some("node-a"))
        expect(yield* located(producer.id)).toEqual(Option.some("app-node"))

        const workerPids = [
          ...(yield* na.client.NodeInfo()).workers.map((w) => w.pid),
          ...(yield* nb.client.NodeInfo()).workers.map((w) => w.pid),
          ...(yield* Effect.promise(() => mafalda.workers())).map((w) => w.pid)
        ]
        expect(workerPids.length).toBeGreaterThanOrEqual(3)
        // A key of the test's own, to prove the restarted Redis came back empty.
        yield* Effect.promise(() => redisCommand(url, ["SET", `${prefix}marker`, "1"]))

        // Media across the restart: 4 s of packets (one every 4 ms) on both flows, while
        // Redis is killed, stays down for 1 s and comes back empty.
        const flowing = 1000
        const duringAB = yield* Effect.fork(
          sendAndCount(onA.sender, onB.receiver, {
            ...flowAB,
            count: flowing,
            first: 50,
            timeout: "15 seconds"
          })
        )
        const duringApp = yield* Effect.fork(
          sendAndCount(appSender, remote.receiver, {
            ...remote.flow,
            count: flowing,
            first: 50,
            timeout: "15 seconds"
          })
        )
        yield* Effect.sleep("500 millis")
        const first = redisProcesses[0]!
        first.child.kill("SIGKILL")
        const killedAt = Date.now()
        yield* Effect.promise(() => first.exited)
        // New producers while Redis is down, on A (by RPC) and on the app's Node: forked, so
        // that one waiting for Redis would not hold the restart back.
        const downAt = Date.now()
        const duringOutage = yield* Effect.fork(
          Effect.all(
            [
              producerOn(na, ra.id, ssrcA + 1).pipe(Effect.map((made) => made.producer.id as string)),
              Effect.promise(() =>
                ingress.produce({ kind: "audio", rtpParameters: opusParameters(ssrcApp + 1) })
              ).pipe(Effect.map((made) => made.id))
            ],
            { concurrency: 2 }
          ).pipe(
            Effect.tap(() =>
              Effect.sync(() =>
                console.log(`2 producers made in ${Date.now() - downAt} ms while Redis was down`)
              )
            )
          )
        )
        yield* Effect.sleep("1 second")
        const second = yield* Effect.promise(() => startRedis(port, dir))
        redisProcesses.push(second)
        const restartedAt = Date.now()
        const [madeOnA, madeOnApp] = yield* Fiber.join(duringOutage)
        console.log(`redis-server killed and answering again (empty) after ${restartedAt - killedAt} ms`)
        expect(yield* Effect.promise(() => redisCommand(url, ["GET", `${prefix}marker`]))).toBeNull()

        // Every Node registered again (its Worker reported), every producer back in the
        // Index: read through a store connected after the restart.
        const after = yield* Scope.extend(storeAt(url), stores)
        let nodesBackMs: number | undefined
        let indexBackMs: number | undefined
        const expected: ReadonlyArray<readonly [string, string]> = [
          [onA.producer.id, "node-a"],
          [producer.id, "app-node"],
          [madeOnA, "node-a"],
          [madeOnApp, "app-node"]
        ]
        const complete = yield* until(
          async () => {
            const [records, ...found] = await Promise.all([
              Effect.runPromise(Effect.either(after.registry.nodes)),
              ...expected.map(([id]) => Effect.runPromise(Effect.either(after.index.find(id as never))))
            ])
            const registered =
              records._tag === "Right" &&
              all.every((id) => records.right.some((r) => r.node === id && r.workers.length >= 1))
            if (registered && nodesBackMs === undefined) nodesBackMs = Date.now() - restartedAt
            const indexed = found.every(
              (f, i) => f._tag === "Right" && Option.exists(f.right, (l) => l.node === expected[i]![1])
            )
            if (indexed && indexBackMs === undefined) indexBackMs = Date.now() - restartedAt
            return registered && indexed
          },
          15_000,
          50
        )
        const missing: Array<string> = []
        for (const [id, node] of expected) {
          if (Option.isNone(yield* after.index.find(id as never))) missing.push(`${id} of ${node}`)
        }
        console.log(
          `after the restart: every Node registered (its Worker reported) in ${nodesBackMs} ms,`,
          `the Index complete (${expected.length} producers) in ${indexBackMs} ms; missing: ${missing.join(", ") || "none"}`
        )
        expect(complete).toBe(true)
        expect(Math.max(nodesBackMs!, indexBackMs!)).toBeLessThan(5000)

        const ab = yield* Fiber.join(duringAB)
        const ap = yield* Fiber.join(duringApp)
        console.log(
          `RTP across the restart: A->B ${ab.intact}/${flowing} intact, app->${remote.node} ${ap.intact}/${flowing} intact`
        )
        expect(ab.intact).toBeGreaterThanOrEqual(flowing * 0.98)
        expect(ap.intact).toBeGreaterThanOrEqual(flowing * 0.98)

        // After: both flows still carry media.
        expect(
          (yield* sendAndCount(onA.sender, onB.receiver, { ...flowAB, count: 50, first: 50 + flowing }))
            .intact
        ).toBeGreaterThanOrEqual(49)
        expect(
          (yield* sendAndCount(appSender, remote.receiver, {
            ...remote.flow,
            count: 50,
            first: 50 + flowing
          })).intact
        ).toBeGreaterThanOrEqual(49)
        // The app's snapshot knows A and B again; its Router still places: a new transport
        // delegated to A or B, a new consume piped there, RTP received.
        expect(
          yield* until(
            () =>
              HashMap.has(mafalda.snapshot().nodes, nodeA) && HashMap.has(mafalda.snapshot().nodes, nodeB),
            3000
          )
        ).toBe(true)
        const placedAt = Date.now()
        const again = yield* remoteConsumer
        console.log(`a new transport delegated to ${again.node} and consumed ${Date.now() - placedAt} ms`)
        expect([nodeA, nodeB]).toContain(again.node)
        expect(
          (yield* sendAndCount(appSender, again.receiver, {
            ...again.flow,
            count: 100,
            first: 100 + flowing
          })).intact
        ).toBeGreaterThanOrEqual(98)
        // A producer made after the restart is written to the Index too.
        const late = yield* producerOn(na, ra.id, ssrcA + 2)
        expect(
          yield* until(async () => Option.isSome(await Effect.runPromise(located(late.producer.id))), 3000)
        ).toBe(true)

        // The end: the app closes, the Nodes drain and exit; nothing of them is left, in
        // Redis either; then the redis-server stops.
        yield* Scope.close(stores, Exit.void)
        yield* Effect.promise(() => mafalda.close())
        app = undefined
        for (const n of [a, b]) n.process.child.kill("SIGTERM")
        yield* Effect.promise(() => Promise.all([a.process.exited, b.process.exited]))
        expect(yield* until(() => workerPids.every((pid) => !processExists(pid)), 5000)).toBe(true)
        for (const address of [appAddress, a.address, b.address]) {
          const { host, port: p } = parseAddress(address)!
          expect(yield* Effect.promise(() => refusedAt(host, p))).toBe(true)
        }
        expect(yield* Effect.promise(() => keysAt(url, prefix))).toEqual([])
        second.child.kill("SIGTERM")
        yield* Effect.promise(() => second.exited)
        for (const r of redisProcesses) expect(processExists(r.pid)).toBe(false)
        expect(yield* Effect.promise(() => refusedAt("127.0.0.1", port))).toBe(true)
      }),
    120_000
  )
})
