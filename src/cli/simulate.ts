/**
 * `mafalda simulate`: runs a scenario under one or more placement policies on a simulated
 * cluster and prints a summary table (default), one JSON object per policy per line
 * (`--json`), and optionally one self-contained HTML report (`--html FILE`).
 *
 *   mafalda simulate --scenario broadcast --policy mafalda,mesh,chain --json
 *   mafalda simulate --scenario-file my.json --seed 7 --html report.html
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Either } from "effect"
import type { SimResult } from "../sim/Metrics.js"
import { PolicyRunError, runPoliciesInChildren, type ScenarioSource } from "../sim/parallel.js"
import { type PolicyName, policyNames } from "../sim/policies/Policy.js"
import { htmlReport, resultJson, summaryTable } from "../sim/report.js"
import { simulate } from "../sim/run.js"
import { loadScenarioFile, type Scenario } from "../sim/Scenario.js"
import { builtinScenario, builtinScenarioInputs, builtinScenarioNames } from "../sim/scenarios.js"

export const simulateUsage = `usage: mafalda simulate (--scenario NAME | --scenario-file FILE) [options]
  --scenario NAME        built-in: ${builtinScenarioNames.join(", ")}
  --scenario-file FILE   a scenario as JSON (--print-scenario gives one to start from)
  --print-scenario NAME  print a built-in scenario as JSON, and exit
  --policy a,b,...       ${policyNames.join(", ")} (default: the scenario's list, else all)
  --seed N               overrides the scenario's seed
  --jobs N               policies run at once, each in its own process (default: one per
                         CPU core, at most one per policy; 1 runs them one after another here)
  --json                 one JSON object per policy per line on stdout
  --html FILE            write one self-contained HTML report
  --progress-every S     progress on stderr every S seconds (default 5; a bar on a terminal)
  --no-progress          no progress at all`

interface Args {
  readonly scenario?: string
  readonly scenarioFile?: string
  /** Undefined: the scenario's own list, or every policy. */
  readonly policies: ReadonlyArray<PolicyName> | undefined
  readonly seed?: number
  /** Policies run at once; undefined: one per core (see `defaultJobs`). */
  readonly jobs?: number
  readonly json: boolean
  readonly html?: string
  readonly progress: boolean
  readonly progressEvery: number
  readonly printScenario?: string
}

const parseArgs = (argv: ReadonlyArray<string>): Either.Either<Args, string> => {
  let scenario: string | undefined
  let scenarioFile: string | undefined
  let policies: ReadonlyArray<PolicyName> | undefined
  let seed: number | undefined
  let jobs: number | undefined
  let json = false
  let html: string | undefined
  let progress = true
  let progressEvery = 5
  let printScenario: string | undefined
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    const value = (): string | undefined => argv[++i]
    switch (a) {
      case "--scenario":
        scenario = value()
        if (scenario === undefined) return Either.left("--scenario needs a name")
        break
      case "--scenario-file":
        scenarioFile = value()
        if (scenarioFile === undefined) return Either.left("--scenario-file needs a path")
        break
      case "--policy":
      case "--policies": {
        const v = value()
        if (v === undefined) return Either.left("--policy needs a list")
        const names = v
          .split(",")
          .map((s) => s.trim())
          .filter((s) => s.length > 0)
        const bad = names.filter((n) => !policyNames.includes(n as PolicyName))
        if (bad.length > 0)
          return Either.left(`unknown policy ${bad.join(", ")} (known: ${policyNames.join(", ")})`)
        policies = names as ReadonlyArray<PolicyName>
        break
      }
      case "--seed": {
        const v = Number(value())
        if (!Number.isInteger(v)) return Either.left("--seed must be a whole number")
        seed = v
        break
      }
      case "--jobs": {
        const v = Number(value())
        if (!Number.isInteger(v) || v < 1) return Either.left("--jobs must be a whole number, at least 1")
        jobs = v
        break
      }
      case "--json":
        json = true
        break
      case "--html":
        html = value()
        if (html === undefined) return Either.left("--html needs a file")
        break
      case "--no-progress":
        progress = false
        break
      case "--progress-every": {
        const v = Number(value())
        if (!Number.isFinite(v) || v < 0) return Either.left("--progress-every needs a number of seconds")
        progressEvery = v
        break
      }
      case "--print-scenario":
        printScenario = value()
        if (printScenario === undefined) return Either.left("--print-scenario needs a name")
        break
      case "-h":
      case "--help":
        return Either.left("")
      default:
        return Either.left(`unknown argument ${a}`)
    }
  }
  if (printScenario !== undefined) {
    if (!(builtinScenarioNames as ReadonlyArray<string>).includes(printScenario))
      return Either.left(`unknown scenario ${printScenario} (built-in: ${builtinScenarioNames.join(", ")})`)
    return Either.right({ policies: undefined, json, progress, progressEvery, printScenario })
  }
  if ((scenario === undefined) === (scenarioFile === undefined))
    return Either.left("give exactly one of --scenario and --scenario-file")
  return Either.right({
    ...(scenario === undefined ? {} : { scenario }),
    ...(scenarioFile === undefined ? {} : { scenarioFile }),
    policies,
    ...(seed === undefined ? {} : { seed }),
    ...(jobs === undefined ? {} : { jobs }),
    json,
    ...(html === undefined ? {} : { html }),
    progress,
    progressEvery
  })
}

