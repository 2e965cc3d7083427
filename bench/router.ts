/**
 * Benchmark of the Mafalda Router against raw mediasoup on this machine.
 *
 * - `consume()` latency when no pipe is needed (the consumer's Router already receives the
 *   producer): raw `transport.consume()` vs the Mafalda transport's `consume()`, measured
 *   side by side in one process, in alternating blocks of 25;
 * - `consume()` latency when a pipe is needed: raw `router.pipeToRouter()` + `consume()` vs
 *   the Mafalda transport's `consume()` (which pipes on its own);
 * - consumers per second (sequential and 100 at a time);
 * - memory per 1,000 consumers (Node heap, and the Worker process' RSS).
 *
 * Rounds alternate raw and Mafalda so that both see the same machine state.
 *
 *   npm run bench:router            human-readable
 *   npm run bench:router -- --json  one JSON object
 */
import { readFileSync } from "node:fs"
import { performance } from "node:perf_hooks"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import type { types } from "mediasoup"
import * as mediasoup from "mediasoup"
import { createMafalda } from "../src/promise.js"
import type { MafaldaOptionsInput } from "../src/router/MafaldaOptions.js"

setFlagsFromString("--expose-gc")
const gc = runInNewContext("gc") as () => void

const json = process.argv.includes("--json")
const ROUNDS = 3
const CONSUMERS = 500
const PIPED = 60
const listenInfo: types.TransportListenInfo = { protocol: "udp", ip: "127.0.0.1" }
const opus: types.RtpCodecCapability = {
  kind: "audio",
  mimeType: "audio/opus",
  clockRate: 48000,
  channels: 2
}
const workerSettings = { logLevel: "warn", rtcMinPort: 44000, rtcMaxPort: 44999 } as const

interface RouterLike {
  readonly rtpCapabilities: types.RtpCapabilities
  createPlainTransport(options: types.PlainTransportOptions): Promise<types.PlainTransport>
}

const produce = (transport: types.Transport, ssrc: number) =>
  transport.produce({
    kind: "audio",
    rtpParameters: {
      codecs: [{ mimeType: "audio/opus", payloadType: 111, clockRate: 48000, channels: 2 }],
      encodings: [{ ssrc }]
    }
  })

const plain = (router: RouterLike) =>
  router.createPlainTransport({ listenInfo, rtcpMux: true, comedia: true })

const quantile = (sorted: ReadonlyArray<number>, q: number): number => {
  if (sorted.length === 0) return Number.NaN
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[i]!
}
const summary = (samples: ReadonlyArray<number>) => {
  const sorted = [...samples].sort((a, b) => a - b)
  const r = (x: number) => Math.round(x * 1000) / 1000
  return { samples: sorted.length, medianMs: r(quantile(sorted, 0.5)), p95Ms: r(quantile(sorted, 0.95)) }
}

const rssKb = (pid: number): number => {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
  return m === null ? 0 : Number(m[1])
}
const heap = () => {
  gc()
  return process.memoryUsage().heapUsed
}

interface Measure {
  noPipe: Array<number>
  pipe: Array<number>
  sequentialPerSecond: Array<number>
  concurrentPerSecond: Array<number>
  heapBytesPer1000: Array<number>
  workerRssKbPer1000: Array<number>
}
const empty = (): Measure => ({
  noPipe: [],
  pipe: [],
  sequentialPerSecond: [],
  concurrentPerSecond: [],
  heapBytesPer1000: [],
  workerRssKbPer1000: []
})

