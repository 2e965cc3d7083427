/**
 * A Redis outage seen by one Node: its connections to Redis go through a TCP proxy that the
 * test cuts (the real Redis keeps running for the rest of the machine). While cut, the
 * Node keeps serving what it has (real RTP from its producer to its consumer), its lease
 * runs out and the registry evicts it with its Index entries; once Redis answers again, the
 * Node registers anew and writes its producers to the Index again, one made during the
 * outage too.
 */
import * as net from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Option, Queue } from "effect"
import { type RunningNode, startNode } from "../../src/cluster/MafaldaNode.js"
import { parseAddress } from "../../src/cluster/NodeClients.js"
import { NodeId } from "../../src/core/Ids.js"
import { processExists } from "../../src/media/worker.js"
import { makeClient } from "../../src/rpc/transport.js"
import { consumerOn, producerOn, routerOn, sendAndCount } from "./pipeScenario.js"
import { cleanPrefix, clusterStore, redisAvailable, redisUrl, testPrefix } from "./redisSupport.js"

/** A TCP proxy to Redis that can be cut (every connection dropped, new ones refused) and restored. */
const makeProxy = async (target: { readonly host: string; readonly port: number }) => {
  const sockets = new Set<net.Socket>()
  let up = true
  const server = net.createServer((client) => {
    if (!up) {
      client.destroy()
      return
    }
    const upstream = net.connect(target.port, target.host)
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on("close", () => sockets.delete(s))
      s.on("error", () => undefined)
    }
    client.pipe(upstream).pipe(client)
    client.on("close", () => upstream.destroy())
    upstream.on("close", () => client.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const port = (server.address() as net.AddressInfo).port
  return {
    url: `redis://127.0.0.1:${port}`,
    cut: () => {
      up = false
      for (const s of sockets) s.destroy()
    },
    restore: () => {
      up = true
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      })
  }
}

const secret = "outage-secret-0123456789"
const prefix = testPrefix("outage")
let proxy: Awaited<ReturnType<typeof makeProxy>>
let node: RunningNode
const pids: Array<number> = []

describe.skipIf(!redisAvailable)("a Redis outage", () => {
  beforeAll(async () => {
    proxy = await makeProxy(parseAddress(new URL(redisUrl).host)!)
    node = await startNode({
      redis: proxy.url,
      prefix,
      secret,
      node: "node-o",
      cpus: 1,
      heartbeatMillis: 250,
      leaseMillis: 1500
    })
  })

  afterAll(async () => {
    await node?.close()
    await proxy?.close()
    for (const pid of pids) expect(processExists(pid)).toBe(false)
    expect(await cleanPrefix(prefix)).toBe(0)
  })

  it.scopedLive(
    "the Node keeps serving, is evicted with its Index entries, and registers and re-publishes them when Redis is back",
    () =>
      Effect.gen(function* () {
        const { registry, index, gone } = yield* clusterStore(prefix)
        const n = {
          node: NodeId.make(node.node),
          client: yield* makeClient({ ...parseAddress(node.address)!, secret })
        }
        const router = yield* routerOn(n)
        pids.push(...(yield* n.client.NodeInfo()).workers.map((w) => w.pid))
        const ssrc = 0x0a7a6e00
        const { producer, sender } = yield* producerOn(n, router.id, ssrc)
        const { receiver, consumer } = yield* consumerOn(n, router, producer.id)
        const expectedSsrc = consumer.rtpParameters.encodings?.[0]?.ssrc ?? 0
        const indexed = Effect.map(
          index.find(producer.id),
          Option.map((l) => l.node)
        )
        expect(yield* indexed).toEqual(Option.some("node-o"))

        // Redis out of reach for the Node: evicted by its lease, its Index entry reaped.
        proxy.cut()
        const cutAt = Date.now()
        expect(yield* Queue.take(gone).pipe(Effect.timeout("5 seconds"))).toMatchObject({
          node: "node-o",
          reason: "expired"
        })
        console.log(`node-o evicted ${Date.now() - cutAt} ms after Redis was cut off`)
        expect(yield* indexed).toEqual(Option.none())
        // It keeps serving what it has.
        const during = yield* sendAndCount(sender, receiver, { ssrc, count: 50, first: 0, expectedSsrc })
        expect(during.intact).toBeGreaterThanOrEqual(49)
        // And takes new work: a producer made now is in the Index once Redis is back.
        const late = yield* producerOn(n, router.id, ssrc + 1)

        // Redis back: registered anew, its producer in the Index again.
        proxy.restore()
        const backAt = Date.now()
        let back = false
        while (!back && Date.now() - backAt < 8000) {
          yield* Effect.sleep("100 millis")
          const record = yield* registry.node(n.node)
          // Registered, reporting its Worker again, its producer in the Index.
          back =
            Option.exists(record, (r) => r.workers.length === 1) &&
            Option.isSome(yield* indexed) &&
            Option.isSome(yield* index.find(late.producer.id))
        }
        console.log(`node-o registered and re-published ${Date.now() - backAt} ms after Redis was back`)
        expect(back).toBe(true)
        const after = yield* sendAndCount(sender, receiver, { ssrc, count: 50, first: 50, expectedSsrc })
        expect(after.intact).toBeGreaterThanOrEqual(49)
      }),
    60_000
  )
})
