/**
 * Driving the test page (test/page/) in Chromium for the real-client tests: the page's
 * HTML and bundled script, opening it and running its client, polling its inbound stats
 * until both kinds flow, and what the page must report at the end.
 */
import { readFile } from "node:fs/promises"
import { fileURLToPath } from "node:url"
import { expect, it } from "@effect/vitest"
import type { Scope } from "effect"
import { Data, Effect, Schedule } from "effect"
import { processExists } from "../../src/media/worker.js"
import type { InboundRtpStats, PageRunResult } from "../page/protocol.js"
import {
  type BundleError,
  bundleBrowserScript,
  CHROMIUM_PATH,
  hasChromium,
  launchChromium
} from "./chromium.js"
import { isCI } from "./ci.js"

const pageDir = fileURLToPath(new URL("../page/", import.meta.url))

export class MediaNotFlowing extends Data.TaggedError("MediaNotFlowing")<{ readonly lastStats: unknown }> {}

/** The test page's HTML and its client script, bundled. */
export const loadTestPage: Effect.Effect<{ readonly html: string; readonly script: string }, BundleError> =
  Effect.all(
    [
      Effect.promise(() => readFile(`${pageDir}index.html`, "utf8")),
      bundleBrowserScript(`${pageDir}client.ts`)
    ],
    { concurrency: 2 }
  ).pipe(Effect.map(([html, script]) => ({ html, script })))

/** A page of a freshly launched Chromium, its console and errors logged to `pageLog`. */
const openPage = (url: string, pageLog: Array<string>) =>
  Effect.gen(function* () {
    const context = yield* launchChromium()
    const page = context.pages()[0] ?? (yield* Effect.promise(() => context.newPage()))
    page.on("console", (message) => pageLog.push(`${message.type()}: ${message.text()}`))
    page.on("pageerror", (error) => pageLog.push(`pageerror: ${error.message}`))
    yield* Effect.promise(() => page.goto(url))
    yield* Effect.promise(() => page.waitForFunction(() => window.mafalda !== undefined))
    return page
  })

type TestPage = Effect.Effect.Success<ReturnType<typeof openPage>>

/** Opens the page at `url` and runs its client (send camera + microphone, receive both), within 20 s. */
export const openAndRunClient = (url: string, pageLog: Array<string>) =>
  Effect.gen(function* () {
    const page = yield* openPage(url, pageLog)
    const run = yield* Effect.promise(() => page.evaluate(() => window.mafalda!.run())).pipe(
      Effect.timeout("20 seconds")
    )
    return { page, run }
  })

/**
 * Bounded polling of the page's stats: up to 20 s, every 250 ms, until video frames are
 * decoded and audio packets received.
 */
export const awaitMediaFlowing = (
  page: TestPage
): Effect.Effect<ReadonlyArray<InboundRtpStats>, MediaNotFlowing> => {
  let lastStats: ReadonlyArray<InboundRtpStats> = []
  const flowing = (stats: ReadonlyArray<InboundRtpStats>) =>
    stats.some((s) => s.kind === "video" && (s.framesDecoded ?? 0) > 0) &&
    stats.some((s) => s.kind === "audio" && s.packetsReceived > 0)
  return Effect.promise(() => page.evaluate(() => window.mafalda!.inboundStats())).pipe(
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
}

/** On failure, prints the page's console and the signalling server's log. */
const logOnError =
  (pageLog: ReadonlyArray<string>, signallingLog: () => ReadonlyArray<string>) =>
  <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    self.pipe(
      Effect.onError(() =>
        Effect.sync(() =>
          console.error(`page console:\n${pageLog.join("\n")}\nsignalling:\n${signallingLog().join("\n")}`)
        )
      )
    )

/** The page used mediasoup-client's Chromium handler and decoded/received both kinds. */
export const expectPageReceivedBoth = (run: PageRunResult, inbound: ReadonlyArray<InboundRtpStats>): void => {
  expect(run.handlerName).toMatch(/^Chrome/)
  const video = inbound.find((s) => s.kind === "video")
  const audio = inbound.find((s) => s.kind === "audio")
  expect(video?.consumerId).toBe(run.consumerIds.video)
  expect(video?.framesDecoded).toBeGreaterThan(0)
  expect(audio?.consumerId).toBe(run.consumerIds.audio)
  expect(audio?.packetsReceived).toBeGreaterThan(0)
}

/** What a real-client scenario records for its test: Worker pids, the page's console, the signalling log. */
export interface ClientSession {
  /** The Worker processes used, which must be gone after the scenario (two of them). */
  readonly workerPids: Array<number>
  readonly pageLog: Array<string>
  signallingLog: ReadonlyArray<string>
}

/** Why a real-client test cannot run here, or `undefined` when Chromium is installed. */
const chromiumMissing = (): string | undefined =>
  hasChromium()
    ? undefined
    : `Chromium is absent at ${CHROMIUM_PATH} (apt-get install chromium, or set MAFALDA_CHROMIUM_PATH)`

/**
 * A real-client test: runs `scenario` in a scope (printing the page's console and
 * signalling log if it fails), `check`s its outcome, then expects the two Worker processes
 * it recorded to be gone. Without Chromium it is skipped, loudly, on a developer's machine;
 * under CI (`isCI`) it fails instead, saying why.
 */
export const itWithChromium = <A, E>(
  name: string,
  scenario: (session: ClientSession) => Effect.Effect<A, E, Scope.Scope>,
  check: (outcome: A) => void
) => {
  const missing = chromiumMissing()
  if (missing !== undefined) {
    if (isCI()) {
      it(name, () => {
        throw new Error(`CI=${process.env.CI}: a real-client test may not be skipped, and ${missing}`)
      })
    } else {
      console.warn(`[real-client test] SKIPPING "${name}": ${missing}`)
      it.skip(`SKIPPED (${missing}): ${name}`, () => {})
    }
    return
  }
  it.live(
    name,
    () =>
      Effect.gen(function* () {
        const session: ClientSession = { workerPids: [], pageLog: [], signallingLog: [] }
        const outcome = yield* Effect.scoped(scenario(session)).pipe(
          logOnError(session.pageLog, () => session.signallingLog)
        )
        check(outcome)

        // Everything was released: no Worker process is left.
        expect(session.workerPids).toHaveLength(2)
        for (const pid of session.workerPids) expect(processExists(pid)).toBe(false)
      }),
    60_000
  )
}
