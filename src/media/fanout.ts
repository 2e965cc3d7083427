/**
 * The fan-out harness: one producer fed with real RTP, N consumers on PlainTransports,
 * in three set-ups on this machine, and measurement windows that tell whether the audience
 * is served.
 *
 * Set-ups:
 * - `raw`: raw mediasoup, one Worker, one Router;
 * - `spread`: raw mediasoup, one Worker and Router per CPU, consumers spread round-robin over
 *   the Routers, the producer piped with `pipeToRouter` to each Router when its first consumer
 *   comes (what mediasoup's demo and most apps do);
 * - `mafalda`: one Mafalda Router (`createMafalda` with default options), the producer and
 *   every consumer through its `createPlainTransport()` and `consume()` only.
 *
 * The harness must not compete with the Workers it measures, so it reads only a **sample**
 * of consumers (16 by default, an equal quota per Worker the set-up may use, taken as
 * consumers land there) and sends every other consumer to **sink** sockets nobody reads
 * (see `fanoutThreads.ts`). Completeness for every consumer comes from mediasoup's own
 * counters (`getStats()` of the producer and of each consumer).
 *
 * A window ({@link measureWindow}): with the stream stopped, every counter is read; the
 * stream restarts with a keyframe for `windowMs`, stops after a whole frame, and after
 * `drainMs` every counter is read again. So the deltas are exact: each consumer must have
 * sent every packet the harness sent in the window. Worker CPU (`getResourceUsage`), the
 * harness's own CPU (`process.cpuUsage`, all its threads) and the whole machine's
 * (`/proc/stat`) are taken over the same window.
 *
 * @module
 */
import { readFileSync } from "node:fs"
import { availableParallelism } from "node:os"
import { performance } from "node:perf_hooks"
import type { types } from "mediasoup"
import { createWorker } from "mediasoup"
import type { TransportId } from "../core/Ids.js"
import { lookup, workerOfRouter } from "../core/Snapshot.js"
import { createMafalda, type MafaldaInstance } from "../promise.js"
import type { MafaldaOptionsInput } from "../router/MafaldaOptions.js"
import { type FanoutKind, type FanoutStream, fanoutStream } from "./fanoutStreams.js"
import { type MediaThread, openMediaThread, openSinks, type Sinks, type WindowSent } from "./fanoutThreads.js"
import type { UdpEndpoint } from "./rtp.js"
import { opusCodec, vp8Codec } from "./worker.js"

export type SetupName = "raw" | "spread" | "mafalda"
export const SETUP_NAMES: ReadonlyArray<SetupName> = ["raw", "spread", "mafalda"]

const listenInfo: types.TransportListenInfo = { protocol: "udp", ip: "127.0.0.1" }

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

// ---------------------------------------------------------------------------
// Harness: the media thread and the sinks, shared by the set-ups of one run
// ---------------------------------------------------------------------------

export interface FanoutHarness {
  readonly media: MediaThread
  readonly sinks: Sinks
  readonly close: () => Promise<void>
}

/** Starts the media thread and binds `sinks` sink sockets (default 8). */
export const openHarness = async (options: { readonly sinks?: number } = {}): Promise<FanoutHarness> => {
  const media = await openMediaThread()
  const sinks = await openSinks(options.sinks ?? 8).catch(async (error) => {
    await media.close()
    throw error
  })
  return {
    media,
    sinks,
    close: async () => {
      await media.close()
      await sinks.close()
    }
  }
}

// ---------------------------------------------------------------------------
// Set-ups
// ---------------------------------------------------------------------------

export interface FanoutConsumer {
  readonly consumer: types.Consumer
  readonly transport: types.Transport
  /** Key of the Worker it is on (`w0`, `w1`, ... or the Mafalda Worker id). */
  readonly worker: string
  /** The sample socket it sends to, or `undefined` for a sink. */
  readonly sample: UdpEndpoint | undefined
}

export interface FanoutSetup {
  readonly name: SetupName
  readonly kind: FanoutKind
  /** Name of its stream in the media thread. */
  readonly streamName: string
  readonly stream: FanoutStream
  readonly producer: types.Producer
  readonly consumers: ReadonlyArray<FanoutConsumer>
  /** Workers it may use (for the sample quota). */
  readonly maxWorkers: number
  /** Its Workers now, by key. */
  readonly workers: () => Promise<ReadonlyArray<{ readonly key: string; readonly worker: types.Worker }>>
  /** Pipes it has made (PipeTransport pairs carrying the producer). */
  readonly pipes: () => Promise<number>
  /** Adds consumers until there are `total`; stops at the first one refused, and says why. */
  readonly grow: (total: number, concurrency?: number) => Promise<{ readonly refused?: string }>
  readonly close: () => Promise<void>
}

