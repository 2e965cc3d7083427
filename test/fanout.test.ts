/**
 * The fan-out harness stays correct: at a small audience, with real Workers and real RTP,
 * every sampled consumer receives every packet of the window and mediasoup's counters show
 * every consumer sent every packet. Plus the VP8 packets mediasoup needs to forward video.
 */
import { describe, expect, it } from "vitest"
import { type FanoutOnceOptions, openHarness, runFanoutOnce } from "../src/media/fanout.js"
import { type CalibrationWindow, calibrate, costsFrom, shortfallsOf } from "../src/media/fanoutCalibration.js"
import { STAMP_SIZE, videoStream } from "../src/media/fanoutStreams.js"
import { parseRtpPacket } from "../src/media/rtp.js"
import { packetizeVp8Frame, parseVp8PayloadDescriptor } from "../src/media/vp8.js"
import { processExists } from "../src/media/worker.js"

const payloadOf = (packet: Uint8Array) => {
  const parsed = parseRtpPacket(packet)
  if (parsed._tag === "Left") throw parsed.left
  return parsed.right
}

describe("VP8 packets", () => {
  it("have the X bit and a 15-bit PictureID, S on the first, the marker on the last, P for keyframes", () => {
    const key = packetizeVp8Frame({
      ssrc: 1,
      payloadType: 96,
      keyFrame: true,
      frameBytes: 3000,
      pictureId: 0x1234
    })
    expect(key.length).toBe(3)
    const first = payloadOf(key[0]!)
    expect(Array.from(first.payload.subarray(0, 4))).toEqual([0x90, 0x80, 0x80 | 0x12, 0x34])
    expect(parseVp8PayloadDescriptor(first.payload)).toMatchObject({
      start: true,
      keyFrame: true,
      pictureId: 0x1234
    })
    expect(parseVp8PayloadDescriptor(payloadOf(key[1]!).payload)).toMatchObject({
      start: false,
      keyFrame: false
    })
    expect(key.map((p) => payloadOf(p).marker)).toEqual([false, false, true])
    const delta = packetizeVp8Frame({ ssrc: 1, payloadType: 96, keyFrame: false, frameBytes: 500 })
    expect(parseVp8PayloadDescriptor(payloadOf(delta[0]!).payload)).toMatchObject({
      start: true,
      keyFrame: false
    })
    // mediasoup drops packets whose descriptor has no X bit.
    expect(parseVp8PayloadDescriptor(Uint8Array.of(0x10, 0x00, 0x00))).toBeUndefined()
  })

  it("make a 30 fps stream of about 1 Mbit/s with a keyframe first and room for the stamp", () => {
    const stream = videoStream()
    expect(stream.frames.length).toBe(60)
    expect(stream.nominal.bitsPerSecond).toBeGreaterThan(950_000)
    expect(stream.nominal.bitsPerSecond).toBeLessThan(1_050_000)
    const firstPacket = (frame: number) => stream.frames[frame]?.[0] ?? new Uint8Array(0)
    expect(parseVp8PayloadDescriptor(payloadOf(firstPacket(0)).payload)?.keyFrame).toBe(true)
    expect(parseVp8PayloadDescriptor(payloadOf(firstPacket(1)).payload)?.keyFrame).toBe(false)
    for (const frame of stream.frames) {
      for (const packet of frame) {
        expect(packet.length).toBeLessThanOrEqual(12 + 1200)
        expect(payloadOf(packet).payload.length).toBeGreaterThan(4 + 10 + STAMP_SIZE)
      }
    }
  })
})

describe("fan-out harness with real RTP", () => {
  /** Runs one short window; every packet must reach every consumer (mediasoup) and every sampled one (harness). */
  const runComplete = async (
    options: Pick<FanoutOnceOptions, "setup" | "kind" | "consumers" | "sampleSize" | "ports">
  ) => {
    const { window, refused } = await runFanoutOnce({
      ...options,
      warmupMs: 300,
      settleMs: 0,
      windowMs: 1500,
      drainMs: 300
    })
    expect(refused).toBeUndefined()
    expect(window.consumers).toBe(options.consumers)
    expect(window.sent.packets).toBeGreaterThanOrEqual(70)
    expect(window.producerReceived).toBe(window.sent.packets)
    expect(window.workerSide).toEqual({ loss: 0, worstLoss: 0, incomplete: 0 })
    expect(window.sample.consumers).toBeGreaterThan(0)
    expect(window.sample).toMatchObject({
      complete: window.sample.consumers,
      loss: 0,
      duplicates: 0,
      foreign: 0
    })
    for (const w of window.cpu.workers) expect(processExists(w.pid)).toBe(false)
    return window
  }

  it("spread, video: every sampled consumer gets every packet, every consumer sends every packet", async () => {
    const window = await runComplete({
      setup: "spread",
      kind: "video",
      consumers: 24,
      sampleSize: 6,
      ports: { min: 49500, max: 49799 }
    })
    expect(window.pipes).toBe(1)
    expect(window.sent.packets).toBeGreaterThan(100)
    expect(window.sample.perWorker).toEqual({ w0: 3, w1: 3 })
  })

  it("mafalda, audio: the same through a Mafalda Router", async () => {
    await runComplete({
      setup: "mafalda",
      kind: "audio",
      consumers: 20,
      sampleSize: 4,
      ports: { min: 49800, max: 49999 }
    })
  })
})

