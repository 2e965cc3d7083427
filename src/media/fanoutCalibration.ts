/**
 * Cost calibration: the CPU one mediasoup object costs a Worker on this machine, per media
 * kind, measured with real RTP and `getResourceUsage()`, in percent of one Worker (one core)
 * per object, the unit of the cost model.
 *
 * For each kind, two fresh Workers: A (the **sending end** of the pipes) with `streams` (K)
 * producers, each on its own PlainTransport and fed by its own paced sender (one fan-out
 * media thread per stream, started at evenly spread phases so that the streams' packets
 * interleave as independent senders' do), and B (the **receiving end**). A's and B's CPU are
 * measured over windows of `windowMs`, in these states:
 *
 * - `stopped`: the K producers, no stream;
 * - `streaming`: the K streams run, no pipe;
 * - `pairIdle`: a PipeTransport pair between A's and B's Routers, nothing piped over it;
 * - `piped1`, `pipedHalf`, `pipedAll`: 1, K/2 and K producers piped to B with
 *   `pipeToRouter`, which makes one PipeTransport pair per pair of Routers and reuses it for
 *   every further producer (so all of them share that pair, as in a many-to-many room).
 *
 * The states are visited up and down (`stopped` ... `pipedAll` ... `stopped`), `roundTrips`
 * times, so that each **pass** (one way) has one window of each state, measured within
 * seconds of each other. Each pass gives, per end:
 *
 * - the **producer**'s cost: (`streaming` − `stopped`) / K on A;
 * - the **marginal** cost of a piped producer: the least-squares slope of the CPU over the
 *   number piped (1, K/2, K), which leaves out the pair's own cost (this is the cost model's
 *   `pipe`, charged per piped producer at each end);
 * - the PipeTransport pair's fixed cost, **idle** (`pairIdle` − `streaming`) and **with
 *   traffic** (the slope's intercept at zero producers − `streaming`);
 * - for comparison, the average cost per piped producer with K of them, pair included
 *   ((`pipedAll` − `streaming`) / K), and the first producer piped over a new pair
 *   (`piped1` − `streaming`, what a one-pipe measurement sees).
 *
 * Each figure is the median over the passes, with its minimum and maximum. Then, streams
 * running, `consumers` consumers of one producer on A (PlainTransports sending to sinks
 * nobody reads) and, once (`withFixed`), `transports` empty PlainTransports on B, between
 * two windows without them: the **consumer**'s and the **transport**'s cost.
 *
 * Once (`withFixed`), streams stopped, what an idle pair costs and why: `pipeToRouter` makes
 * its pairs with SCTP on (for data channels), and a Worker with any SCTP association runs
 * usrsctp's timer every 10 ms. Windows with no pair, one pair without SCTP, one with SCTP and
 * four with SCTP (to four Routers on B), up and down (`pairs` phase): the cost of a pair
 * without SCTP, of the first pair with SCTP, and of each further one.
 *
 * Every window also records the machine's load (busy CPU from /proc/stat, the harness
 * process, softirq, other processes) and the packet rates the producers and the pipe
 * producers received, so that a noisy window can be told apart.
 *
 * @module
 */
import { availableParallelism, loadavg } from "node:os"
import { performance } from "node:perf_hooks"
import type { types } from "mediasoup"
import { createWorker } from "mediasoup"
import { consumerRtpCapabilities, type FanoutHarness, machineJiffies, sleep } from "./fanout.js"
import { audioStream, type FanoutKind, type FanoutStream, videoStream } from "./fanoutStreams.js"
import { type MediaThread, openMediaThread } from "./fanoutThreads.js"
import { opusCodec, vp8Codec } from "./worker.js"

const listenInfo: types.TransportListenInfo = { protocol: "udp", ip: "127.0.0.1" }

export interface CalibrationOptions {
  /** Kinds to calibrate (default both, video first). */
  readonly kinds?: ReadonlyArray<FanoutKind> | undefined
  /** Length of each CPU window (default 4000 ms). */
  readonly windowMs?: number | undefined
  /** Wait after each change before a window (default 700 ms). */
  readonly settleMs?: number | undefined
  /** Producers (streams) of each kind, K, at least 3 (default 16). */
  readonly streams?: Partial<Record<FanoutKind, number>> | undefined
  /** Up-and-down round trips over the states (default 2: four passes). */
  readonly roundTrips?: number | undefined
  /** Consumers of the consumer measurement (default 200 for video, 400 for audio). */
  readonly consumers?: Partial<Record<FanoutKind, number>> | undefined
  /** Empty transports of the transport measurement (default 300). */
  readonly transports?: number | undefined
  readonly ports: { readonly min: number; readonly max: number }
  /** Called after every window (progress). */
  readonly onWindow?: ((window: CalibrationWindow) => void) | undefined
}