export interface SetupOptions {
  readonly name: SetupName
  readonly kind: FanoutKind
  /** RTC port range of its Workers. */
  readonly ports: { readonly min: number; readonly max: number }
  /** Consumers read by the harness (default 16). */
  readonly sampleSize?: number | undefined
  /** Workers for `spread` (default: the CPU count). */
  readonly workers?: number | undefined
  /** Extra Mafalda options (default none: the library's defaults). */
  readonly mafaldaOptions?: MafaldaOptionsInput | undefined
  /** Pacing rate over the stream's bitrate (default 2.5; 0: each frame in one burst). */
  readonly pacing?: number | undefined
}

const mediaCodecs = [opusCodec, vp8Codec]

/** How one consumer's transport is made: the transport, and the key of its Worker. */
type PlaceTransport = (index: number) => Promise<{ transport: types.Transport; worker: string }>

interface SetupCore {
  readonly producer: types.Producer
  readonly ingress: types.PlainTransport
  readonly maxWorkers: number
  readonly place: PlaceTransport
  readonly workers: FanoutSetup["workers"]
  readonly pipes: FanoutSetup["pipes"]
  readonly close: () => Promise<void>
}

const produce = async (transport: types.Transport, stream: FanoutStream) =>
  transport.produce({ kind: stream.kind, rtpParameters: stream.rtpParameters })

const closeWorkers = async (workers: ReadonlyArray<types.Worker>) => {
  await Promise.all(
    workers.map(
      (w) =>
        new Promise<void>((resolve) => {
          if (w.subprocessClosed) return resolve()
          const timer = setTimeout(() => {
            try {
              process.kill(w.pid, "SIGKILL")
            } catch {
              // gone
            }
            resolve()
          }, 5000)
          w.once("subprocessclose", () => {
            clearTimeout(timer)
            resolve()
          })
          w.close()
        })
    )
  )
}

/** `raw` (one Worker) or `spread` (`count` Workers, round-robin, hand-written pipes). */
const rawCore = async (options: SetupOptions, stream: FanoutStream, count: number): Promise<SetupCore> => {
  const workers: Array<types.Worker> = []
  try {
    for (let i = 0; i < count; i++) {
      workers.push(
        await createWorker({ logLevel: "warn", rtcMinPort: options.ports.min, rtcMaxPort: options.ports.max })
      )
    }
    const routers = await Promise.all(workers.map((w) => w.createRouter({ mediaCodecs })))
    const origin = routers[0]!
    const ingress = await origin.createPlainTransport({ listenInfo, rtcpMux: true, comedia: true })
    const producer = await produce(ingress, stream)
    const piped = new Map<number, Promise<unknown>>([[0, Promise.resolve()]])
    return {
      producer,
      ingress,
      maxWorkers: count,
      place: async (index) => {
        const r = index % count
        let pipe = piped.get(r)
        if (pipe === undefined) {
          pipe = origin.pipeToRouter({ producerId: producer.id, router: routers[r]! })
          piped.set(r, pipe)
        }
        await pipe
        const transport = await routers[r]!.createPlainTransport({
          listenInfo,
          rtcpMux: true,
          comedia: false
        })
        return { transport, worker: `w${r}` }
      },
      workers: async () => workers.map((worker, i) => ({ key: `w${i}`, worker })),
      pipes: async () => piped.size - 1,
      close: () => closeWorkers(workers)
    }
  } catch (error) {
    await closeWorkers(workers)
    throw error
  }
}