describe("cost calibration", () => {
  it("pipes K producers over one shared PipeTransport pair, every piped producer carrying its stream", async () => {
    const harness = await openHarness({ sinks: 2 })
    try {
      const k = 4
      const [run] = await calibrate(harness, {
        kinds: ["audio"],
        streams: { audio: k },
        roundTrips: 1,
        windowMs: 600,
        settleMs: 300,
        consumers: { audio: 10 },
        transports: 10,
        ports: { min: 49500, max: 49799 }
      })
      if (run === undefined) throw new Error("no calibration")
      const perStream = run.stream.packetsPerSecond
      const byState = (state: string) => run.windows.filter((w) => w.phase === "pipes" && w.state === state)
      // stopped, then up and down: 11 windows, 2 passes with one window of each state.
      expect(run.windows.filter((w) => w.phase === "pipes").map((w) => w.state)).toEqual([
        "stopped",
        "streaming",
        "pairIdle",
        "piped1",
        "pipedHalf",
        "pipedAll",
        "pipedHalf",
        "piped1",
        "pairIdle",
        "streaming",
        "stopped"
      ])
      expect(run.passes.length).toBe(2)
      // One pair per round trip, shared by every producer piped.
      expect(run.pairsCreated).toBe(1)
      for (const w of run.windows.filter((x) => x.phase !== "pairs")) {
        expect(w.pipeTransports).toBe(["stopped", "streaming", "consumers"].includes(w.state) ? 0 : 1)
        const streaming = w.state !== "stopped"
        expect(w.ingressPacketsPerSecond).toBeGreaterThan(streaming ? 0.7 * k * perStream : -1)
        expect(w.ingressPacketsPerSecond).toBeLessThan(streaming ? 1.3 * k * perStream : 1)
        // Every piped producer receives its stream on B; nothing when nothing is piped.
        expect(w.pipedPacketsPerSecond).toBeGreaterThanOrEqual(0.7 * w.piped * perStream)
        expect(w.pipedPacketsPerSecond).toBeLessThanOrEqual(1.3 * w.piped * perStream + 1)
      }
      expect(byState("pipedAll").every((w) => w.piped === k)).toBe(true)
      expect(byState("pipedHalf").every((w) => w.piped === 2)).toBe(true)
      expect(byState("pairIdle").every((w) => w.piped === 0)).toBe(true)
      expect(run.windows.filter((w) => w.state === "consumers").length).toBe(1)
      expect(run.transport).toBeDefined()
      // Idle pairs, streams stopped: none, without SCTP, with SCTP, four with SCTP, and back.
      expect(run.windows.filter((w) => w.phase === "pairs").map((w) => w.state)).toEqual([
        "stopped",
        "pairNoSctp",
        "pairSctp",
        "pairsSctp4",
        "pairSctp",
        "pairNoSctp",
        "stopped"
      ])
      expect(
        run.windows.filter((w) => w.phase === "pairs").every((w) => w.ingressPacketsPerSecond === 0)
      ).toBe(true)
      expect(run.sctp?.passes.length).toBe(2)
      // The cost-model shape, with positive costs.
      const costs = costsFrom([run])
      expect(Object.keys(costs).sort()).toEqual(["audio", "transport", "video"])
      expect(Object.keys(costs.audio).sort()).toEqual(["consumer", "pipe", "producer"])
      expect(costs.audio.pipe).toBeGreaterThan(0)
      expect(run.estimates.pairIdle.both.n).toBe(2)
      expect(run.shortfalls).toEqual(shortfallsOf(run.windows, k, perStream))
      expect(run.workerPids.length).toBe(2)
      for (const pid of run.workerPids) expect(processExists(pid)).toBe(false)
    } finally {
      await harness.close()
    }
  }, 60_000)
})

describe("calibration shortfalls", () => {
  const window = (over: Partial<CalibrationWindow>): CalibrationWindow => ({
    kind: "video",
    state: "streaming",
    phase: "pipes",
    piped: 0,
    pipeTransports: 0,
    sendingEnd: 5,
    receivingEnd: 0,
    harness: 10,
    machine: 50,
    softirq: 1,
    foreign: 30,
    loadAverage: 1,
    ingressPacketsPerSecond: 1600,
    pipedPacketsPerSecond: 0,
    ...over
  })

  it("flags the windows that received less than 85 % of what K streams send, in and over the pipe", () => {
    const windows = [
      window({ state: "stopped", ingressPacketsPerSecond: 0 }),
      window({}),
      window({ state: "pipedHalf", piped: 8, pipedPacketsPerSecond: 790 }),
      window({ state: "pipedAll", piped: 16, pipedPacketsPerSecond: 1300 }),
      window({ phase: "consumers", state: "consumers", ingressPacketsPerSecond: 829 }),
      window({ phase: "pairs", state: "pairSctp", ingressPacketsPerSecond: 0 })
    ]
    expect(shortfallsOf(windows, 16, 100)).toEqual([
      {
        state: "pipedAll",
        phase: "pipes",
        at: "piped",
        expectedPacketsPerSecond: 1600,
        receivedPacketsPerSecond: 1300
      },
      {
        state: "consumers",
        phase: "consumers",
        at: "ingress",
        expectedPacketsPerSecond: 1600,
        receivedPacketsPerSecond: 829
      }
    ])
  })
})
