/**
 * One Mafalda Router over several real mediasoup Workers, with real RTP: one-to-many
 * spread over Workers, each destination Router receiving the stream exactly once.
 */
import { describe, expect, it } from "vitest"
import { startPipedBroadcast, useMafaldaHarness } from "../support/mafaldaHarness.js"
import {
  countPipeTransports,
  type Listener,
  listen,
  opus,
  sendUntilReceived,
  startBroadcast
} from "./support.js"

const harness = useMafaldaHarness()

describe("Mafalda Router, one-to-many over real Workers", () => {
  it("spreads consumers over 3 Workers, pipes once per destination Router, every consumer gets RTP", async () => {
    const pipes = countPipeTransports()
    const resources = harness.makeResources()
    // Each consumer costs 10 %, and a transport goes to a Worker only while the consumer it is
    // expected to make (10 %) still fits under the 50 % watermark: four per Worker.
    const mafalda = await harness.createMafalda({
      maxWorkers: 3,
      watermark: 50,
      costs: { consumer: 10 },
      samplingInterval: 3_600_000,
      workerSettings: { rtcMinPort: 42000, rtcMaxPort: 42999 }
    })
    const router = await mafalda.createRouter({ mediaCodecs: [opus] })
    const newRouters: Array<unknown> = []
    router.on("newrouter", (r) => newRouters.push(r))
    const broadcast = await startBroadcast(resources, router)
    const listeners: Array<Listener> = []
    for (let i = 0; i < 12; i++) listeners.push(await listen(resources, router, broadcast.producer.id))

    const status = await mafalda.status()
    harness.track(await mafalda.workers())
    expect(status.workers.map((w) => w.consumers)).toEqual([4, 4, 4])
    expect(newRouters).toHaveLength(3)
    // One tree, the origin plus two destinations, each piped to exactly once.
    expect(status.trees).toHaveLength(1)
    const destinations = status.pipes.map((p) => p.to)
    expect(destinations).toHaveLength(2)
    expect(new Set(destinations).size).toBe(2)
    expect(status.pipes.every((p) => p.from === status.trees[0]?.hops[0]?.router)).toBe(true)
    // mediasoup made one PipeTransport pair per destination Router: no more.
    expect(pipes.count).toBe(4)
    pipes.stop()

    const received = await sendUntilReceived(broadcast, listeners, 20)
    expect(received).toHaveLength(12)
    for (const n of received) expect(n).toBeGreaterThanOrEqual(20)
    // Each consumer has its own SSRC (mediasoup rewrites it) and got packets with it.
    expect(new Set(listeners.map((l) => l.ssrc)).size).toBe(12)
  })

  it("pipeToRouter between two Mafalda Routers on shared Workers creates no PipeTransport", async () => {
    const resources = harness.makeResources()
    const pipes = countPipeTransports()
    const mafalda = await harness.createMafalda({
      maxWorkers: 2,
      samplingInterval: 3_600_000,
      workerSettings: { rtcMinPort: 42000, rtcMaxPort: 42999 }
    })
    const { a, b, broadcast, pipeConsumer, pipeProducer } = await startPipedBroadcast(resources, mafalda)
    expect(pipeProducer?.id).toBe(broadcast.producer.id)
    expect(pipeProducer?.type).toBe("pipe")
    expect(pipeConsumer?.producerId).toBe(broadcast.producer.id)
    await expect(a.pipeToRouter({ producerId: broadcast.producer.id, router: b })).rejects.toThrow(TypeError)

    const listener = await listen(resources, b, broadcast.producer.id)
    expect(pipes.count).toBe(0)
    pipes.stop()
    const status = await mafalda.status()
    expect(status.pipes).toHaveLength(0)
    expect(status.workers).toHaveLength(1)
    const [n] = await sendUntilReceived(broadcast, [listener], 20)
    expect(n).toBeGreaterThanOrEqual(20)

    // Closing the mirrored pipe producer closes b's consumers of it, as a real pipe would.
    const closed = new Promise<void>((resolve) => listener.consumer.observer.once("close", () => resolve()))
    pipeProducer?.close()
    await closed
    expect(pipeConsumer?.closed).toBe(true)
    await expect(
      listener.transport.consume({ producerId: broadcast.producer.id, rtpCapabilities: b.rtpCapabilities })
    ).rejects.toThrow(/not found/)
  })

  it("200 simultaneous consume calls make the decided pipes and Workers, no more", async () => {
    const resources = harness.makeResources()
    const pipes = countPipeTransports()
    // A transport costs 24 %: two per Worker under the 50 % watermark.
    const mafalda = await harness.createMafalda({
      maxWorkers: 3,
      watermark: 50,
      costs: { transport: 24, consumer: 0 },
      samplingInterval: 3_600_000,
      workerSettings: { rtcMinPort: 42000, rtcMaxPort: 42999 }
    })
    const router = await mafalda.createRouter({ mediaCodecs: [opus] })
    const broadcast = await startBroadcast(resources, router)
    // Five transports at once: Worker 1 has room for one more, Workers 2 and 3 for two each.
    const transports = await Promise.all(
      Array.from({ length: 5 }, () =>
        router.createPlainTransport({ listenInfo, rtcpMux: true, comedia: false })
      )
    )
    await expect(router.createPlainTransport({ listenInfo, rtcpMux: true, comedia: false })).rejects.toThrow(
      /watermark/
    )
    expect(pipes.count).toBe(0)
    const consumers = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        transports[i % 5]!.consume({
          producerId: broadcast.producer.id,
          rtpCapabilities: router.rtpCapabilities
        })
      )
    )
    pipes.stop()
    expect(consumers).toHaveLength(200)
    const status = await mafalda.status()
    expect(status.workers).toHaveLength(3)
    expect(status.workers.map((w) => w.consumers)).toEqual([40, 80, 80])
    expect(status.pipes).toHaveLength(2)
    expect(pipes.count).toBe(4)
  })
})

const listenInfo = { protocol: "udp", ip: "127.0.0.1" } as const