const mafaldaCore = async (options: SetupOptions, stream: FanoutStream): Promise<SetupCore> => {
  const mafalda: MafaldaInstance = await createMafalda({
    ...options.mafaldaOptions,
    workerSettings: { rtcMinPort: options.ports.min, rtcMaxPort: options.ports.max }
  })
  try {
    const router = await mafalda.createRouter({ mediaCodecs })
    const ingress = await router.createPlainTransport({ listenInfo, rtcpMux: true, comedia: true })
    const producer = await produce(ingress, stream)
    const workerOf = (transport: types.Transport): string => {
      const snapshot = mafalda.snapshot()
      const routerId = lookup(snapshot.transports, transport.id as TransportId)?.router
      return (routerId === undefined ? undefined : workerOfRouter(snapshot, routerId)?.id) ?? "?"
    }
    return {
      producer,
      ingress,
      maxWorkers:
        options.mafaldaOptions?.maxWorkers ?? options.mafaldaOptions?.cpus ?? availableParallelism(),
      place: async () => {
        const transport = await router.createPlainTransport({ listenInfo, rtcpMux: true, comedia: false })
        return { transport, worker: workerOf(transport) }
      },
      workers: async () => {
        const [status, objects] = await Promise.all([mafalda.status(), mafalda.workers()])
        return status.workers.flatMap((w) => {
          const worker = objects.find((o) => o.pid === w.pid)
          return worker === undefined ? [] : [{ key: w.id, worker }]
        })
      },
      pipes: async () => (await mafalda.status()).pipes.length,
      close: () => mafalda.close()
    }
  } catch (error) {
    await mafalda.close()
    throw error
  }
}

/** Runs `f` over `0 .. count-1`, at most `concurrency` at a time; stops starting new ones after a failure. */
const forEachConcurrent = async (
  count: number,
  concurrency: number,
  f: (i: number) => Promise<boolean>
): Promise<void> => {
  let next = 0
  let stopped = false
  const lane = async () => {
    while (!stopped && next < count) {
      const i = next++
      if (!(await f(i))) stopped = true
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane))
}

/** Builds a set-up: its Workers, Router(s), ingress transport and producer, and its stream in the media thread. */
export const createSetup = async (harness: FanoutHarness, options: SetupOptions): Promise<FanoutSetup> => {
  const stream = fanoutStream(options.kind)
  const core =
    options.name === "mafalda"
      ? await mafaldaCore(options, stream)
      : await rawCore(
          options,
          stream,
          options.name === "raw" ? 1 : (options.workers ?? availableParallelism())
        )
  try {
    const streamName = `${options.name}-${options.kind}-${core.producer.id}`
    await harness.media.defineStream(
      streamName,
      stream,
      { address: core.ingress.tuple.localAddress, port: core.ingress.tuple.localPort },
      options.pacing
    )
    const sampleSize = options.sampleSize ?? 16
    const samples = [...(await harness.media.openSamples(sampleSize))]
    const quota = Math.ceil(sampleSize / core.maxWorkers)
    const sampledOn = new Map<string, number>()
    const consumers: Array<FanoutConsumer> = []
    let sinkTurn = 0
    const target = (worker: string): UdpEndpoint | undefined => {
      const taken = sampledOn.get(worker) ?? 0
      if (taken >= quota || samples.length === 0) return undefined
      sampledOn.set(worker, taken + 1)
      return samples.shift()
    }
    let started = 0
    return {
      name: options.name,
      kind: options.kind,
      streamName,
      stream,
      producer: core.producer,
      consumers,
      maxWorkers: core.maxWorkers,
      workers: core.workers,
      pipes: core.pipes,
      grow: async (total, concurrency = 4) => {
        let refused: string | undefined
        const wanted = total - started
        await forEachConcurrent(wanted, concurrency, async () => {
          const index = started++
          let placed: Awaited<ReturnType<PlaceTransport>>
          try {
            placed = await core.place(index)
          } catch (error) {
            started--
            refused = error instanceof Error ? error.message : String(error)
            return false
          }
          const sample = target(placed.worker)
          const sink = harness.sinks.endpoints[sinkTurn++ % harness.sinks.endpoints.length]!
          const to = sample ?? sink
          await placed.transport.connect({ ip: to.address, port: to.port })
          const consumer = await placed.transport.consume({
            producerId: core.producer.id,
            rtpCapabilities: consumerRtpCapabilities(stream.kind)
          })
          consumers.push({ consumer, transport: placed.transport, worker: placed.worker, sample })
          return true
        })
        return refused === undefined ? {} : { refused }
      },
      close: core.close
    }
  } catch (error) {
    await core.close()
    throw error
  }
}

/**
 * What a consumer says it can receive: the stream's codec with NACK and PLI, as a browser
 * would (so video consumers keep a retransmission buffer, as they do for WebRTC clients).
 */
