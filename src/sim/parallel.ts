/**
 * Runs the policies of one `mafalda simulate` in child processes, at most `jobs` at once
 * (each policy's run is independent and single-threaded: on a machine with several cores
 * they run side by side). Each child runs `simulateChild` with the Node options of this
 * process (so `tsx` carries over when it runs the sources) and takes the next policy not
 * started yet when it is done with one (see `startOrder`).
 * Results come back in full (structured clone) and are handed over in the order of the
 * policies, each as soon as it and all before it are done. The first error stops the
 * children and rejects.
 */
import { type ChildProcess, fork } from "node:child_process"
import { fileURLToPath } from "node:url"
import type { SimResult } from "./Metrics.js"
import type { PolicyName } from "./policies/Policy.js"
import type { ChildJob, ChildMessage, ScenarioSource } from "./simulateChild.js"

export type { ScenarioSource } from "./simulateChild.js"

/** A policy's run failed (in its child, or the child died). */
export class PolicyRunError extends Error {
  override readonly name = "PolicyRunError"
}

export interface ParallelOptions {
  readonly source: ScenarioSource
  readonly policies: ReadonlyArray<PolicyName>
  readonly seed?: number
  /** Children at once (at least 1). */
  readonly jobs: number
  /** Hears a policy's progress (index into `policies`); none asked when absent. */
  readonly onProgress?: (index: number, fraction: number) => void
  /** A policy's run started (index into `policies`). */
  readonly onStart?: (index: number) => void
  /** A policy's run is done (in the order they finish). */
  readonly onDone?: (index: number) => void
  /** Hears each result in the order of `policies`. */
  readonly onResult: (index: number, result: SimResult) => void
}

// The child's module next to this one: `.ts` when this one runs from the sources (tsx).
const childModule = (): string => {
  const self = import.meta.url
  const ext = self.endsWith(".ts") ? ".ts" : ".js"
  return fileURLToPath(new URL(`./simulateChild${ext}`, self))
}

/**
 * The children's Node options: this process's (with tsx's loader for the sources), and a
 * young generation larger than Node's default unless they set its size. A run allocates a
 * great many short-lived objects (every event makes a new snapshot sharing most of the old
 * one): with semi-spaces of 32 MB, fewer of them survive long enough to be copied, and the
 * collector takes about a third less of the time. It changes nothing the run computes (its
 * peak RSS is higher).
 */
const childExecArgv = (module: string): Array<string> => {
  const argv = [...process.execArgv]
  if (!argv.some((a) => a.startsWith("--max-semi-space-size"))) argv.push("--max-semi-space-size=32")
  // From the sources without tsx's loader in this process's options (vitest, say): add it.
  if (module.endsWith(".ts") && !argv.some((a) => a.includes("tsx"))) argv.push("--import", "tsx")
  return argv
}

/**
 * The order in which the policies start (their results still come out in the given order):
 * those that usually take longest first, so that a short one, not a long one, runs last on
 * its own. Over the built-in scenarios, chain and mafalda are the slowest (chain's pipes
 * along every link, mafalda's decisions), room-per-node and the others the quickest; a
 * policy not named here keeps its place after these.
 */
const usuallySlowestFirst: ReadonlyArray<string> = [
  "chain",
  "mafalda",
  "least-loaded",
  "room-per-node",
  "mesh",
  "round-robin"
]

export const startOrder = (policies: ReadonlyArray<string>): Array<number> => {
  const rank = (name: string): number => {
    const i = usuallySlowestFirst.indexOf(name)
    return i < 0 ? usuallySlowestFirst.length : i
  }
  return policies.map((_, i) => i).sort((a, b) => rank(policies[a]!) - rank(policies[b]!) || a - b)
}

export const runPoliciesInChildren = (options: ParallelOptions): Promise<ReadonlyArray<SimResult>> =>
  new Promise((resolve, reject) => {
    const { policies } = options
    const results: Array<SimResult | undefined> = policies.map(() => undefined)
    const order = startOrder(policies)
    const children = new Set<ChildProcess>()
    let next = 0
    let emitted = 0
    let finished = false
    const module = childModule()

    const stop = () => {
      finished = true
      for (const child of children) if (child.connected) child.disconnect()
    }

    const fail = (error: Error) => {
      if (finished) return
      finished = true
      for (const child of children) child.kill()
      reject(error)
    }

    const flush = () => {
      while (emitted < policies.length && results[emitted] !== undefined) {
        options.onResult(emitted, results[emitted]!)
        emitted++
      }
      if (emitted === policies.length) {
        stop()
        resolve(results as ReadonlyArray<SimResult>)
      }
    }

    const spawn = () => {
      const child = fork(module, [], {
        execArgv: childExecArgv(module),
        serialization: "advanced",
        stdio: ["ignore", "inherit", "inherit", "ipc"]
      })
      children.add(child)
      let current = -1
      const give = () => {
        if (next >= policies.length) {
          current = -1
          child.disconnect()
          return
        }
        current = order[next++]!
        options.onStart?.(current)
        const job: ChildJob = {
          source: options.source,
          policy: policies[current]!,
          ...(options.seed === undefined ? {} : { seed: options.seed }),
          progress: options.onProgress !== undefined
        }
        child.send(job)
      }
      child.on("message", (message: ChildMessage) => {
        if (finished || current < 0) return
        switch (message._tag) {
          case "progress":
            options.onProgress?.(current, message.fraction)
            break
          case "result":
            results[current] = message.result
            options.onDone?.(current)
            give()
            flush()
            break
          case "error":
            fail(
              new PolicyRunError(
                `policy ${policies[current]}: ${process.env.MAFALDA_DEBUG && message.stack !== undefined ? message.stack : message.message}`
              )
            )
            break
        }
      })
      child.on("error", (error) =>
        fail(
          new PolicyRunError(`${current < 0 ? "simulate" : `policy ${policies[current]}`}: ${error.message}`)
        )
      )
      child.on("exit", (code, signal) => {
        children.delete(child)
        if (finished || current < 0) return
        fail(
          new PolicyRunError(
            `policy ${policies[current]}: its process ended without a result (${signal === null ? `exit code ${code}` : signal})`
          )
        )
      })
      give()
    }

    if (policies.length === 0) {
      resolve([])
      return
    }
    const jobs = Math.max(1, Math.min(options.jobs, policies.length))
    for (let i = 0; i < jobs; i++) spawn()
  })
