/**
 * Benchmark of the Mafalda Router against raw mediasoup on this machine, side by side in one
 * process: both set up at once, then blocks alternate between them (each going first in
 * turn, each after a 25 ms pause), so that both see the same machine, heap and noise.
 *
 * - `consume()` when no pipe is needed (the consumer's Router already receives the producer):
 *   raw `transport.consume()` vs the Mafalda transport's `consume()`, blocks of 25. Mafalda
 *   records each consumer write-behind (`ConsumerCreated` is applied to its snapshot at the
 *   next decision or 20 ms later): after each Mafalda block that bookkeeping is forced through
 *   the public API (`mafalda.snapshot()` applies what is pending) and timed, so each consume
 *   is reported twice: the `consume()` call only, and including its deferred bookkeeping.
 *   Nothing of it is left for the raw block that follows (and the pause outlasts the timer);
 * - consumers per second: one at a time (from those blocks, bookkeeping included), and 100
 *   at a time (batches of 100 concurrent consumes, alternating, bookkeeping included);
 * - `consume()` when a pipe is needed: raw `router.pipeToRouter()` + `consume()` vs the
 *   Mafalda transport's `consume()` (which decides, pipes and records on its own; its
 *   bookkeeping inside the timing), blocks of 10;
 * - memory per 1,000 consumers (Node heap, and the Worker process' RSS), one side at a time.
 *
 * Ratios are Mafalda / raw; the spread of the ratio over adjacent block pairs is printed too.
 *
 *   npm run bench:router            a table
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
/** Sequential no-pipe consumes per side and round, in blocks of `BLOCK`. */
const CONSUMERS = 500
const BLOCK = 25
/** Batches of `BATCH` concurrent consumes per side and round. */
const BATCHES = 10
const BATCH = 100
/** Piped consumes per side and round, in blocks of `PIPE_BLOCK`. */
const PIPED = 60
const PIPE_BLOCK = 10
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
const sorted = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)
const round4 = (x: number) => Math.round(x * 10000) / 10000
const summary = (samples: ReadonlyArray<number>) => {
  const s = sorted(samples)
  return { samples: s.length, medianMs: round4(quantile(s, 0.5)), p95Ms: round4(quantile(s, 0.95)) }
}
const median = (xs: ReadonlyArray<number>) => quantile(sorted(xs), 0.5)

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
  /** Per batch of `BATCH` concurrent consumes, bookkeeping included. */
  concurrentPerSecond: Array<number>
  /** One sample per piped consume (Mafalda: bookkeeping included). */
  pipe: Array<number>
  heapBytesPer1000: Array<number>
  workerRssKbPer1000: Array<number>
}
const empty = (): Measure => ({
  noPipe: [],
  noPipeBlockCalls: [],
  noPipeBlockBookkeeping: [],
  noPipeBlockTotal: [],
  concurrentPerSecond: [],
  pipe: [],
  heapBytesPer1000: [],
  workerRssKbPer1000: []
})

/**
 * Applies what a side deferred (Mafalda's write-behind consumer bookkeeping: reading the
 * snapshot applies what is pending); nothing for raw mediasoup. Called inside the timings,
 * so that each side pays for all of its work, and before the other side's next block.
 */
type Settle = () => void
const nothingDeferred: Settle = () => {}

/** A Mafalda with these limits, load sampling off (placement follows the costs alone). */
const mafaldaWith = (
  maxWorkers: number,
  watermark: number,
  costs: NonNullable<MafaldaOptionsInput["costs"]>
) => createMafalda({ maxWorkers, watermark, costs, samplingInterval: 3_600_000, workerSettings })

/** Everything on one Worker, nothing ever piped. */
const oneWorkerMafalda = () => mafaldaWith(1, 100, { consumer: 0, transport: 0, producer: 0, pipe: 0 })

/**
 * Pipe needed: a transport costs more than the watermark, so the egress transport lands on the
 * second Worker and every producer of the first must be piped to it.
 */
const twoWorkerMafalda = () => mafaldaWith(2, 50, { transport: 60, consumer: 0, producer: 0, pipe: 0 })

