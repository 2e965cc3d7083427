/**
 * Relocation of transports, with real Workers and real RTP: a transport offered for a move
 * (forced, or because its Worker was killed), its helper's `prepare()` making the new
 * transport on another Worker with the same consumers, the application connecting it
 * (here: a PlainTransport to the same UDP receiver), `complete()` closing the old one, and
 * RTP reaching the receivers again.
 */
import { Metric } from "effect"
import { types } from "mediasoup"
import { describe, expect, it } from "vitest"
import { processExists } from "../../src/media/worker.js"
import { prometheusText } from "../../src/ops/metrics.js"
import type { MafaldaInstance } from "../../src/promise.js"
import type { MafaldaRouter } from "../../src/router/MafaldaRouter.js"
import type { PreparedRelocation, TransportRelocation } from "../../src/router/relocation.js"
import { useMafaldaHarness } from "../support/mafaldaHarness.js"
import { type Listener, listen, once, opus, sendUntilReceived, startBroadcast } from "./support.js"

const harness = useMafaldaHarness()

// As in lifecycle.test.ts: a consumer costs 20 % and the watermark is 50 %, so a Worker takes
// the producer's transport and two listeners; the next two land on a second Worker.
const options = {
  maxWorkers: 2,
  watermark: 50,
  costs: { consumer: 20 },
  samplingInterval: 3_600_000,
  workerSettings: { rtcMinPort: 44000, rtcMaxPort: 44999 }
} as const

const workerOf = (mafalda: MafaldaInstance, transportId: string): string | undefined => {
  const status = mafalda.snapshot()
  for (const [, t] of status.transports) {
    if (t.id !== transportId) continue
    for (const [, r] of status.routers) if (r.id === t.router) return r.worker
  }
  return undefined
}

/** The relocations counted so far with this outcome (the registry is per process). */
const relocationsCounted = (outcome: string): number => {
  const text = prometheusText(Metric.unsafeSnapshot())
  const line = text
    .split("\n")
    .find((l) => l.startsWith("mafalda_relocations_total{") && l.includes(`"${outcome}"`))
  return line === undefined ? 0 : Number(line.split(" ").at(-1))
}

/** The app's part for a PlainTransport listener: connect the new transport to the same receiver. */
const switchListener = async (old: Listener, prepared: PreparedRelocation): Promise<Listener> => {
  const transport = prepared.transport as types.PlainTransport
  await transport.connect({ ip: old.receiver.local.address, port: old.receiver.local.port })
  const replacing = prepared.consumers.find((c) => c.replaces === old.consumer.id)
  expect(replacing).toBeDefined()
  const consumer = replacing!.consumer
  return {
    transport,
    consumer,
    receiver: old.receiver,
    ssrc: consumer.rtpParameters.encodings?.[0]?.ssrc ?? -1
  }
}

const start = async (mafalda: MafaldaInstance, count: number) => {
  const resources = harness.makeResources()
  const router = await mafalda.createRouter({ mediaCodecs: [opus] })
  const broadcast = await startBroadcast(resources, router)
  const listeners: Array<Listener> = []
  for (let i = 0; i < count; i++) listeners.push(await listen(resources, router, broadcast.producer.id))
  return { router, broadcast, listeners }
}

