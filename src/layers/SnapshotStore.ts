/**
 * The `SnapshotStore` in memory: one snapshot, changed by the core's `applyEvent`.
 *
 * Consumer events reported by `recordNow` are written behind: queued and applied, in order,
 * before anything else is applied or the snapshot is read (or 20 ms later at the latest).
 * They never change which Routers receive a producer, so the consume fast path (`receives`)
 * may read the trees without applying them.
 *
 * @module
 */
import { Effect, Either, HashMap, Layer } from "effect"
import { applyEvent, type InvalidEvent } from "../core/applyEvent.js"
import type { ClusterEvent } from "../core/ClusterEvent.js"
import type { Costs } from "../core/PolicyOptions.js"
import { type ClusterSnapshot, emptySnapshot, lookup } from "../core/Snapshot.js"
import { SnapshotStore, type SnapshotStoreShape } from "../services/SnapshotStore.js"

/** How long a consumer event may wait before it is applied, at the latest. */
const WRITE_BEHIND_MILLIS = 20

const make = (costs: Costs) =>
  Effect.gen(function* () {
    const clock = yield* Effect.clock
    let snapshot: ClusterSnapshot = emptySnapshot
    let pending: Array<ClusterEvent> = []
    let timer: ReturnType<typeof setTimeout> | undefined

    const flush = (): void => {
      if (timer !== undefined) {
        clearTimeout(timer)
        timer = undefined
      }
      if (pending.length === 0) return
      const events = pending
      pending = []
      for (const event of events) {
        // A consumer closed with its transport or Router is gone already: nothing to apply
        // (and no error to build).
        if (event._tag === "ConsumerClosed" && !HashMap.has(snapshot.consumers, event.consumer)) continue
        const next = applyEvent(snapshot, event, costs)
        if (Either.isRight(next)) snapshot = next.right
      }
    }
    yield* Effect.addFinalizer(() => Effect.sync(flush))

    const applyNow = (event: ClusterEvent): Either.Either<void, InvalidEvent> => {
      flush()
      const next = applyEvent(snapshot, event, costs)
      if (Either.isLeft(next)) return Either.left(next.left)
      snapshot = next.right
      return Either.void
    }
    const read = (): ClusterSnapshot => {
      flush()
      return snapshot
    }

    const store: SnapshotStoreShape = {
      costs,
      snapshot: Effect.sync(read),
      current: read,
      receives: (producer, router) => {
        const tree = lookup(snapshot.trees, producer)
        return tree !== undefined && HashMap.has(tree, router)
      },
      apply: (...events) =>
        Effect.suspend(() => {
          for (const event of events) {
            const applied = applyNow(event)
            if (Either.isLeft(applied)) return applied
          }
          return Effect.void
        }),
      record: (event) => Effect.sync(() => void applyNow(event)),
      recordNow: (event) => {
        const stamped = { ...event, at: clock.unsafeCurrentTimeMillis() } as ClusterEvent
        if (stamped._tag !== "ConsumerCreated" && stamped._tag !== "ConsumerClosed") {
          applyNow(stamped)
          return
        }
        pending.push(stamped)
        if (timer === undefined) {
          timer = setTimeout(flush, WRITE_BEHIND_MILLIS)
          timer.unref()
        }
      }
    }
    return store
  })

/** A `SnapshotStore` in memory, applying events with this cost model. */
export const layer = (costs: Costs): Layer.Layer<SnapshotStore> => Layer.scoped(SnapshotStore, make(costs))
