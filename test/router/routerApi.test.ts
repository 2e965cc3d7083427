/**
 * The Mafalda Router's mediasoup API beyond transports, with real Workers: `dump()` merged
 * over the underlying Routers, `routerclose`/`workerclose` where mediasoup emits them,
 * typed events (a misspelt event name does not compile), a Router that code typed against
 * `types.Router` accepts, the `rtpParameters` of mirror pipe consumers, the instance's
 * events, and a WebRtcServer shared by transports on different Workers.
 */
import { types } from "mediasoup"
import { describe, expect, it } from "vitest"
import type { PipeMade } from "../../src/services/Mafalda.js"
import { useMafaldaHarness } from "../support/mafaldaHarness.js"
import { listenInfo, once, opus } from "./support.js"

const harness = useMafaldaHarness()

const plain = { listenInfo, rtcpMux: true, comedia: true } as const
const audio = (ssrc: number): types.ProducerOptions => ({
  kind: "audio",
  rtpParameters: {
    codecs: [{ mimeType: "audio/opus", payloadType: 111, clockRate: 48000, channels: 2 }],
    encodings: [{ ssrc }]
  }
})

// A transport costs 50 % under a 50 % watermark: each transport on a Worker of its own.
const spread = {
  maxWorkers: 2,
  watermark: 50,
  costs: { transport: 50 },
  samplingInterval: 3_600_000
} as const

/** Code written against mediasoup's types, as an application has it. */
const roomOf = (router: types.Router): string => router.id
const transportIds = async (router: types.Router): Promise<Array<string>> =>
  (await router.dump()).transportIds

describe("the Mafalda Router as a mediasoup Router", () => {
  it("is a types.Router, with typed events", async () => {
    const mafalda = await harness.createMafalda({ maxWorkers: 1, samplingInterval: 3_600_000 })
    const router = await mafalda.createRouter({ mediaCodecs: [opus] })
    expect(router).toBeInstanceOf(types.Router)
    expect(roomOf(router)).toBe(router.id)
    const events: Array<string> = []
    router.on("workerclose", () => events.push("workerclose"))
    router.on("workerdied", (error, worker) => events.push(`${error.message} ${worker}`))
    router.observer.on("newtransport", (t) => events.push(t.id))
    // @ts-expect-error: a misspelt event name does not compile
    router.on("workerclosed", () => undefined)
    // @ts-expect-error: nor on the observer
    router.observer.on("newtransports", () => undefined)
    // @ts-expect-error: nor on the instance's observer
    mafalda.observer.on("newrouters", () => undefined)
    const t = await router.createDirectTransport()
    expect(events).toEqual([t.id])
    expect(await transportIds(router)).toEqual([t.id])
  })

  it("dumps its own objects over every Worker it uses, under its own id", async () => {
    const mafalda = await harness.createMafalda({ ...spread, maxWorkers: 4 })
    const router = await mafalda.createRouter({ mediaCodecs: [opus] })
    const other = await mafalda.createRouter({ mediaCodecs: [opus] })
    const t1 = await router.createPlainTransport(plain)
    const producer = await t1.produce(audio(1111))
    const t2 = await router.createPlainTransport(plain)
    const consumer = await t2.consume({ producerId: producer.id, rtpCapabilities: router.rtpCapabilities })
    const observer = await router.createAudioLevelObserver()
    await observer.addProducer({ producerId: producer.id })
    // Another Mafalda Router's transport on a shared underlying Router: not in this dump.
    const foreign = await other.createDirectTransport()
    harness.track(await mafalda.workers())
    expect((await mafalda.workers()).length).toBeGreaterThanOrEqual(2)
    expect((await mafalda.status()).pipes.length).toBeGreaterThanOrEqual(1)

    const dump = await router.dump()
    expect(dump.id).toBe(router.id)
    expect(dump.transportIds.sort()).toEqual([t1.id, t2.id].sort())
    expect(dump.transportIds).not.toContain(foreign.id)
    expect(dump.rtpObserverIds).toEqual([observer.id])
    expect(dump.mapProducerIdConsumerIds).toEqual([{ key: producer.id, values: [consumer.id] }])
    expect(dump.mapConsumerIdProducerId).toEqual([{ key: consumer.id, value: producer.id }])
    expect(dump.mapProducerIdObserverIds).toEqual([{ key: producer.id, values: [observer.id] }])
    expect(dump.mapDataProducerIdDataConsumerIds).toEqual([])
    expect(dump.mapDataConsumerIdDataProducerId).toEqual([])

    router.close()
    await expect(router.dump()).rejects.toThrow(types.InvalidStateError)
  })
})

