/**
 * A Mafalda instance built from the Effect layers with the live view on top (port 0), and
 * a broadcast with real RTP through one of its Mafalda Routers: the set-up of the live view
 * and metrics tests. The options make each Worker take two transports: the producer's
 * ingress and a first listener share Worker 1; a second listener lands on Worker 2, which
 * the producer is piped to.
 */
import { Effect, Either, Layer, ManagedRuntime } from "effect"
import * as MafaldaLayer from "../../src/layers/Mafalda.js"
import * as OpsServerLayer from "../../src/layers/OpsServer.js"
import { resolveMafaldaOptions } from "../../src/router/MafaldaOptions.js"
import { Mafalda } from "../../src/services/Mafalda.js"
import { OpsServer } from "../../src/services/OpsServer.js"
import { type Broadcast, listen, makeResources, opus, startBroadcast } from "../router/support.js"

export const startOpsMafalda = async () => {
  const resolved = resolveMafaldaOptions({
    maxWorkers: 2,
    watermark: 50,
    // A transport costs 24 %: the producer's transport and one listener's fit on one Worker
    // (load plus what a transport brings at or under the 50 % watermark), a second listener's
    // goes to the other.
    costs: { transport: 24 },
    samplingInterval: 3_600_000,
    idleGraceMillis: 3_600_000
  })
  if (Either.isLeft(resolved)) throw resolved.left
  const runtime = ManagedRuntime.make(
    OpsServerLayer.layer({ port: 0, eventInterval: "100 millis" }).pipe(
      Layer.provideMerge(MafaldaLayer.layerFromResolved(resolved.right))
    )
  )
  const { mafalda, ops } = await runtime.runPromise(Effect.all({ mafalda: Mafalda, ops: OpsServer }))
  const resources = makeResources()
  const router = await runtime.runPromise(mafalda.createRouter({ mediaCodecs: [opus] }))
  const broadcast: Broadcast = await startBroadcast(resources, router)
  return {
    runtime,
    mafalda,
    ops,
    router,
    resources,
    broadcast,
    status: () => runtime.runPromise(mafalda.status),
    listen: () => listen(resources, router, broadcast.producer.id),
    close: async () => {
      await runtime.dispose()
      await resources.close()
    }
  }
}
export type OpsMafalda = Awaited<ReturnType<typeof startOpsMafalda>>
