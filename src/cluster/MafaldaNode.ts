/**
 * A Mafalda Node: a process (or part of one) that owns local mediasoup Workers, registers
 * itself in the cluster's `NodeRegistry`, reports its Workers' loads with its lease, and
 * serves the Node API over RPC (`src/rpc`). `mafalda node` runs one; `startNode` is the
 * library call for apps that embed one.
 *
 * Engines: Redis (node-redis) for the registry and the Index, `@effect/rpc` over TCP for
 * the API, real mediasoup Workers (`layerMediasoup`) sampled by the in-memory
 * `TrackerService`.
 *
 * Draining (`drain`, SIGTERM for `mafalda node`): the Node takes no new placement, is
 * marked `draining` in the registry (so no pick chooses it), and `drained` waits until no
 * client transport is left, or a timeout passes; closing then deregisters it.
 *
 * Logs go through the project's logger (`src/ops/logging.ts`): `MAFALDA_LOG_LEVEL` and
 * `MAFALDA_LOG_FORMAT` apply as in an app.
 *
 * Idle Workers: a Worker started for a client (`StartWorker`) that has had no Router for
 * `idleGraceMillis` is closed (see `NodeHost.ts`); the next load report leaves it out.
 *
 * A Redis outage: the Node keeps serving what it has (the heartbeat fails and is logged);
 * once Redis answers again, its report finds it unregistered (its lease ran out) and it
 * registers anew and writes its producers to the Index again.
 *
 * @module
 */

import { randomUUID } from "node:crypto"
import { hostname } from "node:os"
import { Context, Duration, Effect, Exit, Layer, Schedule, Scope } from "effect"
import type { NodeId } from "../core/Ids.js"
import * as IndexRedis from "../layers/IndexServiceRedis.js"
import * as RegistryRedis from "../layers/NodeRegistryRedis.js"
import * as RedisConnection from "../layers/RedisConnection.js"
import * as TrackerLayer from "../layers/TrackerService.js"
import { layerMediasoup } from "../layers/WorkerService.js"
import * as Logging from "../ops/logging.js"
import { layerServer, RpcAddress } from "../rpc/transport.js"
import { type ClusterStoreError, NodeRegistry, type WorkerLoad } from "../services/NodeRegistry.js"
import { TrackerService } from "../services/TrackerService.js"
import { WorkerService } from "../services/WorkerService.js"
import * as NodeClientsLayer from "./NodeClients.js"
import * as NodeHostLayer from "./NodeHost.js"
import { NodeHost } from "./NodeHost.js"

export interface NodeOptions {
  /** `redis://host:port` of the cluster's Redis (default `redis://127.0.0.1:6379`). */
  readonly redis?: string | undefined
  /** The cluster's key prefix in Redis (default `mafalda:`). */
  readonly prefix?: string | undefined
  /** The cluster's shared secret: every RPC must carry it. Required. */
  readonly secret: string
  /** Where the RPC server listens (default 127.0.0.1, any free port). */
  readonly listenHost?: string | undefined
  readonly listenPort?: number | undefined
  /** The IP other Nodes and clients reach this Node's media on (default 127.0.0.1). */
  readonly announcedIp?: string | undefined
  /** The IP PipeTransports listen on (default: `announcedIp`). */
  readonly pipeListenIp?: string | undefined
  /** The Node's id (default: hostname, pid and a random suffix). */
  readonly node?: string | undefined
  /** CPUs this Node may use for Workers (default: all). */
  readonly cpus?: number | undefined
  /** How often loads are sampled and reported, renewing the lease (default 1 s). */
  readonly heartbeatMillis?: number | undefined
  /** How long the lease lasts without a report (default 3 s). */
  readonly leaseMillis?: number | undefined
  /**
   * How long a Worker this Node started for a client may have no Router before the Node
   * closes it (default 30 s, like the embedded scale-down's grace; 0: never). No idle
   * Worker is kept warm: the clients start one again when they need it.
   */
  readonly idleGraceMillis?: number | undefined
  /**
   * The Node's logs: minimum level and format, as for a Mafalda instance (`MAFALDA_LOG_LEVEL`
   * and `MAFALDA_LOG_FORMAT` win; default `warning`, `logfmt` on stderr).
   */
  readonly logging?: Logging.LoggingOptions | undefined
}

/** What a running Node offers its owner. */
export interface NodeHandleShape {
  readonly node: NodeId
  /** `host:port` of the RPC server. */
  readonly address: string
  /** Stops new placements here and marks the Node draining in the registry. */
  readonly drain: Effect.Effect<void>
  /** Whether the Node drains (by `drain`, or by the `Drain` RPC). */
  readonly draining: Effect.Effect<boolean>
  /** After `drain`: waits until no client transport is left, or `timeout` passes; true when empty. */
  readonly drained: (timeout: Duration.DurationInput) => Effect.Effect<boolean>
}

export class NodeHandle extends Context.Tag("mafalda/NodeHandle")<NodeHandle, NodeHandleShape>() {}

/** An RPC address as `host:port` (an IPv6 host in brackets). */
export const addressText = (rpc: { readonly host: string; readonly port: number }): string =>
  `${rpc.host.includes(":") ? `[${rpc.host}]` : rpc.host}:${rpc.port}`

/**
 * Registration, loads and lease of this Node: once now, then every heartbeat; deregistered
 * when its scope closes. Used by `mafalda node` (`layer`) and by cluster mode
 * (`ClusterMafalda.ts`).
 */