export const consumerRtpCapabilities = (kind: FanoutKind): types.RtpCapabilities => ({
  codecs:
    kind === "video"
      ? [
          {
            kind: "video",
            mimeType: "video/VP8",
            preferredPayloadType: 96,
            clockRate: 90000,
            rtcpFeedback: [
              { type: "nack" },
              { type: "nack", parameter: "pli" },
              { type: "ccm", parameter: "fir" }
            ]
          }
        ]
      : [{ kind: "audio", mimeType: "audio/opus", preferredPayloadType: 111, clockRate: 48000, channels: 2 }]
})

// ---------------------------------------------------------------------------
// Measurement
// ---------------------------------------------------------------------------

const outboundCount = async (consumer: types.Consumer): Promise<number> => {
  const stats = await consumer.getStats()
  return stats.find((s) => s.type === "outbound-rtp")?.packetCount ?? 0
}

const inboundCount = async (producer: types.Producer): Promise<number> =>
  (await producer.getStats()).reduce((n, s) => n + (s.type === "inbound-rtp" ? s.packetCount : 0), 0)

/** Packets each consumer has sent, and what the producer has received (mediasoup's counters). */
const readCounters = async (setup: FanoutSetup) => {
  const counts = new Array<number>(setup.consumers.length)
  const chunk = 128
  for (let i = 0; i < setup.consumers.length; i += chunk) {
    const part = setup.consumers.slice(i, i + chunk)
    const got = await Promise.all(part.map((c) => outboundCount(c.consumer)))
    for (let j = 0; j < got.length; j++) counts[i + j] = got[j]!
  }
  return { consumers: counts, producer: await inboundCount(setup.producer) }
}

const cpuMsOf = async (worker: types.Worker): Promise<number> => {
  const u = await worker.getResourceUsage()
  return u.ru_utime + u.ru_stime
}

/** Busy, softirq and total jiffies of the whole machine (Linux), or undefined. */
export const machineJiffies = (): { busy: number; softirq: number; total: number } | undefined => {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n")[0] ?? ""
    const v = line.trim().split(/\s+/).slice(1).map(Number)
    // user nice system idle iowait irq softirq steal guest guest_nice; guest time is in user.
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0)
    const idle = (v[3] ?? 0) + (v[4] ?? 0)
    return { busy: total - idle, softirq: v[6] ?? 0, total }
  } catch {
    return undefined
  }
}

const quantile = (sorted: ArrayLike<number>, q: number): number => {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!
}

const round = (x: number, digits = 2) => {
  const f = 10 ** digits
  return Math.round(x * f) / f
}

/** Thresholds of a served audience. */
export interface ServedCriteria {
  /** Largest loss, Worker-side and in the sample (default 0.01: 1 %). */
  readonly maxLoss?: number | undefined
  /** Largest p99 one-way delay of the sample, in ms (default 50). */
  readonly maxP99Ms?: number | undefined
}

export interface WindowOptions extends ServedCriteria {
  /** Length of the window (default 5000 ms). */
  readonly windowMs?: number | undefined
  /** Wait after the stream stops, before the counters are read (default 300 ms). */
  readonly drainMs?: number | undefined
  /** Workers of other set-ups alive meanwhile: their CPU is reported as `others`. */
  readonly otherWorkers?: ReadonlyArray<types.Worker> | undefined
  /**
   * On a shared machine: before the window starts (stream stopped), wait until other
   * processes used less than `maxForeign` % of a core over one second, for at most
   * `maxWaitMs` (default: no waiting).
   */
  readonly quiet?: { readonly maxForeign: number; readonly maxWaitMs: number } | undefined
}

/**
 * Waits until the machine's busy time less this process's and `workers`' stays under
 * `maxForeign` % of a core for one second, or `maxWaitMs` passed; returns the last such
 * figure and how long it waited.
 */
