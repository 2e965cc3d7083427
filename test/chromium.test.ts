/**
 * A real WebRTC client: Chromium (Debian's, driven by playwright-core) runs mediasoup-client,
 * sends its fake camera and microphone to Router A on Worker 1; the server pipes both to
 * Router B on Worker 2 with pipeToRouter; the page receives them back from Router B.
 */
import { describe, expect } from "@effect/vitest"
import { Effect } from "effect"
import type { types } from "mediasoup"
import { acquireWorker, opusCodec, tryMediasoup, vp8Codec } from "../src/media/worker.js"
import {
  awaitMediaFlowing,
  expectPageReceivedBoth,
  itWithChromium,
  loadTestPage,
  openAndRunClient
} from "./support/chromiumPage.js"
import { startSignallingServer } from "./support/signalling.js"

const sumOutbound = (stats: ReadonlyArray<{ type: string; packetCount: number; byteCount: number }>) =>
  stats
    .filter((s) => s.type === "outbound-rtp")
    .reduce((sum, s) => ({ packets: sum.packets + s.packetCount, bytes: sum.bytes + s.byteCount }), {
      packets: 0,
      bytes: 0
    })

const sumInbound = (stats: ReadonlyArray<{ type: string; packetCount: number; byteCount: number }>) =>
  stats
    .filter((s) => s.type === "inbound-rtp")
    .reduce((sum, s) => ({ packets: sum.packets + s.packetCount, bytes: sum.bytes + s.byteCount }), {
      packets: 0,
      bytes: 0
    })

const isPipeTransport = (transport: types.Transport): boolean =>
  transport.constructor.name === "PipeTransport"

describe("a real WebRTC client through two mediasoup Workers", () => {
  itWithChromium(
    "Chromium sends camera + microphone to Router A and receives both from Router B via pipeToRouter",
    (session) =>
      Effect.gen(function* () {
        const worker1 = yield* acquireWorker({ logLevel: "warn", rtcMinPort: 42000, rtcMaxPort: 42099 })
        const worker2 = yield* acquireWorker({ logLevel: "warn", rtcMinPort: 42100, rtcMaxPort: 42199 })
        session.workerPids.push(worker1.pid, worker2.pid)
        const mediaCodecs = [opusCodec, vp8Codec]
        const routerA = yield* tryMediasoup("createRouter A", () => worker1.createRouter({ mediaCodecs }))
        const routerB = yield* tryMediasoup("createRouter B", () => worker2.createRouter({ mediaCodecs }))
        const pipeTransports: Array<{ readonly router: "A" | "B"; readonly transport: types.Transport }> = []
        for (const [label, router] of [
          ["A", routerA],
          ["B", routerB]
        ] as const) {
          router.observer.on("newtransport", (transport) => {
            if (isPipeTransport(transport)) pipeTransports.push({ router: label, transport })
          })
        }

        const { html, script } = yield* loadTestPage
        const server = yield* startSignallingServer({ routerA, routerB, html, script })
        session.signallingLog = server.log

        const { page, run } = yield* openAndRunClient(server.url, session.pageLog)

        const inbound = yield* awaitMediaFlowing(page)

        // The server's side of the pipe, per kind.
        const piped = [...server.piped.values()]
        const pipeStats = yield* Effect.forEach(piped, ({ producer, pipeConsumer, pipeProducer }) =>
          tryMediasoup("getStats", async () => ({
            kind: producer.kind,
            producer: sumInbound(await producer.getStats()),
            pipeConsumer: sumOutbound(await pipeConsumer.getStats()),
            pipeProducer: sumInbound(await pipeProducer.getStats())
          }))
        )
        const consumerStats = yield* Effect.forEach([...server.consumers.values()], (consumer) =>
          tryMediasoup("getStats", async () => ({
            kind: consumer.kind,
            producerId: consumer.producerId,
            outbound: sumOutbound(await consumer.getStats())
          }))
        )
        const pipeTransportStats = yield* Effect.forEach(pipeTransports, ({ router, transport }) =>
          tryMediasoup("getStats", async () => {
            const [stats] = await transport.getStats()
            return {
              router,
              rtpBytesSent: stats?.rtpBytesSent ?? 0,
              rtpBytesReceived: stats?.rtpBytesReceived ?? 0
            }
          })
        )
        return {
          run,
          inbound,
          pipeStats,
          consumerStats,
          pipeTransportStats,
          producerIdsOnA: piped.map((p) => p.producer.id)
        }
      }),
    (outcome) => {
      // The page: mediasoup-client's Chromium handler, both kinds decoded/received from Router B.
      expectPageReceivedBoth(outcome.run, outcome.inbound)

      // The server: both Producers were piped, and every hop of the pipe carried media.
      expect(outcome.producerIdsOnA.sort()).toEqual(
        [outcome.run.producerIds.audio, outcome.run.producerIds.video].sort()
      )
      expect(outcome.pipeStats.map((s) => s.kind).sort()).toEqual(["audio", "video"])
      for (const hop of outcome.pipeStats) {
        expect(hop.producer.packets, `${hop.kind} producer on A`).toBeGreaterThan(0)
        expect(hop.pipeConsumer.packets, `${hop.kind} pipe consumer on A`).toBeGreaterThan(0)
        expect(hop.pipeConsumer.bytes, `${hop.kind} pipe consumer on A`).toBeGreaterThan(0)
        expect(hop.pipeProducer.packets, `${hop.kind} pipe producer on B`).toBeGreaterThan(0)
        expect(hop.pipeProducer.bytes, `${hop.kind} pipe producer on B`).toBeGreaterThan(0)
      }
      expect(outcome.consumerStats.map((c) => c.kind).sort()).toEqual(["audio", "video"])
      for (const consumer of outcome.consumerStats) {
        expect(consumer.outbound.packets, `${consumer.kind} consumer on B`).toBeGreaterThan(0)
      }
      // One PipeTransport on each router; A's sent RTP, B's received it.
      expect(outcome.pipeTransportStats.map((s) => s.router).sort()).toEqual(["A", "B"])
      const pipeA = outcome.pipeTransportStats.find((s) => s.router === "A")
      const pipeB = outcome.pipeTransportStats.find((s) => s.router === "B")
      expect(pipeA?.rtpBytesSent).toBeGreaterThan(0)
      expect(pipeB?.rtpBytesReceived).toBeGreaterThan(0)
    }
  )
})
