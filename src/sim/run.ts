/**
 * Running a scenario under a policy, as an Effect: the engine reads time from the `Clock`
 * service, which the run replaces with a `VirtualClock` that the scenario loop advances.
 * The loop itself is synchronous (no fiber switch per event).
 */
import { Effect } from "effect"
import type { PolicyCluster } from "./Cluster.js"
import { Engine } from "./Engine.js"
import type { SimResult } from "./Metrics.js"
import { chainPolicy } from "./policies/chain.js"
import { leastLoadedPolicy } from "./policies/leastLoaded.js"
import { mafaldaPolicy } from "./policies/mafalda.js"
import { meshPolicy } from "./policies/mesh.js"
import type { PolicyName, SimPolicy } from "./policies/Policy.js"
import { roomPerNodePolicy } from "./policies/roomPerNode.js"
import { roundRobinPolicy } from "./policies/roundRobin.js"
import type { Scenario } from "./Scenario.js"
import { VirtualClock } from "./VirtualClock.js"

/** Makes a policy over the cluster adapter: a named one, or one of the caller's (tests). */
export type PolicyFactory = (cluster: PolicyCluster, scenario: Scenario) => SimPolicy

export const makePolicy = (name: PolicyName, cluster: PolicyCluster, scenario: Scenario): SimPolicy => {
  switch (name) {
    case "mafalda":
      return mafaldaPolicy(cluster)
    case "round-robin":
      return roundRobinPolicy(cluster)
    case "least-loaded":
      return leastLoadedPolicy(cluster)
    case "mesh":
      return meshPolicy(cluster, scenario.meshPeersPerRouter)
    case "chain":
      return chainPolicy(cluster)
    case "room-per-node":
      return roomPerNodePolicy(cluster)
  }
}

export interface RunOptions {
  /** Overrides the scenario's seed. */
  readonly seed?: number
  readonly onProgress?: (fraction: number) => void
  /** Gives access to the engine after the run (tests inspect the final snapshot). */
  readonly inspect?: (engine: Engine) => void
}

/** Runs `scenario` under `policy` with the `Clock` in context (a `VirtualClock` is expected). */
export const runWithClock = (
  scenario: Scenario,
  policy: PolicyName | PolicyFactory,
  options: RunOptions = {}
): Effect.Effect<SimResult> =>
  Effect.clockWith((clock) =>
    Effect.sync(() => {
      const virtual = clock instanceof VirtualClock ? clock : new VirtualClock(0)
      const engine = new Engine(scenario, virtual, {
        ...(options.seed === undefined ? {} : { seed: options.seed }),
        ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress })
      })
      const result = engine.run(
        typeof policy === "function"
          ? policy(engine.cluster, scenario)
          : makePolicy(policy, engine.cluster, scenario)
      )
      options.inspect?.(engine)
      return result
    })
  )

/** Runs a scenario on a fresh virtual clock starting at 0. */
export const simulate = (
  scenario: Scenario,
  policy: PolicyName | PolicyFactory,
  options: RunOptions = {}
): Effect.Effect<SimResult> => Effect.withClock(runWithClock(scenario, policy, options), new VirtualClock(0))

/** The same, run synchronously (tests, benches). */
export const simulateSync = (
  scenario: Scenario,
  policy: PolicyName | PolicyFactory,
  options: RunOptions = {}
): SimResult => Effect.runSync(simulate(scenario, policy, options))