describe("relocation of a transport", () => {
  it("a forced move: new transport on another Worker, same consumers and paused state, old one closed, RTP again, no Worker left behind", async () => {
    const mafalda = await harness.createMafalda({
      ...options,
      idleGraceMillis: 0,
      warmWorkers: 0,
      scaleDownHysteresis: 0
    })
    const { router, broadcast, listeners } = await start(mafalda, 2)
    const [l1, l2] = listeners as [Listener, Listener]
    // Both listeners share the producer's Worker.
    const home = workerOf(mafalda, l1.transport.id)
    expect(workerOf(mafalda, l2.transport.id)).toBe(home)
    expect(workerOf(mafalda, broadcast.ingress.id)).toBe(home)
    harness.track(await mafalda.workers())
    // A second consumer of the same producer on l1's transport, paused by the application.
    const paused = await l1.transport.consume({
      producerId: broadcast.producer.id,
      rtpCapabilities: router.rtpCapabilities,
      paused: true
    })
    await sendUntilReceived(broadcast, [l1, l2], 10)

    const doneBefore = relocationsCounted("done")
    const onRouter = once<[TransportRelocation]>(router, "relocation")
    const onInstance = once<[TransportRelocation]>(mafalda.observer, "relocation")
    const relocation = router.relocateTransport(l1.transport.id)
    const [emitted] = await onRouter
    const [emittedOnInstance] = await onInstance
    expect(emitted).toBe(relocation)
    expect(emittedOnInstance).toBe(relocation)
    expect(relocation.reason).toBe("Forced")
    expect(relocation.transport).toBe(l1.transport)
    expect(relocation.router).toBe(router)
    expect(relocation.from.worker).toBe(home)
    expect(relocation.state).toBe("offered")
    // One move of a transport at a time.
    expect(() => router.relocateTransport(l1.transport.id)).toThrow(/under way|offered/)

    const prepared = await relocation.prepare()
    expect(relocation.state).toBe("prepared")
    // Placed away from its Worker (a second one, started for it), on the same Mafalda Router.
    expect(prepared.to.worker).not.toBe(home)
    expect(workerOf(mafalda, prepared.transport.id)).toBe(prepared.to.worker)
    expect(router.transportsForTesting.get(prepared.transport.id)).toBeDefined()
    expect(prepared.transport).toBeInstanceOf(types.PlainTransport)
    expect((prepared.transport as types.PlainTransport).tuple.localPort).not.toBe(
      l1.transport.tuple.localPort
    )
    // The same consumers, paused as they were; what the client needs is plain JSON.
    expect(prepared.consumers.map((c) => c.replaces).sort()).toEqual([l1.consumer.id, paused.id].sort())
    const again = prepared.consumers.find((c) => c.replaces === paused.id)!.consumer
    expect(again.paused).toBe(true)
    expect(prepared.consumers.find((c) => c.replaces === l1.consumer.id)!.consumer.paused).toBe(false)
    expect(prepared.dropped).toEqual([])
    expect(prepared.parameters.transport.kind).toBe("plain")
    expect(prepared.parameters.consumers.map((c) => c.producerId)).toEqual([
      broadcast.producer.id,
      broadcast.producer.id
    ])
    expect(JSON.parse(JSON.stringify(prepared.parameters))).toEqual(prepared.parameters)
    await expect(relocation.prepare()).rejects.toThrow(/prepared/)
    harness.track(await mafalda.workers())

    const moved = await switchListener(l1, prepared)
    await relocation.complete()
    expect(relocation.state).toBe("completed")
    expect(l1.transport.closed).toBe(true)
    expect(l1.consumer.closed).toBe(true)
    expect(paused.closed).toBe(true)
    expect(router.transportsForTesting.has(l1.transport.id)).toBe(false)

    // RTP reaches the receiver through the new transport, and l2 as before.
    const received = await sendUntilReceived(broadcast, [moved, l2], 10)
    for (const n of received) expect(n).toBeGreaterThanOrEqual(10)
    expect(relocationsCounted("done")).toBe(doneBefore + 1)

    // Nothing left behind: the old transport is gone from the snapshot; closing the new one
    // leaves its Worker idle, and scale-down closes it (its process exits).
    const transports = [...mafalda.snapshot().transports].map(([id]) => id as string)
    expect(transports).not.toContain(l1.transport.id)
    expect(transports).toContain(prepared.transport.id)
    const second = (await mafalda.status()).workers.find((w) => w.id === prepared.to.worker)
    expect(second?.pid).toBeDefined()
    expect(await mafalda.workers()).toHaveLength(2)
    prepared.transport.close()
    for (let i = 0; i < 5 && (await mafalda.workers()).length > 1; i++) await mafalda.scaleDown()
    expect(await mafalda.workers()).toHaveLength(1)
    expect(workerOf(mafalda, l2.transport.id)).toBe(home)
    expect(mafalda.snapshot().workers.pipe((ws) => [...ws].map(([id]) => id as string))).not.toContain(
      prepared.to.worker
    )
  })

  it("a Worker killed mid-stream: its transports are offered (WorkerLost) before routerclose, re-established with the helper, and receive RTP again", async () => {
    const mafalda = await harness.createMafalda(options)
    const { router, broadcast, listeners } = await start(mafalda, 4)
    const [l0, l1, l2, l3] = listeners as [Listener, Listener, Listener, Listener]
    const workers = await mafalda.workers()
    expect(workers).toHaveLength(2)
    harness.track(workers)
    const victim = workers[1]!
    const victimId = workerOf(mafalda, l3.transport.id)!
    expect(workerOf(mafalda, l2.transport.id)).toBe(victimId)
    expect(workerOf(mafalda, l0.transport.id)).not.toBe(victimId)
    await sendUntilReceived(broadcast, listeners, 10)

    // The application: re-establish each transport offered because its Worker was lost.
    const order: Array<string> = []
    const offered: Array<TransportRelocation> = []
    const reestablished: Array<Promise<Listener>> = []
    const instanceOffers: Array<TransportRelocation> = []
    mafalda.observer.on("relocation", (r) => instanceOffers.push(r))
    router.on("relocation", (relocation) => {
      order.push(`relocation ${relocation.transport.id}`)
      offered.push(relocation)
      const old = listeners.find((l) => l.transport === relocation.transport)!
      reestablished.push(
        relocation.prepare().then(async (prepared) => {
          const moved = await switchListener(old, prepared)
          await relocation.complete()
          return moved
        })
      )
    })
    for (const l of listeners)
      l.transport.on("routerclose", () => order.push(`routerclose ${l.transport.id}`))
    const died = once<[Error, string]>(router, "workerdied")

    process.kill(victim.pid, "SIGKILL")
    await died
    const moved = await Promise.all(reestablished)

    // Offered for exactly the two transports of the dead Worker, each before its routerclose.
    const lost = [l2, l3]
    expect(offered.map((r) => r.transport.id).sort()).toEqual(lost.map((l) => l.transport.id).sort())
    expect(instanceOffers).toEqual(offered)
    for (const r of offered) {
      expect(r.reason).toBe("WorkerLost")
      expect(r.from.worker).toBe(victimId)
      expect(r.state).toBe("completed")
      expect(order.indexOf(`relocation ${r.transport.id}`)).toBeLessThan(
        order.indexOf(`routerclose ${r.transport.id}`)
      )
    }
    for (const l of lost) {
      expect(l.transport.closed).toBe(true)
      expect(l.consumer.closed).toBe(true)
    }
    expect(order.filter((e) => e.startsWith("routerclose"))).toHaveLength(2)
    // The new transports are on a live Worker (a replacement: the first one is full).
    const now = await mafalda.workers()
    harness.track(now)
    expect(now.map((w) => w.pid)).not.toContain(victim.pid)
    expect(processExists(victim.pid)).toBe(false)
    for (const m of moved) {
      const at = workerOf(mafalda, m.transport.id)
      expect(at).toBeDefined()
      expect(at).not.toBe(victimId)
    }
    // Everyone receives RTP again: the survivors, and the re-established consumers.
    const received = await sendUntilReceived(broadcast, [l0, l1, ...moved], 10)
    for (const n of received) expect(n).toBeGreaterThanOrEqual(10)
    expect([...mafalda.snapshot().transports]).toHaveLength(1 + 4)
  })

  it("moves data consumers too: a DirectTransport's data consumer re-created on another Worker receives the data producer's messages", async () => {
    const mafalda = await harness.createMafalda(options)
    const router = await mafalda.createRouter({ mediaCodecs: [opus] })
    const source = await router.createDirectTransport()
    const dataProducer = await source.produceData({ label: "chat" })
    const sink = await router.createDirectTransport()
    const dataConsumer = await sink.consumeData({ dataProducerId: dataProducer.id })
    harness.track(await mafalda.workers())
    const home = workerOf(mafalda, sink.id)

    const relocation = router.relocateTransport(sink.id, {
      reason: "Consolidate",
      target: { newWorker: true }
    })
    const prepared = await relocation.prepare()
    harness.track(await mafalda.workers())
    expect(prepared.to.worker).not.toBe(home)
    expect(prepared.parameters.transport).toEqual({ kind: "direct", id: prepared.transport.id })
    expect(prepared.consumers).toEqual([])
    expect(prepared.dataConsumers.map((d) => d.replaces)).toEqual([dataConsumer.id])
    const [moved] = prepared.dataConsumers.map((d) => d.dataConsumer)
    expect(prepared.parameters.dataConsumers[0]).toMatchObject({
      replaces: dataConsumer.id,
      id: moved!.id,
      dataProducerId: dataProducer.id,
      label: "chat"
    })
    await relocation.complete()
    expect(dataConsumer.closed).toBe(true)

    const received = new Promise<string>((resolve) =>
      moved!.on("message", (m: Buffer) => resolve(m.toString()))
    )
    dataProducer.send("after the move")
    expect(await Promise.race([received, new Promise((r) => setTimeout(() => r("nothing"), 5_000))])).toBe(
      "after the move"
    )
  })

  it("a move with nowhere to go fails cleanly: prepare() rejects, the old transport stays, the failure is counted", async () => {
    const mafalda = await harness.createMafalda({ ...options, maxWorkers: 1 })
    const { router, broadcast, listeners } = await start(mafalda, 1)
    const [l1] = listeners as [Listener]
    harness.track(await mafalda.workers())
    const failedBefore = relocationsCounted("failed")
    const relocation = router.relocateTransport(l1.transport.id, { reason: "Overload" })
    await expect(relocation.prepare()).rejects.toThrow(/no capacity|CPU left/)
    expect(relocation.state).toBe("abandoned")
    expect(relocation.prepared).toBeUndefined()
    expect(relocationsCounted("failed")).toBe(failedBefore + 1)
    expect([...router.transportsForTesting.keys()].sort()).toEqual(
      [broadcast.ingress.id, l1.transport.id].sort()
    )
    expect(await mafalda.workers()).toHaveLength(1)
    const [n] = await sendUntilReceived(broadcast, [l1], 10)
    expect(n).toBeGreaterThanOrEqual(10)
    // It may be offered again.
    await router.relocateTransport(l1.transport.id).abandon()
  })

  it("checks its arguments and state as mediasoup would, and abandon() keeps the old transport", async () => {
    const mafalda = await harness.createMafalda(options)
    const { router, broadcast, listeners } = await start(mafalda, 1)
    const [l1] = listeners as [Listener]
    harness.track(await mafalda.workers())
    expect(() => router.relocateTransport("nope")).toThrow(TypeError)
    expect(() => router.relocateTransport(l1.transport.id, { reason: "Whim" as never })).toThrow(TypeError)
    expect(() => router.relocateTransport(l1.transport.id, { target: { worker: "nope" } })).toThrow(TypeError)
    const home = workerOf(mafalda, l1.transport.id)!
    expect(() => router.relocateTransport(l1.transport.id, { target: { worker: home } })).toThrow(/own/)
    const other: MafaldaRouter = await mafalda.createRouter({ mediaCodecs: [opus] })
    expect(() => other.relocateTransport(l1.transport.id)).toThrow(TypeError)

    const relocation = router.relocateTransport(l1.transport.id, {
      reason: "Overload",
      target: { newWorker: true }
    })
    await expect(relocation.complete()).rejects.toThrow(/offered/)
    const prepared = await relocation.prepare()
    expect(prepared.to.worker).not.toBe(home)
    harness.track(await mafalda.workers())
    await relocation.abandon()
    expect(relocation.state).toBe("abandoned")
    expect(prepared.transport.closed).toBe(true)
    expect(l1.transport.closed).toBe(false)
    const [n] = await sendUntilReceived(broadcast, [l1], 10)
    expect(n).toBeGreaterThanOrEqual(10)
    // After an abandoned move, another may be offered; a closed Router offers none.
    const next = router.relocateTransport(l1.transport.id, { reason: "Drain" })
    expect(next.reason).toBe("Drain")
    await next.abandon()
    router.close()
    expect(() => router.relocateTransport(l1.transport.id)).toThrow(/closed/)
  })
})