export type CalibrationState =
  | "stopped"
  | "streaming"
  | "pairIdle"
  | "piped1"
  | "pipedHalf"
  | "pipedAll"
  | "consumers"
  | "pairNoSctp"
  | "pairSctp"
  | "pairsSctp4"

/** One CPU window. CPU figures in % of one core over the window. */
export interface CalibrationWindow {
  readonly kind: FanoutKind
  readonly state: CalibrationState
  /**
   * `pipes`: part of the up-and-down passes; `consumers`: the consumer/transport measurement;
   * `pairs`: idle pairs with and without SCTP, streams stopped.
   */
  readonly phase: "pipes" | "consumers" | "pairs"
  /** Producers piped to B, and PipeTransports open on A's Router (a pair has one on each side). */
  readonly piped: number
  readonly pipeTransports: number
  /** Worker A (producers, pipe consumers) and Worker B (pipe producers). */
  readonly sendingEnd: number
  readonly receivingEnd: number
  /** This process, every thread (the paced senders). */
  readonly harness: number
  /** The whole machine, its softirq time, and other processes (machine − softirq − A − B − harness). */
  readonly machine: number | undefined
  readonly softirq: number | undefined
  readonly foreign: number | undefined
  /** One-minute load average when the window started. */
  readonly loadAverage: number
  /** Packets per second received by the K producers on A, and by the pipe producers on B. */
  readonly ingressPacketsPerSecond: number
  readonly pipedPacketsPerSecond: number
}

/** A figure of one end of a pipe or pair. */
export interface Ends {
  readonly sendingEnd: number
  readonly receivingEnd: number
}

/** The estimates of one pass (one window of each state). */
export interface PassEstimate {
  readonly producer: number
  readonly marginal: Ends
  readonly averageAtK: Ends
  readonly firstPipe: Ends
  readonly pairIdle: Ends
  readonly pairWithTraffic: Ends
}

/** Idle pairs over the passes of the `pairs` phase. */
export interface SctpEstimates {
  readonly pairWithoutSctp: PairSpread
  readonly firstPairWithSctp: PairSpread
  readonly furtherPairWithSctp: PairSpread
  readonly passes: ReadonlyArray<SctpPassEstimate>
}

/** Median, minimum and maximum over `n` values. */
export interface Spread {
  readonly median: number
  readonly min: number
  readonly max: number
  readonly n: number
}

/** Per piped producer: each end, and their mean (the cost model charges it at each end). */
export interface PipeSpread {
  readonly sendingEnd: Spread
  readonly receivingEnd: Spread
  readonly perEnd: Spread
}

/** A PipeTransport pair: each end, and both together. */
export interface PairSpread {
  readonly sendingEnd: Spread
  readonly receivingEnd: Spread
  readonly both: Spread
}

/** What the passes of one or more calibrations of a kind say about pipes. */
export interface PipeEstimates {
  readonly streams: ReadonlyArray<number>
  readonly passes: number
  readonly producer: Spread
  /** The cost model's `pipe`: marginal cost of one more producer over a shared pair. */
  readonly marginal: PipeSpread
  /** (K piped − none) / K: pair included, spread over K producers. */
  readonly averageAtK: PipeSpread
  /** The first producer over a new pair, pair included (what a one-pipe measurement sees). */
  readonly firstPipe: PipeSpread
  readonly pairIdle: PairSpread
  readonly pairWithTraffic: PairSpread
}

/** Idle PipeTransport pairs, streams stopped (see the module documentation), per pass. */
export interface SctpPassEstimate {
  readonly pairWithoutSctp: Ends
  readonly firstPairWithSctp: Ends
  /** Each of three further pairs with SCTP, on Workers that have one already. */
  readonly furtherPairWithSctp: Ends
}

/** Measured costs of one kind, in % of one core per object. */
export interface KindCalibration {
  readonly kind: FanoutKind
  /** One stream: packets and bits per second. */
  readonly stream: { readonly packetsPerSecond: number; readonly bitsPerSecond: number }
  /** K, the producers (streams) of the pipe measurement. */
  readonly streams: number
  readonly windowMs: number
  /** Worker A with its K idle producers (median of the `stopped` windows). */
  readonly idle: number
  /** Medians over the passes. */
  readonly producer: number
  /** Marginal cost per piped producer: each end and their mean (the cost model's `pipe`). */
  readonly pipeSendingEnd: number
  readonly pipeReceivingEnd: number
  readonly pipe: number
  readonly consumer: number
  readonly consumersMeasured: number
  /** When measured with this kind. */
  readonly transport?: number | undefined
  readonly transportsMeasured?: number | undefined
  /** PipeTransport pairs `pipeToRouter` created over the run (one per round trip when shared). */
  readonly pairsCreated: number
  /** The process ids of Workers A and B (closed on return). */
  readonly workerPids: ReadonlyArray<number>
  readonly estimates: PipeEstimates
  readonly passes: ReadonlyArray<PassEstimate>
  /** When measured with this kind: idle pairs with and without SCTP. */
  readonly sctp?: SctpEstimates | undefined
  readonly windows: ReadonlyArray<CalibrationWindow>
  /**
   * Windows in which the producers, or the pipe producers, received less than
   * `SHORTFALL` of the packets the streams send (a starved sender or Worker on a busy
   * machine): the figures that use them are too low.
   */
  readonly shortfalls: ReadonlyArray<Shortfall>
  /** The machine during the run. */
  readonly load: {
    readonly averageBefore: ReadonlyArray<number>
    readonly averageAfter: ReadonlyArray<number>
    /** Medians over the windows, % of one core. */
    readonly machineCpuMedian: number
    readonly foreignCpuMedian: number
    readonly harnessCpuMedian: number
  }
}