export const awaitQuiet = async (
  workers: ReadonlyArray<types.Worker>,
  maxForeign: number,
  maxWaitMs: number
): Promise<{ readonly foreign: number | undefined; readonly waitedMs: number }> => {
  const t0 = performance.now()
  for (;;) {
    const m0 = machineJiffies()
    const w0 = await Promise.all(workers.map(cpuMsOf))
    const self0 = process.cpuUsage()
    const s0 = performance.now()
    await sleep(1000)
    const self1 = process.cpuUsage(self0)
    const w1 = await Promise.all(workers.map(cpuMsOf))
    const m1 = machineJiffies()
    const elapsed = performance.now() - s0
    if (m0 === undefined || m1 === undefined || m1.total === m0.total) {
      return { foreign: undefined, waitedMs: round(performance.now() - t0) }
    }
    const machine = ((m1.busy - m0.busy) / (m1.total - m0.total)) * availableParallelism() * 100
    const ours =
      ((w1.reduce((a, b) => a + b, 0) - w0.reduce((a, b) => a + b, 0) + (self1.user + self1.system) / 1000) /
        elapsed) *
      100
    const foreign = round(Math.max(0, machine - ours))
    const waitedMs = round(performance.now() - t0)
    if (foreign < maxForeign || waitedMs >= maxWaitMs) return { foreign, waitedMs }
  }
}

export interface WindowResult {
  readonly setup: SetupName
  readonly kind: FanoutKind
  readonly consumers: number
  readonly pipes: number
  /** What the paced sender sent, and at what rate. */
  readonly sent: WindowSent & { readonly bitsPerSecond: number; readonly packetsPerSecond: number }
  /** Packets the producer received of those (mediasoup's counter). */
  readonly producerReceived: number
  /** Every consumer, from mediasoup's counters. */
  readonly workerSide: {
    /** 1 - (packets the consumers sent) / (consumers × packets sent). */
    readonly loss: number
    /** The largest loss of one consumer. */
    readonly worstLoss: number
    /** Consumers that did not send every packet. */
    readonly incomplete: number
  }
  /** The consumers the harness read. */
  readonly sample: {
    readonly consumers: number
    /** How many on each Worker. */
    readonly perWorker: Readonly<Record<string, number>>
    readonly loss: number
    readonly worstLoss: number
    /** Sampled consumers that received every packet. */
    readonly complete: number
    readonly duplicates: number
    readonly foreign: number
    readonly p50Ms: number
    readonly p99Ms: number
    readonly maxMs: number
    /** p99 of the packets of keyframes, and of the others (video; what breaks first). */
    readonly p99KeyFrameMs: number
    readonly p99OtherMs: number
    /** p99 per Worker the sample covers. */
    readonly p99PerWorkerMs: Readonly<Record<string, number>>
  }
  /** CPU over the window, in % of one core. */
  readonly cpu: {
    readonly workers: ReadonlyArray<{
      readonly key: string
      readonly pid: number
      readonly consumers: number
      readonly cpu: number
    }>
    /** The set-up's Workers together. */
    readonly total: number
    /** This process (every thread). */
    readonly harness: number
    /** Workers of other set-ups, idle meanwhile. */
    readonly others: number
    /** The whole machine, every process (undefined off Linux). */
    readonly machine: number | undefined
    /**
     * Softirq time of the whole machine: with IRQ time accounting, part of the loopback UDP
     * delivery of the Workers' and the harness's packets is counted here, not in a process.
     */
    readonly softirq: number | undefined
    /** The machine less all the above: other processes (other people's work on a shared machine). */
    readonly foreign: number | undefined
  }
  readonly windowMs: number
  /** Other processes' CPU (% of a core) in the second before the window, and how long it waited for it. */
  readonly quiet: { readonly foreign: number | undefined; readonly waitedMs: number } | undefined
  readonly served: boolean
  /** Why not served (empty when served). */
  readonly reasons: ReadonlyArray<string>
}

/**
 * One measurement window on a set-up whose stream is running or stopped (it is stopped on
 * return). See the module documentation.
 */