const loadScenario = (args: Args): Either.Either<Scenario, string> => {
  if (args.scenarioFile !== undefined)
    return Either.mapLeft(loadScenarioFile(args.scenarioFile), (e) => e.message)
  const name = args.scenario!
  if (!(builtinScenarioNames as ReadonlyArray<string>).includes(name))
    return Either.left(`unknown scenario ${name} (built-in: ${builtinScenarioNames.join(", ")})`)
  return Either.right(builtinScenario(name as (typeof builtinScenarioNames)[number]))
}

const clock = (seconds: number): string => {
  const s = Math.max(0, Math.round(seconds))
  return s >= 3600
    ? `${Math.floor(s / 3600)}:${String(Math.floor(s / 60) % 60).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`
    : `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`
}

/**
 * Progress of one policy's run (`index` of `count`) on stderr: a bar redrawn in place on a
 * terminal, otherwise a line every `everySeconds`; both with an ETA for this policy and for
 * the whole run (the policies still to run estimated at the mean time of those done).
 */
const progressReporter = (
  tty: boolean,
  everySeconds: number,
  policy: string,
  index: number,
  count: number,
  doneSeconds: ReadonlyArray<number>
) => {
  const start = Date.now()
  let lastAt = start
  let lastPct = -1
  return (fraction: number) => {
    const now = Date.now()
    const pct = Math.floor(fraction * 100)
    if (tty ? pct === lastPct : now - lastAt < everySeconds * 1000) return
    lastAt = now
    lastPct = pct
    const elapsed = (now - start) / 1000
    const left = fraction > 0 ? (elapsed * (1 - fraction)) / fraction : Number.NaN
    const perPolicy =
      doneSeconds.length > 0
        ? doneSeconds.reduce((a, b) => a + b, 0) / doneSeconds.length
        : elapsed / (fraction || 1)
    const total = left + (count - index) * perPolicy
    const eta = Number.isFinite(left)
      ? `ETA ${clock(left)}${index < count ? `, all ${clock(total)}` : ""}`
      : "ETA unknown"
    const label = `policy ${index} of ${count} (${policy}):`
    if (tty) {
      const width = 24
      const filled = Math.round((pct / 100) * width)
      process.stderr.write(
        `\r${label} [${"#".repeat(filled)}${" ".repeat(width - filled)}] ${String(pct).padStart(3)}% ${eta}\x1b[K`
      )
    } else {
      process.stderr.write(`mafalda simulate: ${label} ${pct}% done, ${eta}\n`)
    }
  }
}

