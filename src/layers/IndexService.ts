/**
 * `IndexService` in memory (one process).
 *
 * @module
 */
import { Effect, Layer, Option } from "effect"
import type { ProducerId } from "../core/Ids.js"
import { IndexService, type ProducerLocation } from "../services/IndexService.js"

export const layerMemory: Layer.Layer<IndexService> = Layer.sync(IndexService, () => {
  const producers = new Map<ProducerId, ProducerLocation>()
  return {
    add: (location) => Effect.sync(() => void producers.set(location.producer, location)),
    remove: (producer) => Effect.sync(() => void producers.delete(producer)),
    find: (producer) => Effect.sync(() => Option.fromNullable(producers.get(producer))),
    ofMafaldaRouter: (mafaldaRouter) =>
      Effect.sync(() => Array.from(producers.values()).filter((p) => p.mafaldaRouter === mafaldaRouter)),
    ofNode: (node) => Effect.sync(() => Array.from(producers.values()).filter((p) => p.node === node))
  }
})
