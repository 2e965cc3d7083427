/**
 * Tests against the real Redis at 127.0.0.1:6379 (or `MAFALDA_TEST_REDIS`): each test gets
 * a key prefix of its own, and every key of it is deleted afterwards, then checked gone.
 * Without Redis the tests are skipped, loudly; under CI they fail (`.ci/run` says why).
 */
import { randomUUID } from "node:crypto"
import { Context, Effect, Layer } from "effect"
import { createClient } from "redis"
import * as IndexRedis from "../../src/layers/IndexServiceRedis.js"
import * as RegistryRedis from "../../src/layers/NodeRegistryRedis.js"
import * as RedisConnection from "../../src/layers/RedisConnection.js"
import { IndexService } from "../../src/services/IndexService.js"
import { NodeRegistry } from "../../src/services/NodeRegistry.js"
import { isCI } from "../support/ci.js"
import { keysAt } from "./checks.js"

export const redisUrl = process.env.MAFALDA_TEST_REDIS ?? "redis://127.0.0.1:6379"

/** Whether Redis answers (checked once). */
export const redisAvailable: boolean = await (async () => {
  const client = createClient({ url: redisUrl, socket: { connectTimeout: 1000, reconnectStrategy: false } })
  client.on("error", () => {})
  try {
    await client.connect()
    const pong = await client.ping()
    await client.close()
    return pong === "PONG"
  } catch {
    client.destroy()
    return false
  }
})()

if (!redisAvailable) {
  const message = `Redis does not answer at ${redisUrl}: the multi-process tests ${isCI() ? "fail" : "are skipped"}`
  if (isCI()) throw new Error(message)
  console.warn(`WARNING: ${message}`)
}

/** A fresh prefix for one test. */
export const testPrefix = (name: string): string => `mafalda-test:${name}:${randomUUID().slice(0, 8)}:`

/** The keys of a prefix (SCAN, not KEYS). */
export const keysOf = (prefix: string): Promise<Array<string>> => keysAt(redisUrl, prefix)

/** Deletes every key of a prefix; returns how many were left afterwards (0). */
export const cleanPrefix = async (prefix: string): Promise<number> => {
  const client = createClient({ url: redisUrl })
  client.on("error", () => {})
  await client.connect()
  try {
    for await (const batch of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
      if ((batch as Array<string>).length > 0) await client.unlink(batch as Array<string>)
    }
  } finally {
    await client.close()
  }
  return (await keysOf(prefix)).length
}

/**
 * A `RedisConnection` on a fresh prefix whose keys are deleted when the layer is released,
 * which fails if any is left.
 */
export const connectionLayer = (prefix: string) =>
  Layer.scopedContext(
    Effect.gen(function* () {
      yield* Effect.addFinalizer(() =>
        Effect.promise(() => cleanPrefix(prefix)).pipe(
          Effect.flatMap((left) => (left === 0 ? Effect.void : Effect.die(`${left} keys of ${prefix} left`)))
        )
      )
      return yield* Layer.build(RedisConnection.layer({ url: redisUrl, prefix }))
    })
  )

/**
 * The cluster's registry (reaping every 100 ms) and Index on the real Redis under `prefix`,
 * as another process of the cluster sees them, with the Nodes that leave it, for the scope.
 */
export const clusterStore = (prefix: string) =>
  Effect.gen(function* () {
    const store = yield* Layer.build(
      Layer.mergeAll(RegistryRedis.layerRedis({ reapMillis: 100 }), IndexRedis.layerRedis).pipe(
        Layer.provide(RedisConnection.layer({ url: redisUrl, prefix }))
      )
    )
    const registry = Context.get(store, NodeRegistry)
    return { registry, index: Context.get(store, IndexService), gone: yield* registry.subscribe }
  })