/** A window that received less than it was sent (see `KindCalibration.shortfalls`). */
export interface Shortfall {
  readonly state: CalibrationState
  readonly phase: CalibrationWindow["phase"]
  /** `ingress`: into the K producers on A; `piped`: into the pipe producers on B. */
  readonly at: "ingress" | "piped"
  readonly expectedPacketsPerSecond: number
  readonly receivedPacketsPerSecond: number
}

/** Below this share of the packets sent, a window is a shortfall. */
export const SHORTFALL = 0.85

/** The windows that received less than `SHORTFALL` of the nominal packet rate. */
export const shortfallsOf = (
  windows: ReadonlyArray<CalibrationWindow>,
  streams: number,
  packetsPerSecond: number
): Array<Shortfall> =>
  windows.flatMap((w) => {
    const streaming = w.phase !== "pairs" && w.state !== "stopped"
    const checks = [
      ["ingress", streaming ? streams * packetsPerSecond : 0, w.ingressPacketsPerSecond],
      ["piped", w.piped * packetsPerSecond, w.pipedPacketsPerSecond]
    ] as const
    return checks
      .filter(([, expected, received]) => expected > 0 && received < SHORTFALL * expected)
      .map(([at, expected, received]) => ({
        state: w.state,
        phase: w.phase,
        at,
        expectedPacketsPerSecond: expected,
        receivedPacketsPerSecond: received
      }))
  })

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

const r2 = (x: number) => Math.round(x * 100) / 100
const r4 = (x: number) => Math.round(x * 10000) / 10000

/** Median of the finite values (NaN if none). */
export const median = (xs: ReadonlyArray<number>): number => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b)
  if (s.length === 0) return Number.NaN
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

const spreadOf = (xs: ReadonlyArray<number>): Spread => {
  const s = xs.filter(Number.isFinite)
  return {
    median: r4(median(s)),
    min: r4(s.length === 0 ? Number.NaN : Math.min(...s)),
    max: r4(s.length === 0 ? Number.NaN : Math.max(...s)),
    n: s.length
  }
}

/** Least-squares slope and intercept of `y` over `x`. */
const fitLine = (points: ReadonlyArray<readonly [number, number]>) => {
  const n = points.length
  const mx = points.reduce((a, p) => a + p[0], 0) / n
  const my = points.reduce((a, p) => a + p[1], 0) / n
  const sxx = points.reduce((a, p) => a + (p[0] - mx) ** 2, 0)
  const sxy = points.reduce((a, p) => a + (p[0] - mx) * (p[1] - my), 0)
  const slope = sxy / sxx
  return { slope, intercept: my - slope * mx }
}

const streamOf = (kind: FanoutKind, i: number): FanoutStream =>
  kind === "video" ? videoStream({ ssrc: 0x0f00d100 + i }) : audioStream({ ssrc: 0x0f00a100 + i })

const packetsOf = async (producers: ReadonlyArray<types.Producer>): Promise<number> => {
  const stats = await Promise.all(producers.map((p) => (p.closed ? [] : p.getStats().catch(() => []))))
  return stats.reduce((n, s) => n + s.reduce((m, x) => m + x.packetCount, 0), 0)
}

const closeWorker = (w: types.Worker) =>
  new Promise<void>((resolve) => {
    if (w.subprocessClosed) return resolve()
    w.once("subprocessclose", () => resolve())
    w.close()
  })

