/**
 * Pausing a mirrored pipe producer (two Mafalda Routers sharing a Router) acts like pausing
 * a real pipe producer: the destination's consumers stop receiving RTP and report
 * `producerPaused` (with `producerpause`/`producerresume` events), their own `paused` flag
 * stays the application's, and the source's consumers keep receiving.
 */
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { startPipedBroadcast, useMafaldaHarness } from "../support/mafaldaHarness.js"
import { type Listener, listen, once, sendUntilReceived } from "./support.js"

const harness = useMafaldaHarness()

/** The RTP packets of its consumer's stream `l` has received so far. */
const received = async (l: Listener): Promise<number> =>
  (await Effect.runPromise(l.receiver.packets)).filter((p) => p.ssrc === l.ssrc).length

/** The RTP packets mediasoup's consumer of `l` has sent so far: the Worker's count, ahead of UDP. */
const sent = async (l: Listener): Promise<number> =>
  (await l.consumer.getStats())
    .filter((s) => s.type === "outbound-rtp")
    .reduce((sum, s) => sum + s.packetCount, 0)

/**
 * Waits until `l` has received every packet its consumer has sent (none is on its way any
 * more), failing after 5 s; returns that count.
 */
const drained = async (l: Listener): Promise<number> => {
  const n = await sent(l)
  await Effect.runPromise(
    l.receiver.awaitPackets(n, { timeout: "5 seconds", where: (p) => p.ssrc === l.ssrc })
  )
  return n
}

/**
 * `l` got nothing since it had `count` packets: the Worker has sent its consumer nothing more
 * (asked after the Worker forwarded other consumers' packets of the same stream), and
 * nothing more arrived.
 */
const expectNothingSince = async (l: Listener, count: number): Promise<void> => {
  expect(await sent(l)).toBe(count)
  expect(await received(l)).toBe(count)
}

describe("pausing a mirrored pipe producer", () => {
  it("gives the destination's consumers producerPaused and stops their RTP only", async () => {
    const resources = harness.makeResources()
    const mafalda = await harness.createMafalda({
      maxWorkers: 1,
      samplingInterval: 3_600_000,
      workerSettings: { rtcMinPort: 49000, rtcMaxPort: 49499 }
    })
    const { a, b, broadcast, pipeConsumer, pipeProducer } = await startPipedBroadcast(resources, mafalda)
    expect(pipeProducer?.type).toBe("pipe")
    const onA = await listen(resources, a, broadcast.producer.id)
    const onB = await listen(resources, b, broadcast.producer.id)
    await sendUntilReceived(broadcast, [onA, onB], 10)

    const events: Array<string> = []
    for (const e of ["producerpause", "producerresume"]) onB.consumer.on(e as never, () => events.push(e))
    const observed: Array<string> = []
    for (const e of ["pause", "resume"] as const) onB.consumer.observer.on(e, () => observed.push(e))
    const aEvents: Array<string> = []
    onA.consumer.on("producerpause", () => aEvents.push("producerpause"))

    await pipeProducer!.pause()
    expect(pipeProducer!.paused).toBe(true)
    expect(pipeConsumer!.paused).toBe(false)
    expect(events).toEqual(["producerpause"])
    expect(observed).toEqual(["pause"])
    expect(onB.consumer.producerPaused).toBe(true)
    expect(onB.consumer.paused).toBe(false)
    // The source side is untouched.
    expect(broadcast.producer.paused).toBe(false)
    expect(onA.consumer.producerPaused).toBe(false)
    expect(onA.consumer.paused).toBe(false)
    expect(aEvents).toEqual([])

    // RTP reaches a's consumer, not b's: once b has all its consumer sent before the pause,
    // a receives 30 packets more and b none (a's and b's consumers share the Worker's Router).
    const bPaused = await drained(onB)
    await sendUntilReceived(broadcast, [onA], (await received(onA)) + 30)
    await expectNothingSince(onB, bPaused)

    // A consumer made on b meanwhile starts producer-paused.
    const late = await listen(resources, b, broadcast.producer.id)
    expect(late.consumer.producerPaused).toBe(true)
    expect(late.consumer.paused).toBe(false)

    // The application's resume does not defeat the mirror's pause; nor does its pause show
    // as an event while the producer is paused (as in mediasoup).
    await onB.consumer.pause()
    expect(onB.consumer.paused).toBe(true)
    await onB.consumer.resume()
    expect(onB.consumer.paused).toBe(false)
    expect(onB.consumer.producerPaused).toBe(true)
    expect(observed).toEqual(["pause"])
    await sendUntilReceived(broadcast, [onA], (await received(onA)) + 20)
    await expectNothingSince(onB, bPaused)

    // Paused by the application, then the mirror resumes: producerresume, still no RTP.
    await onB.consumer.pause()
    await pipeProducer!.resume()
    expect(events).toEqual(["producerpause", "producerresume"])
    expect(onB.consumer.producerPaused).toBe(false)
    expect(onB.consumer.paused).toBe(true)
    await sendUntilReceived(broadcast, [onA, late], (await received(onA)) + 20)
    await expectNothingSince(onB, bPaused)

    // The application resumes: RTP again.
    await onB.consumer.resume()
    expect(observed).toEqual(["pause", "resume"])
    const [n] = await sendUntilReceived(broadcast, [onB], bPaused + 20)
    expect(n).toBeGreaterThanOrEqual(bPaused + 20)

    // Pausing the pipe consumer pauses the pipe producer: the same again.
    await pipeConsumer!.pause()
    expect(pipeProducer!.paused).toBe(true)
    expect(onB.consumer.producerPaused).toBe(true)
    expect(late.consumer.producerPaused).toBe(true)
    expect(events).toEqual(["producerpause", "producerresume", "producerpause"])
    await pipeConsumer!.resume()
    expect(onB.consumer.producerPaused).toBe(false)
    expect(late.consumer.producerPaused).toBe(false)
    const lateBefore = await received(late)
    const target = Math.max(lateBefore, await received(onB)) + 10
    const [lateNow, bNow] = await sendUntilReceived(broadcast, [late, onB], target)
    expect(lateNow).toBeGreaterThanOrEqual(lateBefore + 10)
    expect(bNow).toBeGreaterThanOrEqual(target)

    // Pausing the real producer still gives everyone mediasoup's own producerPaused.
    const producerPaused = Promise.all([
      once(onA.consumer, "producerpause", 5_000),
      once(onB.consumer, "producerpause", 5_000)
    ])
    await broadcast.producer.pause()
    await producerPaused
    expect(onA.consumer.producerPaused).toBe(true)
    expect(onB.consumer.producerPaused).toBe(true)
  })
})
