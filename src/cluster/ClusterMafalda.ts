/**
 * Mafalda in cluster mode: the services of `layerLocal` (Mafalda Routers over this
 * process' Workers), and this process as a Mafalda Node of the cluster over the same
 * Workers: registered in the cluster's Redis with its loads and lease, serving the Node API
 * (so that other Nodes pipe its producers), its producers in the Redis Index, the
 * cluster's `Delegation` (transports placed on other Nodes when the core delegates), and
 * `ClusterPipes` (producers of other processes piped into its Routers: `pipeFromCluster`).
 *
 * Loaded only by `createMafalda({ cluster })` (a dynamic `import()`), so that the embedded
 * path never loads Redis or `@effect/rpc`.
 *
 * @module
 */
import { randomUUID } from "node:crypto"
import { hostname } from "node:os"
import { Effect, Layer, Logger, Stream } from "effect"
import type { types } from "mediasoup"
import * as ClusterLayer from "../layers/Cluster.js"
import * as IndexRedis from "../layers/IndexServiceRedis.js"
import { type LocalServices, logLevels, layer as mafaldaLayer } from "../layers/Mafalda.js"
import * as RegistryRedis from "../layers/NodeRegistryRedis.js"
import * as RedisConnection from "../layers/RedisConnection.js"
import * as ScaleDownHoldsLayer from "../layers/ScaleDownHolds.js"
import * as TrackerLayer from "../layers/TrackerService.js"
import { layerMediasoup } from "../layers/WorkerService.js"
import { ClusterPipes, type ClusterPipesShape } from "../router/MafaldaContext.js"
import type { ClusterModeOptions, ResolvedMafaldaOptions } from "../router/MafaldaOptions.js"
import { layerServer, RpcAddress } from "../rpc/transport.js"
import { WorkerServiceError } from "../services/errors.js"
import type { ClusterStoreError } from "../services/NodeRegistry.js"
import * as DelegationLayer from "./ClusterDelegation.js"
import { addressText, agent } from "./MafaldaNode.js"
import * as NodeClientsLayer from "./NodeClients.js"
import { NodeClients } from "./NodeClients.js"
import * as NodeHostLayer from "./NodeHost.js"

/** The message of a failure of a call to another Node. */
const messageOf = (e: unknown): string =>
  typeof e === "object" && e !== null && "message" in e ? String(e.message) : String(e)

/**
 * `ClusterPipes` over the Node API: `PipeFrom` asked of the destination's Node (which drives
 * the handshake with the origin's, SRTP on), then `PipeHold` held there for as long as the
 * app keeps the pipe (see `MafaldaRouter.pipeFromCluster`).
 */
export const layerClusterPipes: Layer.Layer<ClusterPipes, never, NodeClients> = Layer.effect(
  ClusterPipes,
  Effect.map(NodeClients, (clients): ClusterPipesShape => {
    const open: ClusterPipesShape["open"] = (producer, from, to) => {
      const operation = `pipe from Node ${from.node} to Node ${to.node}`
      return clients.get(to.node).pipe(
        Effect.flatMap((client) =>
          client.PipeFrom({ producer, origin: from.node, from: from.router, to: to.router })
        ),
        Effect.map((data) => ({
          kind: data.kind,
          rtpParameters: data.rtpParameters as types.RtpParameters | undefined,
          paused: data.paused ?? false,
          srtp: data.srtp
        })),
        Effect.mapError((e) => new WorkerServiceError({ operation, message: messageOf(e) }))
      )
    }
    const hold: ClusterPipesShape["hold"] = (producer, to) =>
      Stream.unwrap(
        Effect.map(clients.get(to.node), (client) => client.PipeHold({ producer, router: to.router }))
      ).pipe(
        Stream.takeWhile((signal) => signal !== "close"),
        Stream.map((signal) => signal === "pause"),
        Stream.catchAllCause((cause) =>
          Stream.fromEffect(Effect.logDebug(`the hold of a pipe into Node ${to.node} ended`, cause)).pipe(
            Stream.drain
          )
        )
      )
    return { open, hold }
  })
)

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
    // The host holds what other Nodes' leases feed from in the instance's scale-down.
    NodeHostLayer.layer({ announcedIp, pipeListenIp: cluster.pipeListenIp }).pipe(
      Layer.provideMerge(ScaleDownHoldsLayer.layer)
    ),
    DelegationLayer.layer({ syncMillis: cluster.syncMillis }),
    layerClusterPipes
  ).pipe(Layer.provideMerge(withClients))
  const served = layerServer(
    { host: cluster.listenHost, port: cluster.listenPort, secret: cluster.secret },
    NodeHostLayer.handlersLayer
  ).pipe(Layer.provideMerge(nodeSide))
  const shell = Layer.mergeAll(
    Layer.scopedDiscard(
      Effect.flatMap(RpcAddress, (rpc) => agent({ heartbeatMillis, address: addressText(rpc), announcedIp }))
    ),
    ClusterLayer.layer({ policy: options.policy, scaleDownInterval: options.scaleDownInterval })
  ).pipe(Layer.provideMerge(served))
  return mafaldaLayer({
    workerSettings: options.workerSettings,
    webRtcServerPorts: options.webRtcServerPorts,
    relocation: options.relocation
  }).pipe(Layer.provideMerge(shell), Layer.provide(Logger.minimumLogLevel(logLevels[options.logLevel])))
}
