/**
 * Relocations Mafalda decides on its own (`relocation: "offer"`), with real Workers and real
 * RTP: after a sampling round that finds a Worker's measured load over `relocateAbove`
 * (set very low here, so that a Worker forwarding RTP passes it), its transports are offered
 * with reason `Overload` to the Mafalda Router's `relocation` listener, which carries one out
 * with `prepare`/`complete`; with the option off (the default), nothing is offered.
 */
import { Duration, Effect, Fiber } from "effect"
import { describe, expect, it } from "vitest"
import { makeRtpPackets } from "../../src/media/rtp.js"
import { createMafalda, type MafaldaInstance } from "../../src/promise.js"
import type { TransportRelocation } from "../../src/router/relocation.js"
import { useMafaldaHarness } from "../support/mafaldaHarness.js"
import { type Broadcast, listen, opus, sendUntilReceived, startBroadcast } from "./support.js"

const harness = useMafaldaHarness()

// The measured load of a Worker forwarding RTP (about 1-2 %) is an overload: over
// relocateAbove (0.1 %) and over plannedLimit (0.5 %), which a new Worker taking the moved
// transports stays under (each object costs 0.01 % here); samples every 250 ms.
const options = {
  maxWorkers: 3,
  watermark: 100,
  relocateAbove: 0.1,
  plannedLimit: 0.5,
  costs: { transport: 0.01, producer: 0.01, consumer: 0.01, pipe: 0.01 },
  samplingInterval: 250,
  workerSettings: { rtcMinPort: 45000, rtcMaxPort: 45999 }
} as const

/** The Worker of a transport, as the snapshot has it. */
const workerOf = (mafalda: MafaldaInstance, transportId: string): string | undefined => {
  const snapshot = mafalda.snapshot()
  const router = [...snapshot.transports].find(([, t]) => t.id === transportId)?.[1].router
  return [...snapshot.routers].find(([, r]) => r.id === router)?.[1].worker
}

/** Keeps RTP flowing into the producer (so its Worker uses CPU) until the returned stop. */
const keepSending = (broadcast: Broadcast) => {
  const packets = makeRtpPackets({ ssrc: broadcast.ssrc, payloadType: 111, count: 4000 })
  const fiber = Effect.runFork(broadcast.sender.sendAll(packets, { interval: Duration.millis(5) }))
  return () => Effect.runPromise(Fiber.interrupt(fiber))
}

const setUp = async (relocation: "off" | "offer" | undefined) => {
  const mafalda = await harness.createMafalda(relocation === undefined ? options : { ...options, relocation })
  const resources = harness.makeResources()
  const router = await mafalda.createRouter({ mediaCodecs: [opus] })
  const broadcast = await startBroadcast(resources, router)
  const listener = await listen(resources, router, broadcast.producer.id)
  harness.track(await mafalda.workers())
  return { mafalda, router, broadcast, listener }
}

describe("relocations Mafalda decides (relocation option)", () => {
  it('"offer": an overloaded Worker\'s transport is offered (Overload) without relocateTransport, and the app moves it to another Worker', async () => {
    const { mafalda, router, broadcast, listener } = await setUp("offer")
    const home = workerOf(mafalda, listener.transport.id)
    expect(home).toBeDefined()
    const offered: Array<TransportRelocation> = []
    let before: Array<TransportRelocation> = []
    const moved = new Promise<TransportRelocation>((resolve, reject) => {
      router.on("relocation", (relocation: TransportRelocation) => {
        offered.push(relocation)
        // The app carries out the listener's move and gives the others up.
        if (relocation.transport.id !== listener.transport.id) {
          relocation.abandon().catch(reject)
          return
        }
        relocation
          .prepare()
          .then(async (prepared) => {
            const transport = prepared.transport as typeof listener.transport
            await transport.connect({
              ip: listener.receiver.local.address,
              port: listener.receiver.local.port
            })
            await relocation.complete()
            before = [...offered]
            resolve(relocation)
          })
          .catch(reject)
      })
    })
    const stop = keepSending(broadcast)
    try {
      const timeout = new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error("no relocation carried out within 15 s")), 15_000)
      )
      const relocation = await Promise.race([moved, timeout])
      expect(relocation.reason).toBe("Overload")
      expect(relocation.from.worker).toBe(home)
      expect(relocation.target).toEqual({ newWorker: true })
      expect(relocation.state).toBe("completed")
      expect(listener.transport.closed).toBe(true)
      const prepared = relocation.prepared!
      expect(prepared.to.worker).not.toBe(home)
      expect(workerOf(mafalda, prepared.transport.id)).toBe(prepared.to.worker)
      harness.track(await mafalda.workers())
      // Every offer was one Mafalda decided: Overload, off the busy Worker.
      expect(before).toContain(relocation)
      for (const r of before) {
        expect(r.reason).toBe("Overload")
        expect(r.from.worker).toBe(home)
      }
      // The moved consumer receives RTP on the new Worker.
      const consumer = prepared.consumers.find((c) => c.replaces === listener.consumer.id)!.consumer
      const ssrc = consumer.rtpParameters.encodings?.[0]?.ssrc ?? -1
      const [received] = await sendUntilReceived(
        broadcast,
        [{ ...listener, transport: prepared.transport as typeof listener.transport, consumer, ssrc }],
        10
      )
      expect(received).toBeGreaterThanOrEqual(10)
    } finally {
      await stop()
    }
  }, 30_000)

  it("bad values of relocation, relocateAbove and plannedLimit reject createMafalda with what is wrong", async () => {
    await expect(createMafalda({ relocation: "on" } as never)).rejects.toThrow(/relocation/)
    await expect(createMafalda({ relocateAbove: 0 })).rejects.toThrow(/relocateAbove/)
    await expect(createMafalda({ plannedLimit: 101 })).rejects.toThrow(/plannedLimit/)
  })

  it.each([
    ["default (off)", undefined, true],
    ['"off"', "off", true],
    ['"offer" with no relocation listener on the Mafalda Router (nobody would carry it out)', "offer", false]
  ] as const)(
    "%s: the same overload offers nothing",
    async (_name, relocation, routerListener) => {
      const { mafalda, broadcast, listener, router } = await setUp(relocation)
      const offered: Array<TransportRelocation> = []
      mafalda.observer.on("relocation", (r: TransportRelocation) => void offered.push(r))
      if (routerListener) router.on("relocation", (r: TransportRelocation) => void offered.push(r))
      const stop = keepSending(broadcast)
      try {
        // Several sampling rounds with the Worker over relocateAbove.
        await new Promise((resolve) => setTimeout(resolve, 2_000))
      } finally {
        await stop()
      }
      expect(offered).toEqual([])
      expect(listener.transport.closed).toBe(false)
    },
    30_000
  )
})
