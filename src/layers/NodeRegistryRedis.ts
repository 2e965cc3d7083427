/**
 * `NodeRegistry` on Redis (node-redis): readable and writable from every process of the
 * cluster. Each change is one Lua script (`src/layers/RedisScripts.ts`), so a pick and its
 * reservation, or an eviction and the removal of the Node's Index entries, are atomic.
 * Liveness is one key per Node with `SET PX` (Redis 7.0 has no per-field TTL); every
 * process running this layer reaps expired leases on an interval (the script makes
 * concurrent reapers harmless), and evictions are published on the `gone` channel.
 *
 * @module
 */
import { Effect, Layer, Option, PubSub, Schedule, Schema, Stream } from "effect"
import type { NodeId } from "../core/Ids.js"
import {
  ClusterStoreError,
  defaultLeaseMillis,
  defaultReapMillis,
  NodeGone,
  NodeRecord,
  NodeRegistry,
  type NodeRegistryOptions,
  type NodeRegistryShape,
  Picked
} from "../services/NodeRegistry.js"
import { RedisConnection } from "./RedisConnection.js"
import {
  deregisterScript,
  indexAddScript,
  keys,
  nodesScript,
  pickScript,
  reapScript,
  registerScript,
  reportScript,
  setStateScript
} from "./RedisScripts.js"

const decodeRecord = Schema.decodeUnknown(NodeRecord)
const decodePicked = Schema.decodeUnknown(Picked)
const decodeGone = Schema.decodeUnknownOption(Schema.parseJson(NodeGone))

const badReply = (operation: string) => (cause: unknown) =>
  new ClusterStoreError({ operation, message: `unexpected reply: ${String(cause)}` })

/** One `{ id, HGETALL }` entry of the `nodes` script as a record. */
const toRecord = (entry: unknown) =>
  Effect.gen(function* () {
    if (!Array.isArray(entry) || !Array.isArray(entry[1])) return yield* badReply("nodes")(entry)
    const fields = new Map<string, string>()
    const flat = entry[1] as ReadonlyArray<unknown>
    for (let i = 0; i + 1 < flat.length; i += 2) fields.set(String(flat[i]), String(flat[i + 1]))
    const info = yield* Effect.try({
      try: () => JSON.parse(fields.get("info") ?? "{}") as Record<string, unknown>,
      catch: badReply("nodes")
    })
    const workers = yield* Effect.try({
      try: () => JSON.parse(fields.get("workers") ?? "[]") as unknown,
      catch: badReply("nodes")
    })
    return yield* decodeRecord({
      node: entry[0],
      address: info.address,
      announcedIp: info.announcedIp,
      cpus: info.cpus,
      ...(info.maxWorkerProcesses === undefined ? {} : { maxWorkerProcesses: info.maxWorkerProcesses }),
      state: fields.get("state"),
      workers,
      registeredAt: Number(fields.get("registeredAt")),
      reportedAt: Number(fields.get("reportedAt"))
    }).pipe(Effect.mapError(badReply("nodes")))
  })

const make = (options: NodeRegistryOptions) =>
  Effect.gen(function* () {
    const redis = yield* RedisConnection
    const p = redis.prefix
    const leaseMillis = String(options.leaseMillis ?? defaultLeaseMillis)
    const reapMillis = options.reapMillis ?? defaultReapMillis
    const pubsub = yield* Effect.acquireRelease(PubSub.unbounded<NodeGone>(), PubSub.shutdown)
    yield* redis.subscribe(keys.gone(p), (message) => {
      const gone = decodeGone(message)
      if (Option.isSome(gone)) pubsub.unsafeOffer(gone.value)
    })

    const reap = redis
      .script(reapScript, [])
      .pipe(Effect.map((reply) => (Array.isArray(reply) ? (reply.map(String) as Array<NodeId>) : [])))
    yield* reap.pipe(
      Effect.catchAll((e) => Effect.logDebug("reaping expired Nodes failed", e)),
      Effect.repeat(Schedule.spaced(reapMillis)),
      Effect.interruptible,
      Effect.forkScoped
    )

    const records = (ids: ReadonlyArray<string>) =>
      redis
        .script(nodesScript, ids)
        .pipe(Effect.flatMap((reply) => Effect.forEach(Array.isArray(reply) ? reply : [], toRecord)))

    /**
     * Writes again the Index entries of `node` this process wrote (and has not removed):
     * each one checked still there right before its write, so that a producer removed
     * meanwhile is not written back (its removal goes over the same connection, in order).
     */
    const republish = (node: string) =>
      Effect.forEach(
        [...redis.indexEntries].filter(([, entry]) => entry.node === node).map(([producer]) => producer),
        (producer) =>
          Effect.suspend(() => {
            const entry = redis.indexEntries.get(producer)
            return entry === undefined || entry.node !== node
              ? Effect.void
              : redis.script(indexAddScript, entry.args)
          }),
        { discard: true }
      )

    const service: NodeRegistryShape = {
      // A Node registering while its lease is alive starts again under the same id: a clean
      // slate (the script drops its Index entries). One whose registration was lost (its
      // lease ran out, or Redis restarted empty) is this process still serving: its Index
      // entries written here are written again.
      register: (r) =>
        Effect.gen(function* () {
          const wasAlive = (yield* redis.command(["EXISTS", keys.lease(p, r.node)])) === 1
          yield* redis.script(registerScript, [
            r.node,
            JSON.stringify({
              address: r.address,
              announcedIp: r.announcedIp,
              cpus: r.cpus,
              maxWorkerProcesses: r.maxWorkerProcesses
            }),
            leaseMillis
          ])
          if (!wasAlive) yield* republish(r.node)
        }),
      report: (node, workers) =>
        redis
          .script(reportScript, [node, JSON.stringify(workers), leaseMillis])
          .pipe(Effect.map((reply) => reply === 1)),
      setState: (node, state) =>
        redis.script(setStateScript, [node, state]).pipe(Effect.map((reply) => reply === 1)),
      deregister: (node) => redis.script(deregisterScript, [node]).pipe(Effect.asVoid),
      nodes: records([]),
      node: (node) => Effect.map(records([node]), (found) => Option.fromNullable(found[0])),
      pick: (request) =>
        redis
          .script(pickScript, [
            request.workerSettings,
            String(request.cost),
            String(request.watermark),
            request.maxWorkersPerNode === undefined ? "" : String(request.maxWorkersPerNode),
            ...(request.exclude ?? [])
          ])
          .pipe(
            Effect.flatMap((reply) => {
              if (reply === null || reply === undefined) return Effect.succeed(Option.none())
              if (!Array.isArray(reply) || reply.length !== 4) return Effect.fail(badReply("pick")(reply))
              const [node, address, announcedIp, worker] = reply.map(String)
              return decodePicked({ node, address, announcedIp, worker: worker === "" ? null : worker }).pipe(
                Effect.mapBoth({ onFailure: badReply("pick"), onSuccess: Option.some })
              )
            })
          ),
      reap,
      gone: Stream.fromPubSub(pubsub),
      subscribe: PubSub.subscribe(pubsub)
    }
    return service
  })

/** The registry over a `RedisConnection` (whose prefix names the cluster). */
export const layerRedis = (
  options: NodeRegistryOptions = {}
): Layer.Layer<NodeRegistry, ClusterStoreError, RedisConnection> => Layer.scoped(NodeRegistry, make(options))
