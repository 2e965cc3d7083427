/**
 * Data producers and consumers follow the rules of media: `consumeData` on a transport of
 * another Worker pipes the data producer there transparently (once per Router), and the
 * pipe goes with the last data consumer there.
 */

import type { types } from "mediasoup"
import * as mediasoup from "mediasoup"
import { describe, expect, it } from "vitest"
import type { TransportId } from "../../src/core/Ids.js"
import { lookup } from "../../src/core/Snapshot.js"
import type { MafaldaInstance } from "../../src/promise.js"
import { useMafaldaHarness } from "../support/mafaldaHarness.js"
import { once, opus } from "./support.js"

const harness = useMafaldaHarness()

const workerOf = (m: MafaldaInstance, transport: { id: string }) => {
  const snapshot = m.snapshot()
  const router = lookup(snapshot.transports, transport.id as TransportId)?.router
  return router === undefined ? undefined : lookup(snapshot.routers, router)?.worker
}

/** Data producers mediasoup makes on PipeTransports from now on: open now, and made in all. */
const watchPipeDataProducers = () => {
  const open = new Set<types.DataProducer>()
  let made = 0
  const onTransport = (transport: types.Transport) => {
    if (transport.constructor.name !== "PipeTransport") return
    transport.observer.on("newdataproducer", (dp: types.DataProducer) => {
      made++
      open.add(dp)
      dp.observer.once("close", () => open.delete(dp))
    })
  }
  const onRouter = (router: types.Router) => router.observer.on("newtransport", onTransport)
  const onWorker = (worker: types.Worker) => worker.observer.on("newrouter", onRouter)
  mediasoup.observer.on("newworker", onWorker)
  return {
    get open() {
      return open.size
    },
    /** The ones open now. */
    get openProducers(): ReadonlyArray<types.DataProducer> {
      return [...open]
    },
    get made() {
      return made
    },
    stop: () => mediasoup.observer.off("newworker", onWorker)
  }
}

/** Sends `message` every 20 ms until every one of `consumers` has received it, or fails after `ms`. */
const sendUntilReceived = (
  producer: types.DataProducer,
  consumers: ReadonlyArray<types.DataConsumer>,
  message: string,
  ms = 5_000
): Promise<ReadonlyArray<string>> =>
  new Promise((resolve, reject) => {
    const got = new Map<types.DataConsumer, string>()
    const listeners = consumers.map((consumer) => {
      // Earlier messages may still be on their way: count this one only.
      const listener = (data: Buffer) => {
        const text = data.toString("utf8")
        if (text !== message) return
        got.set(consumer, text)
        if (got.size === consumers.length) finish()
      }
      consumer.on("message", listener)
      return () => consumer.off("message", listener)
    })
    const timer = setInterval(() => producer.send(message), 20)
    const deadline = setTimeout(() => {
      finish()
      reject(
        new Error(`"${message}" reached ${got.size} of ${consumers.length} data consumers within ${ms} ms`)
      )
    }, ms)
    const finish = () => {
      clearInterval(timer)
      clearTimeout(deadline)
      for (const off of listeners) off()
      resolve(consumers.map((c) => got.get(c) ?? ""))
    }
    producer.send(message)
  })

describe("data producers and consumers through a Mafalda Router", () => {
  it("consumeData on another Worker pipes the data producer there, once, and unpipes with the last consumer", async () => {
    const watch = watchPipeDataProducers()
    // A transport costs 50 %, the watermark: each transport gets a Worker of its own.
    const mafalda = await harness.createMafalda({
      maxWorkers: 3,
      watermark: 50,
      costs: { transport: 50 },
      samplingInterval: 3_600_000
    })
    const router = await mafalda.createRouter({ mediaCodecs: [opus] })
    const source = await router.createDirectTransport()
    const dataProducer = await source.produceData({ label: "chat" })
    const sink = await router.createDirectTransport()
    const sinkWorker = workerOf(mafalda, sink)
    expect(sinkWorker).toBeDefined()
    expect(sinkWorker).not.toBe(workerOf(mafalda, source))
    const pidsNow = (await mafalda.status()).workers.map((w) => w.pid)
    expect(new Set(pidsNow).size).toBe(2)

    const first = await sink.consumeData({ dataProducerId: dataProducer.id })
    const second = await sink.consumeData({ dataProducerId: dataProducer.id })
    expect(first.dataProducerId).toBe(dataProducer.id)
    expect(watch.made).toBe(1)
    expect(await sendUntilReceived(dataProducer, [first, second], "hello across Workers")).toEqual([
      "hello across Workers",
      "hello across Workers"
    ])
    // A consumer on the data producer's own Router needs no pipe.
    const local = await source.consumeData({ dataProducerId: dataProducer.id })
    expect(watch.made).toBe(1)
    expect(await sendUntilReceived(dataProducer, [local], "hello next door")).toEqual(["hello next door"])

    // The pipe stays while a consumer uses it: once first's close has been handled (its
    // release runs on its close event; a pipe it wrongly closed would be gone before a
    // message could cross), second still receives through the same pipe.
    const [pipeDataProducer] = watch.openProducers
    expect(watch.open).toBe(1)
    const firstClosed = once(first.observer, "close", 5_000)
    first.close()
    await firstClosed
    expect(await sendUntilReceived(dataProducer, [second], "still piped")).toEqual(["still piped"])
    expect(watch.open).toBe(1)
    expect(watch.made).toBe(1)
    expect(pipeDataProducer!.closed).toBe(false)
    // ... and goes with the last one.
    const unpiped = once(pipeDataProducer!.observer, "close", 5_000)
    second.close()
    await unpiped
    expect(watch.open).toBe(0)

    // Consuming again pipes again, and messages flow again.
    const again = await sink.consumeData({ dataProducerId: dataProducer.id })
    expect(watch.made).toBe(2)
    expect(await sendUntilReceived(dataProducer, [again], "hello again")).toEqual(["hello again"])

    // Closing the data producer closes its consumers everywhere.
    const closed = new Promise<void>((resolve) => again.observer.once("close", () => resolve()))
    dataProducer.close()
    await closed
    expect(local.closed).toBe(true)
    await expect(sink.consumeData({ dataProducerId: dataProducer.id })).rejects.toThrow(/not found/)
    watch.stop()
  })
})