/** Policies run at once by default: one per core the process may use. */
const defaultJobs = (): number =>
  typeof os.availableParallelism === "function" ? os.availableParallelism() : os.cpus().length

/**
 * Progress of policies run side by side (`--jobs`), on stderr: on a terminal one line
 * redrawn in place with each running policy's share done; otherwise each running policy's
 * line every `everySeconds`, as when they run one after another. The ETA of the whole run
 * counts the policies not started yet at the mean time of those done (or of this one, as
 * far as it went), spread over the `jobs` running at once.
 */
const parallelProgress = (
  tty: boolean,
  everySeconds: number,
  policies: ReadonlyArray<string>,
  jobs: number
) => {
  const count = policies.length
  const startedAt = new Map<number, number>()
  const fractions = new Map<number, number>()
  const lastAt = new Map<number, number>()
  const doneSeconds: Array<number> = []
  let lastLine = ""
  const leftOf = (i: number, now: number): number => {
    const f = fractions.get(i) ?? 0
    const elapsed = (now - (startedAt.get(i) ?? now)) / 1000
    return f > 0 ? (elapsed * (1 - f)) / f : Number.NaN
  }
  const etaAll = (i: number, now: number): number => {
    const f = fractions.get(i) ?? 0
    const elapsed = (now - (startedAt.get(i) ?? now)) / 1000
    const perPolicy =
      doneSeconds.length > 0
        ? doneSeconds.reduce((a, b) => a + b, 0) / doneSeconds.length
        : elapsed / (f || 1)
    let running = 0
    for (const j of startedAt.keys()) {
      const left = leftOf(j, now)
      running += Number.isFinite(left) ? left : perPolicy
    }
    const queued = count - startedAt.size - doneSeconds.length
    return Math.max(leftOf(i, now), (running + queued * perPolicy) / jobs)
  }
  const draw = (now: number) => {
    const parts: Array<string> = []
    let any = -1
    for (const j of startedAt.keys()) {
      any = j
      parts.push(`${policies[j]} ${String(Math.floor((fractions.get(j) ?? 0) * 100)).padStart(3)}%`)
    }
    const all = any < 0 ? Number.NaN : etaAll(any, now)
    const line = `policies ${doneSeconds.length} of ${count} done; ${parts.join(", ")}; ${
      Number.isFinite(all) ? `ETA all ${clock(all)}` : "ETA unknown"
    }`
    if (line === lastLine) return
    lastLine = line
    process.stderr.write(`\r${line}\x1b[K`)
  }
  return {
    start: (i: number) => {
      const now = Date.now()
      startedAt.set(i, now)
      lastAt.set(i, now)
      fractions.set(i, 0)
    },
    progress: (i: number, fraction: number) => {
      const now = Date.now()
      fractions.set(i, fraction)
      if (tty) {
        draw(now)
        return
      }
      if (now - (lastAt.get(i) ?? now) < everySeconds * 1000) return
      lastAt.set(i, now)
      const left = leftOf(i, now)
      const more = count - doneSeconds.length > 1
      const eta = Number.isFinite(left)
        ? `ETA ${clock(left)}${more ? `, all ${clock(etaAll(i, now))}` : ""}`
        : "ETA unknown"
      process.stderr.write(
        `mafalda simulate: policy ${i + 1} of ${count} (${policies[i]}): ${Math.floor(fraction * 100)}% done, ${eta}\n`
      )
    },
    /** A policy's run is done. */
    done: (i: number) => {
      const started = startedAt.get(i)
      if (started === undefined) return
      startedAt.delete(i)
      doneSeconds.push((Date.now() - started) / 1000)
    },
    clear: () => {
      if (tty && lastLine !== "") {
        process.stderr.write("\r\x1b[K")
        lastLine = ""
      }
    }
  }
}