/** Throughput and memory of one setup: `CONSUMERS` sequential, then `CONSUMERS` 100 at a time. */
const consumeMany = async (m: Measure, router: RouterLike, producer: types.Producer, workerPid: number) => {
  const transports = await Promise.all(Array.from({ length: 10 }, () => plain(router)))
  const caps = router.rtpCapabilities
  // Warm-up.
  for (let i = 0; i < 20; i++)
    await transports[i % 10]!.consume({ producerId: producer.id, rtpCapabilities: caps })
  const heapBefore = heap()
  const rssBefore = rssKb(workerPid)
  const start = performance.now()
  for (let i = 0; i < CONSUMERS; i++) {
    await transports[i % 10]!.consume({ producerId: producer.id, rtpCapabilities: caps })
  }
  m.sequentialPerSecond.push(CONSUMERS / ((performance.now() - start) / 1000))
  const startBatch = performance.now()
  for (let b = 0; b < CONSUMERS / 100; b++) {
    await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        transports[i % 10]!.consume({ producerId: producer.id, rtpCapabilities: caps })
      )
    )
  }
  m.concurrentPerSecond.push(CONSUMERS / ((performance.now() - startBatch) / 1000))
  m.heapBytesPer1000.push(((heap() - heapBefore) / (2 * CONSUMERS)) * 1000)
  m.workerRssKbPer1000.push(((rssKb(workerPid) - rssBefore) / (2 * CONSUMERS)) * 1000)
}

const rawRound = async (m: Measure) => {
  const w1 = await mediasoup.createWorker(workerSettings)
  const w2 = await mediasoup.createWorker(workerSettings)
  try {
    const r1 = await w1.createRouter({ mediaCodecs: [opus] })
    const r2 = await w2.createRouter({ mediaCodecs: [opus] })
    const ingress = await plain(r1)
    const producer = await produce(ingress, 1)
    await consumeMany(m, r1, producer, w1.pid)
    // Pipe needed: every producer is new on r2.
    const producers = await Promise.all(Array.from({ length: PIPED }, (_, i) => produce(ingress, 1000 + i)))
    await produce(await plain(r2), 99) // as in Mafalda: r2 already exists and is in use
    const egress = await plain(r2)
    for (const p of producers) {
      const t0 = performance.now()
      await r1.pipeToRouter({ producerId: p.id, router: r2 })
      await egress.consume({ producerId: p.id, rtpCapabilities: r2.rtpCapabilities })
      m.pipe.push(performance.now() - t0)
    }
  } finally {
    w1.close()
    w2.close()
  }
}

/** A Mafalda with these limits, load sampling off (placement follows the costs alone). */
const mafaldaWith = (
  maxWorkers: number,
  watermark: number,
  costs: NonNullable<MafaldaOptionsInput["costs"]>
) => createMafalda({ maxWorkers, watermark, costs, samplingInterval: 3_600_000, workerSettings })

/** Everything on one Worker, nothing ever piped. */
const oneWorkerMafalda = () => mafaldaWith(1, 100, { consumer: 0, transport: 0, producer: 0, pipe: 0 })

const mafaldaRound = async (m: Measure) => {
  // No pipe: one Worker takes everything.
  const single = await oneWorkerMafalda()
  try {
    const router = await single.createRouter({ mediaCodecs: [opus] })
    const ingress = await plain(router)
    const producer = await produce(ingress, 1)
    const [worker] = await single.workers()
    await consumeMany(m, router, producer, worker!.pid)
  } finally {
    await single.close()
  }
  // Pipe needed: a transport costs more than the watermark, so the egress transport lands on
  // the second Worker and every producer of the first must be piped to it.
  const double = await mafaldaWith(2, 50, { transport: 60, consumer: 0, producer: 0, pipe: 0 })
  try {
    const router = await double.createRouter({ mediaCodecs: [opus] })
    const ingress = await plain(router)
    const producers = await Promise.all(Array.from({ length: PIPED }, (_, i) => produce(ingress, 1000 + i)))
    const egress = await plain(router)
    if ((await double.workers()).length !== 2) throw new Error("expected a second Worker")
    for (const p of producers) {
      const t0 = performance.now()
      await egress.consume({ producerId: p.id, rtpCapabilities: router.rtpCapabilities })
      m.pipe.push(performance.now() - t0)
    }
    const status = await double.status()
    if (status.pipes.length !== PIPED) throw new Error(`expected ${PIPED} pipes, got ${status.pipes.length}`)
  } finally {
    await double.close()
  }
}

