/**
 * Logs: the level and format from the options and the environment, and the structured
 * logs a running Mafalda writes at the places an operator needs (real Workers and RTP
 * objects): Worker started, pipe made, placement rejected, scale-down, pipe closed,
 * Worker exited, Worker died.
 */
import { Effect, Either, HashMap, Layer, Logger, ManagedRuntime } from "effect"
import { afterEach, describe, expect, it, vi } from "vitest"
import * as MafaldaLayer from "../../src/layers/Mafalda.js"
import { processExists } from "../../src/media/worker.js"
import * as Logging from "../../src/ops/logging.js"
import { resolveMafaldaOptions } from "../../src/router/MafaldaOptions.js"
import { Mafalda } from "../../src/services/Mafalda.js"
import { listen, makeResources, opus, startBroadcast } from "../router/support.js"

describe("the logging layer", () => {
  it("takes the level and format from the environment over the options, and says what it ignored", () => {
    expect(Logging.resolveLogging({ env: {} })).toEqual({ level: "warning", format: "logfmt", problems: [] })
    expect(Logging.resolveLogging({ level: "debug", format: "json", env: {} })).toMatchObject({
      level: "debug",
      format: "json"
    })
    expect(
      Logging.resolveLogging({
        level: "debug",
        env: { MAFALDA_LOG_LEVEL: "WARN", MAFALDA_LOG_FORMAT: "json" }
      })
    ).toEqual({ level: "warning", format: "json", problems: [] })
    const bad = Logging.resolveLogging({ level: "info", env: { MAFALDA_LOG_LEVEL: "loud" } })
    expect(bad.level).toBe("info")
    expect(bad.problems).toEqual([
      "MAFALDA_LOG_LEVEL=loud is not one of all, trace, debug, info, warning, error, none; using info"
    ])
  })

  it("writes one JSON object per log line on stderr, with the annotations, at the level asked", async () => {
    const lines: Array<string> = []
    const spy = vi
      .spyOn(console, "error")
      .mockImplementation((line: unknown) => void lines.push(String(line)))
    try {
      await Effect.runPromise(
        Effect.gen(function* () {
          yield* Effect.annotateLogs(Effect.logInfo("Worker started"), { worker: "w1", pid: 42 })
          yield* Effect.logDebug("not shown")
        }).pipe(Effect.provide(Logging.layer({ level: "info", format: "json", env: {} })))
      )
    } finally {
      spy.mockRestore()
    }
    expect(lines).toHaveLength(1)
    expect(JSON.parse(lines[0]!)).toMatchObject({
      message: "Worker started",
      logLevel: "INFO",
      annotations: { worker: "w1", pid: 42 }
    })
  })
})

interface Captured {
  readonly message: string
  readonly level: string
  readonly annotations: Record<string, unknown>
}

describe("the logs of a running Mafalda", () => {
  const pids: Array<number> = []
  afterEach(() => {
    for (const pid of pids.splice(0)) expect(processExists(pid)).toBe(false)
  })

  it("say when Workers start, exit and die, pipes are made and closed, placements rejected, idle things closed", async () => {
    const logs: Array<Captured> = []
    const capture = Logger.make<unknown, void>(({ message, logLevel, annotations }) => {
      logs.push({
        message: String(Array.isArray(message) ? message[0] : message),
        level: logLevel.label,
        annotations: Object.fromEntries(HashMap.toEntries(annotations))
      })
    })
    const resolved = resolveMafaldaOptions({
      maxWorkers: 2,
      watermark: 50,
      costs: { transport: 24 },
      samplingInterval: 3_600_000,
      idleGraceMillis: 0,
      logLevel: "all"
    })
    if (Either.isLeft(resolved)) throw resolved.left
    const runtime = ManagedRuntime.make(
      MafaldaLayer.layerFromResolved(resolved.right).pipe(
        Layer.provide(Logger.replace(Logger.defaultLogger, capture))
      )
    )
    const resources = makeResources()
    const find = (message: string, fields: Record<string, unknown> = {}) =>
      logs.find(
        (l) => l.message === message && Object.entries(fields).every(([k, v]) => l.annotations[k] === v)
      )
    const awaitLog = async (message: string, fields: Record<string, unknown> = {}) => {
      for (let i = 0; i < 100 && find(message, fields) === undefined; i++)
        await new Promise((r) => setTimeout(r, 50))
      const found = find(message, fields)
      if (found === undefined)
        throw new Error(`no "${message}" ${JSON.stringify(fields)} in ${JSON.stringify(logs)}`)
      return found
    }
    try {
      const mafalda = await runtime.runPromise(Mafalda)
      const router = await runtime.runPromise(mafalda.createRouter({ mediaCodecs: [opus] }))
      const broadcast = await startBroadcast(resources, router)
      const near = await listen(resources, router, broadcast.producer.id)
      const far = [
        await listen(resources, router, broadcast.producer.id),
        await listen(resources, router, broadcast.producer.id)
      ]
      const status = await runtime.runPromise(mafalda.status)
      expect(status.workers).toHaveLength(2)
      for (const w of status.workers) pids.push(w.pid!)
      const origin = status.workers[0]!
      const other = status.workers[1]!

      const started = await awaitLog("Worker started", { worker: other.id })
      expect(started).toMatchObject({ level: "INFO", annotations: { pid: other.pid } })
      const pipe = await awaitLog("pipe made", { producer: broadcast.producer.id })
      expect(pipe.annotations.from).toBe(status.pipes[0]!.from)
      expect(pipe.annotations.to).toBe(status.pipes[0]!.to)

      // Both Workers are full and no CPU is left: the next transport is rejected, and said so.
      await expect(listen(resources, router, broadcast.producer.id)).rejects.toThrow()
      expect((await awaitLog("placement rejected")).level).toBe("WARN")

      // The listeners leave: scale-down closes the pipe, then the far Router and Worker (the
      // origin Worker, back under the watermark, is enough).
      for (const l of [near, ...far]) l.transport.close()
      await awaitLog("scale-down", { action: "close_pipe", producer: broadcast.producer.id })
      await awaitLog("pipe closed", { producer: broadcast.producer.id, to: status.pipes[0]!.to })
      await awaitLog("scale-down", { action: "close_worker", worker: other.id })
      await awaitLog("Worker exited", { worker: other.id, why: "closed" })

      // The origin Worker dies.
      process.kill(origin.pid!, "SIGKILL")
      const died = await awaitLog("Worker died", { worker: origin.id })
      expect(died.level).toBe("ERROR")
      expect(died.annotations.pid).toBe(origin.pid)
    } finally {
      await runtime.dispose()
      await resources.close()
    }
  })
})
