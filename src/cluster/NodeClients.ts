/**
 * `NodeClients`: RPC clients to the other Nodes of the cluster, one per Node, made when
 * first needed from the address the `NodeRegistry` has for it (never from an address a
 * caller supplies), and closed when the Node leaves the registry or the layer closes.
 *
 * @module
 */
import { Context, Effect, ExecutionStrategy, Exit, Layer, Option, Scope, Stream } from "effect"
import type { NodeId } from "../core/Ids.js"
import { UnknownObjectError } from "../rpc/NodeRpcs.js"
import { makeClient, type NodeClient } from "../rpc/transport.js"
import { type ClusterStoreError, NodeRegistry } from "../services/NodeRegistry.js"

export interface NodeClientsShape {
  /** The client of a registered Node; fails when the registry does not know it. */
  readonly get: (node: NodeId) => Effect.Effect<NodeClient, UnknownObjectError | ClusterStoreError>
  /** Drops (and closes) the client of a Node, e.g. once it is known dead. */
  readonly drop: (node: NodeId) => Effect.Effect<void>
}

export class NodeClients extends Context.Tag("mafalda/NodeClients")<NodeClients, NodeClientsShape>() {}

/** `host:port` (IPv6 hosts in brackets). */
export const parseAddress = (
  address: string
): { readonly host: string; readonly port: number } | undefined => {
  const match = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(address)
  if (match === null) return undefined
  const port = Number(match[2])
  return port > 0 && port < 65536 ? { host: match[1]!, port } : undefined
}

export const layer = (options: { readonly secret: string }): Layer.Layer<NodeClients, never, NodeRegistry> =>
  Layer.scoped(
    NodeClients,
    Effect.gen(function* () {
      const registry = yield* NodeRegistry
      const scope = yield* Effect.scope
      const clients = new Map<NodeId, { readonly client: NodeClient; readonly scope: Scope.CloseableScope }>()

      const drop = (node: NodeId) =>
        Effect.suspend(() => {
          const entry = clients.get(node)
          clients.delete(node)
          return entry === undefined ? Effect.void : Scope.close(entry.scope, Exit.void)
        })

      yield* Stream.fromQueue(yield* registry.subscribe).pipe(
        Stream.runForEach((gone) => drop(gone.node)),
        Effect.interruptible,
        Effect.forkScoped
      )

      const creating = yield* Effect.makeSemaphore(1)
      const create = (node: NodeId) =>
        Effect.gen(function* () {
          const record = yield* registry.node(node)
          const address = Option.flatMap(record, (r) => Option.fromNullable(parseAddress(r.address)))
          if (Option.isNone(address)) return yield* new UnknownObjectError({ what: "Node", id: node })
          const again = clients.get(node)
          if (again !== undefined) return again.client
          const child = yield* Scope.fork(scope, ExecutionStrategy.sequential)
          const client = yield* makeClient({ ...address.value, secret: options.secret }).pipe(
            Scope.extend(child)
          )
          clients.set(node, { client, scope: child })
          return client
        }).pipe(creating.withPermits(1))

      const get = (node: NodeId) =>
        Effect.suspend(() => {
          const known = clients.get(node)
          return known === undefined ? create(node) : Effect.succeed(known.client)
        })

      return { get, drop }
    })
  )
