/**
 * `mafalda calibrate`: measures, on this machine, what a producer, a consumer, a pipe end and
 * a transport cost a mediasoup Worker, for audio and for video (real Workers, real RTP; see
 * `src/media/fanoutCalibration.ts`), and prints the `costs` option to give `createMafalda`.
 *
 *   mafalda calibrate [--json] [--window MS] [--repeats N] [--ports MIN-MAX]
 *
 * @module
 */
import { availableParallelism, cpus } from "node:os"
import { openHarness } from "../media/fanout.js"
import { calibrate, costsFrom, type KindCalibration } from "../media/fanoutCalibration.js"
import { audioStream, videoStream } from "../media/fanoutStreams.js"

const flag = (argv: ReadonlyArray<string>, name: string): string | undefined => {
  const i = argv.indexOf(name)
  return i >= 0 ? argv[i + 1] : undefined
}

export const runCalibrateCommand = async (argv: ReadonlyArray<string>): Promise<number> => {
  const json = argv.includes("--json")
  const windowMs = Number(flag(argv, "--window") ?? 3000)
  const repeats = Number(flag(argv, "--repeats") ?? 1)
  const ports = /^(\d+)-(\d+)$/.exec(flag(argv, "--ports") ?? "46000-48999")
  if (
    !Number.isFinite(windowMs) ||
    windowMs < 500 ||
    !Number.isInteger(repeats) ||
    repeats < 1 ||
    ports === null
  ) {
    console.error(
      "usage: mafalda calibrate [--json] [--window MS >= 500] [--repeats N >= 1] [--ports MIN-MAX]"
    )
    return 2
  }
  const progress = (line: string) => (json ? undefined : console.log(line))
  progress(
    `calibrating on ${availableParallelism()} CPUs, ${repeats} x (video, audio), windows of ${windowMs} ms ...`
  )
  const runs: Array<KindCalibration> = []
  const harness = await openHarness()
  try {
    for (let i = 0; i < repeats; i++) {
      const kinds = i % 2 === 0 ? (["video", "audio"] as const) : (["audio", "video"] as const)
      for (const run of await calibrate(harness, {
        kinds,
        windowMs,
        ports: { min: Number(ports[1]), max: Number(ports[2]) }
      })) {
        progress(
          `  ${run.kind}: producer ${run.producer} %, consumer ${run.consumer} %, pipe end ${run.pipe} % ` +
            `(consumer side ${run.pipeConsumerEnd}, producer side ${run.pipeProducerEnd})` +
            (run.transport === undefined ? "" : `, transport ${run.transport} %`)
        )
        runs.push(run)
      }
    }
  } finally {
    await harness.close()
  }
  const costs = costsFrom(runs)
  const result = {
    costs,
    unit: "CPU % of one Worker (one core) per object",
    streams: { video: videoStream().nominal, audio: audioStream().nominal },
    machine: { cpus: availableParallelism(), model: cpus()[0]?.model ?? "?" },
    measured: runs
  }
  if (json) console.log(JSON.stringify(result))
  else {
    console.log("")
    console.log("Options for this machine (createMafalda({ costs }), CPU % of one Worker per object):")
    console.log(JSON.stringify({ costs }, null, 2))
  }
  return 0
}
