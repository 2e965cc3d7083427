/**
 * The RPC transport between Mafalda Nodes: `@effect/rpc` over TCP with newline-delimited
 * JSON, the server on `NodeSocketServer`, the client on `NodeSocket.layerNet`.
 *
 * - The server's serialization checks every frame before `@effect/rpc` sees it: a frame
 *   that is not JSON, not one of the protocol's messages (checked with a `Schema`), names
 *   no known request, or is larger than `maxFrameBytes`, closes the connection. The payload
 *   of each request is then decoded with the request's own `Schema` by the server.
 * - `NodeAuth` checks the cluster's shared secret on every request (compared in constant
 *   time); the client adds it to every request.
 * - The server binds to 127.0.0.1 unless told otherwise.
 *
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto"
import { SocketServer } from "@effect/platform"
import { NodeSocket, NodeSocketServer } from "@effect/platform-node"
import { type Rpc, RpcClient, type RpcGroup, RpcMiddleware, RpcSerialization, RpcServer } from "@effect/rpc"
import type { RpcClientError } from "@effect/rpc/RpcClientError"
import { Context, Effect, Layer, Schema, type Scope } from "effect"
import { NodeAuth, NodeRpcs, nodeRpcTags, secretHeader, Unauthorized } from "./NodeRpcs.js"

/** The largest frame a server accepts (default 1 MiB). */
export const defaultMaxFrameBytes = 1024 * 1024

const Headers = Schema.Array(
  Schema.Tuple(Schema.String.pipe(Schema.maxLength(256)), Schema.String.pipe(Schema.maxLength(4096)))
).pipe(Schema.maxItems(64))
const RequestIdString = Schema.String.pipe(Schema.pattern(/^\d{1,19}$/))

/** What a client may send, as `@effect/rpc` encodes it. */
export const FromClientFrame = Schema.Union(
  Schema.Struct({
    _tag: Schema.Literal("Request"),
    id: RequestIdString,
    tag: Schema.String.pipe(Schema.maxLength(64)),
    payload: Schema.optional(Schema.Unknown),
    headers: Headers,
    traceId: Schema.optional(Schema.String.pipe(Schema.maxLength(64))),
    spanId: Schema.optional(Schema.String.pipe(Schema.maxLength(64))),
    sampled: Schema.optional(Schema.Boolean)
  }),
  Schema.Struct({ _tag: Schema.Literal("Ack"), requestId: RequestIdString }),
  Schema.Struct({ _tag: Schema.Literal("Interrupt"), requestId: RequestIdString }),
  Schema.Struct({ _tag: Schema.Literal("Ping") }),
  Schema.Struct({ _tag: Schema.Literal("Eof") })
)
const isFrame = Schema.is(FromClientFrame)

/**
 * A refused frame. Tagged as `@effect/rpc`'s own serialization error, which its socket
 * server answers by closing the connection.
 */
class FrameRefused extends Error {
  readonly _tag = "RpcSerializationError"
}

/** ndjson that refuses (closes the connection on) anything but well-formed requests of `tags`. */
export const validatingNdjson = (
  tags: ReadonlySet<string>,
  maxFrameBytes: number = defaultMaxFrameBytes
): RpcSerialization.RpcSerialization["Type"] => {
  const ndjson = RpcSerialization.makeNdjson({ maxBufferSize: maxFrameBytes })
  return RpcSerialization.RpcSerialization.of({
    contentType: ndjson.contentType,
    includesFraming: true,
    unsafeMake: () => {
      const parser = ndjson.unsafeMake()
      let refused = false
      return {
        decode: (bytes) => {
          if (refused) return []
          let frames: ReadonlyArray<unknown>
          try {
            frames = parser.decode(bytes)
          } catch (cause) {
            refused = true
            throw new FrameRefused(
              `malformed frame: ${cause instanceof Error ? cause.message : String(cause)}`
            )
          }
          for (const frame of frames) {
            if (!isFrame(frame) || (frame._tag === "Request" && !tags.has(frame.tag))) {
              refused = true
              throw new FrameRefused("not a request of this API")
            }
          }
          return frames
        },
        encode: parser.encode
      }
    }
  })
}

