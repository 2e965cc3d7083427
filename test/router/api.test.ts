/** The Promise API's validation and mediasoup-style errors. */
import { types } from "mediasoup"
import { afterEach, describe, expect, it } from "vitest"
import { createMafalda, type MafaldaInstance } from "../../src/promise.js"
import { opus } from "./support.js"

let mafalda: MafaldaInstance | undefined
afterEach(async () => {
  await mafalda?.close()
  mafalda = undefined
})

describe("Promise API", () => {
  it("rejects bad options with a TypeError naming the field", async () => {
    await expect(createMafalda({ watermark: 0 })).rejects.toThrow(TypeError)
    await expect(createMafalda({ watermark: 0 })).rejects.toThrow(/watermark/)
    await expect(createMafalda({ nope: 1 } as never)).rejects.toThrow(/nope/)
    await expect(createMafalda({ workerSettings: { rtcMinPort: 5000, rtcMaxPort: 4000 } })).rejects.toThrow(
      TypeError
    )
  })

  it("starts no Worker before the first transport, and mirrors mediasoup's Router errors", async () => {
    mafalda = await createMafalda({ maxWorkers: 1, samplingInterval: 3_600_000 })
    const router = await mafalda.createRouter({ mediaCodecs: [opus], appData: { room: "a" } })
    expect(router.closed).toBe(false)
    expect(router.appData).toEqual({ room: "a" })
    expect(router.rtpCapabilities.codecs?.[0]?.mimeType).toBe("audio/opus")
    expect(await mafalda.workers()).toHaveLength(0)
    // mediasoup's own error for a codec it does not support.
    await expect(
      mafalda.createRouter({ mediaCodecs: [{ kind: "audio", mimeType: "audio/nope", clockRate: 1 }] })
    ).rejects.toThrow(types.UnsupportedError)
    await expect(router.pipeToRouter({ router } as never)).rejects.toThrow(TypeError)
    const closedEvent = new Promise<void>((resolve) => router.observer.once("close", () => resolve()))
    router.close()
    await closedEvent
    expect(router.closed).toBe(true)
    await expect(
      router.createWebRtcTransport({ listenInfos: [{ protocol: "udp", ip: "127.0.0.1" }] })
    ).rejects.toThrow(types.InvalidStateError)
  })

  it("closes its Routers with workerclose when Mafalda closes", async () => {
    mafalda = await createMafalda({ maxWorkers: 1, samplingInterval: 3_600_000 })
    const router = await mafalda.createRouter({ mediaCodecs: [opus] })
    const transport = await router.createWebRtcTransport({
      listenInfos: [{ protocol: "udp", ip: "127.0.0.1" }]
    })
    const workerclose = new Promise<void>((resolve) => router.once("workerclose", () => resolve()))
    await mafalda.close()
    await workerclose
    expect(router.closed).toBe(true)
    expect(transport.closed).toBe(true)
    await expect(mafalda.createRouter()).rejects.toThrow(types.InvalidStateError)
  })
})
