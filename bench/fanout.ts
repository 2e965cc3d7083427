/**
 * Fan-out capacity with real RTP: how many consumers of one stream each set-up serves on
 * this machine, side by side in one run:
 *
 * - `raw`: raw mediasoup, one Worker;
 * - `spread`: raw mediasoup, one Worker per CPU, consumers round-robin over the Routers with
 *   hand-written `pipeToRouter`;
 * - `mafalda`: one Mafalda Router, default options, `consume()` only.
 *
 * A video-like VP8 stream (30 fps, about 1 Mbit/s, a keyframe every 2 s) is sent from a worker
 * thread, frames at 30 fps and their packets paced at 2.5 times the bitrate (as a browser's
 * pacer sends them: a keyframe's 25 packets over about 80 ms, not in one burst). Each set-up grows by `--step` consumers while its stream runs, settles, and
 * is measured over a window (see `src/media/fanout.ts`): it serves the audience if the loss is
 * under 1 %, Worker-side (mediasoup's counters, every consumer) and in the sample (16
 * consumers the harness reads), and the sample's p99 one-way delay is under 50 ms. A failed
 * window is measured again at the same audience, up to `--retries` times; if none is served,
 * that set-up's ramp ends. On a shared machine other people's work can spoil a window: a
 * failed window while other processes used more than `--max-foreign` % of a core (the whole
 * machine's busy time from /proc/stat, less the Workers, this process and softirq) is void
 * and measured again after a pause, up to `--max-voids` times per step, for every set-up alike. The set-ups are
 * alive together and take turns at each step, in an order that rotates with every step and
 * pass, so that the machine's noise hits all alike; only the set-up measured streams.
 *
 * Then, with the Opus-like audio stream (50 packets/s), each set-up serves a fixed audience
 * (`--audio-consumers`) for its Worker CPU per 100 audio consumers; and the costs of a
 * producer, a consumer, a piped producer (per pipe end, K producers over one shared
 * PipeTransport pair) and a transport are calibrated per kind, with the fixed cost of a
 * PipeTransport pair (`src/media/fanoutCalibration.ts`), for the cost model's defaults.
 *
 *   npm run bench:fanout                  human-readable
 *   npm run bench:fanout -- --json        one JSON object
 *   options: --passes 2 --start 100 --step 100 --max 2900 --window 5000
 *            --audio-consumers 400 --calibrations 1 --sample 16 --no-calibration
 *            --calibration-streams 16 --calibration-round-trips 2 (each calibration: 4 passes per kind)
 *            --warmup 2200 --settle 1000 --retries 2 --max-foreign 30 --max-voids 4
 *            --quiet-foreign 40 --quiet-wait 20000 (wait before a window for other work to calm down)
 *            --pacing 2.5 (packets leave at 2.5 x the bitrate, as libwebrtc's pacer; 0 = frame bursts)
 *            --watermark W (only to see what another Mafalda watermark does; default: none)
 */
import { availableParallelism, cpus, getPriority, loadavg } from "node:os"
import { performance } from "node:perf_hooks"
import { version as mediasoupVersion } from "mediasoup"
import {
  createSetup,
  type FanoutHarness,
  type FanoutSetup,
  measureWindow,
  openHarness,
  SETUP_NAMES,
  type SetupName,
  type StepResult,
  sleep,
  step,
  type WindowResult
} from "../src/media/fanout.js"
import {
  calibrate,
  calibrationSummary,
  type KindCalibration,
  median,
  summaryLines,
  windowLine
} from "../src/media/fanoutCalibration.js"
import { audioStream, videoStream } from "../src/media/fanoutStreams.js"