/** The estimates of one pass, from its window of each state. */
const passEstimate = (
  at: (state: CalibrationState) => CalibrationWindow,
  k: number,
  half: number
): PassEstimate => {
  const perEnd = (f: (end: "sendingEnd" | "receivingEnd") => number): Ends => ({
    sendingEnd: r4(f("sendingEnd")),
    receivingEnd: r4(f("receivingEnd"))
  })
  const base = (end: "sendingEnd" | "receivingEnd") => at("streaming")[end]
  const line = (end: "sendingEnd" | "receivingEnd") =>
    fitLine([
      [1, at("piped1")[end]],
      [half, at("pipedHalf")[end]],
      [k, at("pipedAll")[end]]
    ])
  return {
    producer: r4((at("streaming").sendingEnd - at("stopped").sendingEnd) / k),
    marginal: perEnd((end) => line(end).slope),
    averageAtK: perEnd((end) => (at("pipedAll")[end] - base(end)) / k),
    firstPipe: perEnd((end) => at("piped1")[end] - base(end)),
    pairIdle: perEnd((end) => at("pairIdle")[end] - base(end)),
    pairWithTraffic: perEnd((end) => line(end).intercept - base(end))
  }
}

const pairSpreadOf = (xs: ReadonlyArray<Ends>): PairSpread => ({
  sendingEnd: spreadOf(xs.map((x) => x.sendingEnd)),
  receivingEnd: spreadOf(xs.map((x) => x.receivingEnd)),
  both: spreadOf(xs.map((x) => x.sendingEnd + x.receivingEnd))
})

/** Pools the passes of one kind's calibrations. */
export const pipeEstimatesOf = (runs: ReadonlyArray<KindCalibration>): PipeEstimates =>
  estimatesOf(
    runs.flatMap((r) => r.passes),
    runs.map((r) => r.streams)
  )

const estimatesOf = (passes: ReadonlyArray<PassEstimate>, streams: ReadonlyArray<number>): PipeEstimates => {
  const pipe = (f: (p: PassEstimate) => Ends): PipeSpread => ({
    sendingEnd: spreadOf(passes.map((p) => f(p).sendingEnd)),
    receivingEnd: spreadOf(passes.map((p) => f(p).receivingEnd)),
    perEnd: spreadOf(passes.map((p) => (f(p).sendingEnd + f(p).receivingEnd) / 2))
  })
  const pair = (f: (p: PassEstimate) => Ends): PairSpread => pairSpreadOf(passes.map(f))
  return {
    streams: [...new Set(streams)],
    passes: passes.length,
    producer: spreadOf(passes.map((p) => p.producer)),
    marginal: pipe((p) => p.marginal),
    averageAtK: pipe((p) => p.averageAtK),
    firstPipe: pipe((p) => p.firstPipe),
    pairIdle: pair((p) => p.pairIdle),
    pairWithTraffic: pair((p) => p.pairWithTraffic)
  }
}

