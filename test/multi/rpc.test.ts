/**
 * The Node API over TCP between two Nodes in this process (each with its own real Worker,
 * registry and Index on the real Redis): the pipe handshake with SRTP, real RTP from a
 * producer on Node A to a consumer on Node B, pause and close carried by the pipe's lease,
 * the Index, the shared secret, draining, and 10,000 malformed frames refused without a
 * crash.
 */
import * as net from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Context, Effect, Either, FastCheck as fc, Layer, Option } from "effect"
import { type RunningNode, startNode } from "../../src/cluster/MafaldaNode.js"
import { parseAddress } from "../../src/cluster/NodeClients.js"
import { NodeId, ProducerId } from "../../src/core/Ids.js"
import * as IndexRedis from "../../src/layers/IndexServiceRedis.js"
import * as RedisConnection from "../../src/layers/RedisConnection.js"
import { processExists } from "../../src/media/worker.js"
import { nodeRpcTags } from "../../src/rpc/NodeRpcs.js"
import { makeClient, validatingNdjson } from "../../src/rpc/transport.js"
import { IndexService } from "../../src/services/IndexService.js"
import {
  collectNotices,
  consumerOn,
  type NodeUnderTest,
  producerOn,
  routerOn,
  sendAndCount
} from "./pipeScenario.js"
import { cleanPrefix, redisAvailable, redisUrl, testPrefix } from "./redisSupport.js"

const secret = "test-secret-0123456789"
const prefix = testPrefix("rpc")
let a: RunningNode
let b: RunningNode
const pids: Array<number> = []

const clientOf = (n: RunningNode, withSecret = secret) =>
  Effect.map(makeClient({ ...parseAddress(n.address)!, secret: withSecret }), (client) => ({
    node: NodeId.make(n.node),
    client
  }))

/** Runs `effect` until `done` holds (every 50 ms, 5 s at most), and returns its last value. */
const eventually = <A, E, R>(effect: Effect.Effect<A, E, R>, done: (a: A) => boolean) =>
  Effect.gen(function* () {
    const deadline = Date.now() + 5000
    for (;;) {
      const a = yield* effect
      if (done(a) || Date.now() > deadline) return a
      yield* Effect.sleep("50 millis")
    }
  })

const workerPids = (n: NodeUnderTest) =>
  Effect.map(n.client.NodeInfo(), (info) => info.workers.map((w) => w.pid))

