/**
 * `pipeToRouter({ dataProducerId, router })` between two Mafalda Routers returns what
 * mediasoup's does, `{ pipeDataConsumer, pipeDataProducer }`: mirrors when they share the
 * Router that carries the data producer, mediasoup's own pipe when their settings differ.
 * Messages reach the destination's data consumers, and closing the pipe data producer
 * closes them.
 */
import type { types } from "mediasoup"
import { describe, expect, it } from "vitest"
import { useMafaldaHarness } from "../support/mafaldaHarness.js"
import { countPipeTransports, once, opus } from "./support.js"

const harness = useMafaldaHarness()

/** Sends `message` every 20 ms until `consumer` has received it, or fails after `ms`. */
const sendUntilReceived = (
  producer: types.DataProducer,
  consumer: types.DataConsumer,
  message: string,
  ms = 5_000
): Promise<string> =>
  new Promise((resolve, reject) => {
    // Earlier messages may still be on their way: wait for this one.
    const listener = (data: Buffer) => {
      const text = data.toString("utf8")
      if (text !== message) return
      finish()
      resolve(text)
    }
    consumer.on("message", listener)
    const timer = setInterval(() => producer.send(message), 20)
    const deadline = setTimeout(() => {
      finish()
      reject(new Error(`"${message}" did not arrive within ${ms} ms`))
    }, ms)
    const finish = () => {
      clearInterval(timer)
      clearTimeout(deadline)
      consumer.off("message", listener)
    }
    producer.send(message)
  })

