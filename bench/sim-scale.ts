/**
 * The `scale` scenario at a fraction of its size: node --import tsx bench/sim-scale.ts [divisor] [policy]
 * (divisor 1 is the full scenario: 1,000 Nodes, 1,000,000 consumer joins).
 */
import { Either } from "effect"
import type { PolicyName } from "../src/sim/Engine.js"
import { resultJson } from "../src/sim/report.js"
import { simulateSync } from "../src/sim/run.js"
import { decodeScenario, type ScenarioInput } from "../src/sim/Scenario.js"
import { builtinScenarioInputs } from "../src/sim/scenarios.js"

const divisor = Number(process.argv[2] ?? 1)
const policy = (process.argv[3] ?? "mafalda") as PolicyName
const fill = (process.argv[4] ?? "inOrder") as "inOrder" | "random"
const base = builtinScenarioInputs.scale
const group = base.rooms[0]
const input: ScenarioInput = {
  ...base,
  nodes: { ...base.nodes, count: Math.max(1, Math.round(base.nodes.count / divisor)) },
  rooms: [
    {
      ...group,
      rooms: Math.round(group.rooms / divisor),
      joinsPerSecond: group.joinsPerSecond / divisor,
      fill
    }
  ]
}
const scenario = Either.getOrThrow(decodeScenario(input))
const result = simulateSync(scenario, policy, {
  onProgress: (f) => process.stderr.write(`\r${(f * 100).toFixed(0)}% `)
})
process.stderr.write("\n")
console.log(JSON.stringify(resultJson(result)))