describe("routerclose and workerclose", () => {
  it("closing the Router closes its transports and RTP observers with routerclose", async () => {
    const mafalda = await harness.createMafalda({ ...spread, maxWorkers: 3 })
    const router = await mafalda.createRouter({ mediaCodecs: [opus] })
    const t1 = await router.createPlainTransport(plain)
    const producer = await t1.produce(audio(2222))
    const t2 = await router.createPlainTransport(plain)
    const consumer = await t2.consume({ producerId: producer.id, rtpCapabilities: router.rtpCapabilities })
    const levels = await router.createAudioLevelObserver()
    harness.track(await mafalda.workers())
    const seen: Array<string> = []
    const closables: ReadonlyArray<[string, types.Transport | types.RtpObserver]> = [
      ["t1", t1],
      ["t2", t2],
      ["levels", levels]
    ]
    for (const [name, closable] of closables) {
      const emitter = closable as unknown as types.Transport
      emitter.on("routerclose", () => seen.push(`${name} routerclose closed=${emitter.closed}`))
      emitter.observer.on("close", () => seen.push(`${name} close`))
    }
    producer.on("transportclose", () => seen.push("producer transportclose"))
    consumer.on("transportclose", () => seen.push("consumer transportclose"))
    router.close()
    expect(seen).toEqual([
      "producer transportclose",
      "t1 routerclose closed=true",
      "t1 close",
      "consumer transportclose",
      "t2 routerclose closed=true",
      "t2 close",
      "levels routerclose closed=true",
      "levels close"
    ])
  })

  it("closing Mafalda closes its Routers with workerclose and their transports with routerclose", async () => {
    const mafalda = await harness.createMafalda(spread)
    const router = await mafalda.createRouter({ mediaCodecs: [opus] })
    const transport = await router.createDirectTransport()
    harness.track(await mafalda.workers())
    const seen: Array<string> = []
    transport.on("routerclose", () => seen.push("routerclose"))
    router.on("workerclose", () => seen.push("workerclose"))
    router.observer.on("close", () => seen.push("router close"))
    await mafalda.close()
    expect(seen).toEqual(["routerclose", "workerclose", "router close"])
  })
})

describe("pipeToRouter between Mafalda Routers that share a Router", () => {
  it("returns mirrors whose rtpParameters are a real pipe's", async () => {
    const mafalda = await harness.createMafalda({ maxWorkers: 1, samplingInterval: 3_600_000 })
    const a = await mafalda.createRouter({ mediaCodecs: [opus] })
    const shared = await mafalda.createRouter({ mediaCodecs: [opus] })
    // Other Worker settings: no sharing, a real pipe.
    const separate = await mafalda.createRouter({
      mediaCodecs: [opus],
      workerSettings: { rtcMinPort: 49000, rtcMaxPort: 49499 }
    })
    const transport = await a.createPlainTransport(plain)
    const producer = await transport.produce(audio(3333))
    const mirror = await a.pipeToRouter({ producerId: producer.id, router: shared })
    const real = await a.pipeToRouter({ producerId: producer.id, router: separate })
    harness.track(await mafalda.workers())
    expect(mirror.pipeConsumer?.constructor.name).toBe("PipeConsumerMirror")
    expect(real.pipeConsumer?.constructor.name).toBe("Consumer")
    // All but the SSRC, which mediasoup draws for each pipe consumer.
    const withoutSsrc = (p: types.RtpParameters | undefined) =>
      p === undefined ? p : { ...p, encodings: p.encodings?.map(({ ssrc: _ssrc, ...e }) => e) }
    expect(withoutSsrc(mirror.pipeConsumer?.rtpParameters)).toEqual(
      withoutSsrc(real.pipeConsumer?.rtpParameters)
    )
    expect(withoutSsrc(mirror.pipeProducer?.rtpParameters)).toEqual(
      withoutSsrc(real.pipeProducer?.rtpParameters)
    )
    expect(mirror.pipeProducer?.rtpParameters.encodings?.[0]?.ssrc).toBe(
      mirror.pipeConsumer?.rtpParameters.encodings?.[0]?.ssrc
    )
  })
})