/** Why the report cannot be written there, or undefined when it can (checked before any work). */
const htmlProblem = (file: string): string | undefined => {
  const dir = path.dirname(path.resolve(file))
  try {
    if (fs.existsSync(file) && fs.statSync(file).isDirectory()) return `--html ${file} is a directory`
    if (!fs.statSync(dir).isDirectory()) return `--html ${file}: ${dir} is not a directory`
    fs.accessSync(dir, fs.constants.W_OK)
    return undefined
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    return code === "ENOENT"
      ? `--html ${file}: the directory ${dir} does not exist`
      : `--html ${file}: cannot write in ${dir} (${code ?? String(error)})`
  }
}

export const runSimulateCommand = async (argv: ReadonlyArray<string>): Promise<number> => {
  const parsed = parseArgs(argv)
  if (Either.isLeft(parsed)) {
    if (parsed.left === "") {
      console.log(simulateUsage)
      return 0
    }
    console.error(`mafalda simulate: ${parsed.left}\n${simulateUsage}`)
    return 2
  }
  const args = parsed.right
  if (args.printScenario !== undefined) {
    console.log(
      JSON.stringify(builtinScenarioInputs[args.printScenario as keyof typeof builtinScenarioInputs], null, 2)
    )
    return 0
  }
  const problem = args.html === undefined ? undefined : htmlProblem(args.html)
  if (problem !== undefined) {
    console.error(`mafalda simulate: ${problem}`)
    return 2
  }
  const loaded = loadScenario(args)
  if (Either.isLeft(loaded)) {
    console.error(`mafalda simulate: ${loaded.left}`)
    return 2
  }
  const scenario = loaded.right
  const tty = process.stderr.isTTY === true
  const results: Array<SimResult> = []
  const policies = args.policies ?? scenario.policies ?? policyNames
  const jobs = Math.min(args.jobs ?? defaultJobs(), policies.length)
  if (jobs > 1) {
    const progress = args.progress ? parallelProgress(tty, args.progressEvery, policies, jobs) : undefined
    const source: ScenarioSource =
      args.scenarioFile !== undefined
        ? { file: args.scenarioFile }
        : { builtin: args.scenario as (typeof builtinScenarioNames)[number] }
    const run = runPoliciesInChildren({
      source,
      policies,
      ...(args.seed === undefined ? {} : { seed: args.seed }),
      jobs,
      ...(progress === undefined
        ? {}
        : { onStart: progress.start, onProgress: progress.progress, onDone: progress.done }),
      onResult: (_i, result) => {
        results.push(result)
        if (args.json) {
          progress?.clear()
          console.log(JSON.stringify(resultJson(result)))
        }
      }
    })
    try {
      await run
    } catch (error) {
      progress?.clear()
      if (!(error instanceof PolicyRunError)) throw error
      console.error(`mafalda simulate: ${error.message}`)
      return 1
    }
    progress?.clear()
  }
  const doneSeconds: Array<number> = []
  for (const [i, policy] of (jobs > 1 ? [] : policies).entries()) {
    const onProgress = args.progress
      ? progressReporter(tty, args.progressEvery, policy, i + 1, policies.length, doneSeconds)
      : undefined
    const started = Date.now()
    const result = await Effect.runPromise(
      simulate(scenario, policy, {
        ...(args.seed === undefined ? {} : { seed: args.seed }),
        ...(onProgress === undefined ? {} : { onProgress })
      })
    )
    doneSeconds.push((Date.now() - started) / 1000)
    if (tty && args.progress) process.stderr.write("\r\x1b[K")
    results.push(result)
    if (args.json) console.log(JSON.stringify(resultJson(result)))
  }
  if (!args.json) {
    console.log(`scenario ${scenario.name}: ${scenario.description}`)
    console.log(summaryTable(results, scenario.policy.watermark))
  }
  if (args.html !== undefined) {
    fs.writeFileSync(args.html, htmlReport(scenario, results))
    if (!args.json) console.log(`report written to ${args.html}`)
  }
  return 0
}
