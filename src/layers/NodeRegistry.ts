/**
 * `NodeRegistry` in memory: one process, leases on Effect's `Clock` (drive it with
 * `TestClock`), the same choice as the Redis registry (`pickNode`). For an app that embeds
 * several Nodes in one process, and for tests.
 *
 * @module
 */
import { Clock, Effect, Layer, Option, PubSub, Schedule, Stream } from "effect"
import { pickNode } from "../cluster/pickNode.js"
import type { NodeId } from "../core/Ids.js"
import {
  defaultLeaseMillis,
  defaultReapMillis,
  type NodeGone,
  type NodeRecord,
  NodeRegistry,
  type NodeRegistryOptions,
  type NodeRegistryShape
} from "../services/NodeRegistry.js"

interface Entry {
  record: NodeRecord
  leaseUntil: number
  reservations: Map<string, number>
}

export const layerMemory = (options: NodeRegistryOptions = {}): Layer.Layer<NodeRegistry> =>
  Layer.scoped(
    NodeRegistry,
    Effect.gen(function* () {
      const leaseMillis = options.leaseMillis ?? defaultLeaseMillis
      const reapMillis = options.reapMillis ?? defaultReapMillis
      const pubsub = yield* Effect.acquireRelease(PubSub.unbounded<NodeGone>(), PubSub.shutdown)
      const entries = new Map<NodeId, Entry>()

      const alive = (now: number) => Array.from(entries.values()).filter((e) => e.leaseUntil > now)

      const reap = Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.gen(function* () {
          const gone: Array<NodeId> = []
          for (const [id, e] of entries) {
            if (e.leaseUntil > now) continue
            entries.delete(id)
            gone.push(id)
          }
          yield* PubSub.publishAll(
            pubsub,
            gone.map((node): NodeGone => ({ node, reason: "expired", at: now }))
          )
          return gone as ReadonlyArray<NodeId>
        })
      )
      yield* reap.pipe(Effect.repeat(Schedule.spaced(reapMillis)), Effect.interruptible, Effect.forkScoped)

      const service: NodeRegistryShape = {
        register: (registration) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) =>
            Effect.sync(() => {
              entries.set(registration.node, {
                record: { ...registration, state: "up", workers: [], registeredAt: now, reportedAt: now },
                leaseUntil: now + leaseMillis,
                reservations: new Map()
              })
            })
          ),
        report: (node, workers) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) =>
            Effect.sync(() => {
              const e = entries.get(node)
              if (e === undefined || e.leaseUntil <= now) return false
              e.record = { ...e.record, workers: [...workers], reportedAt: now }
              e.leaseUntil = now + leaseMillis
              e.reservations = new Map()
              return true
            })
          ),
        setState: (node, state) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) =>
            Effect.sync(() => {
              const e = entries.get(node)
              if (e === undefined || e.leaseUntil <= now) return false
              e.record = { ...e.record, state }
              return true
            })
          ),
        deregister: (node) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) =>
            Effect.suspend(() =>
              entries.delete(node)
                ? PubSub.publish(pubsub, { node, reason: "left", at: now } satisfies NodeGone).pipe(
                    Effect.asVoid
                  )
                : Effect.void
            )
          ),
        nodes: Effect.map(Clock.currentTimeMillis, (now) => alive(now).map((e) => e.record)),
        node: (node) =>
          Effect.map(Clock.currentTimeMillis, (now) => {
            const e = entries.get(node)
            return e === undefined || e.leaseUntil <= now ? Option.none() : Option.some(e.record)
          }),
        pick: (request) =>
          Effect.map(Clock.currentTimeMillis, (now) => {
            const live = alive(now).sort((a, b) => (a.record.node < b.record.node ? -1 : 1))
            const outcome = pickNode(live, request)
            if (outcome === undefined) return Option.none()
            const e = entries.get(outcome.picked.node)!
            e.reservations.set(outcome.field, (e.reservations.get(outcome.field) ?? 0) + outcome.amount)
            return Option.some(outcome.picked)
          }),
        reap,
        gone: Stream.fromPubSub(pubsub),
        subscribe: PubSub.subscribe(pubsub)
      }
      return service
    })
  )
