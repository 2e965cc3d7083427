/**
 * `IndexService`: where each producer lives, i.e. which Node and Mafalda Router own it and
 * on which Router it was created. Clients (or other Nodes) ask it where to connect to
 * receive a track.
 *
 * Backend: `layerMemory` in `src/layers/IndexService.ts`.
 *
 * @module
 */
import { Context, type Effect, type Option } from "effect"
import type { MafaldaRouterId, NodeId, ProducerId, RouterId } from "../core/Ids.js"

export interface ProducerLocation {
  readonly producer: ProducerId
  readonly node: NodeId
  readonly mafaldaRouter: MafaldaRouterId
  /** The Router the producer was created on. */
  readonly router: RouterId
  readonly kind: "audio" | "video" | "data"
}

export interface IndexServiceShape {
  readonly add: (location: ProducerLocation) => Effect.Effect<void>
  readonly remove: (producer: ProducerId) => Effect.Effect<void>
  readonly find: (producer: ProducerId) => Effect.Effect<Option.Option<ProducerLocation>>
  /** The producers a Mafalda Router owns. */
  readonly ofMafaldaRouter: (mafaldaRouter: MafaldaRouterId) => Effect.Effect<ReadonlyArray<ProducerLocation>>
}

export class IndexService extends Context.Tag("mafalda/IndexService")<IndexService, IndexServiceShape>() {}