export const measureWindow = async (
  harness: FanoutHarness,
  setup: FanoutSetup,
  options: WindowOptions = {}
): Promise<WindowResult> => {
  const windowMs = options.windowMs ?? 5000
  const drainMs = options.drainMs ?? 300
  const maxLoss = options.maxLoss ?? 0.01
  const maxP99 = options.maxP99Ms ?? 50
  const others = options.otherWorkers ?? []
  await harness.media.stop()
  await sleep(drainMs)
  const before = await readCounters(setup)
  const workers = await setup.workers()
  const quiet =
    options.quiet === undefined
      ? undefined
      : await awaitQuiet(
          [...workers.map((w) => w.worker), ...others],
          options.quiet.maxForeign,
          options.quiet.maxWaitMs
        )
  const cpuOthers0 = await Promise.all(others.map(cpuMsOf))
  const cpu0 = await Promise.all(workers.map((w) => cpuMsOf(w.worker)))
  const self0 = process.cpuUsage()
  const machine0 = machineJiffies()
  const t0 = performance.now()
  await harness.media.start(setup.streamName, { window: true })
  await sleep(windowMs)
  const sentRaw = await harness.media.stop()
  await sleep(drainMs)
  const cpu1 = await Promise.all(workers.map((w) => cpuMsOf(w.worker)))
  const self1 = process.cpuUsage(self0)
  const machine1 = machineJiffies()
  const cpuOthers1 = await Promise.all(others.map(cpuMsOf))
  const elapsed = performance.now() - t0
  const after = await readCounters(setup)
  if (sentRaw === undefined) throw new Error("no window was open")
  const packets = sentRaw.packets

  // Worker side: every consumer.
  let delivered = 0
  let worstLoss = 0
  let incomplete = 0
  for (let i = 0; i < setup.consumers.length; i++) {
    const d = (after.consumers[i] ?? 0) - (before.consumers[i] ?? 0)
    delivered += Math.min(d, packets)
    const loss = packets === 0 ? 0 : 1 - Math.min(d, packets) / packets
    if (loss > worstLoss) worstLoss = loss
    if (d < packets) incomplete++
  }
  const n = setup.consumers.length
  const workerLoss = n === 0 || packets === 0 ? 0 : 1 - delivered / (n * packets)

  // Sample.
  const sampled = setup.consumers.filter((c) => c.sample !== undefined)
  const stats = await harness.media.sampleStats(sampled.map((c) => c.sample!.port))
  const perWorker: Record<string, number> = {}
  for (const c of sampled) perWorker[c.worker] = (perWorker[c.worker] ?? 0) + 1
  let received = 0
  let sampleWorst = 0
  let complete = 0
  let duplicates = 0
  let foreign = 0
  let delayCount = 0
  for (const s of stats) delayCount += s.delays.length
  const delays = new Float64Array(delayCount)
  const keyDelays: Array<number> = []
  const otherDelays: Array<number> = []
  const workerOfPort = new Map(sampled.map((c) => [c.sample!.port, c.worker]))
  const perWorkerDelays = new Map<string, Array<number>>()
  let k = 0
  for (const s of stats) {
    const worker = workerOfPort.get(s.port) ?? "?"
    const mine = perWorkerDelays.get(worker) ?? []
    perWorkerDelays.set(worker, mine)
    for (let i = 0; i < s.delays.length; i++) {
      const d = s.delays[i]!
      mine.push(d)
      if (s.keyFrame[i] === 1) keyDelays.push(d)
      else otherDelays.push(d)
    }
    received += Math.min(s.received, packets)
    const loss = packets === 0 ? 0 : 1 - Math.min(s.received, packets) / packets
    if (loss > sampleWorst) sampleWorst = loss
    if (s.received >= packets) complete++
    duplicates += s.duplicates
    foreign += s.foreign
    delays.set(s.delays, k)
    k += s.delays.length
  }
  delays.sort()
  const sampleLoss = stats.length === 0 || packets === 0 ? 0 : 1 - received / (stats.length * packets)
  const p99 = quantile(delays, 0.99)

  const pct = (ms: number) => round((ms / elapsed) * 100)
  const workerCpu = workers.map((w, i) => ({
    key: w.key,
    pid: w.worker.pid,
    consumers: setup.consumers.filter((c) => c.worker === w.key).length,
    cpu: pct(cpu1[i]! - cpu0[i]!)
  }))
  const total = round(workerCpu.reduce((a, w) => a + w.cpu, 0))
  const harnessCpu = pct((self1.user + self1.system) / 1000)
  const othersMs = cpuOthers1.reduce((a, b, i) => a + b - cpuOthers0[i]!, 0)
  const share = (f: (j: { busy: number; softirq: number; total: number }) => number) =>
    machine0 === undefined || machine1 === undefined || machine1.total === machine0.total
      ? undefined
      : round(
          ((f(machine1) - f(machine0)) / (machine1.total - machine0.total)) * availableParallelism() * 100
        )
  const machine = share((j) => j.busy)
  const softirq = share((j) => j.softirq)

  const reasons: Array<string> = []
  if (packets === 0) reasons.push("nothing sent")
  if (workerLoss >= maxLoss) reasons.push(`Worker-side loss ${round(workerLoss * 100)} %`)
  if (sampleLoss >= maxLoss) reasons.push(`sample loss ${round(sampleLoss * 100)} %`)
  if (!(p99 < maxP99)) reasons.push(`sample p99 ${round(p99)} ms`)
  // The stream time the frames sent cover.
  const seconds = (sentRaw.frames * setup.stream.frameIntervalMs) / 1000
  return {
    setup: setup.name,
    kind: setup.kind,
    consumers: n,
    pipes: await setup.pipes(),
    sent: {
      ...sentRaw,
      ms: round(sentRaw.ms),
      lagP99Ms: round(sentRaw.lagP99Ms),
      lagMaxMs: round(sentRaw.lagMaxMs),
      bitsPerSecond: Math.round((sentRaw.bytes * 8) / seconds),
      packetsPerSecond: round(sentRaw.packets / seconds, 1)
    },
    producerReceived: after.producer - before.producer,
    workerSide: { loss: round(workerLoss, 5), worstLoss: round(worstLoss, 5), incomplete },
    sample: {
      consumers: stats.length,
      perWorker,
      loss: round(sampleLoss, 5),
      worstLoss: round(sampleWorst, 5),
      complete,
      duplicates,
      foreign,
      p50Ms: round(quantile(delays, 0.5), 3),
      p99Ms: round(p99, 3),
      maxMs: round(quantile(delays, 1), 3),
      p99KeyFrameMs: round(quantile(Float64Array.from(keyDelays).sort(), 0.99), 3),
      p99OtherMs: round(quantile(Float64Array.from(otherDelays).sort(), 0.99), 3),
      p99PerWorkerMs: Object.fromEntries(
        Array.from(perWorkerDelays, ([w, ds]) => [w, round(quantile(Float64Array.from(ds).sort(), 0.99), 3)])
      )
    },
    cpu: {
      workers: workerCpu,
      total,
      harness: harnessCpu,
      others: pct(othersMs),
      machine,
      softirq,
      foreign:
        machine === undefined
          ? undefined
          : round(Math.max(0, machine - (softirq ?? 0) - total - harnessCpu - pct(othersMs)))
    },
    windowMs: round(elapsed),
    quiet,
    served: reasons.length === 0,
    reasons
  }
}