/** Calibrates one kind on two fresh Workers (closed before it returns). */
export const calibrateKind = async (
  harness: FanoutHarness,
  kind: FanoutKind,
  options: CalibrationOptions & { readonly withFixed?: boolean }
): Promise<KindCalibration> => {
  const windowMs = options.windowMs ?? 4000
  const settleMs = options.settleMs ?? 700
  const withFixed = options.withFixed === true
  const k = options.streams?.[kind] ?? 16
  const roundTrips = options.roundTrips ?? 2
  if (!Number.isInteger(k) || k < 3) throw new TypeError(`streams must be an integer >= 3, got ${k}`)
  if (!Number.isInteger(roundTrips) || roundTrips < 1)
    throw new TypeError(`roundTrips must be an integer >= 1, got ${roundTrips}`)
  const half = Math.round(k / 2)
  const streams = Array.from({ length: k }, (_, i) => streamOf(kind, i))
  const first = streams[0]!
  const consumerCount = options.consumers?.[kind] ?? (kind === "video" ? 200 : 400)
  const transportCount = options.transports ?? 300
  const settings = { logLevel: "warn", rtcMinPort: options.ports.min, rtcMaxPort: options.ports.max } as const
  const averageBefore = loadavg().map(r2)
  const workers: Array<types.Worker> = []
  const threads: Array<MediaThread> = []
  const windows: Array<CalibrationWindow> = []
  try {
    workers.push(await createWorker(settings), await createWorker(settings))
    const [a, b] = workers as [types.Worker, types.Worker]
    const mediaCodecs = [opusCodec, vp8Codec]
    const routerA = await a.createRouter({ mediaCodecs })
    const routerB = await b.createRouter({ mediaCodecs })
    const producers: Array<types.Producer> = []
    for (const [i, stream] of streams.entries()) {
      const thread = await openMediaThread()
      threads.push(thread)
      const ingress = await routerA.createPlainTransport({ listenInfo, rtcpMux: true, comedia: true })
      producers.push(await ingress.produce({ kind, rtpParameters: stream.rtpParameters }))
      await thread.defineStream(`calibrate-${kind}-${i}`, stream, {
        address: ingress.tuple.localAddress,
        port: ingress.tuple.localPort
      })
    }

    // The states: streams on or off, the pair there or not, how many producers piped.
    let streaming = false
    let pair: types.Transport | undefined
    let capturing = false
    let pairsCreated = 0
    routerA.observer.on("newtransport", (t) => {
      if (!capturing) return
      pair = t
      pairsCreated++
    })
    const pipeConsumers: Array<types.Consumer | undefined> = Array.from({ length: k }, () => undefined)
    const pipeProducers: Array<types.Producer | undefined> = Array.from({ length: k }, () => undefined)
    const pipe = async (i: number) => {
      capturing = pair === undefined
      try {
        const made = await routerA.pipeToRouter({ producerId: producers[i]!.id, router: routerB })
        pipeConsumers[i] = made.pipeConsumer
        pipeProducers[i] = made.pipeProducer
      } finally {
        capturing = false
      }
    }
    // Closing the pipe consumer closes its pipe producer on B (pipeToRouter links them).
    const unpipe = (i: number) => {
      pipeConsumers[i]?.close()
      pipeConsumers[i] = undefined
      pipeProducers[i] = undefined
    }
    type PipeState = "stopped" | "streaming" | "pairIdle" | "piped1" | "pipedHalf" | "pipedAll"
    const plan: Record<PipeState, readonly [boolean, boolean, number]> = {
      stopped: [false, false, 0],
      streaming: [true, false, 0],
      pairIdle: [true, true, 0],
      piped1: [true, true, 1],
      pipedHalf: [true, true, half],
      pipedAll: [true, true, k]
    }
    const goTo = async (state: PipeState) => {
      const [stream, withPair, n] = plan[state]
      if (stream && !streaming) {
        // Phases spread over one frame interval, as independent senders.
        for (const [i, thread] of threads.entries()) {
          await thread.start(`calibrate-${kind}-${i}`)
          await sleep(first.frameIntervalMs / k)
        }
        streaming = true
      } else if (!stream && streaming) {
        await Promise.all(threads.map((t) => t.stop()))
        streaming = false
      }
      for (let i = k - 1; i >= n; i--) if (pipeConsumers[i] !== undefined) unpipe(i)
      for (let i = 0; i < n; i++) if (pipeConsumers[i] === undefined) await pipe(i)
      if (withPair && pair === undefined) {
        await pipe(0)
        unpipe(0)
      }
      if (!withPair && pair !== undefined) {
        pair.close() // closes B's end too
        pair = undefined
      }
      await sleep(settleMs)
    }

    const measure = async (
      state: CalibrationState,
      phase: CalibrationWindow["phase"]
    ): Promise<CalibrationWindow> => {
      const piped = pipeProducers.filter((p): p is types.Producer => p !== undefined)
      const loadAverage = r2(loadavg()[0] ?? Number.NaN)
      const s0 = performance.now()
      const [in0, out0] = [await packetsOf(producers), await packetsOf(piped)]
      const m0 = machineJiffies()
      const self0 = process.cpuUsage()
      const c0 = await Promise.all([cpuMs(a), cpuMs(b)])
      const t0 = performance.now()
      await sleep(windowMs)
      const c1 = await Promise.all([cpuMs(a), cpuMs(b)])
      const self1 = process.cpuUsage(self0)
      const m1 = machineJiffies()
      const elapsed = performance.now() - t0
      const [in1, out1] = [await packetsOf(producers), await packetsOf(piped)]
      const statsSeconds = (performance.now() - s0) / 1000
      const pct = (ms: number) => (ms / elapsed) * 100
      const sendingEnd = pct(c1[0]! - c0[0]!)
      const receivingEnd = pct(c1[1]! - c0[1]!)
      const harnessCpu = pct((self1.user + self1.system) / 1000)
      const share = (f: (j: { busy: number; softirq: number; total: number }) => number) =>
        m0 === undefined || m1 === undefined || m1.total === m0.total
          ? undefined
          : ((f(m1) - f(m0)) / (m1.total - m0.total)) * availableParallelism() * 100
      const machine = share((j) => j.busy)
      const softirq = share((j) => j.softirq)
      const window: CalibrationWindow = {
        kind,
        state,
        phase,
        piped: piped.length,
        pipeTransports: pair === undefined || pair.closed ? 0 : 1,
        sendingEnd: r4(sendingEnd),
        receivingEnd: r4(receivingEnd),
        harness: r2(harnessCpu),
        machine: machine === undefined ? undefined : r2(machine),
        softirq: softirq === undefined ? undefined : r2(softirq),
        foreign:
          machine === undefined
            ? undefined
            : r2(Math.max(0, machine - (softirq ?? 0) - sendingEnd - receivingEnd - harnessCpu)),
        loadAverage,
        ingressPacketsPerSecond: Math.round((in1 - in0) / statsSeconds),
        pipedPacketsPerSecond: Math.round((out1 - out0) / statsSeconds)
      }
      windows.push(window)
      options.onWindow?.(window)
      return window
    }

    // The passes: up and down over the states, `roundTrips` times.
    const up = ["stopped", "streaming", "pairIdle", "piped1", "pipedHalf", "pipedAll"] as const
    const sequence: Array<(typeof up)[number]> = [up[0]]
    for (let r = 0; r < roundTrips; r++) sequence.push(...up.slice(1), ...[...up].reverse().slice(1))
    const passWindows: Array<CalibrationWindow> = []
    for (const state of sequence) {
      await goTo(state)
      passWindows.push(await measure(state, "pipes"))
    }
    const passes: Array<PassEstimate> = []
    for (let p = 0; p < 2 * roundTrips; p++) {
      const ws = passWindows.slice(p * (up.length - 1), p * (up.length - 1) + up.length)
      passes.push(passEstimate((state) => ws.find((w) => w.state === state)!, k, half))
    }

    // Consumers (and once, empty transports), between two windows without them.
    await goTo("streaming")
    const before = await measure("streaming", "consumers")
    const sinks = harness.sinks.endpoints
    const caps = consumerRtpCapabilities(kind)
    const extra: Array<types.Transport> = []
    for (let i = 0; i < consumerCount; i++) {
      const t = await routerA.createPlainTransport({ listenInfo, rtcpMux: true, comedia: false })
      extra.push(t)
      const to = sinks[i % sinks.length]!
      await t.connect({ ip: to.address, port: to.port })
      await t.consume({ producerId: producers[0]!.id, rtpCapabilities: caps })
    }
    if (options.withFixed === true) {
      for (let i = 0; i < transportCount; i++) {
        extra.push(await routerB.createPlainTransport({ listenInfo, rtcpMux: true, comedia: false }))
      }
    }
    // Past a keyframe, so every video consumer forwards.
    await sleep(kind === "video" ? 2500 : settleMs)
    const during = await measure("consumers", "consumers")
    for (const t of extra) t.close()
    await sleep(settleMs)
    const after = await measure("streaming", "consumers")
    await goTo("stopped")

    // Idle pairs, with and without SCTP, streams stopped.
    let sctp: SctpEstimates | undefined
    if (withFixed) {
      const routersB = [routerB]
      for (let i = 1; i < 4; i++) routersB.push(await b.createRouter({ mediaCodecs }))
      let open: Array<types.Transport> = []
      const pairTo = async (to: types.Router, enableSctp: boolean) => {
        const [x, y] = await Promise.all([
          routerA.createPipeTransport({ listenInfo, enableSctp }),
          to.createPipeTransport({ listenInfo, enableSctp })
        ])
        open.push(x, y)
        await x.connect({ ip: y.tuple.localAddress, port: y.tuple.localPort })
        await y.connect({ ip: x.tuple.localAddress, port: x.tuple.localPort })
      }
      const pairWindows: Array<CalibrationWindow> = []
      const states = ["stopped", "pairNoSctp", "pairSctp", "pairsSctp4"] as const
      for (const state of [...states, ...[...states].reverse().slice(1)]) {
        for (const t of open) t.close()
        open = []
        if (state === "pairNoSctp") await pairTo(routerB, false)
        if (state === "pairSctp") await pairTo(routerB, true)
        if (state === "pairsSctp4") for (const to of routersB) await pairTo(to, true)
        await sleep(settleMs)
        pairWindows.push(await measure(state, "pairs"))
      }
      for (const t of open) t.close()
      const sctpPasses = [pairWindows.slice(0, 4), pairWindows.slice(3)].map((ws): SctpPassEstimate => {
        const at = (state: CalibrationState) => ws.find((w) => w.state === state)!
        const ends = (f: (end: "sendingEnd" | "receivingEnd") => number): Ends => ({
          sendingEnd: r4(f("sendingEnd")),
          receivingEnd: r4(f("receivingEnd"))
        })
        return {
          pairWithoutSctp: ends((end) => at("pairNoSctp")[end] - at("stopped")[end]),
          firstPairWithSctp: ends((end) => at("pairSctp")[end] - at("stopped")[end]),
          furtherPairWithSctp: ends((end) => (at("pairsSctp4")[end] - at("pairSctp")[end]) / 3)
        }
      })
      sctp = {
        pairWithoutSctp: pairSpreadOf(sctpPasses.map((p) => p.pairWithoutSctp)),
        firstPairWithSctp: pairSpreadOf(sctpPasses.map((p) => p.firstPairWithSctp)),
        furtherPairWithSctp: pairSpreadOf(sctpPasses.map((p) => p.furtherPairWithSctp)),
        passes: sctpPasses
      }
    }

    const est = estimatesOf(passes, [k])
    return {
      kind,
      stream: first.nominal,
      streams: k,
      windowMs,
      idle: r4(median(passWindows.filter((w) => w.state === "stopped").map((w) => w.sendingEnd))),
      producer: est.producer.median,
      pipeSendingEnd: est.marginal.sendingEnd.median,
      pipeReceivingEnd: est.marginal.receivingEnd.median,
      pipe: est.marginal.perEnd.median,
      consumer: r4((during.sendingEnd - (before.sendingEnd + after.sendingEnd) / 2) / consumerCount),
      consumersMeasured: consumerCount,
      ...(withFixed
        ? {
            transport: r4(
              (during.receivingEnd - (before.receivingEnd + after.receivingEnd) / 2) / transportCount
            ),
            transportsMeasured: transportCount
          }
        : {}),
      ...(sctp === undefined ? {} : { sctp }),
      pairsCreated,
      shortfalls: shortfallsOf(windows, k, first.nominal.packetsPerSecond),
      workerPids: workers.map((w) => w.pid),
      estimates: est,
      passes,
      windows,
      load: {
        averageBefore,
        averageAfter: loadavg().map(r2),
        machineCpuMedian: r2(median(windows.map((w) => w.machine ?? Number.NaN))),
        foreignCpuMedian: r2(median(windows.map((w) => w.foreign ?? Number.NaN))),
        harnessCpuMedian: r2(median(windows.map((w) => w.harness)))
      }
    }
  } finally {
    await Promise.all(threads.map((t) => t.close()))
    await Promise.all(workers.map(closeWorker))
  }
}