const digest = (secret: string) => createHash("sha256").update(secret).digest()

/** The server side of `NodeAuth`: the secret header must match, compared in constant time. */
export const layerAuthServer = (secret: string): Layer.Layer<NodeAuth> => {
  const expected = digest(secret)
  return Layer.succeed(
    NodeAuth,
    NodeAuth.of(({ headers }) => {
      const given = headers[secretHeader]
      return typeof given === "string" && timingSafeEqual(digest(given), expected)
        ? Effect.void
        : Effect.fail(new Unauthorized({ message: "missing or wrong cluster secret" }))
    })
  )
}

/** The client side of `NodeAuth`: adds the secret to every request. */
export const layerAuthClient = (secret: string) =>
  RpcMiddleware.layerClient(NodeAuth, ({ request }) =>
    Effect.succeed({ ...request, headers: { ...request.headers, [secretHeader]: secret } })
  )

export interface ListenOptions {
  /** Default 127.0.0.1: nothing listens beyond loopback unless asked. */
  readonly host?: string | undefined
  /** Default 0: any free port. */
  readonly port?: number | undefined
  readonly secret: string
  readonly maxFrameBytes?: number | undefined
}

/** Where a Node's RPC server listens. */
export class RpcAddress extends Context.Tag("mafalda/RpcAddress")<
  RpcAddress,
  { readonly host: string; readonly port: number }
>() {}

/** The handlers of the Node API (`NodeRpcs.toLayer(...)` provides them). */
export type NodeHandlers = Rpc.ToHandler<RpcGroup.Rpcs<typeof NodeRpcs>>

/** Serves the Node API on TCP with these handlers; provides the address it listens on. */
export const layerServer = <E, R>(
  options: ListenOptions,
  handlers: Layer.Layer<NodeHandlers, E, R>
): Layer.Layer<RpcAddress, E | SocketServer.SocketServerError, R> => {
  const socket = NodeSocketServer.layer({ host: options.host ?? "127.0.0.1", port: options.port ?? 0 })
  const address = Layer.effect(
    RpcAddress,
    Effect.map(SocketServer.SocketServer, (server) => {
      const a = server.address
      return a._tag === "TcpAddress" ? { host: a.hostname, port: a.port } : { host: a.path, port: 0 }
    })
  )
  const server = RpcServer.layer(NodeRpcs, { disableFatalDefects: true }).pipe(
    Layer.provide(handlers),
    Layer.provide(layerAuthServer(options.secret)),
    Layer.provide(RpcServer.layerProtocolSocketServer),
    Layer.provide(
      Layer.succeed(RpcSerialization.RpcSerialization, validatingNdjson(nodeRpcTags, options.maxFrameBytes))
    )
  )
  return Layer.merge(server, address).pipe(Layer.provide(socket))
}

/** A client of the Node API. */
export type NodeClient = RpcClient.FromGroup<typeof NodeRpcs, RpcClientError>

/**
 * A client of the Node API at `host:port`, for the scope. It connects lazily and
 * reconnects; a call in flight when the socket breaks fails with an `RpcClientError`.
 */
export const makeClient = (options: {
  readonly host: string
  readonly port: number
  readonly secret: string
}): Effect.Effect<NodeClient, never, Scope.Scope> =>
  Effect.gen(function* () {
    const context = yield* Layer.build(
      Layer.mergeAll(
        layerAuthClient(options.secret),
        RpcClient.layerProtocolSocket().pipe(
          // Connecting happens when the protocol runs (and again after a break), not here.
          Layer.provide(Layer.orDie(NodeSocket.layerNet({ host: options.host, port: options.port }))),
          Layer.provide(RpcSerialization.layerNdjson)
        )
      )
    )
    return yield* RpcClient.make(NodeRpcs).pipe(Effect.provide(context))
  })
