/**
 * What the multi-process tests share: waiting for a condition, whether an address refuses
 * connections, and an app in cluster mode whose own Node is full after one transport (one
 * CPU, a transport cost of 40 %, its load not sampled during the test: measured CPU would
 * replace the costs charged), so that the core delegates its next transports to other Nodes.
 */
import { Effect, type Scope } from "effect"
import { parseAddress } from "../../src/cluster/NodeClients.js"
import { type CreateMafaldaOptions, createMafalda, type MafaldaInstance } from "../../src/promise.js"
import { refusedAt } from "./checks.js"
import { redisUrl } from "./redisSupport.js"

export { until } from "./checks.js"

/** Whether a TCP connection to `address` (`host:port`) is refused. */
export const refused = (address: string) => {
  const { host, port } = parseAddress(address)!
  return refusedAt(host, port)
}

export interface FullClusterApp {
  readonly mafalda: MafaldaInstance
  /** Closes the app once (later calls, and the scope's finalizer, do nothing more). */
  readonly closeApp: Effect.Effect<void>
}

/**
 * An app in cluster mode named `node` on `prefix`, its one Worker full after one transport;
 * `options` and `cluster` add to (or override) the defaults. Closed with the scope.
 */
export const fullClusterApp = (args: {
  readonly secret: string
  readonly prefix: string
  readonly node: string
  readonly options?: Omit<CreateMafaldaOptions, "cluster">
  readonly cluster?: Partial<NonNullable<CreateMafaldaOptions["cluster"]>>
}): Effect.Effect<FullClusterApp, never, Scope.Scope> =>
  Effect.gen(function* () {
    const mafalda = yield* Effect.promise(() =>
      createMafalda({
        cpus: 1,
        watermark: 60,
        costs: { transport: 40 },
        samplingInterval: 600_000,
        ...args.options,
        cluster: {
          secret: args.secret,
          redis: redisUrl,
          prefix: args.prefix,
          node: args.node,
          heartbeatMillis: 250,
          syncMillis: 100,
          ...args.cluster
        }
      })
    )
    let closed = false
    const closeApp = Effect.promise(async () => {
      if (closed) return
      closed = true
      await mafalda.close()
    })
    yield* Effect.addFinalizer(() => closeApp)
    return { mafalda, closeApp }
  })
