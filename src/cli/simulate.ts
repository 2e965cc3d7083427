/**
 * `mafalda simulate`: runs a scenario under one or more placement policies on a simulated
 * cluster and prints a summary table (default), one JSON object per policy per line
 * (`--json`), and optionally one self-contained HTML report (`--html FILE`).
 *
 *   mafalda simulate --scenario broadcast --policy mafalda,mesh,chain --json
 *   mafalda simulate --scenario-file my.json --seed 7 --html report.html
 */
import * as fs from "node:fs"
import { Effect, Either } from "effect"
import type { SimResult } from "../sim/Metrics.js"
import { type PolicyName, policyNames } from "../sim/policies/Policy.js"
import { htmlReport, resultJson, summaryTable } from "../sim/report.js"
import { simulate } from "../sim/run.js"
import { loadScenarioFile, type Scenario } from "../sim/Scenario.js"
import { builtinScenario, builtinScenarioNames } from "../sim/scenarios.js"

const usage = `usage: mafalda simulate (--scenario NAME | --scenario-file FILE) [options]
  --scenario NAME        built-in: ${builtinScenarioNames.join(", ")}
  --scenario-file FILE   a scenario as JSON (see src/sim/Scenario.ts)
  --policy a,b,...       ${policyNames.join(", ")} (default: the scenario's list, else all)
  --seed N               overrides the scenario's seed
  --json                 one JSON object per policy per line on stdout
  --html FILE            write one self-contained HTML report
  --no-progress          no progress bar (it is only drawn when stderr is a terminal)`

interface Args {
  readonly scenario?: string
  readonly scenarioFile?: string
  /** Undefined: the scenario's own list, or every policy. */
  readonly policies: ReadonlyArray<PolicyName> | undefined
  readonly seed?: number
  readonly json: boolean
  readonly html?: string
  readonly progress: boolean
}

const parseArgs = (argv: ReadonlyArray<string>): Either.Either<Args, string> => {
  let scenario: string | undefined
  let scenarioFile: string | undefined
  let policies: ReadonlyArray<PolicyName> | undefined
  let seed: number | undefined
  let json = false
  let html: string | undefined
  let progress = true
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
      case "-h":
      case "--help":
        return Either.left("")
      default:
        return Either.left(`unknown argument ${a}`)
    }
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
    progress
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

const progressBar = (label: string) => {
  let last = -1
  return (fraction: number) => {
    const pct = Math.floor(fraction * 100)
    if (pct === last) return
    last = pct
    const width = 30
    const filled = Math.round((pct / 100) * width)
    process.stderr.write(
      `\r${label.padEnd(14)} [${"#".repeat(filled)}${" ".repeat(width - filled)}] ${String(pct).padStart(3)}%`
    )
  }
}

export const runSimulateCommand = async (argv: ReadonlyArray<string>): Promise<number> => {
  const parsed = parseArgs(argv)
  if (Either.isLeft(parsed)) {
    if (parsed.left !== "") console.error(`mafalda simulate: ${parsed.left}`)
    console.error(usage)
    return parsed.left === "" ? 0 : 2
  }
  const args = parsed.right
  const loaded = loadScenario(args)
  if (Either.isLeft(loaded)) {
    console.error(`mafalda simulate: ${loaded.left}`)
    return 2
  }
  const scenario = loaded.right
  const tty = args.progress && process.stderr.isTTY === true
  const results: Array<SimResult> = []
  for (const policy of args.policies ?? scenario.policies ?? policyNames) {
    const onProgress = tty ? progressBar(policy) : undefined
    const result = await Effect.runPromise(
      simulate(scenario, policy, {
        ...(args.seed === undefined ? {} : { seed: args.seed }),
        ...(onProgress === undefined ? {} : { onProgress })
      })
    )
    if (tty) process.stderr.write("\r\x1b[K")
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
