/**
 * A real client's receive transport relocated mid-call: Chromium (mediasoup-client) sends
 * camera + microphone through one Mafalda Router and receives both back; the test forces a
 * relocation of its receive transport (`relocateTransport`), the helper prepares the new
 * transport on the other Worker with the same consumers, the page switches to it (a new
 * recv transport, consume again), and the old transport closes. Video frames keep being
 * decoded on the new consumer, nothing is left behind, and both Worker processes are gone
 * at the end.
 */
import { describe, expect } from "@effect/vitest"
import { Effect, Schedule } from "effect"
import type { types } from "mediasoup"
import type { TransportId } from "../../src/core/Ids.js"
import { lookup } from "../../src/core/Snapshot.js"
import { opusCodec, vp8Codec } from "../../src/media/worker.js"
import { createMafalda, type MafaldaInstance } from "../../src/promise.js"
import type { PageRecvRelocation } from "../page/protocol.js"
import {
  awaitMediaFlowing,
  expectPageReceivedBoth,
  itWithChromium,
  loadTestPage,
  MediaNotFlowing,
  openAndRunClient
} from "../support/chromiumPage.js"
import { startRouterSignallingServer } from "../support/routerSignalling.js"

const workerOf = (mafalda: MafaldaInstance, transportId: string) => {
  const snapshot = mafalda.snapshot()
  const router = lookup(snapshot.transports, transportId as TransportId)?.router
  return router === undefined ? undefined : lookup(snapshot.routers, router)?.worker
}

describe("a real client's receive transport relocated to another Worker mid-call", () => {
  itWithChromium(
    "Chromium keeps decoding video after its recv transport moves; the old transport closes, no Worker or transport is left",
    (session) =>
      Effect.gen(function* () {
        // Default costs: the send and recv transports share the first Worker; the move
        // (forced, away from that Worker) starts the second one.
        const mafalda = yield* Effect.acquireRelease(
          Effect.promise(() =>
            createMafalda({
              maxWorkers: 2,
              samplingInterval: 3_600_000,
              workerSettings: { rtcMinPort: 47500, rtcMaxPort: 47999 }
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
        const before = yield* awaitMediaFlowing(page)
        const [send] = server.transports.send
        const [recv] = server.transports.recv
        const fromWorker = workerOf(mafalda, recv!.id)
        const workersBefore = (yield* Effect.promise(() => mafalda.workers())).length

        // The forced move, and the application's part: prepare, tell the page, complete.
        const offered: Array<string> = []
        router.on("relocation", (r) => offered.push(`${r.reason} ${r.transport.id}`))
        const relocation = router.relocateTransport(recv!.id, { reason: "Forced" })
        const prepared = yield* Effect.promise(() => relocation.prepare())
        for (const w of yield* Effect.promise(() => mafalda.workers())) session.workerPids.push(w.pid)
        server.adopt(prepared.transport as types.WebRtcTransport, "recv")
        const { transport, consumers } = prepared.parameters
        if (transport.kind !== "webrtc") throw new Error(`a ${transport.kind} transport`)
        const toPage: PageRecvRelocation = {
          transport: {
            id: transport.id,
            iceParameters: transport.iceParameters,
            iceCandidates: [...transport.iceCandidates],
            dtlsParameters: transport.dtlsParameters
          } as PageRecvRelocation["transport"],
          consumers: consumers.map((c) => ({
            replaces: c.replaces,
            id: c.id,
            producerId: c.producerId,
            kind: c.kind,
            rtpParameters: c.rtpParameters
          })) as PageRecvRelocation["consumers"]
        }
        const switched = yield* Effect.promise(() =>
          page.evaluate((r) => window.mafalda!.switchRecvTransport(r), toPage)
        ).pipe(Effect.timeout("20 seconds"))
        yield* Effect.promise(() => relocation.complete())

        // Frames decoded on the new video consumer, and more of them a second later.
        const videoFrames = Effect.promise(() => page.evaluate(() => window.mafalda!.inboundStats())).pipe(
          Effect.map((stats) => ({
            stats,
            frames: stats.find((s) => s.consumerId === switched.video)?.framesDecoded ?? 0
          }))
        )
        const first = yield* videoFrames.pipe(
          Effect.filterOrFail(
            ({ stats, frames }) =>
              frames > 0 && stats.some((s) => s.consumerId === switched.audio && s.packetsReceived > 0),
            ({ stats }) => new MediaNotFlowing({ lastStats: stats })
          ),
          Effect.retry(Schedule.spaced("250 millis")),
          Effect.timeout("20 seconds")
        )
        yield* Effect.sleep("1 second")
        const later = yield* videoFrames
        const after = {
          transports: [...mafalda.snapshot().transports].map(([id]) => id as string).sort(),
          routerTransports: [...router.transportsForTesting.keys()].sort(),
          workers: (yield* Effect.promise(() => mafalda.workers())).length,
          toWorker: workerOf(mafalda, prepared.transport.id)
        }
        return {
          run,
          before,
          offered,
          fromWorker,
          workersBefore,
          prepared,
          relocationState: relocation.state,
          oldRecvClosed: recv!.closed,
          oldConsumersClosed: [...server.consumers.values()].every((c) => c.closed),
          switched,
          first,
          later,
          after,
          expected: [send!.id, prepared.transport.id].sort(),
          recvId: recv!.id
        }
      }),
    (o) => {
      expectPageReceivedBoth(o.run, o.before)
      expect(o.offered).toEqual([`Forced ${o.recvId}`])
      // Moved to the other Worker, with both consumers re-created.
      expect(o.workersBefore).toBe(1)
      expect(o.fromWorker).toBeDefined()
      expect(o.prepared.to.worker).not.toBe(o.fromWorker)
      expect(o.after.toWorker).toBe(o.prepared.to.worker)
      expect(o.prepared.consumers.map((c) => c.replaces).sort()).toEqual(
        [o.run.consumerIds.audio, o.run.consumerIds.video].sort()
      )
      expect([o.switched.audio, o.switched.video].sort()).toEqual(
        o.prepared.consumers.map((c) => c.consumer.id).sort()
      )
      expect(o.relocationState).toBe("completed")
      // The page decodes video on the new consumer, more and more of it.
      expect(o.first.frames).toBeGreaterThan(0)
      expect(o.later.frames).toBeGreaterThan(o.first.frames)
      // Nothing left behind: the old transport and consumers are closed; the Mafalda Router
      // and the snapshot hold the send transport and the new recv transport only; two Workers.
      expect(o.oldRecvClosed).toBe(true)
      expect(o.oldConsumersClosed).toBe(true)
      expect(o.after.transports).toEqual(o.expected)
      expect(o.after.routerTransports).toEqual(o.expected)
      expect(o.after.workers).toBe(2)
    }
  )
})
