/**
 * `IndexService` on Redis (node-redis): producer → owning Node, Mafalda Router, Router and
 * kind, readable from every process of the cluster. An entry is written only for a Node
 * registered in the `NodeRegistry` (otherwise nothing would reap it), removed when the
 * producer closes, and removed with its Node, in the same script, when the Node is evicted
 * or deregisters (`src/layers/RedisScripts.ts`). What this process wrote is kept in memory
 * too (`RedisConnection.indexEntries`) until removed, so that its Node's registration writes
 * it again once Redis lost it (a restart with nothing persisted, an eviction during an outage).
 *
 * @module
 */
import { Effect, Layer, Option, Schema } from "effect"
import { IndexService, type IndexServiceShape, ProducerLocation } from "../services/IndexService.js"
import { ClusterStoreError } from "../services/NodeRegistry.js"
import { RedisConnection } from "./RedisConnection.js"
import { indexAddScript, indexListScript, indexRemoveScript, keys } from "./RedisScripts.js"

const decodeLocation = Schema.decodeUnknown(Schema.parseJson(ProducerLocation))
const encodeLocation = Schema.encodeSync(Schema.parseJson(ProducerLocation))

const badReply = (operation: string) => (cause: unknown) =>
  new ClusterStoreError({ operation, message: `unexpected reply: ${String(cause)}` })

const make = Effect.gen(function* () {
  const redis = yield* RedisConnection
  const p = redis.prefix

  const list = (operation: string, set: string) =>
    redis
      .script(indexListScript, [set])
      .pipe(
        Effect.flatMap((reply) =>
          Effect.forEach(Array.isArray(reply) ? reply : [], (json) =>
            decodeLocation(json).pipe(Effect.mapError(badReply(operation)))
          )
        )
      )

  const service: IndexServiceShape = {
    // Every entry is kept here too until it is removed (even when the write fails): the
    // registry writes a Node's entries again when the Node registers anew (`RedisConnection`).
    add: (location) =>
      Effect.suspend(() => {
        const args = [location.producer, location.node, location.mafaldaRouter, encodeLocation(location)]
        redis.indexEntries.set(location.producer, { node: location.node, args })
        return redis.script(indexAddScript, args)
      }).pipe(
        Effect.flatMap((reply) =>
          reply === 1
            ? Effect.void
            : Effect.fail(
                new ClusterStoreError({
                  operation: "indexAdd",
                  message: `Node ${location.node} is not registered`
                })
              )
        )
      ),
    remove: (producer) =>
      Effect.suspend(() => {
        redis.indexEntries.delete(producer)
        return redis.script(indexRemoveScript, [producer])
      }).pipe(Effect.asVoid),
    find: (producer) =>
      redis
        .command(["GET", keys.producer(p, producer)])
        .pipe(
          Effect.flatMap((reply) =>
            typeof reply === "string"
              ? decodeLocation(reply).pipe(
                  Effect.mapBoth({ onFailure: badReply("find"), onSuccess: Option.some })
                )
              : Effect.succeed(Option.none())
          )
        ),
    ofMafaldaRouter: (mafaldaRouter) => list("ofMafaldaRouter", `mr:${mafaldaRouter}`),
    ofNode: (node) => list("ofNode", `node:${node}`)
  }
  return service
})

/** The Index over a `RedisConnection` (whose prefix names the cluster). */
export const layerRedis: Layer.Layer<IndexService, never, RedisConnection> = Layer.effect(IndexService, make)
