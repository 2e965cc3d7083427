/**
 * What scale-down must keep, with real Workers: a Router whose only use is an RTP observer,
 * and a pipe the application asked for with `pipeToRouter` (pinned until the application
 * closes it), both past the idle grace period.
 */
import { describe, expect, it } from "vitest"
import { useMafaldaHarness } from "../support/mafaldaHarness.js"
import { scaleDownHadItsChance } from "./scaleDownWitness.js"
import { listen, listenInfo, once, opus, sendUntilReceived, startBroadcast } from "./support.js"

const harness = useMafaldaHarness()

// Idle things go after 200 ms, looked for every 50 ms; no warm Worker is kept. What must stay
// is checked after a witness that stopped being used later has been scaled down.
const GRACE = 200
const options = {
  maxWorkers: 2,
  idleGraceMillis: GRACE,
  scaleDownInterval: 50,
  warmWorkers: 0,
  scaleDownHysteresis: 0,
  samplingInterval: 3_600_000,
  workerSettings: { rtcMinPort: 46000, rtcMaxPort: 46499 }
} as const

describe("scale-down keeps what is in use", () => {
  it("keeps a Router whose only use is an RTP observer, and closes it once the observer closes", async () => {
    const resources = harness.makeResources()
    const mafalda = await harness.createMafalda(options)
    const router = await mafalda.createRouter({ mediaCodecs: [opus] })
    const broadcast = await startBroadcast(resources, router)
    const levels = await router.createAudioLevelObserver({ interval: 100 })
    const speaker = await router.createActiveSpeakerObserver()
    await levels.addProducer({ producerId: broadcast.producer.id })
    const [worker, ...others] = await mafalda.workers()
    expect(others).toHaveLength(0)
    harness.track([worker!])
    const [only] = (await mafalda.status()).workers
    const routerId = only?.routers[0]
    expect(routerId).toBeDefined()
    expect(router.routerIds).toEqual([routerId])

    // Nothing but the two observers left on the Router, for several grace periods.
    broadcast.ingress.close()
    expect(broadcast.producer.closed).toBe(true)
    await scaleDownHadItsChance(mafalda)
    let status = await mafalda.status()
    expect(status.workers.map((w) => w.routers)).toEqual([[routerId]])
    expect(status.workers[0]!.transports).toBe(0)
    expect(levels.closed).toBe(false)
    expect(speaker.closed).toBe(false)

    // A transport placed now still goes there.
    const transport = await router.createPlainTransport({ listenInfo, rtcpMux: true, comedia: true })
    expect(router.routerIds).toEqual([routerId])
    transport.close()

    // One observer closed: the other keeps the Router.
    levels.close()
    await scaleDownHadItsChance(mafalda)
    expect((await mafalda.status()).workers.map((w) => w.routers)).toEqual([[routerId]])

    // The last one closed: Router, then Worker, go after the grace period.
    const closed = once(worker!.observer, "close")
    speaker.close()
    await closed
    status = await mafalda.status()
    expect(status.workers).toHaveLength(0)
    expect(router.routerIds).toEqual([])
  })

  it("keeps an explicit pipeToRouter pipe past the grace period until the application closes it", async () => {
    const resources = harness.makeResources()
    const mafalda = await harness.createMafalda(options)
    const a = await mafalda.createRouter({ mediaCodecs: [opus] })
    // Other Worker settings: b cannot share a's Router, so pipeToRouter makes a real pipe.
    const b = await mafalda.createRouter({
      mediaCodecs: [opus],
      workerSettings: { rtcMinPort: 46500, rtcMaxPort: 46999 }
    })
    const broadcast = await startBroadcast(resources, a)
    const { pipeConsumer, pipeProducer } = await a.pipeToRouter({
      producerId: broadcast.producer.id,
      router: b
    })
    expect(pipeConsumer?.type).toBe("pipe")
    expect(pipeProducer?.id).toBe(broadcast.producer.id)
    const workers = await mafalda.workers()
    expect(workers).toHaveLength(2)
    harness.track(workers)
    let status = await mafalda.status()
    expect(status.pipes).toHaveLength(1)
    const pipe = status.pipes[0]!
    expect(b.routerIds).toEqual([pipe.to])
    expect(a.routerIds).toEqual([pipe.from])

    // No consumer below it, past the grace period: the pipe stays.
    await scaleDownHadItsChance(mafalda)
    status = await mafalda.status()
    expect(status.pipes).toEqual([pipe])
    expect(status.workers).toHaveLength(2)
    expect(pipeProducer?.closed).toBe(false)

    // b consumes through it (no other pipe), then stops; the pipe still stays.
    const listener = await listen(resources, b, broadcast.producer.id)
    expect((await mafalda.status()).pipes).toEqual([pipe])
    const [n] = await sendUntilReceived(broadcast, [listener], 10)
    expect(n).toBeGreaterThanOrEqual(10)
    listener.transport.close()
    await scaleDownHadItsChance(mafalda)
    expect((await mafalda.status()).pipes).toEqual([pipe])
    expect(pipeProducer?.closed).toBe(false)

    // The application closes its pipe consumer: the pipe goes, then b's idle Router and Worker.
    const pidB = status.workers.find((w) => w.routers.includes(pipe.to))?.pid
    const workerB = workers.find((w) => w.pid === pidB)!
    const bClosed = once(workerB.observer, "close")
    pipeConsumer?.close()
    expect(pipeProducer?.closed).toBe(true)
    // b's Worker goes only once its Router is idle, so after the pipe was recorded closed.
    await bClosed
    status = await mafalda.status()
    expect(status.pipes).toEqual([])
    expect(status.workers).toHaveLength(1)
    expect(b.routerIds).toEqual([])
    // The stream still flows on a.
    const again = await listen(resources, a, broadcast.producer.id)
    const [m] = await sendUntilReceived(broadcast, [again], 10)
    expect(m).toBeGreaterThanOrEqual(10)
  })
})