/** Calibrates every kind asked for, one after the other (transports and idle pairs with the first). */
export const calibrate = async (
  harness: FanoutHarness,
  options: CalibrationOptions
): Promise<ReadonlyArray<KindCalibration>> => {
  const out: Array<KindCalibration> = []
  for (const [i, kind] of (options.kinds ?? ["video", "audio"]).entries()) {
    out.push(await calibrateKind(harness, kind, { ...options, withFixed: i === 0 }))
  }
  return out
}

/** Rounds a cost to 3 significant digits, at least 0.001. */
const costOf = (x: number): number => {
  if (!Number.isFinite(x) || x <= 0) return 0.001
  const digits = Math.max(0, 2 - Math.floor(Math.log10(x)))
  return Math.max(0.001, Number(x.toFixed(Math.min(digits, 6))))
}

/**
 * The cost-model options from one or more calibrations: `{ transport, audio: { producer,
 * consumer, pipe }, video: { ... } }`. `producer` and `pipe` (the marginal cost per piped
 * producer, per end) are medians over every pass of the kind; `consumer` and `transport`
 * medians over the calibrations.
 */
export const costsFrom = (runs: ReadonlyArray<KindCalibration>): CalibratedCosts => {
  const of = (kind: FanoutKind) => {
    const mine = runs.filter((r) => r.kind === kind)
    const est = pipeEstimatesOf(mine)
    return {
      producer: costOf(est.producer.median),
      consumer: costOf(median(mine.map((r) => r.consumer))),
      pipe: costOf(est.marginal.perEnd.median)
    }
  }
  const transports = runs.flatMap((r) => (r.transport === undefined ? [] : [r.transport]))
  return { transport: costOf(median(transports)), audio: of("audio"), video: of("video") }
}

