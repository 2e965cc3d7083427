/**
 * Benchmark of the Mafalda Router against raw mediasoup on this machine.
 *
 * - `consume()` latency when no pipe is needed (the consumer's Router already receives the
 *   producer): raw `transport.consume()` vs the Mafalda transport's `consume()`, measured
 *   side by side in one process, in alternating blocks of 25. Mafalda records each consumer
 *   write-behind (`ConsumerCreated` is applied to its snapshot at the next decision or 20 ms
 *   later): after each Mafalda block that bookkeeping is forced through the public API
 *   (`mafalda.snapshot()` applies what is pending) and timed, so each consume is reported
 *   twice: the `consume()` call only, and including its deferred bookkeeping. Each block
 *   starts after a 25 ms pause (both sides alike), so that no Mafalda timer fires inside a
 *   raw mediasoup block;
 * - `consume()` latency when a pipe is needed: raw `router.pipeToRouter()` + `consume()` vs
 *   the Mafalda transport's `consume()` (which pipes on its own), its deferred bookkeeping
 *   applied inside the timing;
 * - consumers per second (sequential and 100 at a time), Mafalda's deferred bookkeeping
 *   applied inside the timing;
 * - memory per 1,000 consumers (Node heap, and the Worker process' RSS).
 *
 * Rounds alternate raw and Mafalda (each going first in turn) so that both see the same
 * machine state. Ratios are Mafalda / raw.
 *
 *   npm run bench:router            human-readable
 *   npm run bench:router -- --json  one JSON object
 */
import { readFileSync } from "node:fs"
import { performance } from "node:perf_hooks"
import { setTimeout as sleep } from "node:timers/promises"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import { HashMap } from "effect"
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
/** Consumes per block in the side-by-side no-pipe comparison. */
const BLOCK = 25
/** The pause before each block: longer than Mafalda's 20 ms write-behind timer. */
const PAUSE_MS = 25
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
  const r = (x: number) => Math.round(x * 10000) / 10000
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
  /** One sample per `consume()` call (no pipe needed). */
  noPipe: Array<number>
  /** Per block of `BLOCK` consumes, ms per consume: the calls only ... */
  noPipeBlockCalls: Array<number>
  /** ... the deferred bookkeeping forced after them (0 for raw mediasoup) ... */
  noPipeBlockBookkeeping: Array<number>
  /** ... and both: the block from its first call to the end of its bookkeeping. */
  noPipeBlockTotal: Array<number>
  pipe: Array<number>
  sequentialPerSecond: Array<number>
  concurrentPerSecond: Array<number>
  heapBytesPer1000: Array<number>
  workerRssKbPer1000: Array<number>
}
const empty = (): Measure => ({
  noPipe: [],
  noPipeBlockCalls: [],
  noPipeBlockBookkeeping: [],
  noPipeBlockTotal: [],
  pipe: [],
  sequentialPerSecond: [],
  concurrentPerSecond: [],
  heapBytesPer1000: [],
  workerRssKbPer1000: []
})

/**
 * Applies what a setup deferred (Mafalda's write-behind consumer bookkeeping); nothing for raw
 * mediasoup. Called inside the timings, so that each side pays for all of its work.
 */
type Settle = () => void
const nothingDeferred: Settle = () => {}

/** Throughput and memory of one setup: `CONSUMERS` sequential, then `CONSUMERS` 100 at a time. */
const consumeMany = async (
  m: Measure,
  router: RouterLike,
  producer: types.Producer,
  workerPid: number,
  settle: Settle
) => {
  const transports = await Promise.all(Array.from({ length: 10 }, () => plain(router)))
  const caps = router.rtpCapabilities
  // Warm-up.
  for (let i = 0; i < 20; i++)
    await transports[i % 10]!.consume({ producerId: producer.id, rtpCapabilities: caps })
  settle()
  const heapBefore = heap()
  const rssBefore = rssKb(workerPid)
  const start = performance.now()
  for (let i = 0; i < CONSUMERS; i++) {
    await transports[i % 10]!.consume({ producerId: producer.id, rtpCapabilities: caps })
  }
  settle()
  m.sequentialPerSecond.push(CONSUMERS / ((performance.now() - start) / 1000))
  const startBatch = performance.now()
  for (let b = 0; b < CONSUMERS / 100; b++) {
    await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        transports[i % 10]!.consume({ producerId: producer.id, rtpCapabilities: caps })
      )
    )
  }
  settle()
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
    await consumeMany(m, r1, producer, w1.pid, nothingDeferred)
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
    await consumeMany(m, router, producer, worker!.pid, () => void single.snapshot())
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
      double.snapshot() // its deferred bookkeeping, inside the timing
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
 * both set up at once, then blocks of `BLOCK` consumes alternate between them (in turn
 * first), so that both see the same machine, the same heap and the same noise. After each
 * block its side settles (Mafalda applies its pending consumer bookkeeping), timed; every
 * block starts after a pause longer than Mafalda's write-behind timer, so that the timer
 * never fires inside the other side's block. Returns the per-pair ratios (Mafalda / raw,
 * per consume, the calls only and including the bookkeeping).
 */
