/**
 * A real browser across two Mafalda Nodes: this test process is the app, a Mafalda instance
 * in cluster mode (its own Node, one CPU, a high transport cost so that its one Worker is
 * full after one transport), and Node B is a `mafalda node` process. Chromium
 * (mediasoup-client, fake camera and microphone) sends through a WebRtcTransport on the
 * app's Node; its receive transport is delegated to B (a RemoteTransport with B's ICE and
 * DTLS parameters), and its consumers there receive the producers piped from the app's
 * Node. Video frames keep being decoded in the page. Afterwards no Node process, Worker or
 * Redis key of the prefix is left.
 */
import { afterAll, describe, expect } from "@effect/vitest"
import { Effect, HashMap, Schedule } from "effect"
import { parseAddress } from "../../src/cluster/NodeClients.js"
import { RemoteTransport } from "../../src/cluster/RemoteTransport.js"
import { NodeId } from "../../src/core/Ids.js"
import { opusCodec, processExists, vp8Codec } from "../../src/media/worker.js"
import { makeClient } from "../../src/rpc/transport.js"
import {
  awaitMediaFlowing,
  expectPageReceivedBoth,
  itWithChromium,
  loadTestPage,
  MediaNotFlowing,
  openAndRunClient
} from "../support/chromiumPage.js"
import { startRouterSignallingServer } from "../support/routerSignalling.js"
import { fullClusterApp, until } from "./clusterSupport.js"
import { type NodeProcess, nodeArgs, spawnNode } from "./nodeProcesses.js"
import { cleanPrefix, keysOf, redisAvailable, redisUrl, testPrefix } from "./redisSupport.js"

const secret = "cluster-chromium-secret-0123"
const prefix = testPrefix("cluster-chromium")
const started: Array<NodeProcess> = []

afterAll(async () => {
  for (const p of started) if (!p.hasExited()) p.child.kill("SIGKILL")
  await Promise.all(started.map((p) => p.exited))
  await cleanPrefix(prefix)
})

