/**
 * The live view in headless Chromium, against a running Mafalda with real RTP: the page
 * draws the stream tree `/status` reports, and redraws on its own when a consumer is added
 * on another Worker. With `MAFALDA_SCREENSHOT_DIR` set, it saves a screenshot of each state.
 */
import { join } from "node:path"
import { describe, expect } from "@effect/vitest"
import { Effect } from "effect"
import type { Page } from "playwright-core"
import type { OpsStatus } from "../../src/ops/status.js"
import { sendUntilReceived } from "../router/support.js"
import { launchChromium } from "../support/chromium.js"
import { itWithChromium } from "../support/chromiumPage.js"
import { startOpsMafalda } from "./support.js"

interface DrawnHop {
  readonly router: string
  readonly worker: string
  readonly consumers: number
  readonly depth: number
}

/** What the page drew: its Routers (sorted) and pipes, for one producer. */
const drawn = (page: Page, producer: string) =>
  Effect.promise(() =>
    page.evaluate((producer) => {
      const tree = document.querySelector(`.tree[data-producer="${producer}"]`)
      const hops = Array.from(tree?.querySelectorAll<SVGGElement>(".hop") ?? [], (g) => ({
        router: g.dataset.router ?? "",
        worker: g.dataset.worker ?? "",
        consumers: Number(g.dataset.consumers),
        depth: Number(g.dataset.depth)
      })).sort((a, b) => (a.router < b.router ? -1 : 1))
      const pipes = Array.from(tree?.querySelectorAll<SVGLineElement>(".pipe") ?? [], (l) => ({
        from: l.dataset.from ?? "",
        to: l.dataset.to ?? ""
      }))
      return { hops, pipes, updates: Number(document.body.dataset.updates ?? 0) }
    }, producer)
  )

/** The tree of `/status` in the same shape. */
const expected = (status: OpsStatus, producer: string) => {
  const tree = status.trees.find((t) => t.producer === producer)
  return {
    hops: (tree?.hops ?? [])
      .map(
        (h): DrawnHop => ({
          router: h.router,
          worker: h.worker ?? "",
          consumers: h.consumers,
          depth: h.depth
        })
      )
      .sort((a, b) => (a.router < b.router ? -1 : 1)),
    pipes: status.pipes.filter((p) => p.producer === producer).map((p) => ({ from: p.from, to: p.to }))
  }
}

/** Waits (up to 10 s) until the page draws what `/status` reports with `hops` Routers. */
const awaitDrawn = (page: Page, url: string, producer: string, hops: number) =>
  Effect.gen(function* () {
    const deadline = Date.now() + 10_000
    for (;;) {
      const status = (yield* Effect.promise(() => fetch(`${url}status`).then((r) => r.json()))) as OpsStatus
      const want = expected(status, producer)
      const got = yield* drawn(page, producer)
      if (want.hops.length === hops && JSON.stringify(got.hops) === JSON.stringify(want.hops)) {
        return { status, want, got }
      }
      if (Date.now() > deadline) {
        return yield* Effect.die(
          new Error(`page drew ${JSON.stringify(got)}, /status says ${JSON.stringify(want)}`)
        )
      }
      yield* Effect.sleep("100 millis")
    }
  })

const screenshot = (page: Page, name: string) =>
  process.env.MAFALDA_SCREENSHOT_DIR === undefined
    ? Effect.void
    : Effect.promise(() =>
        page.screenshot({ path: join(process.env.MAFALDA_SCREENSHOT_DIR!, name), fullPage: true })
      )

describe("the live view", () => {
  itWithChromium(
    "draws the stream tree /status reports, and redraws on its own when a consumer joins on another Worker",
    (session) =>
      Effect.gen(function* () {
        const m = yield* Effect.acquireRelease(
          Effect.promise(() => startOpsMafalda()),
          (m) => Effect.promise(() => m.close())
        )
        const producer = m.broadcast.producer.id
        const near = yield* Effect.promise(() => m.listen())
        yield* Effect.promise(() => sendUntilReceived(m.broadcast, [near], 10))

        const context = yield* launchChromium()
        const page = context.pages()[0] ?? (yield* Effect.promise(() => context.newPage()))
        yield* Effect.promise(() => page.setViewportSize({ width: 1400, height: 900 }))
        const errors: Array<string> = []
        page.on("pageerror", (e) => errors.push(e.message))
        session.pageLog.push(`live view at ${m.ops.url}`)
        yield* Effect.promise(() => page.goto(m.ops.url))

        // One Router: the producer and its first consumer on Worker 1.
        const first = yield* awaitDrawn(page, m.ops.url, producer, 1)
        yield* screenshot(page, "live-view-1.png")
        const link = yield* Effect.promise(() => page.textContent("#link"))

        // A consumer on another Worker: the producer is piped there; the page redraws by itself.
        const far = yield* Effect.promise(() => m.listen())
        yield* Effect.promise(() => sendUntilReceived(m.broadcast, [near, far], 10))
        const second = yield* awaitDrawn(page, m.ops.url, producer, 2)
        yield* screenshot(page, "live-view-2.png")

        for (const w of (yield* Effect.promise(() => m.status())).workers) session.workerPids.push(w.pid!)
        return { first, second, link, errors }
      }),
    ({ first, second, link, errors }) => {
      expect(errors).toEqual([])
      expect(link).toBe("live")
      expect(first.got.hops).toEqual(first.want.hops)
      expect(first.got.hops[0]!.consumers).toBe(1)
      expect(first.got.pipes).toEqual([])

      expect(second.got.hops).toEqual(second.want.hops)
      expect(second.got.pipes).toEqual(second.want.pipes)
      const origin = second.got.hops.find((h) => h.depth === 0)!
      const piped = second.got.hops.find((h) => h.depth === 1)!
      expect(piped.worker).not.toBe(origin.worker)
      expect(piped.consumers).toBe(1)
      expect(second.got.pipes).toEqual([{ from: origin.router, to: piped.router }])
      // Redrawn from the event stream, without a reload.
      expect(second.got.updates).toBeGreaterThan(first.got.updates)
    }
  )
})