describe.skipIf(!redisAvailable)("the Node API between two Nodes", () => {
  beforeAll(async () => {
    const options = { redis: redisUrl, prefix, secret, cpus: 2, heartbeatMillis: 250, leaseMillis: 2000 }
    a = await startNode({ ...options, node: "node-a" })
    b = await startNode({ ...options, node: "node-b" })
  })

  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()])
    for (const pid of pids) expect(processExists(pid)).toBe(false)
    expect(await cleanPrefix(prefix)).toBe(0)
  })

  it.scopedLive("pipes a producer from Node A to a consumer on Node B, SRTP on, real RTP", () =>
    Effect.gen(function* () {
      const na = yield* clientOf(a)
      const nb = yield* clientOf(b)
      const noticesB = yield* collectNotices(nb)
      const ra = yield* routerOn(na)
      const rb = yield* routerOn(nb)
      pids.push(...(yield* workerPids(na)), ...(yield* workerPids(nb)))
      const ssrc = 0x1234abcd
      const { producer, sender } = yield* producerOn(na, ra.id, ssrc)

      // The Index knows where the producer lives, from any connection.
      const index = Context.get(
        yield* Layer.build(
          IndexRedis.layerRedis.pipe(Layer.provide(RedisConnection.layer({ url: redisUrl, prefix })))
        ),
        IndexService
      )
      const located = yield* eventually(index.find(producer.id), Option.isSome)
      expect(Option.map(located, (l) => [l.node, l.router, l.kind])).toEqual(
        Option.some(["node-a", ra.id, "audio"])
      )

      const pipe = yield* nb.client.PipeFrom({
        producer: producer.id,
        origin: na.node,
        from: ra.id,
        to: rb.id
      })
      expect(pipe).toMatchObject({
        producer: producer.id,
        from: ra.id,
        to: rb.id,
        pipeProducer: producer.id,
        srtp: true
      })
      // PipeFrom is idempotent.
      expect(
        yield* nb.client.PipeFrom({ producer: producer.id, origin: na.node, from: ra.id, to: rb.id })
      ).toEqual(pipe)

      const { receiver, consumer } = yield* consumerOn(nb, rb, producer.id)
      const expectedSsrc = consumer.rtpParameters.encodings?.[0]?.ssrc ?? 0
      const first = yield* sendAndCount(sender, receiver, { ssrc, count: 50, first: 0, expectedSsrc })
      expect(first.intact).toBeGreaterThanOrEqual(48)

      // Pause on A reaches B's consumer through the lease.
      yield* na.client.Pause({ what: "producer", id: producer.id, paused: true })
      yield* eventually(
        Effect.sync(() =>
          noticesB.some((n) => n._tag === "ProducerPaused" && n.consumer === consumer.id && n.paused === true)
        ),
        (seen) => seen
      )
      const paused = yield* sendAndCount(sender, receiver, {
        ssrc,
        count: 20,
        first: 100,
        expectedSsrc,
        timeout: "1 second"
      })
      expect(paused.received).toBe(0)
      yield* na.client.Pause({ what: "producer", id: producer.id, paused: false })
      yield* Effect.sleep("300 millis")
      const resumed = yield* sendAndCount(sender, receiver, { ssrc, count: 30, first: 200, expectedSsrc })
      expect(resumed.intact).toBeGreaterThanOrEqual(28)

      // Closing the producer on A closes the pipe and the consumer on B.
      yield* na.client.Close({ what: "producer", id: producer.id })
      yield* eventually(
        Effect.sync(() => noticesB.some((n) => n._tag === "Closed" && n.id === consumer.id)),
        (seen) => seen
      )
      expect(noticesB.some((n) => n._tag === "PipeClosed" && n.producer === producer.id)).toBe(true)
      // And its Index entry goes.
      const gone = yield* eventually(index.find(producer.id), Option.isNone)
      expect(gone).toEqual(Option.none())
    })
  )

  it.scopedLive("opens pipe ends with SRTP, refuses unknown objects with typed errors", () =>
    Effect.gen(function* () {
      const na = yield* clientOf(a)
      const ra = yield* routerOn(na)
      const end = yield* na.client.PipeOpen({ router: ra.id, enableSrtp: true })
      expect(end.srtpParameters?.cryptoSuite).toMatch(/AES/)
      expect(end.srtpParameters?.keyBase64.length).toBeGreaterThan(20)
      yield* na.client.Close({ what: "transport", id: end.transport })
      const unknown = yield* Effect.flip(
        na.client.PipeConsume({ transport: "nope", producer: ProducerId.make("x") })
      )
      expect(unknown._tag).toBe("UnknownObjectError")
      const bad = yield* Effect.flip(
        na.client.CreatePlainTransport({ router: ra.id, listenInfo: { protocol: "udp", ip: "10.255.255.1" } })
      )
      expect(bad._tag).toBe("NodeCallError")
      // The connection still serves after failures.
      expect((yield* na.client.NodeInfo()).node).toBe("node-a")
    })
  )

  it.scopedLive("refuses a client without the cluster's secret", () =>
    Effect.gen(function* () {
      const wrong = yield* clientOf(a, "not-the-secret")
      const refused = yield* Effect.flip(wrong.client.NodeInfo())
      expect(refused._tag).toBe("Unauthorized")
      const before = (yield* (yield* clientOf(a)).client.NodeInfo()).workers.length
      expect((yield* Effect.flip(wrong.client.StartWorker({ settings: {} })))._tag).toBe("Unauthorized")
      expect((yield* (yield* clientOf(a)).client.NodeInfo()).workers.length).toBe(before)
    })
  )

  it.scopedLive(
    "refuses 10,000 malformed frames without a crash",
    () =>
      Effect.gen(function* () {
        const { host, port } = parseAddress(a.address)!
        const frames = fuzzFrames(10_000)
        // What the frame check lets through: requests whose payload the server then decodes.
        let parsedOk = 0
        for (const frame of frames) {
          const parser = validatingNdjson(nodeRpcTags).unsafeMake()
          const outcome = Either.try(() => parser.decode(`${frame}\n`))
          if (Either.isRight(outcome) && outcome.right.length > 0) parsedOk++
        }
        // Over the network: each frame on its own connection; none may succeed.
        const outcomes = yield* Effect.forEach(
          frames,
          (frame) => Effect.promise(() => sendRaw(host, port, frame)),
          {
            concurrency: 64
          }
        )
        const counts = { closed: 0, failure: 0, ignored: 0, success: 0, timeout: 0 }
        for (const o of outcomes) counts[o]++
        console.log(
          `fuzz: ${frames.length} frames: ${JSON.stringify(counts)}, ${parsedOk} passed the frame check`
        )
        expect(counts.success).toBe(0)
        expect(counts.timeout).toBeLessThan(frames.length / 100)
        expect(counts.closed).toBeGreaterThan(frames.length / 2)
        // The Node still serves.
        expect((yield* (yield* clientOf(a)).client.NodeInfo()).node).toBe("node-a")
      }),
    120_000
  )

  it.scopedLive("a draining Node takes no new Worker, Router or transport", () =>
    Effect.gen(function* () {
      const nb = yield* clientOf(b)
      yield* nb.client.Drain()
      expect((yield* nb.client.NodeInfo()).state).toBe("draining")
      expect((yield* Effect.flip(nb.client.StartWorker({ settings: {} })))._tag).toBe("NodeDrainingError")
    })
  )
})

