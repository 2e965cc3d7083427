/**
 * `ClusterNotices` over an unbounded `PubSub`, shut down with the layer.
 *
 * @module
 */
import { Effect, Layer, PubSub, Stream } from "effect"
import { type ClusterNotice, ClusterNotices } from "../services/ClusterNotices.js"

export const layer: Layer.Layer<ClusterNotices> = Layer.scoped(
  ClusterNotices,
  Effect.map(Effect.acquireRelease(PubSub.unbounded<ClusterNotice>(), PubSub.shutdown), (pubsub) => ({
    publish: (notice) => Effect.asVoid(PubSub.publish(pubsub, notice)),
    notices: Stream.fromPubSub(pubsub),
    subscribe: PubSub.subscribe(pubsub)
  }))
)