describe("pipeToRouter with a dataProducerId between Mafalda Routers", () => {
  it("shares the Router: mirror pipe data objects, messages arrive, closing the pipe data producer closes b's data consumers", async () => {
    const pipes = countPipeTransports()
    const mafalda = await harness.createMafalda({ maxWorkers: 1, samplingInterval: 3_600_000 })
    const a = await mafalda.createRouter({ mediaCodecs: [opus] })
    const b = await mafalda.createRouter({ mediaCodecs: [opus] })
    const source = await a.createDirectTransport()
    const dataProducer = await source.produceData({ label: "chat", protocol: "text", appData: { x: 1 } })
    const { pipeDataConsumer, pipeDataProducer } = await a.pipeToRouter({
      dataProducerId: dataProducer.id,
      router: b
    })
    expect(pipeDataProducer).toBeDefined()
    expect(pipeDataConsumer).toBeDefined()
    expect(pipeDataProducer!.id).toBe(dataProducer.id)
    expect(pipeDataProducer!.type).toBe("sctp")
    expect(pipeDataProducer!.label).toBe("chat")
    expect(pipeDataProducer!.protocol).toBe("text")
    expect(pipeDataProducer!.closed).toBe(false)
    expect(pipeDataProducer!.paused).toBe(false)
    expect(pipeDataConsumer!.dataProducerId).toBe(dataProducer.id)
    expect(pipeDataConsumer!.type).toBe("sctp")
    expect(pipeDataConsumer!.label).toBe("chat")
    expect(pipeDataConsumer!.id).not.toBe(dataProducer.id)
    await expect(a.pipeToRouter({ dataProducerId: dataProducer.id, router: b })).rejects.toThrow(TypeError)

    const sink = await b.createDirectTransport()
    const dataConsumer = await sink.consumeData({ dataProducerId: dataProducer.id })
    expect(await sendUntilReceived(dataProducer, dataConsumer, "hello b")).toBe("hello b")
    expect(pipes.count).toBe(0)
    pipes.stop()
    const status = await mafalda.status()
    expect(status.workers).toHaveLength(1)

    // Closing the pipe data producer closes b's data consumer and its pipe data consumer.
    const consumerClosed = once(dataConsumer.observer, "close")
    const mirrorClosed = once(pipeDataProducer!.observer, "close")
    pipeDataProducer!.close()
    await Promise.all([consumerClosed, mirrorClosed])
    expect(dataConsumer.closed).toBe(true)
    expect(pipeDataProducer!.closed).toBe(true)
    expect(pipeDataConsumer!.closed).toBe(true)
    expect(dataProducer.closed).toBe(false)
    await expect(sink.consumeData({ dataProducerId: dataProducer.id })).rejects.toThrow(/not found/)
    // a still sees and delivers it.
    const local = await source.consumeData({ dataProducerId: dataProducer.id })
    expect(await sendUntilReceived(dataProducer, local, "hello a")).toBe("hello a")
  })

  it("closes the mirrors when the data producer closes, and closing the pipe data consumer closes the pipe data producer", async () => {
    const mafalda = await harness.createMafalda({ maxWorkers: 1, samplingInterval: 3_600_000 })
    const a = await mafalda.createRouter({ mediaCodecs: [opus] })
    const b = await mafalda.createRouter({ mediaCodecs: [opus] })
    const c = await mafalda.createRouter({ mediaCodecs: [opus] })
    const source = await a.createDirectTransport()
    const dataProducer = await source.produceData()
    const toB = await a.pipeToRouter({ dataProducerId: dataProducer.id, router: b })
    const toC = await a.pipeToRouter({ dataProducerId: dataProducer.id, router: c })

    // The application closes its pipe data consumer: the pipe data producer goes with it.
    const sinkC = await c.createDirectTransport()
    const onC = await sinkC.consumeData({ dataProducerId: dataProducer.id })
    toC.pipeDataConsumer!.close()
    expect(toC.pipeDataProducer!.closed).toBe(true)
    expect(onC.closed).toBe(true)

    // The data producer closes: b's mirrors and data consumers close, as with a real pipe.
    const sinkB = await b.createDirectTransport()
    const onB = await sinkB.consumeData({ dataProducerId: dataProducer.id })
    const producerClose = once(toB.pipeDataConsumer!, "dataproducerclose")
    const consumerClose = once(onB, "dataproducerclose")
    dataProducer.close()
    await Promise.all([producerClose, consumerClose])
    expect(toB.pipeDataConsumer!.closed).toBe(true)
    expect(toB.pipeDataProducer!.closed).toBe(true)
    expect(onB.closed).toBe(true)
  })

  it("other Worker settings: a real mediasoup data pipe, messages arrive, closing it closes b's data consumers", async () => {
    const pipes = countPipeTransports()
    const mafalda = await harness.createMafalda({
      maxWorkers: 2,
      samplingInterval: 3_600_000,
      workerSettings: { rtcMinPort: 48000, rtcMaxPort: 48499 }
    })
    const a = await mafalda.createRouter({ mediaCodecs: [opus] })
    const b = await mafalda.createRouter({
      mediaCodecs: [opus],
      workerSettings: { rtcMinPort: 48500, rtcMaxPort: 48999 }
    })
    const source = await a.createDirectTransport()
    const dataProducer = await source.produceData({ label: "chat" })
    const { pipeDataConsumer, pipeDataProducer } = await a.pipeToRouter({
      dataProducerId: dataProducer.id,
      router: b
    })
    expect(pipeDataProducer?.constructor.name).toBe("DataProducer")
    expect(pipeDataConsumer?.constructor.name).toBe("DataConsumer")
    expect(pipeDataProducer!.id).toBe(dataProducer.id)
    expect(pipeDataProducer!.type).toBe("sctp")
    expect(pipeDataProducer!.label).toBe("chat")
    expect(pipeDataConsumer!.dataProducerId).toBe(dataProducer.id)
    expect(pipes.count).toBe(2)
    expect(await mafalda.workers()).toHaveLength(2)
    await expect(a.pipeToRouter({ dataProducerId: dataProducer.id, router: b })).rejects.toThrow(TypeError)

    // b's transport goes to the Router the pipe reaches: its data consumers use that pipe.
    const sink = await b.createDirectTransport()
    const first = await sink.consumeData({ dataProducerId: dataProducer.id })
    const second = await sink.consumeData({ dataProducerId: dataProducer.id })
    expect(pipes.count).toBe(2)
    expect(await sendUntilReceived(dataProducer, first, "hello across")).toBe("hello across")
    expect(await sendUntilReceived(dataProducer, second, "hello again")).toBe("hello again")
    // The application's pipe stays when b's data consumers go: once their close events have
    // been handled (the releases run on them), a message still crosses the same pipe.
    const closes = Promise.all([once(first.observer, "close"), once(second.observer, "close")])
    first.close()
    second.close()
    await closes
    const third = await sink.consumeData({ dataProducerId: dataProducer.id })
    expect(pipeDataProducer!.closed).toBe(false)
    expect(await sendUntilReceived(dataProducer, third, "hello third")).toBe("hello third")
    expect(pipeDataProducer!.closed).toBe(false)
    expect(pipes.count).toBe(2)
    pipes.stop()

    const closed = once(third.observer, "close")
    pipeDataProducer!.close()
    await closed
    expect(third.closed).toBe(true)
    expect(pipeDataConsumer!.closed).toBe(true)
    expect(dataProducer.closed).toBe(false)
    await expect(sink.consumeData({ dataProducerId: dataProducer.id })).rejects.toThrow(/not found/)
  })
})