/**
 * The no-pipe `consume()` latency, raw mediasoup and Mafalda side by side in one process:
 * both set up at once, then blocks of 25 consumes alternate between them (in turn first), so
 * that both see the same machine, the same heap and the same noise.
 */
const interleavedNoPipe = async (raw: Measure, maf: Measure) => {
  const worker = await mediasoup.createWorker(workerSettings)
  const mafalda = await oneWorkerMafalda()
  try {
    const setup = async (router: RouterLike) => {
      const producer = await produce(await plain(router), 1)
      const transports = await Promise.all(Array.from({ length: 10 }, () => plain(router)))
      return { producer, transports, caps: router.rtpCapabilities }
    }
    const sides = [
      { m: raw, ...(await setup(await worker.createRouter({ mediaCodecs: [opus] }))) },
      { m: maf, ...(await setup(await mafalda.createRouter({ mediaCodecs: [opus] }))) }
    ]
    const block = async (side: (typeof sides)[number], n: number, record: boolean) => {
      for (let i = 0; i < n; i++) {
        const t0 = performance.now()
        await side.transports[i % 10]!.consume({ producerId: side.producer.id, rtpCapabilities: side.caps })
        if (record) side.m.noPipe.push(performance.now() - t0)
      }
    }
    for (const side of sides) await block(side, 50, false) // warm-up
    for (let b = 0; b < CONSUMERS / 25; b++) {
      const [first, second] = b % 2 === 0 ? [sides[0]!, sides[1]!] : [sides[1]!, sides[0]!]
      await block(first, 25, true)
      await block(second, 25, true)
    }
  } finally {
    worker.close()
    await mafalda.close()
  }
}

const main = async () => {
  const raw = empty()
  const maf = empty()
  for (let round = 0; round < ROUNDS; round++) {
    await rawRound(raw)
    await mafaldaRound(maf)
    await interleavedNoPipe(raw, maf)
  }
  const median = (xs: ReadonlyArray<number>) =>
    Math.round(
      quantile(
        [...xs].sort((a, b) => a - b),
        0.5
      )
    )
  const report = (m: Measure) => ({
    consumeNoPipe: summary(m.noPipe),
    consumeWithPipe: summary(m.pipe),
    consumersPerSecond: {
      sequential: median(m.sequentialPerSecond),
      concurrent100: median(m.concurrentPerSecond)
    },
    memoryPer1000Consumers: {
      nodeHeapBytes: median(m.heapBytesPer1000),
      workerRssKb: median(m.workerRssKbPer1000)
    }
  })
  const rawReport = report(raw)
  const mafReport = report(maf)
  const result = {
    machine: { cpus: (await import("node:os")).availableParallelism(), node: process.version },
    mediasoup: mediasoup.version,
    rounds: ROUNDS,
    consumersPerRound: CONSUMERS,
    pipedConsumesPerRound: PIPED,
    raw: rawReport,
    mafalda: mafReport,
    overhead: {
      noPipeMedian: ratio(mafReport.consumeNoPipe.medianMs, rawReport.consumeNoPipe.medianMs),
      noPipeP95: ratio(mafReport.consumeNoPipe.p95Ms, rawReport.consumeNoPipe.p95Ms),
      pipeMedian: ratio(mafReport.consumeWithPipe.medianMs, rawReport.consumeWithPipe.medianMs),
      pipeP95: ratio(mafReport.consumeWithPipe.p95Ms, rawReport.consumeWithPipe.p95Ms)
    }
  }
  if (json) console.log(JSON.stringify(result))
  else console.log(JSON.stringify(result, null, 2))
}

/** Mafalda / raw - 1, in percent. */
const ratio = (a: number, b: number) => `${Math.round((a / b - 1) * 1000) / 10} %`

await main()
