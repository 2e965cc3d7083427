/**
 * Mafalda in cluster mode: the services of `layerLocal` (Mafalda Routers over this
 * process' Workers), and this process as a Mafalda Node of the cluster over the same
 * Workers: registered in the cluster's Redis with its loads and lease, serving the Node API
 * (so that other Nodes pipe its producers), its producers in the Redis Index, and the
 * cluster's `Delegation` (transports placed on other Nodes when the core delegates).
 *
 * Loaded only by `createMafalda({ cluster })` (a dynamic `import()`), so that the embedded
 * path never loads Redis or `@effect/rpc`.
 *
 * @module
 */
import { randomUUID } from "node:crypto"
import { hostname } from "node:os"
import { Effect, Layer, Logger, Schedule } from "effect"
import * as ClusterLayer from "../layers/Cluster.js"
import * as IndexRedis from "../layers/IndexServiceRedis.js"
import { type LocalServices, logLevels, layer as mafaldaLayer } from "../layers/Mafalda.js"
import * as RegistryRedis from "../layers/NodeRegistryRedis.js"
import * as RedisConnection from "../layers/RedisConnection.js"
import * as ScaleDownHoldsLayer from "../layers/ScaleDownHolds.js"
import * as TrackerLayer from "../layers/TrackerService.js"
import { layerMediasoup } from "../layers/WorkerService.js"
import type { ClusterModeOptions, ResolvedMafaldaOptions } from "../router/MafaldaOptions.js"
import { layerServer, RpcAddress } from "../rpc/transport.js"
import { type ClusterStoreError, NodeRegistry, type WorkerLoad } from "../services/NodeRegistry.js"
import { TrackerService } from "../services/TrackerService.js"
import { WorkerService } from "../services/WorkerService.js"
import * as DelegationLayer from "./ClusterDelegation.js"
import * as NodeClientsLayer from "./NodeClients.js"
import * as NodeHostLayer from "./NodeHost.js"
import { NodeHost } from "./NodeHost.js"

/**
 * Registration, loads and lease of this Node: once now, then every heartbeat; deregistered
 * when the layer closes. (The same as `mafalda node`'s agent in `MafaldaNode.ts`.)
 */
const agent = (heartbeatMillis: number, announcedIp: string) =>
  Effect.gen(function* () {
    const registry = yield* NodeRegistry
    const workers = yield* WorkerService
    const tracker = yield* TrackerService
    const host = yield* NodeHost
    const rpc = yield* RpcAddress
    const address = `${rpc.host.includes(":") ? `[${rpc.host}]` : rpc.host}:${rpc.port}`
    const registration = { node: workers.node, address, announcedIp, cpus: workers.cpus }
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
      if (!(yield* registry.report(workers.node, yield* loads))) {
        yield* Effect.logWarning(
          "this Node was not registered any more (its lease ran out): registering again"
        )
        yield* register
      }
    })
    yield* register
    yield* beat.pipe(
      Effect.catchAll((e) => Effect.logWarning("the Node's report to the registry failed", e)),
      Effect.repeat(Schedule.spaced(heartbeatMillis)),
      Effect.interruptible,
      Effect.forkScoped
    )
    yield* Effect.addFinalizer(() => registry.deregister(workers.node).pipe(Effect.ignore))
  })

/** Everything for one machine that is also a Node of the cluster. */
export const layerCluster = (
  options: ResolvedMafaldaOptions,
  cluster: ClusterModeOptions
): Layer.Layer<LocalServices, ClusterStoreError | Error> => {
  const announcedIp = cluster.announcedIp ?? "127.0.0.1"
  const heartbeatMillis = cluster.heartbeatMillis ?? 1000
  const node = cluster.node ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`
  const workers = layerMediasoup({ node, cpus: options.cpus, maxProcesses: options.maxWorkerProcesses })
  const redis = RedisConnection.layer({ url: cluster.redis, prefix: cluster.prefix })
  const store = Layer.mergeAll(
    RegistryRedis.layerRedis({ leaseMillis: cluster.leaseMillis }),
    IndexRedis.layerRedis
  ).pipe(Layer.provideMerge(redis))
  const tracker = TrackerLayer.layerMemory({ interval: options.samplingInterval })
  const base = tracker.pipe(Layer.provideMerge(Layer.mergeAll(store, workers)))
  const withClients = NodeClientsLayer.layer({ secret: cluster.secret }).pipe(Layer.provideMerge(base))
  const nodeSide = Layer.mergeAll(
    NodeHostLayer.layer({ announcedIp, pipeListenIp: cluster.pipeListenIp }),
    DelegationLayer.layer({ syncMillis: cluster.syncMillis }),
    ScaleDownHoldsLayer.layer
  ).pipe(Layer.provideMerge(withClients))
  const served = layerServer(
    { host: cluster.listenHost, port: cluster.listenPort, secret: cluster.secret },
    NodeHostLayer.handlersLayer
  ).pipe(Layer.provideMerge(nodeSide))
  const shell = Layer.mergeAll(
    Layer.scopedDiscard(agent(heartbeatMillis, announcedIp)),
    ClusterLayer.layer({ policy: options.policy, scaleDownInterval: options.scaleDownInterval })
  ).pipe(Layer.provideMerge(served))
  return mafaldaLayer({
    workerSettings: options.workerSettings,
    webRtcServerPorts: options.webRtcServerPorts,
    relocation: options.relocation
  }).pipe(Layer.provideMerge(shell), Layer.provide(Logger.minimumLogLevel(logLevels[options.logLevel])))
}
