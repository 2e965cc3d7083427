/**
 * `ClusterLocks` in memory: one semaphore of one permit per key, made on first use and
 * forgotten when nobody holds or waits for it (so closed producers leave nothing behind).
 *
 * @module
 */
import { Effect, Layer } from "effect"
import { ClusterLocks } from "../services/ClusterLocks.js"

const keyedLocks = () => {
  const locks = new Map<string, { readonly lock: Effect.Semaphore; users: number }>()
  return <A, E, R>(key: string, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.suspend(() => {
      let entry = locks.get(key)
      if (entry === undefined) {
        entry = { lock: Effect.unsafeMakeSemaphore(1), users: 0 }
        locks.set(key, entry)
      }
      const held = entry
      held.users++
      return held.lock
        .withPermits(1)(effect)
        .pipe(
          Effect.ensuring(
            Effect.sync(() => {
              if (--held.users === 0 && locks.get(key) === held) locks.delete(key)
            })
          )
        )
    })
}

export const layer: Layer.Layer<ClusterLocks> = Layer.sync(ClusterLocks, () => {
  const placement = keyedLocks()
  const pipes = keyedLocks()
  return {
    placement: (settings) => (effect) => placement(settings, effect),
    pipes: (producer) => (effect) => pipes(producer, effect)
  }
})