/**
 * Everything a report prints: the cost-model options, and per kind the pipe estimates
 * (marginal, average at K, first pipe) and the PipeTransport pair's fixed cost, with their
 * spread over the passes, and the machine's load.
 */
export const calibrationSummary = (runs: ReadonlyArray<KindCalibration>) => {
  const kinds = (["video", "audio"] as const).filter((kind) => runs.some((r) => r.kind === kind))
  const perKind = Object.fromEntries(
    kinds.map((kind) => [kind, pipeEstimatesOf(runs.filter((r) => r.kind === kind))] as const)
  ) as Partial<Record<FanoutKind, PipeEstimates>>
  return {
    costs: costsFrom(runs),
    unit: "CPU % of one Worker (one core) per object",
    pipes: Object.fromEntries(
      kinds.map((kind) => {
        const e = perKind[kind]!
        return [
          kind,
          {
            streams: e.streams,
            passes: e.passes,
            marginal: e.marginal,
            averageAtK: e.averageAtK,
            firstPipe: e.firstPipe
          }
        ]
      })
    ),
    pipeTransportPair: {
      ...Object.fromEntries(
        kinds.map((kind) => {
          const e = perKind[kind]!
          return [kind, { idle: e.pairIdle, withTraffic: e.pairWithTraffic }]
        })
      ),
      /** Idle pairs, streams stopped: the cost is SCTP's (usrsctp's 10 ms timer, once per Worker). */
      sctp: sctpOf(runs)
    },
    /** Windows that received less than they were sent: the figures from them are too low. */
    shortfalls: runs.flatMap((r) => r.shortfalls.map((x) => ({ kind: r.kind, ...x }))),
    load: {
      averageBefore: runs[0]?.load.averageBefore,
      averageAfter: runs[runs.length - 1]?.load.averageAfter,
      machineCpuMedian: r2(median(runs.flatMap((r) => r.windows.map((w) => w.machine ?? Number.NaN)))),
      foreignCpuMedian: r2(median(runs.flatMap((r) => r.windows.map((w) => w.foreign ?? Number.NaN)))),
      loadAverageMedian: r2(median(runs.flatMap((r) => r.windows.map((w) => w.loadAverage))))
    }
  }
}

