/**
 * `mafalda simulate`: runs a scenario under one or more placement policies on a simulated
 * cluster and prints a summary table (default), one JSON object per policy per line
 * (`--json`), and optionally one self-contained HTML report (`--html FILE`).
 *
 *   mafalda simulate --scenario broadcast --policy mafalda,mesh,chain --json
 *   mafalda simulate --scenario-file my.json --seed 7 --html report.html
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect, Either } from "effect"
import type { SimResult } from "../sim/Metrics.js"
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
  const doneSeconds: Array<number> = []
  for (const [i, policy] of policies.entries()) {
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
