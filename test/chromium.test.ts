/**
 * A real WebRTC client: Chromium (Debian's, driven by playwright-core) runs mediasoup-client,
 * sends its fake camera and microphone to Router A on Worker 1; the server pipes both to
 * Router B on Worker 2 with pipeToRouter; the page receives them back from Router B.
 */
import { readFile } from "node:fs/promises"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "@effect/vitest"
import { Data, Effect, Schedule } from "effect"
import type { types } from "mediasoup"
import { acquireWorker, opusCodec, processExists, tryMediasoup, vp8Codec } from "../src/media/worker.js"
import type { InboundRtpStats } from "./page/protocol.js"
import { bundleBrowserScript, CHROMIUM_PATH, hasChromium, launchChromium } from "./support/chromium.js"
import { startSignallingServer } from "./support/signalling.js"

const pageDir = fileURLToPath(new URL("./page/", import.meta.url))
const chromiumPresent = hasChromium()

class MediaNotFlowing extends Data.TaggedError("MediaNotFlowing")<{ readonly lastStats: unknown }> {}

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

if (!chromiumPresent) {
  console.warn(
    `[chromium.test] skipping the real-client test: ${CHROMIUM_PATH} is absent (apt-get install chromium)`
  )
}

describe("a real WebRTC client through two mediasoup Workers", () => {
  const name = chromiumPresent
    ? "Chromium sends camera + microphone to Router A and receives both from Router B via pipeToRouter"
    : `SKIPPED: ${CHROMIUM_PATH} is absent (install Debian's chromium to run the real-client test)`

  it.live.skipIf(!chromiumPresent)(
    name,
    () =>
      Effect.gen(function* () {
        const workerPids: Array<number> = []
        const pageLog: Array<string> = []
        let signallingLog: ReadonlyArray<string> = []
        const outcome = yield* Effect.scoped(
          Effect.gen(function* () {
            const worker1 = yield* acquireWorker({ logLevel: "warn", rtcMinPort: 42000, rtcMaxPort: 42099 })
            const worker2 = yield* acquireWorker({ logLevel: "warn", rtcMinPort: 42100, rtcMaxPort: 42199 })
            workerPids.push(worker1.pid, worker2.pid)
            const mediaCodecs = [opusCodec, vp8Codec]
            const routerA = yield* tryMediasoup("createRouter A", () => worker1.createRouter({ mediaCodecs }))
            const routerB = yield* tryMediasoup("createRouter B", () => worker2.createRouter({ mediaCodecs }))
            const pipeTransports: Array<{ readonly router: "A" | "B"; readonly transport: types.Transport }> =
              []
            for (const [label, router] of [
              ["A", routerA],
              ["B", routerB]
            ] as const) {
              router.observer.on("newtransport", (transport) => {
                if (isPipeTransport(transport)) pipeTransports.push({ router: label, transport })
              })
            }

            const [html, script] = yield* Effect.all(
              [
                Effect.promise(() => readFile(`${pageDir}index.html`, "utf8")),
                bundleBrowserScript(`${pageDir}client.ts`)
              ],
              { concurrency: 2 }
            )
            const server = yield* startSignallingServer({ routerA, routerB, html, script })
            signallingLog = server.log

            const context = yield* launchChromium()
            const page = context.pages()[0] ?? (yield* Effect.promise(() => context.newPage()))
            page.on("console", (message) => pageLog.push(`${message.type()}: ${message.text()}`))
            page.on("pageerror", (error) => pageLog.push(`pageerror: ${error.message}`))
            yield* Effect.promise(() => page.goto(server.url))
            yield* Effect.promise(() => page.waitForFunction(() => window.mafalda !== undefined))
            const run = yield* Effect.promise(() => page.evaluate(() => window.mafalda!.run())).pipe(
              Effect.timeout("20 seconds")
            )

            // Bounded polling of the page's stats: up to 20 s, every 250 ms.
            let lastStats: ReadonlyArray<InboundRtpStats> = []
            const flowing = (stats: ReadonlyArray<InboundRtpStats>) =>
              stats.some((s) => s.kind === "video" && (s.framesDecoded ?? 0) > 0) &&
              stats.some((s) => s.kind === "audio" && s.packetsReceived > 0)
            const inbound = yield* Effect.promise(() =>
              page.evaluate(() => window.mafalda!.inboundStats())
            ).pipe(
              Effect.tap((stats) => {
                lastStats = stats
              }),
              Effect.filterOrFail(flowing, () => new MediaNotFlowing({ lastStats })),
              Effect.retry(Schedule.spaced("250 millis")),
              Effect.timeoutFail({
                duration: "20 seconds",
                onTimeout: () => new MediaNotFlowing({ lastStats })
              })
            )

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
          })
        ).pipe(
          Effect.onError(() =>
            Effect.sync(() =>
              console.error(`page console:\n${pageLog.join("\n")}\nsignalling:\n${signallingLog.join("\n")}`)
            )
          )
        )

        // The page: mediasoup-client's Chromium handler, both kinds decoded/received from Router B.
        expect(outcome.run.handlerName).toMatch(/^Chrome/)
        const video = outcome.inbound.find((s) => s.kind === "video")
        const audio = outcome.inbound.find((s) => s.kind === "audio")
        expect(video?.consumerId).toBe(outcome.run.consumerIds.video)
        expect(video?.framesDecoded).toBeGreaterThan(0)
        expect(audio?.consumerId).toBe(outcome.run.consumerIds.audio)
        expect(audio?.packetsReceived).toBeGreaterThan(0)

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

        // Everything was released: no worker process is left.
        expect(workerPids).toHaveLength(2)
        for (const pid of workerPids) expect(processExists(pid)).toBe(false)
      }),
    60_000
  )
})
