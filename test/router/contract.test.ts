/**
 * The contract defects of the drop-in issue, each reproduced with real Workers:
 * observers keep their pipes, a consumer `consume()` returns is never scaled down under its
 * producer, arguments are checked as mediasoup checks them, per-Router Worker settings are
 * validated at `createRouter`, only mediasoup's error kinds leave the Promise API,
 * placements in a Worker's death window wait for the replacement, and a global cap on
 * Worker processes holds.
 */
import { Duration, Effect, Fiber } from "effect"
import { types } from "mediasoup"
import { describe, expect, it } from "vitest"
import { makeRtpPackets, makeRtpSender } from "../../src/media/rtp.js"
import { createMafalda } from "../../src/promise.js"
import { useMafaldaHarness } from "../support/mafaldaHarness.js"
import { scaleDownHadItsChance } from "./scaleDownWitness.js"
import { listenInfo, once, opus } from "./support.js"

const harness = useMafaldaHarness()

const errorOf = async (promise: Promise<unknown>): Promise<Error> => {
  try {
    await promise
  } catch (error) {
    return error as Error
  }
  throw new Error("expected a rejection")
}

/** mediasoup's kinds (and mediasoup's own plain `Error`): nothing else leaves the Promise API. */
const isMediasoupKind = (error: Error): boolean =>
  error.constructor === TypeError ||
  error.constructor === types.InvalidStateError ||
  error.constructor === types.UnsupportedError ||
  error.constructor === Error

const plain = { listenInfo, rtcpMux: true, comedia: true } as const

/** An opus producer on a comedia PlainTransport that announces the ssrc-audio-level extension. */
const audioProducer = async (
  router: types.Router | { createPlainTransport: types.Router["createPlainTransport"] }
) => {
  const ingress = await router.createPlainTransport(plain)
  const ssrc = 0x01020304
  const producer = await ingress.produce({
    kind: "audio",
    rtpParameters: {
      codecs: [{ mimeType: "audio/opus", payloadType: 111, clockRate: 48000, channels: 2 }],
      headerExtensions: [{ uri: "urn:ietf:params:rtp-hdrext:ssrc-audio-level", id: 1 }],
      encodings: [{ ssrc }]
    }
  })
  return { ingress, producer, ssrc }
}

/** Sends opus RTP with a one-byte ssrc-audio-level extension (id 1, -10 dBov) every 10 ms. */
const sendLevels = (
  resources: ReturnType<typeof harness.makeResources>,
  ingress: types.PlainTransport,
  ssrc: number
) =>
  resources.acquire(
    Effect.gen(function* () {
      const sender = yield* makeRtpSender({
        target: { address: ingress.tuple.localAddress, port: ingress.tuple.localPort }
      })
      const packets = makeRtpPackets({ ssrc, payloadType: 111, count: 2000 }).map((p) => ({
        ...p,
        headerExtension: { profile: 0xbede, data: Uint8Array.of(0x10, 10, 0, 0) }
      }))
      return yield* sender.sendAll(packets, { interval: Duration.millis(10) }).pipe(Effect.forkScoped)
    })
  )

const scaleDownOptions = {
  idleGraceMillis: 200,
  scaleDownInterval: 50,
  warmWorkers: 0,
  scaleDownHysteresis: 0,
  samplingInterval: 3_600_000
} as const

describe("an RTP observer on another Worker than its producer", () => {
  it("keeps the pipe feeding it past the grace period, and keeps hearing the producer", async () => {
    const resources = harness.makeResources()
    // A transport costs 40 %: the observer (placed as a transport) does not fit beside the
    // producer's transport under the 50 % watermark, and goes to a second Worker.
    const mafalda = await harness.createMafalda({
      ...scaleDownOptions,
      maxWorkers: 2,
      watermark: 50,
      costs: { transport: 40 },
      workerSettings: { rtcMinPort: 47000, rtcMaxPort: 47499 }
    })
    const router = await mafalda.createRouter({ mediaCodecs: [opus] })
    const { ingress, producer, ssrc } = await audioProducer(router)
    const levels = await router.createAudioLevelObserver({ interval: 100, threshold: -70 })
    await levels.addProducer({ producerId: producer.id })
    harness.track(await mafalda.workers())
    expect(await mafalda.workers()).toHaveLength(2)
    const pipes = (await mafalda.status()).pipes
    expect(pipes).toHaveLength(1)

    await scaleDownHadItsChance(mafalda)
    expect((await mafalda.status()).pipes).toEqual(pipes)

    // It still hears the producer.
    const heard = once<[Array<{ volume: number }>]>(levels, "volumes", 5_000)
    const sending = await sendLevels(resources, ingress, ssrc)
    const [volumes] = await heard
    await Effect.runPromise(Fiber.interrupt(sending))
    expect(volumes[0]?.volume).toBeGreaterThan(-20)

    // Once the observer lets the producer go, the pipe is idle and goes.
    await levels.removeProducer({ producerId: producer.id })
    await scaleDownHadItsChance(mafalda)
    expect((await mafalda.status()).pipes).toEqual([])
  })
})

