/**
 * An app's own Node (cluster mode) whose CPUs run Workers its `NodeHost` started for another
 * app (README, "Known problems" before this): the app's snapshot leaves those Workers out (they
 * are that host's to scale down), so the core plans a Worker there, and the Node's
 * `WorkerService` refuses it. The placement must then go to another Node instead of failing.
 *
 * Real processes and Redis: a `mafalda node` B (1 CPU) and the app (this process, 1 CPU, full
 * after one transport); another app, a raw RPC client here, asks the app's Node for a Worker
 * with the app's Worker settings, taking its one CPU. The app's first transport lands on B, and
 * the other app's Worker is left as it was. Nothing is left afterwards.
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, ExecutionStrategy, Exit, HashMap, Scope } from "effect"
import { parseAddress } from "../../src/cluster/NodeClients.js"
import { RemoteTransport } from "../../src/cluster/RemoteTransport.js"
import { NodeId } from "../../src/core/Ids.js"
import { makeClient } from "../../src/rpc/transport.js"
import { fullClusterApp, until } from "./clusterSupport.js"
import { nodeArgs, nodeProcessPool } from "./nodeProcesses.js"
import { cleanPrefix, clusterStore, keysOf, redisAvailable, redisUrl, testPrefix } from "./redisSupport.js"

const secret = "own-cpus-secret-0123456789"
const prefix = testPrefix("own-cpus")
const nodes = nodeProcessPool()

const opus = { kind: "audio", mimeType: "audio/opus", clockRate: 48000, channels: 2 } as const
const listenInfo = { protocol: "udp", ip: "127.0.0.1" } as const

afterAll(async () => {
  await nodes.killAll()
  if (redisAvailable) await cleanPrefix(prefix)
})

describe.skipIf(!redisAvailable)("an app whose own CPUs run another app's Workers", () => {
  it.scopedLive("places its transport on another Node instead of failing on its own Node's refusal", () =>
    Effect.gen(function* () {
      const b = yield* Effect.promise(() =>
        nodes.start(nodeArgs({ redis: redisUrl, prefix, node: "node-b", cpus: 1, drainTimeoutSeconds: 1 }), {
          MAFALDA_SECRET: secret
        })
      )
      const appScope = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
      const { mafalda, closeApp } = yield* Scope.extend(
        fullClusterApp({ secret, prefix, node: "own-cpus-app" }),
        appScope
      )
      // Another app takes the app's one CPU through the app's Node API, with the app's Worker
      // settings: the app's snapshot does not show it.
      const { registry } = yield* clusterStore(prefix)
      const record = (yield* registry.nodes).find((n) => n.node === "own-cpus-app")!
      const other = yield* makeClient({ ...parseAddress(record.address)!, secret })
      const foreign = yield* other.StartWorker({ settings: { logLevel: "warn" } })
      expect(HashMap.has(mafalda.snapshot().workers, foreign.id as never)).toBe(false)
      // The app knows B (a sync or two).
      expect(yield* until(() => HashMap.has(mafalda.snapshot().nodes, NodeId.make(b.node)), 5000)).toBe(true)

      const router = yield* Effect.promise(() => mafalda.createRouter({ mediaCodecs: [opus] }))
      const transport = yield* Effect.promise(() =>
        router.createPlainTransport({ listenInfo, rtcpMux: true })
      )
      expect(transport).toBeInstanceOf(RemoteTransport)
      expect((transport as unknown as RemoteTransport).node).toBe(b.node)
      // The other app's Worker is as it was: the app's Node runs it, and only it.
      const info = yield* other.NodeInfo()
      expect(info.workers.map((w) => w.id)).toEqual([foreign.id])
      expect(info.transports).toBe(0)

      transport.close()
      yield* closeApp
      yield* Scope.close(appScope, Exit.void)
      b.process.child.kill("SIGTERM")
      const exit = yield* Effect.promise(() => b.process.exited)
      expect(exit.code).toBe(0)
      expect(yield* until(async () => (await keysOf(prefix)).length === 0, 5000)).toBe(true)
    })
  )
})
