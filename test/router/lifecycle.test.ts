/**
 * Lifecycle and faults with real Workers and real RTP: idle scale-down closes Workers, and
 * a Worker killed mid-stream is dropped, replaced when needed, and its streams can be
 * consumed again.
 */
import { describe, expect, it } from "vitest"
import { processExists } from "../../src/media/worker.js"
import type { MafaldaInstance } from "../../src/promise.js"
import { useMafaldaHarness } from "../support/mafaldaHarness.js"
import { listen, once, opus, sendUntilReceived, startBroadcast } from "./support.js"

const harness = useMafaldaHarness()

// A consumer costs 20 %: a Worker takes a transport while the consumer it is expected to make
// still fits under the 50 % watermark, so two fit on a Worker and the third needs another.
const options = {
  maxWorkers: 2,
  watermark: 50,
  costs: { consumer: 20 },
  samplingInterval: 3_600_000,
  workerSettings: { rtcMinPort: 43000, rtcMaxPort: 43999 }
} as const

const workerOfPid = async (m: MafaldaInstance, pid: number) => (await m.workers()).find((w) => w.pid === pid)

describe("Mafalda Router lifecycle", () => {
  it("closes an idle Worker after the grace period, and keeps the stream going on the other", async () => {
    const resources = harness.makeResources()
    const mafalda = await harness.createMafalda({
      ...options,
      idleGraceMillis: 200,
      scaleDownInterval: 50,
      warmWorkers: 0,
      scaleDownHysteresis: 0
    })
    const router = await mafalda.createRouter({ mediaCodecs: [opus] })
    const broadcast = await startBroadcast(resources, router)
    const l1 = await listen(resources, router, broadcast.producer.id)
    const l2 = await listen(resources, router, broadcast.producer.id)
    const l3 = await listen(resources, router, broadcast.producer.id)
    const workers = await mafalda.workers()
    expect(workers).toHaveLength(2)
    harness.track(workers)
    const second = workers[1]!
    await sendUntilReceived(broadcast, [l1, l2, l3], 10)

    const closed = once(second.observer, "close")
    l3.transport.close()
    l2.transport.close()
    await closed
    // The pipe, then the Router, then the Worker went; its process is gone.
    if (!second.subprocessClosed) await once(second, "subprocessclose")
    expect(processExists(second.pid)).toBe(false)
    const status = await mafalda.status()
    expect(status.workers).toHaveLength(1)
    expect(status.pipes).toHaveLength(0)
    const [n] = await sendUntilReceived(broadcast, [l1], 10)
    expect(n).toBeGreaterThanOrEqual(10)
  })

  it("handles a Worker killed mid-stream: mediasoup events, snapshot, replacement, re-consume", async () => {
    const resources = harness.makeResources()
    const mafalda = await harness.createMafalda(options)
    const router = await mafalda.createRouter({ mediaCodecs: [opus] })
    const broadcast = await startBroadcast(resources, router)
    const listeners = [
      await listen(resources, router, broadcast.producer.id),
      await listen(resources, router, broadcast.producer.id),
      await listen(resources, router, broadcast.producer.id),
      await listen(resources, router, broadcast.producer.id)
    ]
    const workers = await mafalda.workers()
    expect(workers).toHaveLength(2)
    harness.track(workers)
    const victim = workers[1]!
    await sendUntilReceived(broadcast, listeners, 10)

    const died = once<[Error, string]>(router, "workerdied")
    const transportsClosed = Promise.all([
      once(listeners[2]!.transport, "routerclose"),
      once(listeners[3]!.transport, "routerclose")
    ])
    process.kill(victim.pid, "SIGKILL")
    const [error] = await died
    expect(error.message).toMatch(/died/)
    await transportsClosed
    expect(listeners[2]!.consumer.closed).toBe(true)
    expect(await workerOfPid(mafalda, victim.pid)).toBeUndefined()
    let status = await mafalda.status()
    expect(status.workers).toHaveLength(1)
    expect(status.pipes).toHaveLength(0)
    expect(status.trees[0]?.hops).toHaveLength(1)

    // The stream still reaches the survivors; a new consumer needs (and gets) a new Worker.
    const again = await listen(resources, router, broadcast.producer.id)
    const replacement = await mafalda.workers()
    expect(replacement).toHaveLength(2)
    harness.track(replacement)
    expect(replacement.map((w) => w.pid)).not.toContain(victim.pid)
    status = await mafalda.status()
    expect(status.pipes).toHaveLength(1)
    const received = await sendUntilReceived(broadcast, [listeners[0]!, listeners[1]!, again], 10)
    for (const n of received) expect(n).toBeGreaterThanOrEqual(10)
  })
})
