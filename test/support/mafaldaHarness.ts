/**
 * The Mafalda instance and UDP sockets of a router test, released after each test: the
 * instance is closed, then the sockets, and every Worker process the test used (those
 * recorded with `track`, and those the instance has at the end) must be gone.
 */
import { afterEach, expect } from "vitest"
import { processExists } from "../../src/media/worker.js"
import { createMafalda, type MafaldaInstance } from "../../src/promise.js"
import { makeResources, opus, type Resources, startBroadcast } from "../router/support.js"

export interface MafaldaHarness {
  /** Creates the test's Mafalda instance, closed after the test. */
  readonly createMafalda: (options?: Parameters<typeof createMafalda>[0]) => Promise<MafaldaInstance>
  /** Makes the test's scope for UDP sockets, closed after the test. */
  readonly makeResources: () => Resources
  /** Records Workers whose processes must be gone after the test. */
  readonly track: (workers: Iterable<{ readonly pid: number }>) => void
}

/** Registers the `afterEach` clean-up of the calling test file, and returns its harness. */
export const useMafaldaHarness = (): MafaldaHarness => {
  let mafalda: MafaldaInstance | undefined
  let resources: Resources | undefined
  const pids = new Set<number>()

  afterEach(async () => {
    if (mafalda?.closed === false) for (const w of await mafalda.workers()) pids.add(w.pid)
    await mafalda?.close()
    await resources?.close()
    mafalda = undefined
    resources = undefined
    for (const pid of pids) expect(processExists(pid)).toBe(false)
    pids.clear()
  })

  return {
    createMafalda: async (options) => {
      mafalda = await createMafalda(options)
      return mafalda
    },
    makeResources: () => {
      resources = makeResources()
      return resources
    },
    track: (workers) => {
      for (const w of workers) pids.add(w.pid)
    }
  }
}

/**
 * Two Mafalda Routers `a` and `b` of `mafalda`, a broadcast on `a`, and `a.pipeToRouter` of
 * its producer to `b`.
 */
export const startPipedBroadcast = async (resources: Resources, mafalda: MafaldaInstance) => {
  const a = await mafalda.createRouter({ mediaCodecs: [opus] })
  const b = await mafalda.createRouter({ mediaCodecs: [opus] })
  const broadcast = await startBroadcast(resources, a)
  const { pipeConsumer, pipeProducer } = await a.pipeToRouter({
    producerId: broadcast.producer.id,
    router: b
  })
  return { a, b, broadcast, pipeConsumer, pipeProducer }
}