const interleavedNoPipe = async (raw: Measure, maf: Measure, pairs: Array<Pair>) => {
  const worker = await mediasoup.createWorker(workerSettings)
  const mafalda = await oneWorkerMafalda()
  try {
    const setup = async (router: RouterLike) => {
      const producer = await produce(await plain(router), 1)
      const transports = await Promise.all(Array.from({ length: 10 }, () => plain(router)))
      return { producer, transports, caps: router.rtpCapabilities }
    }
    const sides = [
      {
        m: raw,
        settle: nothingDeferred,
        ...(await setup(await worker.createRouter({ mediaCodecs: [opus] })))
      },
      {
        m: maf,
        settle: () => void mafalda.snapshot(),
        ...(await setup(await mafalda.createRouter({ mediaCodecs: [opus] })))
      }
    ]
    const consumersRecorded = () => HashMap.size(mafalda.snapshot().consumers)
    const before = consumersRecorded()
    /** One block; returns ms per consume: the calls only, and including the bookkeeping. */
    const block = async (side: (typeof sides)[number], record: boolean) => {
      await sleep(PAUSE_MS)
      const samples: Array<number> = []
      const start = performance.now()
      for (let i = 0; i < BLOCK; i++) {
        const t0 = performance.now()
        await side.transports[i % 10]!.consume({ producerId: side.producer.id, rtpCapabilities: side.caps })
        samples.push(performance.now() - t0)
      }
      const called = performance.now()
      side.settle()
      const end = performance.now()
      const calls = (called - start) / BLOCK
      const total = (end - start) / BLOCK
      if (record) {
        side.m.noPipe.push(...samples)
        side.m.noPipeBlockCalls.push(calls)
        side.m.noPipeBlockBookkeeping.push((end - called) / BLOCK)
        side.m.noPipeBlockTotal.push(total)
      }
      return { calls, total }
    }
    for (const side of sides) for (let w = 0; w < 2; w++) await block(side, false) // warm-up
    for (let b = 0; b < CONSUMERS / BLOCK; b++) {
      const rawFirst = b % 2 === 0
      const first = await block(rawFirst ? sides[0]! : sides[1]!, true)
      const second = await block(rawFirst ? sides[1]! : sides[0]!, true)
      const [r, m] = rawFirst ? [first, second] : [second, first]
      pairs.push({ calls: m.calls / r.calls, total: m.total / r.total })
    }
    // Every consumer made on the Mafalda side is in its snapshot: the bookkeeping counted
    // above is the whole of it.
    const recorded = consumersRecorded() - before
    const made = 2 * BLOCK + CONSUMERS
    if (recorded !== made) throw new Error(`Mafalda recorded ${recorded} consumers, expected ${made}`)
  } finally {
    worker.close()
    await mafalda.close()
  }
}

/** Mafalda / raw for one pair of adjacent blocks, per consume. */
interface Pair {
  readonly calls: number
  readonly total: number
}

