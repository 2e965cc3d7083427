/**
 * The broadcast demo (`mafalda demo`): real RTP to a few hundred consumers over every local
 * CPU, every consumer receiving every packet, and a result that shows the Workers, the
 * stream tree and the pipes.
 */
import { availableParallelism } from "node:os"
import { describe, expect, it } from "vitest"
import { runBroadcastDemo } from "../../src/demo/broadcastDemo.js"
import { processExists } from "../../src/media/worker.js"

describe("broadcast demo", () => {
  it("delivers every packet to each of 300 consumers spread over one Worker per CPU", async () => {
    const result = await runBroadcastDemo({ consumers: 300, packets: 50 })
    const cpus = availableParallelism()

    // Every local CPU has a Worker, with an equal share of the consumers (the origin one
    // also has the producer's transport).
    expect(result.placement.cpus).toBe(cpus)
    expect(result.workers).toHaveLength(Math.min(cpus, 301))
    expect(result.workers.reduce((sum, w) => sum + w.consumers, 0)).toBe(300)
    const share = Math.ceil(301 / cpus)
    for (const w of result.workers) expect(w.consumers).toBeLessThanOrEqual(share)
    // One process per Worker.
    expect(new Set(result.workers.map((w) => w.pid)).size).toBe(result.workers.length)
    for (const w of result.workers) expect(w.pid).toBeTypeOf("number")

    // One tree: the origin Router and one pipe to each other Worker's Router.
    expect(result.tree[0]?.parent).toBeNull()
    expect(result.tree[0]?.router).toBe(result.producer.router)
    expect(result.tree).toHaveLength(result.workers.length)
    expect(result.pipes).toHaveLength(result.workers.length - 1)
    for (const p of result.pipes) expect(p.producer).toBe(result.producer.id)
    expect(result.tree.reduce((sum, hop) => sum + hop.consumers, 0)).toBe(300)

    // Every consumer got every packet, exactly once.
    expect(result.rtp.packetsSent).toBe(50)
    expect(result.rtp.incomplete).toEqual([])
    expect(result.rtp.consumersComplete).toBe(300)
    expect(result.rtp.minimumReceived).toBe(50)
    expect(result.rtp.totalReceived).toBe(300 * 50)
    expect(result.rtp.duplicates).toBe(0)
    for (const w of result.workers) expect(w.consumersComplete).toBe(w.consumers)
    expect(result.elapsedMs).toBeLessThan(15_000)

    // Everything is closed when it returns.
    for (const w of result.workers) expect(processExists(w.pid!)).toBe(false)
  })

  it("reports incomplete consumers honestly when the receiver cannot keep up", async () => {
    // One receiver socket with the smallest buffer the kernel allows: datagrams are dropped.
    const result = await runBroadcastDemo({
      consumers: 200,
      packets: 10,
      receivers: 1,
      recvBufferSize: 1,
      timeout: "300 millis"
    })
    expect(result.rtp.consumersComplete).toBeLessThan(200)
    expect(result.rtp.incomplete.length).toBe(200 - result.rtp.consumersComplete)
    for (const c of result.rtp.incomplete) expect(c.received).toBeLessThan(10)
    expect(result.rtp.totalReceived).toBeLessThan(200 * 10)
  })
})