/**
 * Runs `blocks` pairs of blocks, raw mediasoup and Mafalda taking turns going first, each
 * block after a pause (so that any timer a block set has fired before the next one starts).
 * `run` returns a figure per block; the result is Mafalda / raw for each pair.
 */
const alternate = async <A>(
  blocks: number,
  run: (side: "raw" | "mafalda", record: boolean) => Promise<A>,
  ratio: (raw: A, mafalda: A) => number
): Promise<Array<number>> => {
  for (const side of ["raw", "mafalda"] as const) {
    for (let w = 0; w < 2; w++) {
      await sleep(PAUSE_MS)
      await run(side, false) // warm-up
    }
  }
  const ratios: Array<number> = []
  for (let b = 0; b < blocks; b++) {
    const order = b % 2 === 0 ? (["raw", "mafalda"] as const) : (["mafalda", "raw"] as const)
    const figures = new Map<string, A>()
    for (const side of order) {
      await sleep(PAUSE_MS)
      figures.set(side, await run(side, true))
    }
    ratios.push(ratio(figures.get("raw")!, figures.get("mafalda")!))
  }
  return ratios
}

/** Mafalda / raw per pair of adjacent blocks, for each comparison. */
interface Pairs {
  noPipeCalls: Array<number>
  noPipeTotal: Array<number>
  concurrent: Array<number>
  pipe: Array<number>
}

/**
 * No pipe needed, raw mediasoup and Mafalda side by side in one process: both set up at
 * once; blocks of `BLOCK` sequential consumes alternate between them, then batches of
 * `BATCH` concurrent ones. After each block its side settles (timed); the block's figures
 * are per consume: the calls only, the bookkeeping, and both.
 */