describe("consume() racing the scale-down of an idle pipe", () => {
  it("never returns a consumer that scale-down then closes while its producer lives", async () => {
    // Pipes nobody consumes go at once (grace 0), looked for every millisecond.
    const mafalda = await harness.createMafalda({
      ...scaleDownOptions,
      idleGraceMillis: 0,
      scaleDownInterval: 1,
      maxWorkers: 2,
      watermark: 50,
      costs: { transport: 50 },
      workerSettings: { rtcMinPort: 47500, rtcMaxPort: 47999 }
    })
    const router = await mafalda.createRouter({ mediaCodecs: [opus] })
    const { producer } = await audioProducer(router)
    // On the second Worker: every consumer there needs the pipe.
    const transport = await router.createPlainTransport(plain)
    harness.track(await mafalda.workers())
    expect(await mafalda.workers()).toHaveLength(2)
    let closedUnderProducer = 0
    for (let i = 0; i < 200; i++) {
      const consumers = await Promise.all(
        [0, 1].map(() =>
          transport.consume({ producerId: producer.id, rtpCapabilities: router.rtpCapabilities })
        )
      )
      await new Promise((resolve) => setTimeout(resolve, i % 3))
      for (const c of consumers) {
        if (c.closed && !producer.closed) closedUnderProducer++
        c.close()
      }
    }
    expect(closedUnderProducer).toBe(0)
  })
})

describe("argument checks as mediasoup makes them", () => {
  it("rejects a pipeToRouter target that is no Router with a TypeError, and nothing else breaks", async () => {
    const mafalda = await harness.createMafalda({ maxWorkers: 1, samplingInterval: 3_600_000 })
    const router = await mafalda.createRouter({ mediaCodecs: [opus] })
    const { producer } = await audioProducer(router)
    harness.track(await mafalda.workers())
    const unhandled: Array<unknown> = []
    const onUnhandled = (reason: unknown) => unhandled.push(reason)
    process.on("unhandledRejection", onUnhandled)
    try {
      for (const target of [{}, { id: "x" }, "router", 42]) {
        const error = await errorOf(router.pipeToRouter({ producerId: producer.id, router: target as never }))
        expect(error).toBeInstanceOf(TypeError)
      }
      // Whatever mediasoup started in the background would fail by now.
      await new Promise((resolve) => setTimeout(resolve, 200))
    } finally {
      process.off("unhandledRejection", onUnhandled)
    }
    expect(unhandled).toEqual([])
    expect(router.closed).toBe(false)
  })

  it("checks appData, mediaCodecs and each creator's options before placing anything", async () => {
    const mafalda = await harness.createMafalda({ maxWorkers: 1, samplingInterval: 3_600_000 })
    await expect(mafalda.createRouter({ appData: "NOT-AN-OBJECT" as never })).rejects.toThrow(TypeError)
    await expect(mafalda.createRouter({ mediaCodecs: {} as never })).rejects.toThrow(TypeError)
    const router = await mafalda.createRouter({ mediaCodecs: [opus] })
    await expect(router.createWebRtcTransport({} as never)).rejects.toThrow(TypeError)
    await expect(
      router.createWebRtcTransport({ listenInfos: [listenInfo], appData: "x" as never })
    ).rejects.toThrow(TypeError)
    await expect(router.createPlainTransport({} as never)).rejects.toThrow(TypeError)
    await expect(router.createPipeTransport({} as never)).rejects.toThrow(TypeError)
    await expect(router.createDirectTransport({ maxMessageSize: -2000 })).rejects.toThrow(TypeError)
    await expect(router.createAudioLevelObserver({ maxEntries: 0 })).rejects.toThrow(TypeError)
    await expect(router.createActiveSpeakerObserver({ interval: "x" as never })).rejects.toThrow(TypeError)
    // Nothing was placed: no Worker started.
    expect(await mafalda.workers()).toHaveLength(0)
  })
})