const argv = process.argv.slice(2)
const json = argv.includes("--json")
const num = (name: string, fallback: number): number => {
  const i = argv.indexOf(name)
  if (i < 0) return fallback
  const v = Number(argv[i + 1])
  if (!Number.isFinite(v) || v < 0) throw new Error(`${name} must be a number`)
  return v
}
const PASSES = num("--passes", 2)
const START = num("--start", 100)
const STEP = num("--step", 100)
const MAX = num("--max", 2900)
const WINDOW_MS = num("--window", 5000)
const AUDIO_CONSUMERS = num("--audio-consumers", 400)
const CALIBRATIONS = argv.includes("--no-calibration") ? 0 : num("--calibrations", 1)
/** Producers of each kind piped over one pair, and up-and-down round trips, per calibration. */
const CALIBRATION_STREAMS = num("--calibration-streams", 16)
const CALIBRATION_ROUND_TRIPS = num("--calibration-round-trips", 2)
const SAMPLE = num("--sample", 16)
/** Stream time before each step's joins (Mafalda's load samples, every second, must see it), and after. */
const WARMUP_MS = num("--warmup", 2200)
const SETTLE_MS = num("--settle", 1000)
/** Windows measured again, at the same audience, before a set-up counts as not served. */
const RETRIES = num("--retries", 2)
/** A failed window while other processes used more than this % of a core is void and measured again. */
const MAX_FOREIGN = num("--max-foreign", 30)
const MAX_VOIDS = num("--max-voids", 4)
const VOID_PAUSE_MS = 5000
/** Pacing rate over the video bitrate (libwebrtc's 2.5); 0 sends each frame in one burst. */
const PACING = num("--pacing", 2.5)
/** Before each window, wait up to --quiet-wait ms for other processes to use under --quiet-foreign % of a core. */
const QUIET = { maxForeign: num("--quiet-foreign", 40), maxWaitMs: num("--quiet-wait", 20000) }
const WATERMARK = argv.includes("--watermark") ? num("--watermark", 60) : undefined

/** RTC ports per set-up, apart from the tests' ranges where possible. */
const PORTS: Record<SetupName | "calibration", { min: number; max: number }> = {
  raw: { min: 50000, max: 52999 },
  spread: { min: 53000, max: 55999 },
  mafalda: { min: 46000, max: 48999 },
  calibration: { min: 56000, max: 56999 }
}

const log = (...parts: Array<unknown>) => {
  if (!json) console.log(...parts)
  else console.error(...parts)
}
const r2 = (x: number) => Math.round(x * 100) / 100
const rotate = <A>(xs: ReadonlyArray<A>, by: number): Array<A> => xs.map((_, i) => xs[(i + by) % xs.length]!)

const setupOptions = (name: SetupName, kind: "audio" | "video") => ({
  name,
  kind,
  ports: PORTS[name],
  sampleSize: SAMPLE,
  pacing: PACING,
  mafaldaOptions: name === "mafalda" && WATERMARK !== undefined ? { watermark: WATERMARK } : undefined
})

const summary = (w: WindowResult) =>
  `${w.setup.padEnd(7)} N=${String(w.consumers).padStart(4)} ${w.served ? "served" : "FAILED"}` +
  ` loss W ${(w.workerSide.loss * 100).toFixed(2)}% S ${(w.sample.loss * 100).toFixed(2)}%` +
  ` delay p50 ${w.sample.p50Ms.toFixed(1)} p99 ${w.sample.p99Ms.toFixed(1)} ms` +
  ` (key ${w.sample.p99KeyFrameMs.toFixed(0)} other ${w.sample.p99OtherMs.toFixed(0)}` +
  `${
    Object.keys(w.sample.p99PerWorkerMs).length > 1
      ? ` per Worker ${Object.values(w.sample.p99PerWorkerMs)
          .map((x) => x.toFixed(0))
          .join("/")}`
      : ""
  })` +
  ` CPU workers ${w.cpu.workers.map((x) => `${x.key}:${x.cpu.toFixed(0)}%/${x.consumers}`).join(" ")}` +
  ` harness ${w.cpu.harness.toFixed(0)}% others ${w.cpu.others.toFixed(0)}% machine ${w.cpu.machine?.toFixed(0) ?? "?"}%` +
  ` softirq ${w.cpu.softirq?.toFixed(0) ?? "?"}%` +
  ` foreign ${w.cpu.foreign?.toFixed(0) ?? "?"}%` +
  ` quiet ${w.quiet?.foreign?.toFixed(0) ?? "?"}%/${((w.quiet?.waitedMs ?? 0) / 1000).toFixed(0)}s` +
  ` pipes ${w.pipes} sent ${Math.round(w.sent.bitsPerSecond / 1000)} kbit/s lag p99 ${w.sent.lagP99Ms.toFixed(1)} ms` +
  (w.served ? "" : ` (${w.reasons.join(", ")})`)

