/**
 * `mafalda calibrate`: measures, on this machine, what a producer, a consumer, a piped
 * producer (per pipe end, over a shared PipeTransport pair) and a transport cost a mediasoup
 * Worker, for audio and for video, and the fixed cost of a PipeTransport pair (real Workers,
 * real RTP; see `src/media/fanoutCalibration.ts`); prints the `costs` option to give
 * `createMafalda`.
 *
 *   mafalda calibrate [--json] [--window MS] [--repeats N] [--streams K] [--ports MIN-MAX]
 *
 * `--repeats` is the number of up-and-down round trips over the pipe states (two passes
 * each); `--streams` the producers of each kind piped over one pair.
 *
 * @module
 */
import { availableParallelism, cpus, loadavg } from "node:os"
import { performance } from "node:perf_hooks"
import { openHarness } from "../media/fanout.js"
import {
  calibrate,
  calibrationSummary,
  type KindCalibration,
  summaryLines,
  windowLine
} from "../media/fanoutCalibration.js"
import { audioStream, videoStream } from "../media/fanoutStreams.js"

const flag = (argv: ReadonlyArray<string>, name: string): string | undefined => {
  const i = argv.indexOf(name)
  return i >= 0 ? argv[i + 1] : undefined
}

const usage =
  "usage: mafalda calibrate [--json] [--window MS >= 500] [--repeats N >= 1] [--streams K >= 3] [--ports MIN-MAX]"

export const runCalibrateCommand = async (argv: ReadonlyArray<string>): Promise<number> => {
  const json = argv.includes("--json")
  const windowMs = Number(flag(argv, "--window") ?? 3000)
  const roundTrips = Number(flag(argv, "--repeats") ?? 2)
  const streams = Number(flag(argv, "--streams") ?? 16)
  const ports = /^(\d+)-(\d+)$/.exec(flag(argv, "--ports") ?? "46000-48999")
  if (
    !Number.isFinite(windowMs) ||
    windowMs < 500 ||
    !Number.isInteger(roundTrips) ||
    roundTrips < 1 ||
    !Number.isInteger(streams) ||
    streams < 3 ||
    ports === null
  ) {
    console.error(usage)
    return 2
  }
  const progress = (line: string) => (json ? undefined : console.log(line))
  const started = performance.now()
  const loadAverageBefore = loadavg().map((x) => Math.round(x * 100) / 100)
  progress(
    `calibrating on ${availableParallelism()} CPUs (load average ${loadAverageBefore.join(" ")}): ` +
      `video then audio, ${streams} streams each, ${roundTrips} round trips, windows of ${windowMs} ms ...`
  )
  let runs: ReadonlyArray<KindCalibration> = []
  const harness = await openHarness()
  try {
    runs = await calibrate(harness, {
      kinds: ["video", "audio"],
      windowMs,
      roundTrips,
      streams: { video: streams, audio: streams },
      ports: { min: Number(ports[1]), max: Number(ports[2]) },
      onWindow: (w) => progress(windowLine(w))
    })
  } finally {
    await harness.close()
  }
  const summary = calibrationSummary(runs)
  const result = {
    date: new Date().toISOString(),
    command: `mafalda calibrate ${argv.join(" ")}`.trim(),
    ...summary,
    streams: { video: videoStream().nominal, audio: audioStream().nominal },
    machine: {
      cpus: availableParallelism(),
      model: cpus()[0]?.model ?? "?",
      loadAverageBefore,
      loadAverageAfter: loadavg().map((x) => Math.round(x * 100) / 100)
    },
    settings: { windowMs, roundTrips, streams },
    elapsedSeconds: Math.round((performance.now() - started) / 1000),
    measured: runs
  }
  if (json) console.log(JSON.stringify(result))
  else {
    console.log("")
    for (const line of summaryLines(runs)) console.log(line)
    console.log(
      `machine during the windows: ${JSON.stringify(summary.load)}; ${result.elapsedSeconds} s, ${result.date}`
    )
    console.log("")
    console.log("Options for this machine (createMafalda({ costs }), CPU % of one Worker per object):")
    console.log(JSON.stringify({ costs: summary.costs }, null, 2))
  }
  return 0
}
