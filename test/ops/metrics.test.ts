/**
 * Metrics: the Prometheus text exposition of Effect metrics, and the `/metrics` endpoint of
 * a running Mafalda scraped during a real-RTP broadcast, against `status()`.
 */
import { Duration, Effect, Fiber, Metric, MetricBoundaries, MetricLabel } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { makeRtpPackets } from "../../src/media/rtp.js"
import { processExists } from "../../src/media/worker.js"
import { prometheusText } from "../../src/ops/metrics.js"
import { type OpsMafalda, startOpsMafalda } from "./support.js"

/** The samples of a Prometheus text: `name{labels}` → value (labels as written). */
const parse = (text: string): Map<string, number> => {
  const out = new Map<string, number>()
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{.*\})?) (\S+)$/.exec(line)
    if (m === null) throw new Error(`not a sample line: ${line}`)
    out.set(m[1]!, Number(m[2]))
  }
  return out
}

describe("Prometheus text exposition", () => {
  it("writes HELP and TYPE once per name, counters, gauges, cumulative histogram buckets, escaped labels", () => {
    const counter = Metric.counter("t_requests_total", { description: "requests\nmade" })
    const gauge = Metric.gauge("t_temperature")
    const histogram = Metric.histogram(
      "t_latency_seconds",
      MetricBoundaries.fromIterable([0.1, 1]),
      "latency"
    )
    counter.unsafeUpdate(2, [MetricLabel.make("path", 'a"b\\c')])
    counter.unsafeUpdate(1, [MetricLabel.make("path", "/x")])
    gauge.unsafeUpdate(21.5, [])
    for (const v of [0.05, 0.5, 0.7, 3]) histogram.unsafeUpdate(v, [])
    const text = prometheusText(Metric.unsafeSnapshot(), { prefix: "t_" })
    expect(text.split("\n").filter((l) => l.startsWith("# TYPE"))).toEqual([
      "# TYPE t_latency_seconds histogram",
      "# TYPE t_requests_total counter",
      "# TYPE t_temperature gauge"
    ])
    expect(text).toContain("# HELP t_requests_total requests\\nmade\n")
    const samples = parse(text)
    expect(samples.get('t_requests_total{path="a\\"b\\\\c"}')).toBe(2)
    expect(samples.get('t_requests_total{path="/x"}')).toBe(1)
    expect(samples.get("t_temperature")).toBe(21.5)
    expect(samples.get('t_latency_seconds_bucket{le="0.1"}')).toBe(1)
    expect(samples.get('t_latency_seconds_bucket{le="1"}')).toBe(3)
    expect(samples.get('t_latency_seconds_bucket{le="+Inf"}')).toBe(4)
    expect(samples.get("t_latency_seconds_count")).toBe(4)
    expect(samples.get("t_latency_seconds_sum")).toBeCloseTo(4.25)
  })

  it("leaves out the per-Worker series of Workers that are gone", () => {
    const load = Metric.gauge("mafalda_worker_load_percent")
    load.unsafeUpdate(10, [MetricLabel.make("worker", "gone")])
    load.unsafeUpdate(20, [MetricLabel.make("worker", "live")])
    const samples = parse(
      prometheusText(Metric.unsafeSnapshot(), {
        prefix: "mafalda_worker_load",
        liveWorkers: new Set(["live"])
      })
    )
    expect([...samples]).toEqual([['mafalda_worker_load_percent{worker="live"}', 20]])
  })
})

describe("/metrics of a running Mafalda", () => {
  let m: OpsMafalda | undefined
  afterEach(async () => {
    const pids = (await m?.status())?.workers.map((w) => w.pid) ?? []
    await m?.close()
    m = undefined
    for (const pid of pids) expect(processExists(pid!)).toBe(false)
  })

  it("scraped during a real-RTP broadcast, reports the counts status() reports", async () => {
    m = await startOpsMafalda()
    const before = parse(await (await fetch(`${m.ops.url}metrics`)).text())
    const near = await m.listen()
    const far = await m.listen()

    // RTP flows from the producer to both listeners (one through a pipe) while we scrape.
    const packets = makeRtpPackets({ ssrc: m.broadcast.ssrc, payloadType: 111, count: 4000 })
    const sending = Effect.runFork(m.broadcast.sender.sendAll(packets, { interval: Duration.millis(5) }))
    const received = Promise.all(
      [near, far].map((l) =>
        Effect.runPromise(
          l.receiver.awaitPackets(20, { timeout: "10 seconds", where: (p) => p.ssrc === l.ssrc })
        )
      )
    )
    const response = await fetch(`${m.ops.url}metrics`)
    const text = await response.text()
    const status = await m.status()
    const got = await received
    await Effect.runPromise(Fiber.interrupt(sending))

    expect(response.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8")
    expect(got.map((p) => p.length >= 20)).toEqual([true, true])
    const samples = parse(text)
    const sum = (f: (w: (typeof status.workers)[number]) => number) =>
      status.workers.reduce((n, w) => n + f(w), 0)
    expect(status.workers).toHaveLength(2)
    expect(samples.get("mafalda_workers")).toBe(status.workers.length)
    expect(samples.get("mafalda_routers")).toBe(sum((w) => w.routers.length))
    expect(samples.get("mafalda_transports")).toBe(sum((w) => w.transports))
    expect(samples.get("mafalda_producers")).toBe(sum((w) => w.producers))
    expect(samples.get("mafalda_consumers")).toBe(sum((w) => w.consumers))
    expect(samples.get("mafalda_consumers")).toBe(2)
    expect(samples.get("mafalda_trees")).toBe(status.trees.length)
    expect(samples.get("mafalda_pipes")).toBe(status.pipes.length)
    expect(samples.get("mafalda_pipes")).toBe(1)
    expect(samples.get("mafalda_tree_depth_max")).toBe(
      Math.max(...status.trees.flatMap((t) => t.hops.map((h) => h.depth)))
    )
    expect(samples.get("mafalda_rooms")).toBe(1)
    for (const w of status.workers) {
      expect(samples.get(`mafalda_worker_consumers{worker="${w.id}"}`)).toBe(w.consumers)
      expect(samples.get(`mafalda_worker_load_percent{worker="${w.id}"}`)).toBeCloseTo(w.load, 1)
    }
    // Counters moved by what this test did: two Workers started, three placements, one pipe.
    const delta = (name: string) => (samples.get(name) ?? 0) - (before.get(name) ?? 0)
    expect(delta("mafalda_workers_started_total")).toBe(1)
    expect(delta('mafalda_placements_total{outcome="new_worker"}')).toBe(1)
    expect(delta('mafalda_placements_total{outcome="existing_router"}')).toBe(1)
    expect(delta("mafalda_pipes_created_total")).toBe(1)
    expect(delta('mafalda_decision_seconds_count{decision="transport"}')).toBe(2)
    expect(delta('mafalda_decision_seconds_count{decision="consumer"}')).toBe(1)
  })
})