export const agent = (options: {
  readonly heartbeatMillis: number
  readonly address: string
  readonly announcedIp: string
}) =>
  Effect.gen(function* () {
    const registry = yield* NodeRegistry
    const workers = yield* WorkerService
    const tracker = yield* TrackerService
    const host = yield* NodeHost
    const registration = {
      node: workers.node,
      address: options.address,
      announcedIp: options.announcedIp,
      cpus: workers.cpus,
      ...(workers.maxProcesses === undefined ? {} : { maxWorkerProcesses: workers.maxProcesses })
    }
    const register = Effect.gen(function* () {
      yield* registry.register(registration)
      if (yield* host.draining) yield* registry.setState(workers.node, "draining")
      yield* host.republish
    })
    const loads = Effect.gen(function* () {
      const latest = yield* tracker.latest
      return (yield* workers.workers).map(
        (w): WorkerLoad => ({ worker: w.id, settings: w.settings, load: latest.get(w.id)?.load ?? 0 })
      )
    })
    const beat: Effect.Effect<void, ClusterStoreError> = Effect.gen(function* () {
      const known = yield* registry.report(workers.node, yield* loads)
      if (!known) {
        yield* Effect.logWarning(
          "this Node was not registered any more (its lease ran out): registering again"
        )
        yield* register
      }
    })
    yield* register
    yield* beat.pipe(
      Effect.catchAll((e) => Effect.logWarning("the Node's report to the registry failed", e)),
      Effect.repeat(Schedule.spaced(options.heartbeatMillis)),
      Effect.interruptible,
      Effect.forkScoped
    )
    // Leaving: deregistered (its Index entries go with it) before the Workers close.
    yield* Effect.addFinalizer(() => registry.deregister(workers.node).pipe(Effect.ignore))
  })

const defaultNodeId = () => `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`

/** A Node as a layer: closing it drains nothing, it deregisters and closes every Worker. */
export const layer = (options: NodeOptions): Layer.Layer<NodeHandle, ClusterStoreError | Error> => {
  const announcedIp = options.announcedIp ?? "127.0.0.1"
  const heartbeatMillis = options.heartbeatMillis ?? 1000
  const workers = layerMediasoup({ node: options.node ?? defaultNodeId(), cpus: options.cpus })
  const tracker = TrackerLayer.layerMemory({ interval: Duration.millis(heartbeatMillis) })
  const redis = RedisConnection.layer({ url: options.redis, prefix: options.prefix })
  const store = Layer.mergeAll(
    RegistryRedis.layerRedis({ leaseMillis: options.leaseMillis }),
    IndexRedis.layerRedis
  ).pipe(Layer.provideMerge(redis))
  const services = NodeHostLayer.layer({
    announcedIp,
    pipeListenIp: options.pipeListenIp,
    idleGraceMillis: options.idleGraceMillis ?? 30_000
  }).pipe(
    Layer.provideMerge(NodeClientsLayer.layer({ secret: options.secret })),
    Layer.provideMerge(tracker),
    Layer.provideMerge(Layer.mergeAll(store, workers))
  )
  const server = layerServer(
    { host: options.listenHost, port: options.listenPort, secret: options.secret },
    NodeHostLayer.handlersLayer
  ).pipe(Layer.provideMerge(services))
  const handle = Layer.scoped(
    NodeHandle,
    Effect.gen(function* () {
      const address = yield* RpcAddress
      const hostService = yield* NodeHost
      const text = addressText(address)
      yield* agent({ heartbeatMillis, address: text, announcedIp })
      const handle: NodeHandleShape = {
        node: hostService.node,
        address: text,
        drain: hostService.drain,
        draining: hostService.draining,
        drained: (timeout) =>
          hostService.clientTransports.pipe(
            Effect.repeat({ until: (n) => n === 0, schedule: Schedule.spaced("100 millis") }),
            Effect.as(true),
            Effect.timeoutTo({ duration: timeout, onSuccess: (x) => x, onTimeout: () => false })
          )
      }
      return handle
    })
  )
  return handle.pipe(Layer.provide(server), Layer.provide(Logging.layer(options.logging)))
}

/** A running Node for Promise code: `close` deregisters it and closes its Workers. */
export interface RunningNode {
  readonly node: string
  readonly address: string
  /** Whether the Node drains (by `drainAndClose`, or by the `Drain` RPC). */
  readonly draining: () => Promise<boolean>
  /** Drains (no new placements), waits until empty or `timeoutMillis`, then closes. */
  readonly drainAndClose: (timeoutMillis?: number) => Promise<{ readonly empty: boolean }>
  readonly close: () => Promise<void>
}

/** Starts a Node (the library call behind `mafalda node`). */
export const startNode = async (options: NodeOptions): Promise<RunningNode> => {
  const scope = Effect.runSync(Scope.make())
  const context = await Effect.runPromise(Layer.buildWithScope(layer(options), scope)).catch(
    async (error) => {
      await Effect.runPromise(Scope.close(scope, Exit.void))
      throw error
    }
  )
  const handle = Context.get(context, NodeHandle)
  let closing: Promise<void> | undefined
  const close = () => {
    closing ??= Effect.runPromise(Scope.close(scope, Exit.void))
    return closing
  }
  return {
    node: handle.node,
    address: handle.address,
    close,
    draining: () => Effect.runPromise(handle.draining),
    drainAndClose: async (timeoutMillis = 30_000) => {
      const empty = await Effect.runPromise(
        handle.drain.pipe(Effect.andThen(handle.drained(Duration.millis(timeoutMillis))))
      )
      await close()
      return { empty }
    }
  }
}
