/**
 * Cost calibration: the CPU one mediasoup object costs a Worker on this machine, per media
 * kind, measured with real RTP (the fan-out streams) and `getResourceUsage()`.
 *
 * For each kind, on two fresh Workers A and B (one Router each), CPU windows of `windowMs`:
 *
 * 1. idle: A has the ingress transport and the producer, no stream yet;
 * 2. the stream runs: A's increase is the **producer**'s cost;
 * 3. the producer is piped to B (`pipeToRouter`): A's increase is the pipe consumer's cost,
 *    B's the pipe producer's; their mean is the cost of a **pipe end**;
 * 4. `consumers` consumers on A (PlainTransports sending to sinks nobody reads): A's
 *    increase over them is the **consumer**'s cost;
 * 5. (once, for the first kind) `transports` PlainTransports on B with nothing on them:
 *    B's increase over them is the **transport**'s cost.
 *
 * Costs are in percent of one Worker (one core) per object, the unit of the cost model.
 *
 * @module
 */
import { performance } from "node:perf_hooks"
import type { types } from "mediasoup"
import { createWorker } from "mediasoup"
import { consumerRtpCapabilities, type FanoutHarness, sleep } from "./fanout.js"
import { type FanoutKind, fanoutStream } from "./fanoutStreams.js"
import { opusCodec, vp8Codec } from "./worker.js"

const listenInfo: types.TransportListenInfo = { protocol: "udp", ip: "127.0.0.1" }

export interface CalibrationOptions {
  /** Kinds to calibrate (default both, video first). */
  readonly kinds?: ReadonlyArray<FanoutKind> | undefined
  /** Length of each CPU window (default 4000 ms). */
  readonly windowMs?: number | undefined
  /** Consumers added in step 4 (default 200 for video, 400 for audio). */
  readonly consumers?: Partial<Record<FanoutKind, number>> | undefined
  /** Empty transports of step 5 (default 300). */
  readonly transports?: number | undefined
  readonly ports: { readonly min: number; readonly max: number }
}

/** Measured costs of one kind, in % of one core per object. */
export interface KindCalibration {
  readonly kind: FanoutKind
  /** The stream: packets and bits per second. */
  readonly stream: { readonly packetsPerSecond: number; readonly bitsPerSecond: number }
  /** Worker A with its idle producer (step 1), % of one core. */
  readonly idle: number
  readonly producer: number
  readonly pipeConsumerEnd: number
  readonly pipeProducerEnd: number
  /** Mean of the two ends. */
  readonly pipe: number
  readonly consumer: number
  readonly consumersMeasured: number
  /** Step 5, when measured with this kind. */
  readonly transport?: number | undefined
}

/** Per-kind costs shaped for the cost model. */
export interface CalibratedCosts {
  readonly transport: number
  readonly audio: { readonly producer: number; readonly consumer: number; readonly pipe: number }
  readonly video: { readonly producer: number; readonly consumer: number; readonly pipe: number }
}

const cpuMs = async (worker: types.Worker) => {
  const u = await worker.getResourceUsage()
  return u.ru_utime + u.ru_stime
}

/** CPU % of one core each Worker used over `ms`. */
const cpuWindow = async (workers: ReadonlyArray<types.Worker>, ms: number): Promise<Array<number>> => {
  const before = await Promise.all(workers.map(cpuMs))
  const t0 = performance.now()
  await sleep(ms)
  const after = await Promise.all(workers.map(cpuMs))
  const elapsed = performance.now() - t0
  return workers.map((_, i) => ((after[i]! - before[i]!) / elapsed) * 100)
}

const r4 = (x: number) => Math.round(x * 10000) / 10000