interface Ramp {
  readonly name: SetupName
  setup: FanoutSetup | undefined
  /** Largest audience served, and its window. */
  capacity: number
  atCapacity: WindowResult | undefined
  /** Why the ramp ended. */
  end: string | undefined
  readonly steps: Array<StepResult & { readonly retry?: WindowResult | undefined; readonly voided: number }>
}

const allWorkers = async (ramps: ReadonlyArray<Ramp>, except: SetupName) => {
  const out = []
  for (const r of ramps) {
    if (r.name === except || r.setup === undefined) continue
    for (const w of await r.setup.workers()) out.push(w.worker)
  }
  return out
}

/** One pass of the video ramp: the three set-ups alive together, taking turns at each N. */
const videoPass = async (harness: FanoutHarness, pass: number): Promise<Array<Ramp>> => {
  const ramps: Array<Ramp> = []
  try {
    for (const name of SETUP_NAMES) {
      ramps.push({
        name,
        setup: await createSetup(harness, setupOptions(name, "video")),
        capacity: 0,
        atCapacity: undefined,
        end: undefined,
        steps: []
      })
    }
    for (let n = START, s = 0; n <= MAX && ramps.some((r) => r.end === undefined); n += STEP, s++) {
      for (const name of rotate(SETUP_NAMES, pass + s)) {
        const ramp = ramps.find((r) => r.name === name)!
        if (ramp.end !== undefined || ramp.setup === undefined) continue
        const setup = ramp.setup
        const otherWorkers = await allWorkers(ramps, name)
        const result = await step(harness, setup, n, {
          windowMs: WINDOW_MS,
          warmupMs: WARMUP_MS,
          settleMs: SETTLE_MS,
          otherWorkers,
          quiet: QUIET
        })
        log(
          `pass ${pass + 1} ${summary(result.window)}${result.refused ? ` refused: ${result.refused}` : ""}`
        )
        let window = result.window
        let retry: WindowResult | undefined
        let again = 0
        let voided = 0
        while (!window.served && again < RETRIES) {
          // A failed window while other processes took more than --max-foreign % of a core
          // does not count (up to --max-voids times per step): it is measured again later.
          const disturbed = (window.cpu.foreign ?? 0) > MAX_FOREIGN && voided < MAX_VOIDS
          if (disturbed) {
            voided++
            await sleep(VOID_PAUSE_MS)
            await harness.media.start(setup.streamName)
            await sleep(WARMUP_MS)
          } else again++
          retry = await measureWindow(harness, setup, { windowMs: WINDOW_MS, otherWorkers, quiet: QUIET })
          log(
            `pass ${pass + 1} ${summary(retry)} (${disturbed ? `void ${voided}: machine busy` : `again ${again}`})`
          )
          window = retry
        }
        ramp.steps.push({ ...result, retry, voided })
        if (window.served) {
          ramp.capacity = window.consumers
          ramp.atCapacity = window
        }
        if (!window.served) ramp.end = `not served at ${window.consumers}: ${window.reasons.join(", ")}`
        else if (result.refused !== undefined)
          ramp.end = `consumer ${window.consumers + 1} refused: ${result.refused}`
        if (ramp.end !== undefined) {
          await ramp.setup.close()
          ramp.setup = undefined
        }
      }
    }
    for (const r of ramps) if (r.end === undefined) r.end = `--max ${MAX} reached`
    return ramps
  } finally {
    await harness.media.stop()
    for (const r of ramps) {
      await r.setup?.close()
      r.setup = undefined
    }
  }
}

/** The audio audience of every set-up, one set-up at a time, in a rotating order. */
const audioPass = async (harness: FanoutHarness, pass: number): Promise<Array<StepResult>> => {
  const out: Array<StepResult> = []
  for (const name of rotate(SETUP_NAMES, pass)) {
    const setup = await createSetup(harness, setupOptions(name, "audio"))
    try {
      const result = await step(harness, setup, AUDIO_CONSUMERS, {
        windowMs: WINDOW_MS,
        warmupMs: WARMUP_MS,
        settleMs: SETTLE_MS,
        quiet: QUIET
      })
      log(`audio pass ${pass + 1} ${summary(result.window)}`)
      out.push(result)
    } finally {
      await harness.media.stop()
      await setup.close()
    }
  }
  return out
}

