/**
 * A pipe another Node leases from a Router of an app's own Mafalda instance (cluster mode)
 * keeps that Router, and the pipe into it, from the app's scale-down (README, "Known
 * problems" before this): the app (this process, a Node of the cluster with two Workers) has a
 * producer fed with real RTP on its first Worker's Router and a consumer on its second
 * Worker's, which receives the producer through the instance's own local pipe. A
 * `mafalda node` C is asked by another client (another app, a raw RPC client here) to pipe
 * the producer from that second Router into a Router of C, and consumes it there. The app
 * then lets go of everything it had on its second Worker: its scale-down would close the
 * Router and the local pipe, ending C's pipe, but the lease holds them; the other client's
 * consumer on C still receives RTP. When that client lets go, the lease ends and the app's
 * scale-down closes the Router. Nothing is left afterwards.
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, ExecutionStrategy, Exit, HashMap, Scope } from "effect"
import { parseAddress } from "../../src/cluster/NodeClients.js"
import { NodeId, type RouterId, TransportId } from "../../src/core/Ids.js"
import { lookup } from "../../src/core/Snapshot.js"
import { makeRtpReceiver } from "../../src/media/rtp.js"
import { makeClient } from "../../src/rpc/transport.js"
import { fedProducer } from "./appMedia.js"
import { fullClusterApp, until } from "./clusterSupport.js"
import { nodeArgs, nodeProcessPool } from "./nodeProcesses.js"
import { consumerOn, type NodeUnderTest, routerOn, sendAndCount } from "./pipeScenario.js"
import { cleanPrefix, clusterStore, keysOf, redisAvailable, redisUrl, testPrefix } from "./redisSupport.js"

const secret = "own-upstream-secret-0123456789"
const prefix = testPrefix("own-upstream")
const nodes = nodeProcessPool()

const opus = { kind: "audio", mimeType: "audio/opus", clockRate: 48000, channels: 2 } as const
const listenInfo = { protocol: "udp", ip: "127.0.0.1" } as const
const _payloadType = 111

afterAll(async () => {
  await nodes.killAll()
  if (redisAvailable) await cleanPrefix(prefix)
})

describe.skipIf(!redisAvailable)("a pipe another Node leases from an app's own Router", () => {
  it.scopedLive("keeps that Router and the pipe into it from the app's scale-down until the lease ends", () =>
    Effect.gen(function* () {
      const c = yield* Effect.promise(() =>
        nodes.start(nodeArgs({ redis: redisUrl, prefix, node: "node-c", cpus: 1, drainTimeoutSeconds: 1 }), {
          MAFALDA_SECRET: secret
        })
      )
      const appScope = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
      // Two Workers, each full after one transport; a short idle grace and frequent
      // scale-down rounds, so that what the app no longer uses closes within seconds.
      const { mafalda, closeApp } = yield* Scope.extend(
        fullClusterApp({
          secret,
          prefix,
          node: "own-app",
          options: { cpus: 2, idleGraceMillis: 300, scaleDownInterval: 200 }
        }),
        appScope
      )
      const router = yield* Effect.promise(() => mafalda.createRouter({ mediaCodecs: [opus] }))
      const ssrc = 0x0b5e
      const { ingress, producer, sender } = yield* fedProducer(router, ssrc)
      // A consumer of the app's on its second Worker: the producer piped there locally.
      const receiver = yield* makeRtpReceiver()
      const egress = yield* Effect.promise(() =>
        router.createPlainTransport({ listenInfo, rtcpMux: true, comedia: false })
      )
      yield* Effect.promise(() => egress.connect({ ip: "127.0.0.1", port: receiver.local.port }))
      const local = yield* Effect.promise(() =>
        egress.consume({ producerId: producer.id, rtpCapabilities: router.rtpCapabilities })
      )
      const routerOf = (id: string) => lookup(mafalda.snapshot().transports, TransportId.make(id))?.router
      const first = routerOf(ingress.id)!
      const second = routerOf(egress.id)!
      expect(first).toBeDefined()
      expect(second).toBeDefined()
      expect(second).not.toBe(first)
      const localFirst = yield* sendAndCount(sender, receiver, {
        ssrc,
        count: 20,
        first: 0,
        expectedSsrc: local.rtpParameters.encodings?.[0]?.ssrc ?? 0
      })
      expect(localFirst.intact).toBe(20)

      // Another client asks C to pipe the producer from the app's second Router, and consumes it on C.
      const other: NodeUnderTest = {
        node: NodeId.make(c.node),
        client: yield* makeClient({ ...parseAddress(c.address)!, secret })
      }
      const rc = yield* routerOn(other)
      const pipe = yield* other.client.PipeFrom({
        producer: producer.id as never,
        origin: NodeId.make("own-app"),
        from: second as RouterId,
        to: rc.id
      })
      expect(pipe).toMatchObject({ producer: producer.id, from: second, to: rc.id })
      const onC = yield* consumerOn(other, rc, producer.id)
      const expectedSsrc = onC.consumer.rtpParameters.encodings?.[0]?.ssrc ?? 0
      const before = yield* sendAndCount(sender, onC.receiver, { ssrc, count: 30, first: 100, expectedSsrc })
      expect(before.intact).toBe(30)

      // The app lets go of its second Worker's consumer: its scale-down would close the
      // local pipe and the Router there; the lease from C keeps both.
      egress.close()
      yield* Effect.sleep("2 seconds")
      expect(HashMap.has(mafalda.snapshot().routers, second)).toBe(true)
      const held = yield* sendAndCount(sender, onC.receiver, { ssrc, count: 50, first: 200, expectedSsrc })
      expect(held.intact).toBe(50)

      // The other client lets go on C: its pipe closes, the lease ends, the app's
      // scale-down closes its second Router.
      yield* other.client.Close({ what: "transport", id: onC.egress.id })
      yield* other.client.ClosePipe({ producer: producer.id as never, router: rc.id })
      expect(yield* until(() => !HashMap.has(mafalda.snapshot().routers, second), 10_000)).toBe(true)
      expect(HashMap.has(mafalda.snapshot().routers, first)).toBe(true)
      yield* other.client.CloseRouter({ router: rc.id })

      // Nothing left: the app closed, C stopped, no key of the prefix.
      ingress.close()
      yield* closeApp
      yield* Scope.close(appScope, Exit.void)
      c.process.child.kill("SIGTERM")
      const exit = yield* Effect.promise(() => c.process.exited)
      expect(exit.code).toBe(0)
      expect(yield* until(async () => (await keysOf(prefix)).length === 0, 5000)).toBe(true)
    })
  )

  it.scopedLive(
    "keeps its own Router, and the pipe into it, while another client holds that Router and consumes there",
    () =>
      Effect.gen(function* () {
        const appScope = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
        const { mafalda, closeApp } = yield* Scope.extend(
          fullClusterApp({
            secret,
            prefix,
            node: "own-app-2",
            options: { cpus: 2, idleGraceMillis: 300, scaleDownInterval: 200 }
          }),
          appScope
        )
        const router = yield* Effect.promise(() => mafalda.createRouter({ mediaCodecs: [opus] }))
        const ssrc = 0x0b5f
        const { ingress, producer, sender } = yield* fedProducer(router, ssrc)
        const egress = yield* Effect.promise(() =>
          router.createPlainTransport({ listenInfo, rtcpMux: true, comedia: false })
        )
        yield* Effect.promise(() =>
          egress.consume({ producerId: producer.id, rtpCapabilities: router.rtpCapabilities })
        )
        const snapshot = mafalda.snapshot()
        const second = lookup(snapshot.transports, TransportId.make(egress.id))!.router
        const secondWorker = lookup(snapshot.routers, second)!.worker
        expect(second).not.toBe(lookup(snapshot.transports, TransportId.make(ingress.id))!.router)

        // Another client of the app's own Node asks for a Router on that Worker: the app's own
        // (one Router per Worker and settings), and consumes the producer there.
        const { registry } = yield* clusterStore(prefix)
        const record = (yield* registry.nodes).find((n) => n.node === "own-app-2")!
        const other: NodeUnderTest = {
          node: NodeId.make("own-app-2"),
          client: yield* makeClient({ ...parseAddress(record.address)!, secret })
        }
        const shared = yield* other.client.CreateRouter({
          worker: secondWorker,
          settings: { mediaCodecs: [opus] }
        })
        expect(shared.id).toBe(second)
        const there = yield* consumerOn(other, shared, producer.id)
        const expectedSsrc = there.consumer.rtpParameters.encodings?.[0]?.ssrc ?? 0
        const before = yield* sendAndCount(sender, there.receiver, {
          ssrc,
          count: 30,
          first: 0,
          expectedSsrc
        })
        expect(before.intact).toBe(30)

        // The app lets go of its consumer there: its scale-down keeps the Router and the pipe
        // into it for the other client.
        egress.close()
        yield* Effect.sleep("2 seconds")
        expect(HashMap.has(mafalda.snapshot().routers, second)).toBe(true)
        const held = yield* sendAndCount(sender, there.receiver, {
          ssrc,
          count: 50,
          first: 100,
          expectedSsrc
        })
        expect(held.intact).toBe(50)

        // The other client lets go: the app's scale-down closes the Router.
        yield* other.client.CloseRouter({ router: shared.id })
        expect(yield* until(() => !HashMap.has(mafalda.snapshot().routers, second), 10_000)).toBe(true)
        ingress.close()
        yield* closeApp
        yield* Scope.close(appScope, Exit.void)
        expect(yield* until(async () => (await keysOf(prefix)).length === 0, 5000)).toBe(true)
      })
  )
})
