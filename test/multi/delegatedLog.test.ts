/**
 * A placement the core delegates to another Node is logged as such: INFO, a message naming
 * that Node, `outcome=delegated` and the `node` field (not as a rejection).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, HashMap, Logger, LogLevel } from "effect"
import { MafaldaRouterId, NodeId, SettingsKey } from "../../src/core/Ids.js"
import type { PlacementPlan } from "../../src/core/interpret.js"
import * as Observe from "../../src/ops/observe.js"

interface Logged {
  readonly message: unknown
  readonly level: string
  readonly annotations: Record<string, unknown>
}

const capturing = (effect: Effect.Effect<unknown>) =>
  Effect.gen(function* () {
    const logs: Array<Logged> = []
    const capture = Logger.make<unknown, void>(({ message, logLevel, annotations }) => {
      logs.push({
        message: Array.isArray(message) ? message[0] : message,
        level: logLevel.label,
        annotations: Object.fromEntries(HashMap.toEntries(annotations))
      })
    })
    yield* effect.pipe(Effect.provide(Logger.replace(Logger.defaultLogger, capture)))
    return logs
  })

const plan = (node: string): PlacementPlan => ({
  mafaldaRouter: MafaldaRouterId.make("m1"),
  workerSettings: SettingsKey.make("w"),
  routerSettings: SettingsKey.make("r"),
  node: NodeId.make(node),
  delegations: node === "here" ? [] : [NodeId.make(node)],
  worker: null,
  router: null,
  register: true
})

describe("Observe.transportPlan", () => {
  it.effect("a delegated placement: INFO, naming the Node it was delegated to", () =>
    Effect.gen(function* () {
      const logs = yield* capturing(Observe.transportPlan("m1", "here", () => Either.right(plan("node-b"))))
      expect(logs).toHaveLength(1)
      expect(logs[0]).toMatchObject({
        level: "INFO",
        message: "transport delegated to Node node-b (no room on this Node)",
        annotations: { outcome: "delegated", node: "node-b", mafaldaRouter: "m1" }
      })
    })
  )

  it.effect("a placement on this Node is still a DEBUG line", () =>
    Effect.gen(function* () {
      const logs = yield* capturing(
        Observe.transportPlan("m1", "here", () => Either.right(plan("here"))).pipe(
          Logger.withMinimumLogLevel(LogLevel.All)
        )
      )
      expect(logs.map((l) => [l.level, l.message])).toEqual([["DEBUG", "transport placed"]])
    })
  )
})