/** Calibrates one kind on two fresh Workers (closed before it returns). */
export const calibrateKind = async (
  harness: FanoutHarness,
  kind: FanoutKind,
  options: CalibrationOptions & { readonly withTransports?: boolean }
): Promise<KindCalibration> => {
  const windowMs = options.windowMs ?? 4000
  const stream = fanoutStream(kind)
  const consumerCount = options.consumers?.[kind] ?? (kind === "video" ? 200 : 400)
  const settings = { logLevel: "warn", rtcMinPort: options.ports.min, rtcMaxPort: options.ports.max } as const
  const workers: Array<types.Worker> = []
  try {
    workers.push(await createWorker(settings), await createWorker(settings))
    const [a, b] = workers as [types.Worker, types.Worker]
    const mediaCodecs = [opusCodec, vp8Codec]
    const routerA = await a.createRouter({ mediaCodecs })
    const routerB = await b.createRouter({ mediaCodecs })
    const ingress = await routerA.createPlainTransport({ listenInfo, rtcpMux: true, comedia: true })
    const producer = await ingress.produce({ kind, rtpParameters: stream.rtpParameters })
    const name = `calibrate-${kind}-${producer.id}`
    await harness.media.defineStream(name, stream, {
      address: ingress.tuple.localAddress,
      port: ingress.tuple.localPort
    })
    await sleep(300)
    const [idleA] = await cpuWindow([a], windowMs)

    await harness.media.start(name)
    await sleep(500)
    const [withProducerA, withProducerB] = await cpuWindow([a, b], windowMs)

    await routerA.pipeToRouter({ producerId: producer.id, router: routerB })
    await sleep(500)
    const [pipedA, pipedB] = await cpuWindow([a, b], windowMs)

    const sinks = harness.sinks.endpoints
    const caps = consumerRtpCapabilities(kind)
    for (let i = 0; i < consumerCount; i++) {
      const t = await routerA.createPlainTransport({ listenInfo, rtcpMux: true, comedia: false })
      const to = sinks[i % sinks.length]!
      await t.connect({ ip: to.address, port: to.port })
      await t.consume({ producerId: producer.id, rtpCapabilities: caps })
    }
    // Past a keyframe, so every video consumer forwards.
    await sleep(kind === "video" ? 2500 : 500)
    const [consumersA, consumersB] = await cpuWindow([a, b], windowMs)

    let transport: number | undefined
    if (options.withTransports === true) {
      const count = options.transports ?? 300
      for (let i = 0; i < count; i++) {
        await routerB.createPlainTransport({ listenInfo, rtcpMux: true, comedia: false })
      }
      await sleep(500)
      const [, transportsB] = await cpuWindow([a, b], windowMs)
      transport = r4(Math.max(0, (transportsB! - consumersB!) / count))
    }
    await harness.media.stop()

    const pipeConsumerEnd = Math.max(0, pipedA! - withProducerA!)
    const pipeProducerEnd = Math.max(0, pipedB! - withProducerB!)
    return {
      kind,
      stream: stream.nominal,
      idle: r4(idleA!),
      producer: r4(Math.max(0, withProducerA! - idleA!)),
      pipeConsumerEnd: r4(pipeConsumerEnd),
      pipeProducerEnd: r4(pipeProducerEnd),
      pipe: r4((pipeConsumerEnd + pipeProducerEnd) / 2),
      consumer: r4(Math.max(0, (consumersA! - pipedA!) / consumerCount)),
      consumersMeasured: consumerCount,
      ...(transport === undefined ? {} : { transport })
    }
  } finally {
    await harness.media.stop()
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.subprocessClosed) return resolve()
            w.once("subprocessclose", () => resolve())
            w.close()
          })
      )
    )
  }
}

/** Calibrates every kind asked for, one after the other. */
export const calibrate = async (
  harness: FanoutHarness,
  options: CalibrationOptions
): Promise<ReadonlyArray<KindCalibration>> => {
  const out: Array<KindCalibration> = []
  for (const [i, kind] of (options.kinds ?? ["video", "audio"]).entries()) {
    out.push(await calibrateKind(harness, kind, { ...options, withTransports: i === 0 }))
  }
  return out
}

const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  if (s.length === 0) return Number.NaN
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

/** Rounds a cost to 3 significant digits, at least 0.001. */
const costOf = (x: number): number => {
  if (!Number.isFinite(x) || x <= 0) return 0.001
  const digits = Math.max(0, 2 - Math.floor(Math.log10(x)))
  return Math.max(0.001, Number(x.toFixed(Math.min(digits, 6))))
}

/**
 * The cost-model options from one or more calibrations (the median of each figure over
 * them): `{ transport, audio: { producer, consumer, pipe }, video: { ... } }`.
 */
export const costsFrom = (runs: ReadonlyArray<KindCalibration>): CalibratedCosts => {
  const of = (kind: FanoutKind, field: "producer" | "consumer" | "pipe") =>
    costOf(median(runs.filter((r) => r.kind === kind).map((r) => r[field])))
  const transports = runs.flatMap((r) => (r.transport === undefined ? [] : [r.transport]))
  return {
    transport: costOf(median(transports)),
    audio: {
      producer: of("audio", "producer"),
      consumer: of("audio", "consumer"),
      pipe: of("audio", "pipe")
    },
    video: { producer: of("video", "producer"), consumer: of("video", "consumer"), pipe: of("video", "pipe") }
  }
}