const sideBySideNoPipe = async (raw: Measure, maf: Measure, pairs: Pairs) => {
  const worker = await mediasoup.createWorker(workerSettings)
  const mafalda = await oneWorkerMafalda()
  try {
    const setup = async (m: Measure, settle: Settle, router: RouterLike) => {
      const producer = await produce(await plain(router), 1)
      const transports = await Promise.all(Array.from({ length: 10 }, () => plain(router)))
      const caps = router.rtpCapabilities
      const consume = (i: number) =>
        transports[i % 10]!.consume({ producerId: producer.id, rtpCapabilities: caps })
      return { m, settle, consume }
    }
    const sides = {
      raw: await setup(raw, nothingDeferred, await worker.createRouter({ mediaCodecs: [opus] })),
      mafalda: await setup(
        maf,
        () => void mafalda.snapshot(),
        await mafalda.createRouter({ mediaCodecs: [opus] })
      )
    }
    const consumersRecorded = () => HashMap.size(mafalda.snapshot().consumers)
    const before = consumersRecorded()
    let made = 0
    const sequential = async (name: "raw" | "mafalda", record: boolean) => {
      const side = sides[name]
      const samples: Array<number> = []
      const start = performance.now()
      for (let i = 0; i < BLOCK; i++) {
        const t0 = performance.now()
        await side.consume(i)
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
      if (name === "mafalda") made += BLOCK
      return { calls, total }
    }
    const seq = await alternate(CONSUMERS / BLOCK, sequential, (r, m) => m.calls / r.calls)
    pairs.noPipeCalls.push(...seq)
    // The same pairs, bookkeeping included (kept from the blocks just run).
    const totals = (m: Measure) => m.noPipeBlockTotal.slice(-seq.length)
    const [rt, mt] = [totals(raw), totals(maf)]
    pairs.noPipeTotal.push(...rt.map((r, i) => mt[i]! / r))
    const concurrent = async (name: "raw" | "mafalda", record: boolean) => {
      const side = sides[name]
      const start = performance.now()
      await Promise.all(Array.from({ length: BATCH }, (_, i) => side.consume(i)))
      side.settle()
      const perSecond = BATCH / ((performance.now() - start) / 1000)
      if (record) side.m.concurrentPerSecond.push(perSecond)
      if (name === "mafalda") made += BATCH
      return perSecond
    }
    pairs.concurrent.push(...(await alternate(BATCHES, concurrent, (r, m) => m / r)))
    // Every consumer made on the Mafalda side is in its snapshot: the bookkeeping counted
    // above is the whole of it.
    const recorded = consumersRecorded() - before
    if (recorded !== made) throw new Error(`Mafalda recorded ${recorded} consumers, expected ${made}`)
  } finally {
    worker.close()
    await mafalda.close()
  }
}

/**
 * Pipe needed, side by side: raw `router.pipeToRouter()` + `consume()` on a second Worker's
 * Router, against a Mafalda `consume()` that decides, pipes and records on its own (its
 * bookkeeping applied inside the timing). Blocks of `PIPE_BLOCK` alternate.
 */
const sideBySidePipe = async (raw: Measure, maf: Measure, pairs: Pairs) => {
  const w1 = await mediasoup.createWorker(workerSettings)
  const w2 = await mediasoup.createWorker(workerSettings)
  const double = await twoWorkerMafalda()
  const warm = 2 * PIPE_BLOCK // the warm-up blocks of `alternate`
  const count = PIPED + warm
  try {
    const r1 = await w1.createRouter({ mediaCodecs: [opus] })
    const r2 = await w2.createRouter({ mediaCodecs: [opus] })
    const rawIngress = await plain(r1)
    const rawProducers = await Promise.all(
      Array.from({ length: count }, (_, i) => produce(rawIngress, 1000 + i))
    )
    await produce(await plain(r2), 99) // as in Mafalda: r2 already exists and is in use
    const rawEgress = await plain(r2)
    const router = await double.createRouter({ mediaCodecs: [opus] })
    const ingress = await plain(router)
    const producers = await Promise.all(Array.from({ length: count }, (_, i) => produce(ingress, 1000 + i)))
    const egress = await plain(router)
    if ((await double.workers()).length !== 2) throw new Error("expected a second Worker")
    const sides = {
      raw: {
        m: raw,
        next: 0,
        consume: async (i: number) => {
          const p = rawProducers[i]!
          await r1.pipeToRouter({ producerId: p.id, router: r2 })
          await rawEgress.consume({ producerId: p.id, rtpCapabilities: r2.rtpCapabilities })
        }
      },
      mafalda: {
        m: maf,
        next: 0,
        consume: async (i: number) => {
          await egress.consume({ producerId: producers[i]!.id, rtpCapabilities: router.rtpCapabilities })
          double.snapshot() // its deferred bookkeeping, inside the timing
        }
      }
    }
    const block = async (name: "raw" | "mafalda", record: boolean) => {
      const side = sides[name]
      const samples: Array<number> = []
      for (let i = 0; i < PIPE_BLOCK; i++) {
        const t0 = performance.now()
        await side.consume(side.next++)
        samples.push(performance.now() - t0)
      }
      if (record) side.m.pipe.push(...samples)
      return median(samples)
    }
    pairs.pipe.push(...(await alternate(PIPED / PIPE_BLOCK, block, (r, m) => m / r)))
    const status = await double.status()
    if (status.pipes.length !== count) throw new Error(`expected ${count} pipes, got ${status.pipes.length}`)
  } finally {
    w1.close()
    w2.close()
    await double.close()
  }
}

/** Node heap and Worker RSS per 1,000 consumers of one side (the sides take turns). */
const memory = async (m: Measure, router: RouterLike, workerPid: () => Promise<number>, settle: Settle) => {
  const producer = await produce(await plain(router), 1)
  const transports = await Promise.all(Array.from({ length: 10 }, () => plain(router)))
  const pid = await workerPid() // Mafalda starts its Worker with the first transport
  const caps = router.rtpCapabilities
  const consume = (i: number) =>
    transports[i % 10]!.consume({ producerId: producer.id, rtpCapabilities: caps })
  for (let i = 0; i < 20; i++) await consume(i) // warm-up
  settle()
  const heapBefore = heap()
  const rssBefore = rssKb(pid)
  for (let i = 0; i < 1000; i++) await consume(i)
  settle()
  m.heapBytesPer1000.push(heap() - heapBefore)
  m.workerRssKbPer1000.push(rssKb(pid) - rssBefore)
}
const rawMemory = async (m: Measure) => {
  const worker = await mediasoup.createWorker(workerSettings)
  try {
    const router = await worker.createRouter({ mediaCodecs: [opus] })
    await memory(m, router, async () => worker.pid, nothingDeferred)
  } finally {
    worker.close()
  }
}
const mafaldaMemory = async (m: Measure) => {
  const mafalda = await oneWorkerMafalda()
  try {
    const router = await mafalda.createRouter({ mediaCodecs: [opus] })
    const pid = async () => {
      const [worker] = await mafalda.workers()
      return worker!.pid
    }
    await memory(m, router, pid, () => void mafalda.snapshot())
  } finally {
    await mafalda.close()
  }
}

const main = async () => {
  const raw = empty()
  const maf = empty()
  const pairs: Pairs = { noPipeCalls: [], noPipeTotal: [], concurrent: [], pipe: [] }
  for (let round = 0; round < ROUNDS; round++) {
    await sideBySideNoPipe(raw, maf, pairs)
    await sideBySidePipe(raw, maf, pairs)
    if (round % 2 === 0) {
      await rawMemory(raw)
      await mafaldaMemory(maf)
    } else {
      await mafaldaMemory(maf)
      await rawMemory(raw)
    }
  }
  const report = (m: Measure) => ({
    consumeNoPipe: summary(m.noPipe),
    consumeNoPipePerBlock: {
      callsOnly: summary(m.noPipeBlockCalls),
      deferredBookkeeping: summary(m.noPipeBlockBookkeeping),
      includingBookkeeping: summary(m.noPipeBlockTotal)
    },
    consumeWithPipe: summary(m.pipe),
    consumersPerSecond: {
      /** Sequential: from the no-pipe blocks, bookkeeping included. */
      sequential: Math.round(1000 / median(m.noPipeBlockTotal)),
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
  const spread = (xs: ReadonlyArray<number>) => {
    const s = sorted(xs)
    return {
      pairs: s.length,
      p05: ratio(quantile(s, 0.05), 1),
      median: ratio(quantile(s, 0.5), 1),
      p95: ratio(quantile(s, 0.95), 1)
    }
  }
  const result = {
    machine: { cpus: (await import("node:os")).availableParallelism(), node: process.version },
    mediasoup: mediasoup.version,
    rounds: ROUNDS,
    perRoundAndSide: {
      sequentialConsumes: CONSUMERS,
      consumesPerBlock: BLOCK,
      concurrentBatches: BATCHES,
      consumesPerBatch: BATCH,
      pipedConsumes: PIPED,
      pipedConsumesPerBlock: PIPE_BLOCK
    },
    raw: rawReport,
    mafalda: mafReport,
    /** Mafalda / raw mediasoup (times: 1.10 = Mafalda takes 10 % longer; per second: 10 % more). */
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
    },
    /** Mafalda / raw over each pair of adjacent blocks (the same moment of the run): the spread. */
    pairRatios: {
      noPipeCallsOnly: spread(pairs.noPipeCalls),
      noPipeIncludingBookkeeping: spread(pairs.noPipeTotal),
      concurrent100PerSecond: spread(pairs.concurrent),
      pipeMedian: spread(pairs.pipe)
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
  const pairLine = (label: string, q: ReturnType<typeof spread>) =>
    console.log(`  ${label.padEnd(40)}${q.median} (5-95 %: ${q.p05}-${q.p95}, ${q.pairs} pairs)`)
  console.log("\nMafalda/raw per pair of adjacent blocks: median (spread)")
  pairLine("no pipe, per consume, calls only", result.pairRatios.noPipeCallsOnly)
  pairLine("no pipe, per consume, incl. bookkeeping", result.pairRatios.noPipeIncludingBookkeeping)
  pairLine("consumers per second, 100 at a time", result.pairRatios.concurrent100PerSecond)
  pairLine("consume(), pipe needed: block median", result.pairRatios.pipeMedian)
}

await main()