describe("the instance's events", () => {
  it("announce new Routers, pipes, Worker deaths, scale-down and overloads", async () => {
    const mafalda = await harness.createMafalda({
      ...spread,
      idleGraceMillis: 100,
      scaleDownInterval: 50,
      warmWorkers: 0,
      scaleDownHysteresis: 0,
      // Any reported load is an overload.
      watermark: 50,
      samplingInterval: 100
    })
    const routers: Array<string> = []
    const pipes: Array<PipeMade> = []
    mafalda.observer.on("newrouter", (r) => routers.push(r.id))
    mafalda.observer.on("pipe", (p) => pipes.push(p))
    const router = await mafalda.createRouter({ mediaCodecs: [opus] })
    expect(routers).toEqual([router.id])
    const t1 = await router.createPlainTransport(plain)
    const producer = await t1.produce(audio(4444))
    const t2 = await router.createPlainTransport(plain)
    const consumer = await t2.consume({ producerId: producer.id, rtpCapabilities: router.rtpCapabilities })
    const workers = await mafalda.workers()
    harness.track(workers)
    expect(workers).toHaveLength(2)
    expect(pipes).toHaveLength(1)
    expect(pipes[0]).toMatchObject({ producer: producer.id, pinned: false })

    // The consumer goes: its pipe is idle, and scale-down closes it.
    const scaled = once<[ReadonlyArray<{ _tag: string }>]>(mafalda.observer, "scaledown")
    consumer.close()
    const [actions] = await scaled
    expect(actions.map((a) => a._tag)).toContain("ClosePipe")

    // A Worker dies.
    const died = once<[Error, { worker: string; pid: number | undefined; mafaldaRouters: Array<string> }]>(
      mafalda.observer,
      "workerdied"
    )
    const victim = workers.find((w) => !w.closed)!
    process.kill(victim.pid, "SIGKILL")
    const [error, loss] = await died
    expect(error.message).toMatch(/died/)
    expect(loss.pid).toBe(victim.pid)
  })

  it("announce a Worker whose load crosses the watermark", async () => {
    // A watermark of 0.001 %: any CPU the Worker uses is above it.
    const mafalda = await harness.createMafalda({ maxWorkers: 1, watermark: 0.001, samplingInterval: 50 })
    const overload = once<[{ worker: string; load: number; watermark: number; pid: number | undefined }]>(
      mafalda.observer,
      "overload"
    )
    const router = await mafalda.createRouter({ mediaCodecs: [opus] })
    const transport = await router.createPlainTransport(plain)
    await transport.produce(audio(5555))
    harness.track(await mafalda.workers())
    const [event] = await overload
    expect(event.load).toBeGreaterThan(0.001)
    expect(event.watermark).toBe(0.001)
    expect(event.pid).toBe((await mafalda.workers())[0]?.pid)
  })
})

describe("a WebRtcServer across Workers", () => {
  it("serves transports on every Worker: fixed ports on the first, the Worker's range on the others", async () => {
    const mafalda = await harness.createMafalda({
      ...spread,
      workerSettings: { rtcMinPort: 49500, rtcMaxPort: 49599 }
    })
    const port = 49700
    const server = await mafalda.createWebRtcServer({
      listenInfos: [
        { protocol: "udp", ip: "127.0.0.1", port },
        { protocol: "tcp", ip: "127.0.0.1", port }
      ]
    })
    expect(server).toBeInstanceOf(types.WebRtcServer)
    const handled: Array<string> = []
    server.observer.on("webrtctransporthandled", (t) => handled.push(t.id))
    const router = await mafalda.createRouter({ mediaCodecs: [opus] })
    const t1 = await router.createWebRtcTransport({ webRtcServer: server })
    const t2 = await router.createWebRtcTransport({ webRtcServer: server })
    harness.track(await mafalda.workers())
    expect(await mafalda.workers()).toHaveLength(2)
    expect(handled).toEqual([t1.id, t2.id])
    expect(server.webRtcTransportsForTesting.size).toBe(2)
    const ports = (t: types.WebRtcTransport) => t.iceCandidates.map((c) => `${c.protocol}:${c.port}`)
    expect(ports(t1)).toEqual([`udp:${port}`, `tcp:${port}`])
    for (const candidate of t2.iceCandidates) {
      expect(candidate.port).toBeGreaterThanOrEqual(49500)
      expect(candidate.port).toBeLessThanOrEqual(49599)
    }
    const dump = await server.dump()
    expect(dump.id).toBe(server.id)
    expect(dump.udpSockets).toHaveLength(2)
    expect(dump.webRtcTransportIds.sort()).toEqual([t1.id, t2.id].sort())

    const closed = once(t2, "listenserverclose")
    server.close()
    await closed
    expect(t1.closed).toBe(true)
    expect(t2.closed).toBe(true)
    expect(server.webRtcTransportsForTesting.size).toBe(0)
  })

  it("fails at once when its port is taken, with mediasoup's error", async () => {
    const mafalda = await harness.createMafalda({ maxWorkers: 2, samplingInterval: 3_600_000 })
    const first = await mafalda.createWebRtcServer({
      listenInfos: [{ protocol: "udp", ip: "127.0.0.1", port: 49800 }]
    })
    harness.track(await mafalda.workers())
    await expect(
      mafalda.createWebRtcServer({ listenInfos: [{ protocol: "udp", ip: "127.0.0.1", port: 49800 }] })
    ).rejects.toThrow(Error)
    await expect(mafalda.createWebRtcServer({ listenInfos: [] })).rejects.toThrow(TypeError)
    first.close()
  })
})