describe("per-Router Worker settings", () => {
  it("are validated at createRouter, with a TypeError naming the problem", async () => {
    const mafalda = await harness.createMafalda({ maxWorkers: 1, samplingInterval: 3_600_000 })
    const bad: ReadonlyArray<[unknown, RegExp]> = [
      [{ logLevel: "chicken" }, /logLevel/],
      [{ rtcMinPort: 1000, rtcMaxPort: 999 }, /rtcMinPort/],
      [{ rtcMinPort: 1000, rtcMaxPort: 65536 }, /rtcMaxPort/],
      [{ dtlsCertificateFile: "/notfound/cert.pem" }, /dtlsPrivateKeyFile/],
      [{ dtlsCertificateFile: "/notfound/cert.pem", dtlsPrivateKeyFile: "/notfound/key.pem" }, /cert\.pem/],
      [{ libwebrtcFieldTrials: "x".repeat(200_000) }, /libwebrtcFieldTrials/]
    ]
    for (const [workerSettings, message] of bad) {
      const error = await errorOf(mafalda.createRouter({ workerSettings: workerSettings as never }))
      expect(error.constructor).toBe(TypeError)
      expect(error.message).toMatch(message)
    }
    expect(await mafalda.workers()).toHaveLength(0)
  })

  it("accept rtcMinPort 0, as mediasoup does", async () => {
    const mafalda = await harness.createMafalda({
      maxWorkers: 1,
      samplingInterval: 3_600_000,
      workerSettings: { rtcMinPort: 0, rtcMaxPort: 65535 }
    })
    const router = await mafalda.createRouter({ workerSettings: { rtcMinPort: 0, rtcMaxPort: 9999 } })
    const transport = await router.createDirectTransport()
    harness.track(await mafalda.workers())
    expect(transport.closed).toBe(false)
  })
})

describe("error kinds", () => {
  it("are mediasoup's, with messages naming the problem", async () => {
    const mafalda = await createMafalda({ maxWorkers: 1, samplingInterval: 3_600_000 })
    const unsupported = await errorOf(
      mafalda.createRouter({ mediaCodecs: [{ kind: "audio", mimeType: "audio/nope", clockRate: 8000 }] })
    )
    expect(unsupported).toBeInstanceOf(types.UnsupportedError)

    // A Router closed while one of its transports is being placed.
    const router = await mafalda.createRouter({ mediaCodecs: [opus] })
    const creating = errorOf(router.createPlainTransport(plain))
    router.close()
    const closedUnder = await creating
    expect(closedUnder).toBeInstanceOf(types.InvalidStateError)

    // Another Mafalda's Router as pipeToRouter destination.
    const other = await createMafalda({ maxWorkers: 1, samplingInterval: 3_600_000 })
    const a = await mafalda.createRouter({ mediaCodecs: [opus] })
    const b = await other.createRouter({ mediaCodecs: [opus] })
    const { producer } = await audioProducer(a)
    harness.track([...(await mafalda.workers()), ...(await other.workers())])
    const foreign = await errorOf(a.pipeToRouter({ producerId: producer.id, router: b }))
    expect(isMediasoupKind(foreign)).toBe(true)
    expect(foreign.message).not.toMatch(/closed/)
    expect(foreign.message).toMatch(/another Mafalda/)
    await other.close()

    // Everything after close.
    await mafalda.close()
    for (const call of [() => mafalda.status(), () => mafalda.scaleDown(), () => mafalda.workers()]) {
      const error = await errorOf(call())
      expect(error).toBeInstanceOf(types.InvalidStateError)
    }
  })

  it("are mediasoup's when no capacity is left", async () => {
    const mafalda = await harness.createMafalda({ maxWorkers: 1, watermark: 10, samplingInterval: 3_600_000 })
    const router = await mafalda.createRouter({ mediaCodecs: [opus] })
    const error = await errorOf(
      (async () => {
        for (let i = 0; i < 200; i++) await router.createDirectTransport()
      })()
    )
    harness.track(await mafalda.workers())
    expect(error.constructor).toBe(Error)
    expect(error.message).toMatch(/capacity|room/)
  })
})

describe("a placement in a Worker's death window", () => {
  it("waits for the replacement instead of failing", async () => {
    const mafalda = await harness.createMafalda({ maxWorkers: 1, samplingInterval: 3_600_000 })
    const router = await mafalda.createRouter({ mediaCodecs: [opus] })
    await router.createDirectTransport()
    const [victim] = await mafalda.workers()
    harness.track([victim!])
    process.kill(victim!.pid, "SIGKILL")
    // At once, before anything noticed the death.
    const transport = await router.createPlainTransport(plain)
    expect(transport.closed).toBe(false)
    const [replacement] = await mafalda.workers()
    harness.track([replacement!])
    expect(replacement!.pid).not.toBe(victim!.pid)
  })
})

describe("a global cap on Worker processes", () => {
  it("holds across sets of Worker settings", async () => {
    const mafalda = await harness.createMafalda({
      maxWorkers: 1,
      maxWorkerProcesses: 2,
      samplingInterval: 3_600_000
    } as never)
    const routers = await Promise.all(
      [0, 1, 2, 3].map((i) =>
        mafalda.createRouter({
          mediaCodecs: [opus],
          workerSettings: { rtcMinPort: 48000 + i * 100, rtcMaxPort: 48099 + i * 100 }
        })
      )
    )
    const results = await Promise.allSettled(routers.map((r) => r.createDirectTransport()))
    harness.track(await mafalda.workers())
    expect(await mafalda.workers()).toHaveLength(2)
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(2)
    for (const r of results) {
      if (r.status === "rejected") {
        expect((r.reason as Error).constructor).toBe(Error)
        expect((r.reason as Error).message).toMatch(/maxWorkerProcesses/)
      }
    }
  })
})