const main = async () => {
  const raw = empty()
  const maf = empty()
  const pairs: Array<Pair> = []
  for (let round = 0; round < ROUNDS; round++) {
    // The throughput and pipe rounds take turns going first, as the no-pipe blocks do.
    if (round % 2 === 0) {
      await rawRound(raw)
      await mafaldaRound(maf)
    } else {
      await mafaldaRound(maf)
      await rawRound(raw)
    }
    await interleavedNoPipe(raw, maf, pairs)
  }
  const median = (xs: ReadonlyArray<number>) =>
    quantile(
      [...xs].sort((a, b) => a - b),
      0.5
    )
  const report = (m: Measure) => ({
    consumeNoPipe: summary(m.noPipe),
    consumeNoPipePerBlock: {
      callsOnly: summary(m.noPipeBlockCalls),
      deferredBookkeeping: summary(m.noPipeBlockBookkeeping),
      includingBookkeeping: summary(m.noPipeBlockTotal)
    },
    consumeWithPipe: summary(m.pipe),
    consumersPerSecond: {
      sequential: Math.round(median(m.sequentialPerSecond)),
      concurrent100: Math.round(median(m.concurrentPerSecond))
    },
    memoryPer1000Consumers: {
      nodeHeapBytes: Math.round(median(m.heapBytesPer1000)),
      workerRssKb: Math.round(median(m.workerRssKbPer1000))
    }
  })
  const rawReport = report(raw)
  const mafReport = report(maf)
  const ratio = (a: number, b: number) => Math.round((a / b) * 1000) / 1000
  const pairQuantiles = (xs: ReadonlyArray<number>) => {
    const sorted = [...xs].sort((a, b) => a - b)
    return {
      p05: ratio(quantile(sorted, 0.05), 1),
      median: ratio(quantile(sorted, 0.5), 1),
      p95: ratio(quantile(sorted, 0.95), 1)
    }
  }
  const result = {
    machine: { cpus: (await import("node:os")).availableParallelism(), node: process.version },
    mediasoup: mediasoup.version,
    rounds: ROUNDS,
    consumersPerRound: CONSUMERS,
    consumesPerBlock: BLOCK,
    pipedConsumesPerRound: PIPED,
    raw: rawReport,
    mafalda: mafReport,
    /** Mafalda / raw mediasoup (1.10 = Mafalda takes 10 % longer; for throughput, 10 % more). */
    ratios: {
      noPipeCallMedian: ratio(mafReport.consumeNoPipe.medianMs, rawReport.consumeNoPipe.medianMs),
      noPipeCallP95: ratio(mafReport.consumeNoPipe.p95Ms, rawReport.consumeNoPipe.p95Ms),
      noPipePerConsumeCallsOnly: ratio(
        mafReport.consumeNoPipePerBlock.callsOnly.medianMs,
        rawReport.consumeNoPipePerBlock.callsOnly.medianMs
      ),
      noPipePerConsumeIncludingBookkeeping: ratio(
        mafReport.consumeNoPipePerBlock.includingBookkeeping.medianMs,
        rawReport.consumeNoPipePerBlock.includingBookkeeping.medianMs
      ),
      /** Over adjacent block pairs (same moment of the run): spread of the ratio. */
      noPipePairsCallsOnly: pairQuantiles(pairs.map((p) => p.calls)),
      noPipePairsIncludingBookkeeping: pairQuantiles(pairs.map((p) => p.total)),
      pipeMedian: ratio(mafReport.consumeWithPipe.medianMs, rawReport.consumeWithPipe.medianMs),
      pipeP95: ratio(mafReport.consumeWithPipe.p95Ms, rawReport.consumeWithPipe.p95Ms),
      sequentialPerSecond: ratio(
        mafReport.consumersPerSecond.sequential,
        rawReport.consumersPerSecond.sequential
      ),
      concurrent100PerSecond: ratio(
        mafReport.consumersPerSecond.concurrent100,
        rawReport.consumersPerSecond.concurrent100
      )
    }
  }
  if (json) {
    console.log(JSON.stringify(result))
    return
  }
  type Report = typeof rawReport
  const ms = (x: number) => `${x.toFixed(3)} ms`
  const mb = (x: number) => `${(x / 1e6).toFixed(1)} MB`
  /** A row: a figure of both reports, formatted, and Mafalda / raw unless `ratio` is false. */
  const row = (label: string, get: (r: Report) => number, format: (x: number) => string, ratio = true) => {
    const [a, b] = [get(rawReport), get(mafReport)]
    return [label, format(a), format(b), ratio ? String(Math.round((b / a) * 1000) / 1000) : ""] as const
  }
  const rows = [
    row("consume(), no pipe, per call: median", (r) => r.consumeNoPipe.medianMs, ms),
    row("consume(), no pipe, per call: p95", (r) => r.consumeNoPipe.p95Ms, ms),
    row("no pipe, per consume, calls only", (r) => r.consumeNoPipePerBlock.callsOnly.medianMs, ms),
    row(
      "no pipe, deferred bookkeeping per consume",
      (r) => r.consumeNoPipePerBlock.deferredBookkeeping.medianMs,
      ms,
      false
    ),
    row(
      "no pipe, per consume, incl. bookkeeping",
      (r) => r.consumeNoPipePerBlock.includingBookkeeping.medianMs,
      ms
    ),
    row("consume(), pipe needed: median", (r) => r.consumeWithPipe.medianMs, ms),
    row("consume(), pipe needed: p95", (r) => r.consumeWithPipe.p95Ms, ms),
    row("consumers per second, one at a time", (r) => r.consumersPerSecond.sequential, String),
    row("consumers per second, 100 at a time", (r) => r.consumersPerSecond.concurrent100, String),
    row("Node heap per 1,000 consumers", (r) => r.memoryPer1000Consumers.nodeHeapBytes, mb, false),
    row("Worker RSS per 1,000 consumers", (r) => r.memoryPer1000Consumers.workerRssKb * 1000, mb, false)
  ]
  console.log(`${"".padEnd(42)}${"raw".padStart(12)}${"Mafalda".padStart(12)}${"Mafalda/raw".padStart(13)}`)
  for (const [label, a, b, r] of rows)
    console.log(`${label.padEnd(42)}${a.padStart(12)}${b.padStart(12)}${String(r).padStart(13)}`)
  const spread = (q: { p05: number; median: number; p95: number }) =>
    `${q.median} (5-95 %: ${q.p05}-${q.p95})`
  console.log(
    `\nMafalda/raw per pair of adjacent blocks (${pairs.length} pairs): calls only ${spread(
      result.ratios.noPipePairsCallsOnly
    )}, incl. bookkeeping ${spread(result.ratios.noPipePairsIncludingBookkeeping)}`
  )
}

await main()
