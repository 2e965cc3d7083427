/**
 * Mafalda Nodes as processes (`mafalda node`), on 127.0.0.1, against the real Redis: a
 * producer fed with real RTP on Node A, piped by the RPC handshake (SRTP on) into a Router
 * on Node B, RTP checked at a consumer on B; then A is killed (SIGKILL): its lease runs out
 * and it is evicted within 5 s, with its Index entries, the pipe into B closes, and its
 * Workers die with it. The survivors go on: a producer on B is piped to C and consumed
 * there. B, on SIGTERM, drains: marked draining (the Tracker picks it no more), refusing
 * new transports, up while a client transport is left, and exits once none is. C, asked by
 * `mafalda node drain` while it still holds a transport, exits at its drain timeout.
 * Afterwards no process, Worker, Redis key of the test's prefix or listening socket is left.
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, Option, Queue } from "effect"
import { parseAddress } from "../../src/cluster/NodeClients.js"
import { NodeId } from "../../src/core/Ids.js"
import { processExists } from "../../src/media/worker.js"
import { makeClient } from "../../src/rpc/transport.js"
import { refused, until } from "./clusterSupport.js"
import { nodeArgs, nodeProcessPool, spawnNode } from "./nodeProcesses.js"
import { collectNotices, consumerOn, producerOn, routerOn, sendAndCount } from "./pipeScenario.js"
import { cleanPrefix, clusterStore, keysOf, redisAvailable, redisUrl, testPrefix } from "./redisSupport.js"

const secret = "multi-process-secret-0123"
const prefix = testPrefix("nodes")
const nodes = nodeProcessPool()
const workerPids: Array<number> = []

const startNode = async (name: string, drainTimeoutSeconds = 5) => {
  return nodes.start(
    nodeArgs({
      redis: redisUrl,
      prefix,
      listen: "127.0.0.1:0",
      announcedIp: "127.0.0.1",
      node: name,
      cpus: 1,
      drainTimeoutSeconds
    }),
    { MAFALDA_SECRET: secret }
  )
}

describe.skipIf(!redisAvailable)("Mafalda Nodes in separate processes", () => {
  afterAll(async () => {
    await nodes.killAll()
    await cleanPrefix(prefix)
  })

  it.scopedLive(
    "real RTP piped A to B; A killed is evicted; B to C still works; B drains on SIGTERM, C on 'mafalda node drain'",
    () =>
      Effect.gen(function* () {
        const [a, b, c] = yield* Effect.promise(() =>
          Promise.all([startNode("node-a"), startNode("node-b", 60), startNode("node-c", 3)])
        )
        const { registry, index, gone } = yield* clusterStore(prefix)
        expect((yield* registry.nodes).map((n) => n.node).sort()).toEqual(["node-a", "node-b", "node-c"])

        // Loopback only, by default.
        for (const n of [a, b, c]) expect(n.address).toMatch(/^127\.0\.0\.1:\d+$/)

        const na = {
          node: NodeId.make(a.node),
          client: yield* makeClient({ ...parseAddress(a.address)!, secret })
        }
        const nb = {
          node: NodeId.make(b.node),
          client: yield* makeClient({ ...parseAddress(b.address)!, secret })
        }
        const nc = {
          node: NodeId.make(c.node),
          client: yield* makeClient({ ...parseAddress(c.address)!, secret })
        }
        const noticesB = yield* collectNotices(nb)
        const noticesC = yield* collectNotices(nc)
        const ra = yield* routerOn(na)
        const rb = yield* routerOn(nb)
        const workersOfA = (yield* na.client.NodeInfo()).workers.map((w) => w.pid)
        const workersOfB = (yield* nb.client.NodeInfo()).workers.map((w) => w.pid)
        workerPids.push(...workersOfA, ...workersOfB)
        expect(workersOfA).toHaveLength(1)
        // Worker settings mediasoup refuses: its TypeError, named as such across the processes.
        const wrong = yield* Effect.flip(
          nc.client.StartWorker({ settings: { rtcMinPort: 40010, rtcMaxPort: 40000 } })
        )
        expect(wrong).toMatchObject({
          _tag: "NodeCallError",
          operation: "startWorker",
          errorName: "TypeError"
        })

        // A producer with real RTP on A, piped to B across the processes, consumed on B.
        const ssrc = 0x5eed1234
        const { producer, sender } = yield* producerOn(na, ra.id, ssrc)
        const pipe = yield* nb.client.PipeFrom({
          producer: producer.id,
          origin: na.node,
          from: ra.id,
          to: rb.id
        })
        expect(pipe.srtp).toBe(true)
        const { receiver, egress, consumer } = yield* consumerOn(nb, rb, producer.id)
        const expectedSsrc = consumer.rtpParameters.encodings?.[0]?.ssrc ?? 0
        const rtp = yield* sendAndCount(sender, receiver, { ssrc, count: 100, first: 0, expectedSsrc })
        expect(rtp.intact).toBeGreaterThanOrEqual(98)
        expect(Option.map(yield* index.find(producer.id), (l) => l.node)).toEqual(Option.some("node-a"))

        // SIGKILL of A: evicted by its lease within 5 s, its Index entries with it.
        const killedAt = Date.now()
        a.process.child.kill("SIGKILL")
        const eviction = yield* Queue.take(gone).pipe(Effect.timeout("6 seconds"))
        const detectedMs = Date.now() - killedAt
        console.log(`node-a evicted ${detectedMs} ms after SIGKILL`)
        expect(eviction).toMatchObject({ node: "node-a", reason: "expired" })
        expect(detectedMs).toBeLessThan(5000)
        expect(yield* index.find(producer.id)).toEqual(Option.none())
        expect((yield* registry.nodes).map((n) => n.node).sort()).toEqual(["node-b", "node-c"])
        // The pipe's lease broke with A's socket: the pipe into B closed, and its consumer,
        // well before the eviction.
        const pipeClosed = noticesB.find((n) => n._tag === "PipeClosed" && n.producer === producer.id)
        expect(pipeClosed).toBeDefined()
        expect(noticesB.some((n) => n._tag === "Closed" && n.id === consumer.id)).toBe(true)
        console.log(`the pipe into node-b closed ${Number(pipeClosed?.seenAt) - killedAt} ms after SIGKILL`)
        // A's Worker died with it.
        expect(yield* until(() => workersOfA.every((pid) => !processExists(pid)), 5000)).toBe(true)
        expect(yield* Effect.promise(() => a.process.exited)).toMatchObject({ signal: "SIGKILL" })

        // The survivors go on: a new producer on B, piped to C, consumed there.
        const rc = yield* routerOn(nc)
        const workersOfC = (yield* nc.client.NodeInfo()).workers.map((w) => w.pid)
        workerPids.push(...workersOfC)
        const ssrc2 = 0x5eed5678
        const second = yield* producerOn(nb, rb.id, ssrc2)
        const pipe2 = yield* nc.client.PipeFrom({
          producer: second.producer.id,
          origin: nb.node,
          from: rb.id,
          to: rc.id
        })
        expect(pipe2.srtp).toBe(true)
        const onC = yield* consumerOn(nc, rc, second.producer.id)
        const rtp2 = yield* sendAndCount(second.sender, onC.receiver, {
          ssrc: ssrc2,
          count: 100,
          first: 0,
          expectedSsrc: onC.consumer.rtpParameters.encodings?.[0]?.ssrc ?? 0
        })
        expect(rtp2.intact).toBeGreaterThanOrEqual(98)
        expect(Option.map(yield* index.find(second.producer.id), (l) => l.node)).toEqual(
          Option.some("node-b")
        )

        // SIGTERM: B drains. It stays up while a client transport is left (the consumer's and
        // the producer's), takes nothing new, is marked draining so that the Tracker picks it
        // no more, and exits as soon as its last client transport closes (well before its
        // 60 s timeout).
        const settings = (yield* nb.client.NodeInfo()).workers[0]!.settings
        const pick = registry.pick({ workerSettings: settings, cost: 1, watermark: 85, exclude: [nc.node] })
        expect(Option.map(yield* pick, (p) => p.node)).toEqual(Option.some("node-b"))
        b.process.child.kill("SIGTERM")
        expect(
          yield* until(() => b.process.output.some((line) => line.startsWith('{"event":"draining"')), 5000)
        ).toBe(true)
        expect((yield* nb.client.NodeInfo()).state).toBe("draining")
        expect(Option.map(yield* registry.node(nb.node), (r) => r.state)).toEqual(Option.some("draining"))
        expect(yield* pick).toEqual(Option.none())
        const refusedTransport = yield* nb.client
          .CreatePlainTransport({ router: rb.id, listenInfo: { protocol: "udp", ip: "127.0.0.1" } })
          .pipe(Effect.flip)
        expect(refusedTransport._tag).toBe("NodeDrainingError")
        yield* Effect.sleep("1 second")
        expect(b.process.hasExited()).toBe(false)
        const lastClosedAt = Date.now()
        yield* nb.client.Close({ what: "transport", id: egress.id })
        yield* Effect.sleep("300 millis")
        expect(b.process.hasExited()).toBe(false)
        yield* nb.client.Close({ what: "transport", id: second.ingress.id })
        const exit = yield* Effect.promise(() => b.process.exited)
        const drainedMs = Date.now() - lastClosedAt
        console.log(`node-b exited ${drainedMs} ms after its last client transport closed`)
        expect(exit.code).toBe(0)
        expect(drainedMs).toBeLessThan(5000)
        expect(
          b.process.output.some(
            (line) => line.startsWith('{"event":"stopped"') && line.includes('"empty":true')
          )
        ).toBe(true)
        expect(yield* Queue.take(gone).pipe(Effect.timeout("2 seconds"))).toMatchObject({
          node: "node-b",
          reason: "left"
        })
        expect(workersOfB.every((pid) => !processExists(pid))).toBe(true)
        // B's producer went with it: the pipe into C closed, and the Index forgot it.
        expect(
          yield* until(
            () => noticesC.some((n) => n._tag === "PipeClosed" && n.producer === second.producer.id),
            2000
          )
        ).toBe(true)
        expect(yield* index.find(second.producer.id)).toEqual(Option.none())

        // "mafalda node drain" asks C to drain; it still holds a client transport (the
        // consumer's), so it exits at its drain timeout (3 s), saying it was not empty.
        const asked = Date.now()
        const drain = yield* Effect.promise(() =>
          spawnNode(["drain", "--address", c.address], { MAFALDA_SECRET: secret }).then((p) => p.exited)
        )
        expect(drain.code).toBe(0)
        expect((yield* Effect.promise(() => c.process.exited)).code).toBe(0)
        expect(Date.now() - asked).toBeGreaterThanOrEqual(3000)
        expect(
          c.process.output.some(
            (line) => line.includes('"event":"stopped"') && line.includes('"empty":false')
          )
        ).toBe(true)
        expect(yield* Queue.take(gone).pipe(Effect.timeout("2 seconds"))).toMatchObject({
          node: "node-c",
          reason: "left"
        })
        expect(workersOfC.every((pid) => !processExists(pid))).toBe(true)
        // Nothing listens any more, and no key of the prefix is left (before any clean-up).
        expect(yield* Effect.promise(() => refused(a.address))).toBe(true)
        expect(yield* Effect.promise(() => refused(b.address))).toBe(true)
        expect(yield* Effect.promise(() => refused(c.address))).toBe(true)
        expect(yield* Effect.promise(() => keysOf(prefix))).toEqual([])
      }),
    120_000
  )

  it.live(
    "a bad command line exits with 2 and says why; a Redis, a worker binary or a Node to drain missing, with 1",
    () =>
      Effect.gen(function* () {
        const run = (args: ReadonlyArray<string>, env: NodeJS.ProcessEnv = {}) =>
          Effect.promise(async () => {
            const p = await spawnNode(args, env)
            return { ...(await p.exited), output: p.output.join("\n") }
          })
        const cases: ReadonlyArray<[ReadonlyArray<string>, NodeJS.ProcessEnv, string]> = [
          [[], { MAFALDA_SECRET: "" }, "a cluster secret is required"],
          [["--secret", secret, "--lisen", "127.0.0.1:0"], {}, "unknown or incomplete option: --lisen"],
          [["--secret", secret, "--redis"], {}, "unknown or incomplete option: --redis (without its value)"],
          [["--secret", secret, "--listen", "somewhere"], {}, "--listen must be HOST:PORT"],
          [["--secret", secret, "--cpus", "0"], {}, "--cpus must be a positive whole number"],
          [["drain", "--secret", secret], {}, "--address HOST:PORT is required"]
        ]
        const noWorker = { MEDIASOUP_WORKER_BIN: "/nonexistent/mediasoup-worker" }
        const [down, missingWorker, drainNowhere, ...results] = yield* Effect.all(
          [
            run(["--secret", secret, "--redis", "redis://127.0.0.1:1", "--prefix", prefix]),
            run(["--secret", secret], noWorker),
            // "drain" starts no Worker: it needs no worker binary, only a Node that answers.
            run(["drain", "--address", "127.0.0.1:1", "--secret", secret], noWorker),
            ...cases.map(([args, env]) => run(args, env))
          ],
          { concurrency: "unbounded" }
        )
        expect(missingWorker?.code).toBe(1)
        expect(missingWorker?.output).toContain("the mediasoup worker binary is missing")
        expect(drainNowhere?.code).toBe(1)
        expect(drainNowhere?.output).toContain("mafalda node drain: no drain at 127.0.0.1:1")
        cases.forEach(([args, , reason], i) => {
          expect(results[i]?.code, args.join(" ")).toBe(2)
          expect(results[i]?.output).toContain(reason)
        })
        expect(down.code).toBe(1)
        expect(down.output).toContain("no answer from redis://127.0.0.1:1")
      }),
    60_000
  )

  afterAll(async () => {
    for (const pid of workerPids) expect(processExists(pid)).toBe(false)
    expect(await cleanPrefix(prefix)).toBe(0)
  })
})
