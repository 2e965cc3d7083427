/**
 * `RedisConnection`: one node-redis client for the Redis-backed cluster services (the
 * `NodeRegistry` and the `IndexService`), with the key prefix of the cluster. Commands and
 * Lua scripts run as Effects that fail with `ClusterStoreError` (and time out, so that a
 * Redis outage never blocks a caller); pub/sub goes over a second connection, as Redis
 * requires.
 *
 * Every key of the cluster starts with `prefix` (so that several clusters, or tests, share
 * one Redis). The scripts touch keys they compute from the prefix, which a single Redis
 * (not Redis Cluster) allows.
 *
 * @module
 */
import { createHash } from "node:crypto"
import { Context, Duration, Effect, Layer, Runtime, type Scope } from "effect"
import { createClient } from "redis"
import { ClusterStoreError } from "../services/NodeRegistry.js"

/** A Lua script and its SHA-1 (for `EVALSHA`). */
export interface LuaScript {
  readonly name: string
  readonly lua: string
  readonly sha: string
}

export const luaScript = (name: string, lua: string): LuaScript => ({
  name,
  lua,
  sha: createHash("sha1").update(lua).digest("hex")
})

/** An Index entry written over a connection: its Node and the `indexAdd` script's arguments. */
export interface IndexEntry {
  readonly node: string
  readonly args: ReadonlyArray<string>
}

export interface RedisConnectionShape {
  /** The key prefix of the cluster (ends with `:`). */
  readonly prefix: string
  /**
   * The Index entries this process wrote over this connection and has not removed since, by
   * producer (kept by `IndexServiceRedis`). Redis may lose them (a restart with nothing
   * persisted): `NodeRegistryRedis` writes a Node's again when the Node registers anew after
   * its registration was lost, whoever wrote them in this process (the Node's host or the
   * app's Mafalda Routers).
   */
  readonly indexEntries: Map<string, IndexEntry>
  /** Runs one command. */
  readonly command: (args: ReadonlyArray<string>) => Effect.Effect<unknown, ClusterStoreError>
  /** Runs a script (`EVALSHA`, loading it on `NOSCRIPT`) with the prefix as its first argument. */
  readonly script: (
    script: LuaScript,
    args: ReadonlyArray<string>
  ) => Effect.Effect<unknown, ClusterStoreError>
  /** Subscribes to a channel until the scope closes; `onMessage` runs for every message. */
  readonly subscribe: (
    channel: string,
    onMessage: (message: string) => void
  ) => Effect.Effect<void, ClusterStoreError, Scope.Scope>
}

export class RedisConnection extends Context.Tag("mafalda/RedisConnection")<
  RedisConnection,
  RedisConnectionShape
>() {}

export interface RedisConnectionOptions {
  /** `redis://host:port` (default `redis://127.0.0.1:6379`). */
  readonly url?: string | undefined
  /** The key prefix of the cluster (default `mafalda:`); a `:` is added when missing. */
  readonly prefix?: string | undefined
  /** How long one command may take before it fails (default 2 seconds). */
  readonly commandTimeout?: Duration.DurationInput | undefined
}

const storeError = (operation: string) => (cause: unknown) =>
  new ClusterStoreError({
    operation,
    message: cause instanceof Error ? cause.message : String(cause)
  })

/** Closes a client: politely, then for good if that fails or hangs. */
const closeClient = (client: { close(): Promise<void>; destroy(): void; isOpen: boolean }) =>
  Effect.tryPromise(() => (client.isOpen ? client.close() : Promise.resolve())).pipe(
    Effect.timeout("1 second"),
    Effect.catchAll(() => Effect.sync(() => client.destroy())),
    Effect.ignore
  )

export const layer = (
  options: RedisConnectionOptions = {}
): Layer.Layer<RedisConnection, ClusterStoreError> =>
  Layer.scoped(
    RedisConnection,
    Effect.gen(function* () {
      const url = options.url ?? "redis://127.0.0.1:6379"
      const raw = options.prefix ?? "mafalda:"
      const prefix = raw.endsWith(":") ? raw : `${raw}:`
      const timeout = Duration.decode(options.commandTimeout ?? Duration.seconds(2))
      const runFork = Runtime.runFork(yield* Effect.runtime<never>())
      const make = () => {
        const client = createClient({
          url,
          socket: {
            connectTimeout: Duration.toMillis(timeout),
            reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 1000)
          }
        })
        // node-redis reports every failed (re)connection as an "error" event: log it.
        client.on("error", (error: unknown) => {
          runFork(Effect.logDebug("Redis connection error", error))
        })
        return client
      }
      const client = make()
      yield* Effect.acquireRelease(
        Effect.tryPromise({
          try: () => client.connect(),
          catch: storeError("connect")
        }).pipe(
          // The acquisition is uninterruptible: without this, the timeout could not stop a
          // connect that node-redis keeps retrying, and a Redis that is down hung the caller.
          Effect.interruptible,
          Effect.timeoutFail({
            duration: timeout,
            onTimeout: () => new ClusterStoreError({ operation: "connect", message: `no answer from ${url}` })
          }),
          Effect.tapError(() => Effect.sync(() => client.destroy()))
        ),
        () => closeClient(client)
      )

      const command = (args: ReadonlyArray<string>): Effect.Effect<unknown, ClusterStoreError> =>
        Effect.tryPromise({
          try: () => client.sendCommand([...args]),
          catch: storeError(args[0] ?? "command")
        }).pipe(
          Effect.timeoutFail({
            duration: timeout,
            onTimeout: () =>
              new ClusterStoreError({
                operation: args[0] ?? "command",
                message: "Redis did not answer in time"
              })
          })
        )

      const script = (s: LuaScript, args: ReadonlyArray<string>): Effect.Effect<unknown, ClusterStoreError> =>
        command(["EVALSHA", s.sha, "0", prefix, ...args]).pipe(
          Effect.catchIf(
            (e) => e.message.includes("NOSCRIPT"),
            () => command(["EVAL", s.lua, "0", prefix, ...args])
          ),
          Effect.mapError((e) => new ClusterStoreError({ operation: s.name, message: e.message }))
        )

      // One subscriber connection, made when first needed.
      let subscriber: ReturnType<typeof make> | undefined
      const subscriberConnection = Effect.suspend(() => {
        if (subscriber !== undefined) return Effect.succeed(subscriber)
        const sub = make()
        subscriber = sub
        return Effect.tryPromise({ try: () => sub.connect(), catch: storeError("connect") }).pipe(
          Effect.as(sub)
        )
      })
      yield* Effect.addFinalizer(() => (subscriber === undefined ? Effect.void : closeClient(subscriber)))

      const subscribe = (channel: string, onMessage: (message: string) => void) =>
        Effect.gen(function* () {
          const sub = yield* subscriberConnection
          const listener = (message: string) => onMessage(message)
          yield* Effect.acquireRelease(
            Effect.tryPromise({
              try: () => sub.subscribe(channel, listener),
              catch: storeError("SUBSCRIBE")
            }),
            () =>
              Effect.tryPromise(() =>
                sub.isOpen ? sub.unsubscribe(channel, listener) : Promise.resolve()
              ).pipe(Effect.timeout("1 second"), Effect.ignore)
          )
        })

      return { prefix, indexEntries: new Map<string, IndexEntry>(), command, script, subscribe }
    })
  )
