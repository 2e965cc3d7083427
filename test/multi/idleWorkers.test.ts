/**
 * A `mafalda node` closes its idle Workers: a process started with `--idle-grace 1000`, two
 * Workers made over RPC (`StartWorker`, `CreateRouter`), the Router of one closed: that
 * Worker's process exits within the grace and a margin, it is logged, and the Node's next
 * load report in the registry leaves it out; the Worker that keeps its Router stays. Then
 * SIGTERM: no process and no Redis key of the test's prefix is left.
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { parseAddress } from "../../src/cluster/NodeClients.js"
import { NodeId } from "../../src/core/Ids.js"
import { processExists } from "../../src/media/worker.js"
import { makeClient } from "../../src/rpc/transport.js"
import { until } from "./clusterSupport.js"
import { type NodeProcess, nodeArgs, spawnNode } from "./nodeProcesses.js"
import { cleanPrefix, clusterStore, keysOf, redisAvailable, redisUrl, testPrefix } from "./redisSupport.js"

const secret = "idle-workers-secret-0123"
const prefix = testPrefix("idle-workers")
const graceMillis = 1000
const started: Array<NodeProcess> = []

describe.skipIf(!redisAvailable)("a mafalda node closes its idle Workers", () => {
  afterAll(async () => {
    for (const p of started) if (!p.hasExited()) p.child.kill("SIGKILL")
    await Promise.all(started.map((p) => p.exited))
    await cleanPrefix(prefix)
  })

  it.scopedLive(
    "a Worker whose last Router closed exits within the grace; a Worker with a Router stays",
    () =>
      Effect.gen(function* () {
        const p = yield* Effect.promise(() =>
          spawnNode(
            nodeArgs({ redis: redisUrl, prefix, node: "node-idle", cpus: 2, idleGraceMillis: graceMillis }),
            { MAFALDA_SECRET: secret, MAFALDA_LOG_LEVEL: "info", MAFALDA_LOG_FORMAT: "json" }
          )
        )
        started.push(p)
        const ready = yield* Effect.promise(() => p.ready)
        const client = yield* makeClient({ ...parseAddress(ready.address)!, secret })
        const { registry } = yield* clusterStore(prefix)
        const reported = Effect.map(registry.node(NodeId.make(ready.node)), (record) =>
          Option.match(record, {
            onNone: (): Array<string> => [],
            onSome: (r) => r.workers.map((w) => w.worker as string)
          })
        )

        const settings = { settings: { logLevel: "warn" as const } }
        const idle = yield* client.StartWorker(settings)
        const kept = yield* client.StartWorker(settings)
        const idleRouter = yield* client.CreateRouter({ worker: idle.id, settings: {} })
        yield* client.CreateRouter({ worker: kept.id, settings: {} })

        // Both are reported while each has a Router.
        expect(
          yield* until(
            () => Effect.runPromise(reported).then((w) => w.includes(idle.id) && w.includes(kept.id)),
            3000
          )
        ).toBe(true)

        // Longer than the grace with a Router: nothing closes.
        yield* Effect.sleep(graceMillis * 2)
        expect(processExists(idle.pid) && processExists(kept.pid)).toBe(true)

        // Its Router closed: the Worker's process exits within the grace and a margin.
        const closedAt = Date.now()
        yield* client.CloseRouter({ router: idleRouter.id })
        expect(yield* until(() => !processExists(idle.pid), graceMillis + 2500)).toBe(true)
        const exitedMs = Date.now() - closedAt
        console.log(
          `idle Worker exited ${exitedMs} ms after its last Router closed (grace ${graceMillis} ms)`
        )
        expect(exitedMs).toBeGreaterThanOrEqual(graceMillis - 100)

        // The registry learns it (the next load report), the Node's own view too, and it is logged.
        expect(
          yield* until(
            () => Effect.runPromise(reported).then((w) => !w.includes(idle.id) && w.includes(kept.id)),
            3000
          )
        ).toBe(true)
        expect((yield* client.NodeInfo()).workers.map((w) => w.id)).toEqual([kept.id])
        // Logged through the project's logger: MAFALDA_LOG_FORMAT=json gives one JSON object a line.
        const logged = p.output.flatMap((line) => {
          try {
            return [JSON.parse(line) as { message?: string; annotations?: Record<string, unknown> }]
          } catch {
            return []
          }
        })
        expect(logged).toContainEqual(
          expect.objectContaining({
            message: "scale-down",
            annotations: expect.objectContaining({ action: "close_worker", worker: idle.id })
          })
        )
        expect(yield* client.CreateRouter({ worker: idle.id, settings: {} }).pipe(Effect.flip)).toMatchObject(
          {
            _tag: "NodeCallError"
          }
        )

        // The Worker that keeps its Router stays, well past the grace.
        yield* Effect.sleep(graceMillis * 2)
        expect(processExists(kept.pid)).toBe(true)

        // A Worker started and never given a Router goes too.
        const unused = yield* client.StartWorker(settings)
        expect(yield* until(() => !processExists(unused.pid), graceMillis + 2500)).toBe(true)
        expect(processExists(kept.pid)).toBe(true)

        // Stopped: nothing is left.
        p.child.kill("SIGTERM")
        const exit = yield* Effect.promise(() => p.exited)
        expect(exit.code).toBe(0)
        expect(processExists(kept.pid)).toBe(false)
        expect(yield* until(() => keysOf(prefix).then((keys) => keys.length === 0), 3000)).toBe(true)
      }),
    30_000
  )
})