type Outcome = "closed" | "failure" | "ignored" | "success" | "timeout"

/**
 * Sends one frame on a fresh connection, then a Ping; what the server did with the frame:
 * closed the connection, answered with a failure, or ignored it (the Pong came first).
 */
const sendRaw = (host: string, port: number, frame: string): Promise<Outcome> =>
  new Promise((resolve) => {
    const socket = net.connect(port, host)
    let data = ""
    let settled = false
    const done = (outcome: Outcome) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      resolve(outcome)
    }
    const timer = setTimeout(() => done("timeout"), 5000)
    socket.on("data", (chunk) => {
      data += chunk.toString()
      const line = data.split("\n")[0]
      if (line === undefined || !data.includes("\n")) return
      done(line === '{"_tag":"Pong"}' ? "ignored" : /"_tag":"Success"/.test(line) ? "success" : "failure")
    })
    socket.on("close", () => done("closed"))
    socket.on("error", () => done("closed"))
    socket.on("connect", () => socket.write(`${frame}\n{"_tag":"Ping"}\n`))
  })

/** Malformed frames: noise, JSON that is not a message, and messages with broken fields. */
const fuzzFrames = (count: number): Array<string> => {
  const tags = Array.from(nodeRpcTags)
  const noise = fc.oneof(
    fc.string({ maxLength: 200 }),
    fc
      .uint8Array({ maxLength: 200 })
      .map((bytes) => Buffer.from(bytes).toString("latin1").replace(/\n/g, " ")),
    fc.json({ maxDepth: 3 })
  )
  const envelope = fc.record(
    {
      _tag: fc.oneof(
        fc.constantFrom("Request", "Ack", "Interrupt", "Ping", "Eof"),
        fc.string({ maxLength: 10 })
      ),
      id: fc.oneof(
        fc.bigInt({ min: 0n, max: 2n ** 63n }).map(String),
        fc.string({ maxLength: 30 }),
        fc.integer()
      ),
      tag: fc.oneof(fc.constantFrom(...tags), fc.string({ maxLength: 20 })),
      payload: fc.anything({ maxDepth: 3 }),
      headers: fc.oneof(
        fc.array(fc.tuple(fc.string({ maxLength: 20 }), fc.string({ maxLength: 40 })), { maxLength: 4 }),
        fc.anything({ maxDepth: 1 })
      ),
      requestId: fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 63n }).map(String), fc.anything({ maxDepth: 1 }))
    },
    { requiredKeys: [] }
  )
  // Well-formed requests of the API with payloads drawn at random, without the secret or
  // with it (a payload that does not fit its request is refused before any handler runs).
  const structured = tags.filter((t) => !["NodeInfo", "Notices", "Drain"].includes(t))
  const request = fc.record({
    id: fc.bigInt({ min: 0n, max: 2n ** 62n }).map(String),
    tag: fc.constantFrom(...structured),
    payload: fc.anything({ maxDepth: 3 }),
    secret: fc.constantFrom(undefined, "wrong", secret)
  })
  const frame = fc.oneof(
    { weight: 2, arbitrary: noise },
    { weight: 4, arbitrary: envelope.map((e) => JSON.stringify(e)) },
    {
      weight: 2,
      arbitrary: request.map(({ id, tag, payload, secret }) =>
        JSON.stringify({
          _tag: "Request",
          id,
          tag,
          payload,
          headers: secret === undefined ? [] : [["x-mafalda-secret", secret]]
        })
      )
    }
  )
  // A few frames over the size limit (1 MiB).
  const oversized = Array.from(
    { length: 5 },
    (_, i) =>
      `{"_tag":"Request","id":"${i}","tag":"NodeInfo","payload":"${"x".repeat(1_100_000)}","headers":[]}`
  )
  return [...oversized, ...fc.sample(frame, { numRuns: count - oversized.length, seed: 8 })].map((f) =>
    f.replace(/\n/g, " ")
  )
}
