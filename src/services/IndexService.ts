/**
 * `IndexService`: where each producer lives, i.e. which Node and Mafalda Router own it and
 * on which Router it was created. Clients (or other Nodes) ask it where to connect to
 * receive a track.
 *
 * Backends: `layerMemory` in `src/layers/IndexService.ts` (one process, never fails) and
 * `layerRedis` in `src/layers/IndexServiceRedis.ts` (readable from every process of the
 * cluster; a producer's entry goes when it closes, or with its Node when the Node is
 * evicted from the `NodeRegistry`).
 *
 * @module
 */
import { Context, type Effect, type Option, Schema } from "effect"
import { MafaldaRouterId, NodeId, ProducerId, RouterId } from "../core/Ids.js"
import type { ClusterStoreError } from "./NodeRegistry.js"

export const ProducerLocation = Schema.Struct({
  producer: ProducerId,
  node: NodeId,
  mafaldaRouter: MafaldaRouterId,
  /** The Router the producer was created on. */
  router: RouterId,
  kind: Schema.Literal("audio", "video", "data")
})
export type ProducerLocation = typeof ProducerLocation.Type

export interface IndexServiceShape {
  /** Records where a producer lives (replacing what was recorded for its id). */
  readonly add: (location: ProducerLocation) => Effect.Effect<void, ClusterStoreError>
  /** Forgets a producer (it closed). Unknown ids are ignored. */
  readonly remove: (producer: ProducerId) => Effect.Effect<void, ClusterStoreError>
  readonly find: (producer: ProducerId) => Effect.Effect<Option.Option<ProducerLocation>, ClusterStoreError>
  /** The producers a Mafalda Router owns. */
  readonly ofMafaldaRouter: (
    mafaldaRouter: MafaldaRouterId
  ) => Effect.Effect<ReadonlyArray<ProducerLocation>, ClusterStoreError>
  /** The producers that live on a Node. */
  readonly ofNode: (node: NodeId) => Effect.Effect<ReadonlyArray<ProducerLocation>, ClusterStoreError>
}

export class IndexService extends Context.Tag("mafalda/IndexService")<IndexService, IndexServiceShape>() {}