// ---------------------------------------------------------------------------
// One step, and a whole small run (for tests and quick checks)
// ---------------------------------------------------------------------------

export interface StepOptions extends WindowOptions {
  /** Stream time before consumers join, so load samples see the stream (default 1200 ms). */
  readonly warmupMs?: number | undefined
  /** Stream time after they joined, before the window (default 2500 ms: past a keyframe). */
  readonly settleMs?: number | undefined
  /** Consumers set up at a time (default 4). */
  readonly concurrency?: number | undefined
}

export interface StepResult {
  readonly window: WindowResult
  /** The consumers asked for; fewer were set up when some were refused. */
  readonly asked: number
  readonly refused: string | undefined
  readonly joinMs: number
}

/**
 * Grows a set-up to `consumers` while its stream runs (as viewers join a live stream), lets
 * it settle, then measures a window.
 */
export const step = async (
  harness: FanoutHarness,
  setup: FanoutSetup,
  consumers: number,
  options: StepOptions = {}
): Promise<StepResult> => {
  await harness.media.start(setup.streamName)
  await sleep(options.warmupMs ?? 1200)
  const t0 = performance.now()
  const { refused } = await setup.grow(consumers, options.concurrency)
  const joinMs = performance.now() - t0
  await sleep(options.settleMs ?? 2500)
  const window = await measureWindow(harness, setup, options)
  return { window, asked: consumers, refused, joinMs: round(joinMs) }
}

export interface FanoutOnceOptions extends StepOptions {
  readonly setup: SetupName
  readonly kind: FanoutKind
  readonly consumers: number
  readonly ports: { readonly min: number; readonly max: number }
  readonly sampleSize?: number | undefined
  readonly pacing?: number | undefined
}

/** Opens a harness and one set-up, runs one step, closes everything. */
export const runFanoutOnce = async (options: FanoutOnceOptions): Promise<StepResult> => {
  const harness = await openHarness()
  try {
    const setup = await createSetup(harness, {
      name: options.setup,
      kind: options.kind,
      ports: options.ports,
      sampleSize: options.sampleSize,
      pacing: options.pacing
    })
    try {
      return await step(harness, setup, options.consumers, options)
    } finally {
      await harness.media.stop()
      await setup.close()
    }
  } finally {
    await harness.close()
  }
}
