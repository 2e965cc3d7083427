/**
 * Policies' runs in a child process (`mafalda simulate --jobs N`, see `parallel.ts`): the
 * parent sends what to run (`ChildJob`), one job at a time; the child loads the scenario
 * the same way the parent did, runs it, and sends its progress and then its result (or its
 * error) back over the IPC channel, with the structured-clone serialisation
 * (`serialization: "advanced"`). It exits when the parent disconnects.
 * The run is the very same `simulate` as in one process: only where it runs differs.
 */
import { Effect, Either } from "effect"
import type { SimResult } from "./Metrics.js"
import type { PolicyName } from "./policies/Policy.js"
import { simulate } from "./run.js"
import { loadScenarioFile, type Scenario } from "./Scenario.js"
import { builtinScenario, type builtinScenarioNames } from "./scenarios.js"

/** Where the scenario comes from: a built-in one, or a file (read again by the child). */
export type ScenarioSource =
  | { readonly builtin: (typeof builtinScenarioNames)[number] }
  | { readonly file: string }

export interface ChildJob {
  readonly source: ScenarioSource
  readonly policy: PolicyName
  readonly seed?: number
  /** Whether to send progress messages. */
  readonly progress: boolean
}

export type ChildMessage =
  | { readonly _tag: "progress"; readonly fraction: number }
  | { readonly _tag: "result"; readonly result: SimResult }
  | { readonly _tag: "error"; readonly message: string; readonly stack?: string }

export const loadSource = (source: ScenarioSource): Either.Either<Scenario, string> =>
  "builtin" in source
    ? Either.right(builtinScenario(source.builtin))
    : Either.mapLeft(loadScenarioFile(source.file), (e) => e.message)

const send = (message: ChildMessage): Promise<void> =>
  new Promise((resolve) => {
    if (process.send === undefined) resolve()
    else process.send(message, undefined, {}, () => resolve())
  })

const runJob = async (job: ChildJob): Promise<void> => {
  try {
    const scenario = loadSource(job.source)
    if (Either.isLeft(scenario)) {
      await send({ _tag: "error", message: scenario.left })
      return
    }
    const result = await Effect.runPromise(
      simulate(scenario.right, job.policy, {
        ...(job.seed === undefined ? {} : { seed: job.seed }),
        ...(job.progress
          ? { onProgress: (fraction: number) => void send({ _tag: "progress", fraction }) }
          : {})
      })
    )
    await send({ _tag: "result", result })
  } catch (error) {
    await send({
      _tag: "error",
      message: error instanceof Error ? error.message : String(error),
      ...(error instanceof Error && error.stack !== undefined ? { stack: error.stack } : {})
    })
  }
}

// One job at a time, as the parent sends them; the parent disconnects when it has no more.
process.on("message", (job: ChildJob) => {
  void runJob(job)
})
process.on("disconnect", () => process.exit(0))
