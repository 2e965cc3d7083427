/**
 * A real WebRTC client through ONE Mafalda Router: Chromium (Debian's, driven by
 * playwright-core) runs mediasoup-client and talks to a server that knows a single
 * router-like object. The Mafalda options make each Worker take one WebRtcTransport, so
 * the page's recv transport lands on another Worker than its send transport; the page's
 * `consume` calls make the Mafalda Router pipe both producers there on its own.
 */
import { describe, expect } from "@effect/vitest"
import { Effect } from "effect"
import type { TransportId } from "../../src/core/Ids.js"
import { lookup } from "../../src/core/Snapshot.js"
import { opusCodec, tryMediasoup, vp8Codec } from "../../src/media/worker.js"
import { createMafalda, type MafaldaInstance } from "../../src/promise.js"
import {
  awaitMediaFlowing,
  expectPageReceivedBoth,
  itWithChromium,
  loadTestPage,
  openAndRunClient
} from "../support/chromiumPage.js"
import { startRouterSignallingServer } from "../support/routerSignalling.js"

const sumPackets = (stats: ReadonlyArray<{ type: string; packetCount: number }>, type: string) =>
  stats.filter((s) => s.type === type).reduce((sum, s) => sum + s.packetCount, 0)

/** The Worker (id and pid) a Mafalda transport was placed on. */
const placementOf = async (mafalda: MafaldaInstance, transportId: string) => {
  const snapshot = mafalda.snapshot()
  const router = lookup(snapshot.transports, transportId as TransportId)?.router
  const worker = router === undefined ? undefined : lookup(snapshot.routers, router)?.worker
  const pid = (await mafalda.status()).workers.find((w) => w.id === worker)?.pid
  return { router, worker, pid }
}

describe("a real WebRTC client through one Mafalda Router over two Workers", () => {
  itWithChromium(
    "Chromium sends camera + microphone and receives both on a transport of another Worker, piped transparently",
    (session) =>
      Effect.gen(function* () {
        // A WebRtcTransport costs 50 %, the watermark: one per Worker, at most two Workers.
        const mafalda = yield* Effect.acquireRelease(
          Effect.promise(() =>
            createMafalda({
              maxWorkers: 2,
              watermark: 50,
              costs: { transport: 50 },
              samplingInterval: 3_600_000,
              workerSettings: { rtcMinPort: 47000, rtcMaxPort: 47499 }
            })
          ),
          (m) => Effect.promise(() => m.close())
        )
        const router = yield* Effect.promise(() =>
          mafalda.createRouter({ mediaCodecs: [opusCodec, vp8Codec] })
        )
        const { html, script } = yield* loadTestPage
        const server = yield* startRouterSignallingServer({ router, html, script })
        session.signallingLog = server.log

        const { page, run } = yield* openAndRunClient(server.url, session.pageLog)
        for (const w of yield* Effect.promise(() => mafalda.workers())) session.workerPids.push(w.pid)

        const inbound = yield* awaitMediaFlowing(page)

        const [send] = server.transports.send
        const [recv] = server.transports.recv
        const sendAt = yield* Effect.promise(() => placementOf(mafalda, send!.id))
        const recvAt = yield* Effect.promise(() => placementOf(mafalda, recv!.id))
        const status = yield* Effect.promise(() => mafalda.status())
        const producerStats = yield* Effect.forEach([...server.producers.values()], (producer) =>
          tryMediasoup("getStats", async () => ({
            kind: producer.kind,
            received: sumPackets(await producer.getStats(), "inbound-rtp")
          }))
        )
        const consumerStats = yield* Effect.forEach([...server.consumers.values()], (consumer) =>
          tryMediasoup("getStats", async () => ({
            kind: consumer.kind,
            sent: sumPackets(await consumer.getStats(), "outbound-rtp")
          }))
        )
        return {
          run,
          inbound,
          workerPids: [...session.workerPids],
          sendAt,
          recvAt,
          status,
          transports: { send: server.transports.send.length, recv: server.transports.recv.length },
          producerStats,
          consumerStats
        }
      }),
    (outcome) => {
      // The page: mediasoup-client's Chromium handler, both kinds decoded/received.
      expectPageReceivedBoth(outcome.run, outcome.inbound)

      // The server: one send and one recv transport, on two different Workers (processes).
      expect(outcome.transports).toEqual({ send: 1, recv: 1 })
      expect(outcome.status.workers).toHaveLength(2)
      expect(outcome.sendAt.worker).toBeDefined()
      expect(outcome.recvAt.worker).toBeDefined()
      expect(outcome.recvAt.worker).not.toBe(outcome.sendAt.worker)
      expect(outcome.recvAt.pid).not.toBe(outcome.sendAt.pid)
      expect([outcome.sendAt.pid, outcome.recvAt.pid].sort()).toEqual([...outcome.workerPids].sort())
      // The Mafalda Router piped both producers, once each, from the send Router to the recv Router.
      const producerIds = [outcome.run.producerIds.audio, outcome.run.producerIds.video].sort()
      expect(outcome.status.pipes.map((p) => p.producer).sort()).toEqual(producerIds)
      for (const pipe of outcome.status.pipes) {
        expect(pipe.from).toBe(outcome.sendAt.router)
        expect(pipe.to).toBe(outcome.recvAt.router)
      }
      // Media went in on one Worker and out of the other.
      expect(outcome.producerStats.map((p) => p.kind).sort()).toEqual(["audio", "video"])
      for (const p of outcome.producerStats) expect(p.received, `${p.kind} producer`).toBeGreaterThan(0)
      expect(outcome.consumerStats.map((c) => c.kind).sort()).toEqual(["audio", "video"])
      for (const c of outcome.consumerStats) expect(c.sent, `${c.kind} consumer`).toBeGreaterThan(0)
    }
  )
})