/** Idle pairs with and without SCTP, pooled over the calibrations that measured them. */
const sctpOf = (runs: ReadonlyArray<KindCalibration>) => {
  const passes = runs.flatMap((r) => r.sctp?.passes ?? [])
  if (passes.length === 0) return undefined
  return {
    passes: passes.length,
    pairWithoutSctp: pairSpreadOf(passes.map((p) => p.pairWithoutSctp)),
    firstPairWithSctp: pairSpreadOf(passes.map((p) => p.firstPairWithSctp)),
    furtherPairWithSctp: pairSpreadOf(passes.map((p) => p.furtherPairWithSctp))
  }
}

/** `median [min, max]`. */
export const spreadText = (s: Spread, digits = 3) =>
  `${s.median.toFixed(digits)} [${s.min.toFixed(digits)}, ${s.max.toFixed(digits)}]`

/** Human-readable lines of a summary, per kind. */
export const summaryLines = (runs: ReadonlyArray<KindCalibration>): Array<string> => {
  const lines: Array<string> = []
  for (const kind of ["video", "audio"] as const) {
    const mine = runs.filter((r) => r.kind === kind)
    if (mine.length === 0) continue
    const e = pipeEstimatesOf(mine)
    const s = mine[0]!.stream
    lines.push(
      `${kind}: K = ${e.streams.join("/")} streams of ${s.packetsPerSecond} packets/s, ${e.passes} passes; median [min, max] over the passes, CPU % of one Worker`,
      `  producer                                 ${spreadText(e.producer)}`,
      `  consumer                                 ${mine.map((r) => r.consumer.toFixed(3)).join(", ")}`,
      `  pipe, marginal per piped producer: sending end ${spreadText(e.marginal.sendingEnd)}, receiving end ${spreadText(e.marginal.receivingEnd)}, per end ${spreadText(e.marginal.perEnd)}`,
      `  pipe, (K piped - none) / K, pair included: per end ${spreadText(e.averageAtK.perEnd)}`,
      `  first pipe over a new pair (one-pipe figure): sending end ${spreadText(e.firstPipe.sendingEnd)}, receiving end ${spreadText(e.firstPipe.receivingEnd)}`,
      `  PipeTransport pair, idle:         sending end ${spreadText(e.pairIdle.sendingEnd)}, receiving end ${spreadText(e.pairIdle.receivingEnd)}, both ${spreadText(e.pairIdle.both)}`,
      `  PipeTransport pair, with traffic: sending end ${spreadText(e.pairWithTraffic.sendingEnd)}, receiving end ${spreadText(e.pairWithTraffic.receivingEnd)}, both ${spreadText(e.pairWithTraffic.both)}`
    )
    for (const r of mine) {
      if (r.transport !== undefined) lines.push(`  transport ${r.transport.toFixed(4)}`)
      for (const x of r.shortfalls) {
        lines.push(
          `  warning: ${x.phase} ${x.state} window, ${x.at} ${x.receivedPacketsPerSecond} of ${x.expectedPacketsPerSecond} packets/s (the machine starved a sender or a Worker): the figures from it are too low`
        )
      }
    }
  }
  const sctp = sctpOf(runs)
  if (sctp !== undefined) {
    const both = (x: PairSpread) =>
      `sending end ${spreadText(x.sendingEnd)}, receiving end ${spreadText(x.receivingEnd)}`
    lines.push(
      `idle PipeTransport pairs, streams stopped (${sctp.passes} passes):`,
      `  a pair without SCTP:                 ${both(sctp.pairWithoutSctp)}`,
      `  the first pair with SCTP:            ${both(sctp.firstPairWithSctp)}`,
      `  each further pair with SCTP:         ${both(sctp.furtherPairWithSctp)}`
    )
  }
  return lines
}

/** One line per window (progress). */
export const windowLine = (w: CalibrationWindow): string =>
  `  ${w.kind} ${w.state.padEnd(9)} piped ${String(w.piped).padStart(2)} A ${w.sendingEnd.toFixed(2).padStart(6)} % B ${w.receivingEnd.toFixed(2).padStart(6)} %` +
  ` | in ${w.ingressPacketsPerSecond} pkt/s piped ${w.pipedPacketsPerSecond} pkt/s | harness ${w.harness.toFixed(0)} %` +
  ` machine ${w.machine?.toFixed(0) ?? "?"} % others ${w.foreign?.toFixed(0) ?? "?"} % load ${w.loadAverage}`