/** Least-squares slope and intercept of `y` over `x`. */
const leastSquares = (points: ReadonlyArray<readonly [number, number]>) => {
  const n = points.length
  if (n < 2) return undefined
  const mx = points.reduce((a, p) => a + p[0], 0) / n
  const my = points.reduce((a, p) => a + p[1], 0) / n
  const sxx = points.reduce((a, p) => a + (p[0] - mx) ** 2, 0)
  const sxy = points.reduce((a, p) => a + (p[0] - mx) * (p[1] - my), 0)
  if (sxx === 0) return undefined
  const slope = sxy / sxx
  return { slope, intercept: my - slope * mx }
}

const main = async () => {
  const started = performance.now()
  const loadBefore = loadavg().map(r2)
  const harness = await openHarness()
  const passes: Array<{ video: Array<Ramp>; audio: Array<StepResult> }> = []
  const calibrations: Array<KindCalibration> = []
  try {
    for (let p = 0; p < PASSES; p++) {
      log(`--- pass ${p + 1}/${PASSES} (load average ${loadavg().map(r2).join(" ")})`)
      const video = await videoPass(harness, p)
      const audio = await audioPass(harness, p)
      passes.push({ video, audio })
    }
    for (let c = 0; c < CALIBRATIONS; c++) {
      const kinds = c % 2 === 0 ? (["video", "audio"] as const) : (["audio", "video"] as const)
      log(`--- calibration ${c + 1}/${CALIBRATIONS} (load average ${loadavg().map(r2).join(" ")})`)
      const runs = await calibrate(harness, {
        kinds,
        ports: PORTS.calibration,
        windowMs: 4000,
        streams: { video: CALIBRATION_STREAMS, audio: CALIBRATION_STREAMS },
        roundTrips: CALIBRATION_ROUND_TRIPS,
        onWindow: (w) => log(`calibration ${c + 1}${windowLine(w)}`)
      })
      calibrations.push(...runs)
    }
  } finally {
    await harness.close()
  }

  // Per set-up figures, medians over the passes.
  const perSetup = (name: SetupName) => {
    const ramps = passes.map((p) => p.video.find((r) => r.name === name)!)
    // The same audience for every set-up: the largest N all served, in each pass.
    const same = passes.map((p) => {
      const common = Math.min(...p.video.map((r) => r.capacity))
      const ramp = p.video.find((r) => r.name === name)!
      const s = ramp.steps.find(
        (x) => (x.retry ?? x.window).consumers === common && (x.retry ?? x.window).served
      )
      return s === undefined ? undefined : (s.retry ?? s.window)
    })
    const audio = passes.flatMap((p) => p.audio.filter((a) => a.window.setup === name).map((a) => a.window))
    const per100 = (w: WindowResult | undefined) =>
      w === undefined ? Number.NaN : (w.cpu.total / w.consumers) * 100
    const caps = ramps.map((r) => r.atCapacity)
    return {
      capacity: median(ramps.map((r) => r.capacity)),
      capacities: ramps.map((r) => r.capacity),
      cpuPer100: {
        // CPU is meaningful when the work was done (under 1 % loss), even if the delay failed.
        audio: r2(median(audio.filter((w) => w.workerSide.loss < 0.01).map(per100))),
        video: r2(median(same.map(per100)))
      },
      delayMs: {
        p50: r2(median(same.map((w) => w?.sample.p50Ms ?? Number.NaN))),
        p99: r2(median(same.map((w) => w?.sample.p99Ms ?? Number.NaN)))
      },
      harnessCpu: r2(median(caps.map((w) => w?.cpu.harness ?? Number.NaN))),
      pipes: median(caps.map((w) => w?.pipes ?? Number.NaN)),
      sameAudience: same.map((w) => w?.consumers ?? 0),
      atCapacity: caps.map((w) =>
        w === undefined
          ? undefined
          : {
              consumers: w.consumers,
              workersCpu: w.cpu.workers.map((x) => ({ key: x.key, cpu: x.cpu, consumers: x.consumers })),
              totalCpu: w.cpu.total,
              harnessCpu: w.cpu.harness,
              machineCpu: w.cpu.machine,
              delayMs: { p50: w.sample.p50Ms, p99: w.sample.p99Ms, max: w.sample.maxMs },
              pipes: w.pipes,
              senderLagP99Ms: w.sent.lagP99Ms
            }
      ),
      end: ramps.map((r) => r.end),
      audio: audio.map((w) => ({
        consumers: w.consumers,
        served: w.served,
        totalCpu: w.cpu.total,
        workers: w.cpu.workers.map((x) => ({ key: x.key, cpu: x.cpu, consumers: x.consumers })),
        pipes: w.pipes,
        delayMs: { p50: w.sample.p50Ms, p99: w.sample.p99Ms }
      }))
    }
  }
  const raw = perSetup("raw")
  const spread = perSetup("spread")
  const mafalda = perSetup("mafalda")

  // Same-audience CPU, Mafalda over spread, at every N both served (video), per pass.
  const cpuRatios = passes.flatMap((p) => {
    const m = p.video.find((r) => r.name === "mafalda")!
    const s = p.video.find((r) => r.name === "spread")!
    const last = (r: Ramp, n: number) => {
      const x = r.steps.find((q) => q.window.consumers === n)
      const w = x?.retry ?? x?.window
      return w?.served === true ? w : undefined
    }
    return m.steps.flatMap((q) => {
      const a = last(m, q.window.consumers)
      const b = last(s, q.window.consumers)
      return a === undefined || b === undefined || b.cpu.total === 0
        ? []
        : [
            {
              consumers: a.consumers,
              mafalda: a.cpu.total,
              spread: b.cpu.total,
              ratio: r2(a.cpu.total / b.cpu.total)
            }
          ]
    })
  })
  const ratios = {
    capacityMafaldaOverRaw: r2(mafalda.capacity / raw.capacity),
    capacityMafaldaOverSpread: r2(mafalda.capacity / spread.capacity),
    cpuMafaldaOverSpreadSameAudience: {
      video: r2(mafalda.cpuPer100.video / spread.cpuPer100.video),
      audio: r2(mafalda.cpuPer100.audio / spread.cpuPer100.audio),
      /** Median over every N both served, every pass (video). */
      videoMedianOverSteps: r2(median(cpuRatios.map((x) => x.ratio))),
      steps: cpuRatios
    }
  }
  const goals = {
    capacityAtLeast1_6xRaw: raw.capacity > 0 && mafalda.capacity >= 1.6 * raw.capacity,
    capacityAtLeastSpread: mafalda.capacity > 0 && mafalda.capacity >= spread.capacity,
    cpuAtMostSpread:
      mafalda.cpuPer100.video <= spread.cpuPer100.video && mafalda.cpuPer100.audio <= spread.cpuPer100.audio
  }

  // The consumer cost seen along the raw ramp (slope of its Worker CPU over N), to compare.
  const rawPoints = passes.flatMap((p) =>
    p.video
      .find((r) => r.name === "raw")!
      .steps.map((q) => q.retry ?? q.window)
      .filter((w) => w.served)
      .map((w) => [w.consumers, w.cpu.total] as const)
  )
  const rawFit = leastSquares(rawPoints)
  const calibration = calibrations.length === 0 ? undefined : calibrationSummary(calibrations)
  const costs = calibration?.costs
  const cpuModel = cpus()[0]?.model ?? "?"
  // What else ran on the machine during the windows (a shared machine's load).
  const windows = passes.flatMap((p) => [
    ...p.video.flatMap((r) =>
      r.steps.flatMap((q) => (q.retry === undefined ? [q.window] : [q.window, q.retry]))
    ),
    ...p.audio.map((a) => a.window)
  ])
  const conditions = {
    windows: windows.length,
    voidedWindows: passes.reduce(
      (n, p) => n + p.video.reduce((m, r) => m + r.steps.reduce((k, q) => k + q.voided, 0), 0),
      0
    ),
    /** Medians over the windows, % of one core: the whole machine, and other processes. */
    machineCpuMedian: r2(median(windows.map((w) => w.cpu.machine ?? Number.NaN))),
    foreignCpuMedian: r2(median(windows.map((w) => w.cpu.foreign ?? Number.NaN)))
  }
  const out = {
    date: new Date().toISOString(),
    machine: {
      cpus: availableParallelism(),
      /** The benchmark's nice value (its Workers inherit it); 0 unless run under `nice`. */
      nice: getPriority(),
      model: cpuModel,
      loadAverageBefore: loadBefore,
      loadAverageAfter: loadavg().map(r2)
    },
    node: process.version,
    mediasoupVersion,
    conditions,
    command: `npm run bench:fanout -- ${argv.join(" ")}`.trim(),
    settings: {
      passes: PASSES,
      start: START,
      step: STEP,
      max: MAX,
      windowMs: WINDOW_MS,
      warmupMs: WARMUP_MS,
      settleMs: SETTLE_MS,
      sample: SAMPLE,
      pacing: PACING,
      retries: RETRIES,
      voidWhenForeignCpuAbove: MAX_FOREIGN,
      maxVoidsPerStep: MAX_VOIDS,
      quietBeforeWindow: QUIET,
      audioConsumers: AUDIO_CONSUMERS,
      mafaldaOptions: WATERMARK === undefined ? "defaults" : { watermark: WATERMARK },
      criteria: "loss < 1 % (Worker-side, every consumer, and sample) and sample p99 one-way delay < 50 ms",
      streams: { video: videoStream().nominal, audio: audioStream().nominal }
    },
    raw,
    spread,
    mafalda,
    ratios,
    goals,
    derivedCosts: {
      costs,
      unit: "CPU % of one Worker (one core) per object, at the streams above",
      /** Per kind: marginal cost per piped producer (the costs' pipe), average at K, first pipe; median [min, max] over the passes. */
      pipes: calibration?.pipes,
      /** Fixed cost of a PipeTransport pair per kind (idle, with traffic), and idle pairs with and without SCTP. */
      pipeTransportPair: calibration?.pipeTransportPair,
      calibrationLoad: calibration?.load,
      calibrations,
      rawRampConsumerCostVideo:
        rawFit === undefined
          ? undefined
          : { perConsumer: Math.round(rawFit.slope * 10000) / 10000, intercept: r2(rawFit.intercept) }
    },
    elapsedSeconds: Math.round((performance.now() - started) / 1000)
  }
  if (json) {
    console.log(JSON.stringify(out))
    return
  }
  const row = (label: string, f: (x: typeof raw) => string) =>
    `| ${label.padEnd(38)} | ${f(raw).padStart(10)} | ${f(spread).padStart(10)} | ${f(mafalda).padStart(10)} |`
  console.log("")
  console.log(
    `| ${"".padEnd(38)} | ${"raw".padStart(10)} | ${"spread".padStart(10)} | ${"mafalda".padStart(10)} |`
  )
  console.log(`|${"-".repeat(40)}|${"-".repeat(12)}|${"-".repeat(12)}|${"-".repeat(12)}|`)
  console.log(row("capacity (median of passes)", (x) => String(x.capacity)))
  console.log(row("capacity per pass", (x) => x.capacities.join("/")))
  console.log(row("Worker CPU % per 100 video consumers", (x) => x.cpuPer100.video.toFixed(1)))
  console.log(row("Worker CPU % per 100 audio consumers", (x) => x.cpuPer100.audio.toFixed(1)))
  console.log(
    row(
      "delay p50 / p99 ms (same audience)",
      (x) => `${x.delayMs.p50.toFixed(1)}/${x.delayMs.p99.toFixed(1)}`
    )
  )
  console.log(row("harness CPU % at capacity", (x) => x.harnessCpu.toFixed(0)))
  console.log(row("pipes at capacity", (x) => String(x.pipes)))
  console.log("")
  console.log(
    "ratios:",
    JSON.stringify({
      ...ratios,
      cpuMafaldaOverSpreadSameAudience: { ...ratios.cpuMafaldaOverSpreadSameAudience, steps: undefined }
    })
  )
  console.log("goals:", JSON.stringify(goals))
  console.log("machine during the windows:", JSON.stringify(conditions))
  console.log("ends:", JSON.stringify({ raw: raw.end, spread: spread.end, mafalda: mafalda.end }))
  if (costs !== undefined) {
    for (const line of summaryLines(calibrations)) console.log(line)
    console.log("calibration load:", JSON.stringify(calibration?.load))
    console.log("derived costs (CPU % of one Worker per object):", JSON.stringify(costs))
  }
  console.log(
    `${out.command}; ${out.date}; ${out.machine.cpus} CPUs (${cpuModel}); mediasoup ${mediasoupVersion}; ${out.elapsedSeconds} s`
  )
}

main().catch((error) => {
  console.error(error)
  process.exitCode = 1
})