describe.skipIf(!redisAvailable)("a real browser across two Mafalda Nodes", () => {
  itWithChromium(
    "Chromium sends through a transport on the app's Node and receives through a transport delegated to Node B; frames decoded in the page",
    (session) =>
      Effect.gen(function* () {
        // Node B: a `mafalda node` process; stopped (SIGTERM) when the scenario ends.
        const b = yield* Effect.acquireRelease(
          Effect.promise(async () => {
            const p = await spawnNode(
              nodeArgs({ redis: redisUrl, prefix, node: "node-b", cpus: 1, drainTimeoutSeconds: 1 }),
              { MAFALDA_SECRET: secret }
            )
            started.push(p)
            return { process: p, ...(await p.ready) }
          }),
          (b) =>
            Effect.promise(async () => {
              if (!b.process.hasExited()) b.process.child.kill("SIGTERM")
              await b.process.exited
            })
        )
        const nodeB = NodeId.make(b.node)
        const clientB = yield* makeClient({ ...parseAddress(b.address)!, secret })

        // The app: one Worker, full after one transport (its load not sampled during the test).
        const { mafalda, closeApp } = yield* fullClusterApp({ secret, prefix, node: "app-node" })
        expect(yield* until(() => HashMap.has(mafalda.snapshot().nodes, nodeB), 5000)).toBe(true)

        const router = yield* Effect.promise(() =>
          mafalda.createRouter({ mediaCodecs: [opusCodec, vp8Codec] })
        )
        const { html, script } = yield* loadTestPage
        const server = yield* startRouterSignallingServer({ router, html, script })
        session.signallingLog = server.log

        const startedAt = performance.now()
        const { page, run } = yield* openAndRunClient(server.url, session.pageLog)
        const appWorkerPids = (yield* Effect.promise(() => mafalda.workers())).map((w) => w.pid)
        const onB = yield* clientB.NodeInfo()
        const bWorkerPids = onB.workers.map((w) => w.pid)
        session.workerPids.push(...appWorkerPids, ...bWorkerPids)

        const inbound = yield* awaitMediaFlowing(page)
        const [send] = server.transports.send
        const [recv] = server.transports.recv
        const recvRemote = recv instanceof RemoteTransport ? recv : undefined

        // Frames decoded on the video consumer, and more of them a second later.
        const videoFrames = Effect.promise(() => page.evaluate(() => window.mafalda!.inboundStats())).pipe(
          Effect.map((stats) => stats.find((s) => s.consumerId === run.consumerIds.video)?.framesDecoded ?? 0)
        )
        const first = yield* videoFrames.pipe(
          Effect.filterOrFail(
            (frames) => frames > 0,
            () => new MediaNotFlowing({ lastStats: [] })
          ),
          Effect.retry(Schedule.spaced("250 millis")),
          Effect.timeout("20 seconds")
        )
        yield* Effect.sleep("1 second")
        const later = yield* videoFrames

        const pipes = (yield* Effect.promise(() => mafalda.status())).pipes
        console.log(
          `node-b recv transport: ${first} frames decoded, ${later} a second later; ${Math.round(performance.now() - startedAt)} ms from the page opening`
        )

        // Close: the page, the app (its transports on B closed there), then B.
        yield* Effect.promise(() => page.close())
        yield* closeApp
        const bTransportsAfterAppClose = (yield* clientB.NodeInfo()).transports
        b.process.child.kill("SIGTERM")
        const bExit = yield* Effect.promise(() => b.process.exited)
        const workersGone = yield* until(
          () => [...appWorkerPids, ...bWorkerPids].every((pid) => !processExists(pid)),
          5000
        )
        const keysLeft = yield* Effect.promise(() => keysOf(prefix))

        return {
          run,
          inbound,
          sendIsRemote: send instanceof RemoteTransport,
          recvIsRemote: recvRemote !== undefined,
          recvNode: recvRemote?.node,
          recvRouter: recvRemote?.routerId,
          recvIce: recv?.iceCandidates ?? [],
          nodeB,
          transports: { send: server.transports.send.length, recv: server.transports.recv.length },
          appWorkerPids,
          bWorkerPids,
          bTransports: onB.transports,
          pipes,
          first,
          later,
          bTransportsAfterAppClose,
          bExit,
          workersGone,
          keysLeft
        }
      }),
    (o) => {
      // The page: mediasoup-client's Chromium handler, both kinds decoded/received.
      expectPageReceivedBoth(o.run, o.inbound)
      expect(o.transports).toEqual({ send: 1, recv: 1 })
      // Send on the app's Node, receive on B (B's ICE candidates: 127.0.0.1 over UDP).
      expect(o.sendIsRemote).toBe(false)
      expect(o.recvIsRemote).toBe(true)
      expect(o.recvNode).toBe(o.nodeB)
      expect(o.recvIce[0]).toMatchObject({ address: "127.0.0.1", protocol: "udp" })
      expect(o.bTransports).toBe(1)
      expect(o.appWorkerPids).toHaveLength(1)
      expect(o.bWorkerPids).toHaveLength(1)
      // Both producers piped, once each, into B's Router.
      const producerIds = [o.run.producerIds.audio, o.run.producerIds.video].sort()
      expect(o.pipes.map((p) => p.producer).sort()).toEqual(producerIds)
      for (const pipe of o.pipes) expect(pipe.to).toBe(o.recvRouter)
      // Frames keep being decoded in the page.
      expect(o.first).toBeGreaterThan(0)
      expect(o.later).toBeGreaterThan(o.first)
      // Nothing left: the app's transport on B closed there, B exited cleanly, no Worker
      // process and no Redis key of the prefix.
      expect(o.bTransportsAfterAppClose).toBe(0)
      expect(o.bExit.code).toBe(0)
      expect(o.workersGone).toBe(true)
      expect(o.keysLeft).toEqual([])
    }
  )
})
