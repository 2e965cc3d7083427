/**
 * The two threads of the fan-out harness, so that pacing and timing do not wait on the main
 * thread (which drives mediasoup) and the harness reads only what it must:
 *
 * - the **media thread** sends the streams, paced (frames at their due times, their packets
 *   spread at a pacing rate as a WebRTC sender's pacer does; late packets sent as soon as
 *   possible and their lateness recorded), and reads the **sample**
 *   sockets: for each, the distinct packets of the current window and their one-way delays
 *   (send time and arrival time are both that thread's `performance.now()`);
 * - the **sink thread** binds the sockets where every other consumer sends, with a tiny
 *   receive buffer, and then blocks (`Atomics.wait`) until it is told to close: its event
 *   loop never runs, so nobody reads them and the kernel drops what overflows, which costs
 *   the harness nothing (the Worker's send is complete once the datagram is queued or
 *   dropped, as on a real network).
 *
 * Both are plain-JavaScript `eval` workers, so they run the same under tsx, vitest and the
 * compiled library.
 *
 * @module
 */
import { Worker } from "node:worker_threads"
import type { FanoutStream } from "./fanoutStreams.js"
import type { UdpEndpoint } from "./rtp.js"

const mediaThreadSource = `
const { parentPort } = require("node:worker_threads")
const dgram = require("node:dgram")
const { performance } = require("node:perf_hooks")

const WINDOW_SLOTS = 1 << 17
const streams = new Map()
const samples = new Map()
// Per packet of the window (by index - first): 1 if it belongs to a keyframe.
const keyMap = new Uint8Array(WINDOW_SLOTS)
let nextIndex = 0
let active
const win = { open: false, first: 0, end: Infinity, packets: 0, bytes: 0, frames: 0, lags: [], startAt: 0, lastAt: 0 }

const sender = dgram.createSocket({ type: "udp4", sendBufferSize: 4 * 1024 * 1024 })
sender.on("error", () => {})
sender.on("message", () => {}) // RTCP from the ingress transports: read and ignored
const senderReady = new Promise((resolve) => sender.bind(0, "127.0.0.1", resolve))

// Frames are due every frameIntervalMs; their packets leave one after the other at the
// stream's pacing rate (msPerByte, 0 = the whole frame at once), as a WebRTC sender's pacer
// spreads them. Each packet gets its index and send time as it leaves.
const enqueueFrame = (a, due) => {
  const s = a.stream
  const key = a.frame === 0 && s.pictureIdOffset >= 0
  const frame = s.frames[a.frame]
  a.frame = (a.frame + 1) % s.frames.length
  const ts = s.ts
  s.ts = (s.ts + s.timestampStep) >>> 0
  const pid = s.pictureId
  s.pictureId = (s.pictureId + 1) & 0x7fff
  let at = Math.max(due, a.pacerFreeAt)
  for (const template of frame) {
    const p = Buffer.from(template)
    p.writeUInt16BE(s.seq, 2)
    s.seq = (s.seq + 1) & 0xffff
    p.writeUInt32BE(ts, 4)
    if (s.pictureIdOffset >= 0) {
      p[s.pictureIdOffset] = 0x80 | ((pid >> 8) & 0x7f)
      p[s.pictureIdOffset + 1] = pid & 0xff
    }
    a.queue.push({ p, due: at, key })
    at += s.msPerByte * p.length
  }
  a.pacerFreeAt = at
  if (win.open) win.frames++
}

const sendDue = (a, now) => {
  const s = a.stream
  while (a.head < a.queue.length && a.queue[a.head].due <= now) {
    const q = a.queue[a.head++]
    const p = q.p
    if (win.open) win.lags.push(now - q.due)
    const index = nextIndex++
    if (win.open && index - win.first < WINDOW_SLOTS) keyMap[index - win.first] = q.key ? 1 : 0
    p.writeUInt32BE(index, p.length - 4)
    p.writeDoubleBE(performance.now(), p.length - 12)
    sender.send(p, s.target.port, s.target.address)
    if (win.open) {
      win.packets++
      win.bytes += p.length
      win.lastAt = performance.now()
    }
  }
  if (a.head > 4096) {
    a.queue = a.queue.slice(a.head)
    a.head = 0
  }
}

const tick = () => {
  const a = active
  if (a === undefined) return
  const now = performance.now()
  if (!a.stopping) {
    while (a.nextDue <= now) {
      enqueueFrame(a, a.nextDue)
      a.nextDue += a.stream.frameIntervalMs
    }
  }
  sendDue(a, now)
  if (a.stopping && a.head === a.queue.length) {
    finish()
    return
  }
  const nextPacket = a.head < a.queue.length ? a.queue[a.head].due : Infinity
  const next = Math.min(a.stopping ? Infinity : a.nextDue, nextPacket)
  a.timer = setTimeout(tick, Math.max(0, next - performance.now()))
}

let drained = []
const finish = () => {
  if (active !== undefined) clearTimeout(active.timer)
  active = undefined
  let result
  if (win.open) {
    win.open = false
    win.end = nextIndex
    const lags = win.lags.sort((x, y) => x - y)
    const q = (f) => (lags.length === 0 ? 0 : lags[Math.min(lags.length - 1, Math.ceil(f * lags.length) - 1)])
    result = {
      firstIndex: win.first,
      endIndex: win.end,
      packets: win.packets,
      bytes: win.bytes,
      frames: win.frames,
      ms: win.lastAt - win.startAt,
      lagP99Ms: q(0.99),
      lagMaxMs: lags.length === 0 ? 0 : lags[lags.length - 1]
    }
  }
  const waiting = drained
  drained = []
  for (const resolve of waiting) resolve(result)
}

/** Stops after the frames already due have left; resolves with the window's figures, if one was open. */
const stop = () =>
  new Promise((resolve) => {
    if (active === undefined) return resolve(undefined)
    drained.push(resolve)
    active.stopping = true
    clearTimeout(active.timer)
    tick()
  })

const onSample = (s) => (msg) => {
  const now = performance.now()
  if (msg.length < 24 || (msg[1] >= 192 && msg[1] <= 223)) {
    s.other++
    return
  }
  const index = msg.readUInt32BE(msg.length - 4)
  const off = index - win.first
  if (off < 0 || index >= win.end || off >= WINDOW_SLOTS) {
    s.outside++
    return
  }
  if (s.seen[off] === 1) {
    s.duplicates++
    return
  }
  s.seen[off] = 1
  s.received++
  s.delays.push(now - msg.readDoubleBE(msg.length - 12))
  s.offsets.push(off)
  if (s.ssrc === undefined) s.ssrc = msg.readUInt32BE(8)
  else if (s.ssrc !== msg.readUInt32BE(8)) s.foreign++
}

const resetSample = (s) => {
  s.seen.fill(0)
  s.received = 0
  s.duplicates = 0
  s.outside = 0
  s.other = 0
  s.foreign = 0
  s.delays = []
  s.offsets = []
}

const bindSample = () =>
  new Promise((resolve, reject) => {
    const socket = dgram.createSocket({ type: "udp4", recvBufferSize: 4 * 1024 * 1024 })
    socket.once("error", reject)
    socket.bind(0, "127.0.0.1", () => {
      socket.off("error", reject)
      socket.on("error", () => {})
      const s = { socket, seen: new Uint8Array(WINDOW_SLOTS), ssrc: undefined }
      resetSample(s)
      socket.on("message", onSample(s))
      const port = socket.address().port
      samples.set(port, s)
      resolve(port)
    })
  })

const handlers = {
  async hello() {
    await senderReady
    return { port: sender.address().port }
  },
  stream(m) {
    streams.set(m.stream, { ...m.spec, target: m.target, seq: 1000, ts: 0, pictureId: 0 })
    return {}
  },
  async start(m) {
    await stop()
    const stream = streams.get(m.stream)
    if (stream === undefined) throw new Error("unknown stream " + m.stream)
    if (m.window) {
      for (const s of samples.values()) resetSample(s)
      win.open = true
      win.first = nextIndex
      win.end = Infinity
      win.packets = 0
      win.bytes = 0
      win.frames = 0
      win.lags = []
      win.startAt = performance.now()
      win.lastAt = win.startAt
    }
    const now = performance.now()
    active = { stream, frame: 0, nextDue: now, pacerFreeAt: now, queue: [], head: 0, stopping: false, timer: undefined }
    tick()
    return {}
  },
  async stop() {
    return { window: await stop() }
  },
  async samples(m) {
    const ports = []
    for (let i = 0; i < m.count; i++) ports.push(await bindSample())
    return { ports }
  },
  sampleStats(m) {
    const out = []
    const transfer = []
    for (const port of m.ports) {
      const s = samples.get(port)
      if (s === undefined) continue
      const delays = Float64Array.from(s.delays)
      const keyFrame = Uint8Array.from(s.offsets, (off) => keyMap[off])
      transfer.push(delays.buffer, keyFrame.buffer)
      out.push({ port, ssrc: s.ssrc, received: s.received, duplicates: s.duplicates, outside: s.outside,
        other: s.other, foreign: s.foreign, delays, keyFrame })
    }
    return { stats: out, transfer }
  },
  async close() {
    await stop()
    const all = [sender, ...Array.from(samples.values(), (s) => s.socket)]
    await Promise.all(all.map((s) => new Promise((resolve) => { try { s.close(resolve) } catch { resolve() } })))
    return {}
  }
}

parentPort.on("message", async (m) => {
  try {
    const result = await handlers[m.op](m)
    const transfer = result.transfer ?? []
    delete result.transfer
    parentPort.postMessage({ id: m.id, ok: true, result }, transfer)
    if (m.op === "close") parentPort.close()
  } catch (error) {
    parentPort.postMessage({ id: m.id, ok: false, error: String(error && error.stack || error) })
  }
})
`

const sinkThreadSource = `
const { parentPort, workerData } = require("node:worker_threads")
const dgram = require("node:dgram")
const flag = new Int32Array(workerData.flag)
const sockets = []
let bound = 0
for (let i = 0; i < workerData.count; i++) {
  const socket = dgram.createSocket({ type: "udp4", recvBufferSize: workerData.recvBufferSize })
  socket.on("error", () => {})
  sockets.push(socket)
  socket.bind(0, "127.0.0.1", () => {
    if (++bound < workerData.count) return
    parentPort.postMessage(sockets.map((s) => s.address().port))
    // Nobody reads these sockets: this thread's event loop does not run until told to close.
    Atomics.wait(flag, 0, 0)
    for (const s of sockets) s.close()
  })
}
`

/** Pacing rate over the nominal bitrate, as libwebrtc's pacer (its default pacing factor). */
export const DEFAULT_PACING = 2.5

/** What the media thread sent during a measurement window. */
export interface WindowSent {
  /** Index of the first packet sent in the window, and one past the last. */
  readonly firstIndex: number
  readonly endIndex: number
  readonly packets: number
  /** RTP bytes sent. */
  readonly bytes: number
  readonly frames: number
  /** From the first packet sent to the last. */
  readonly ms: number
  /** How late packets were sent after their due time (frame time plus pacing): p99 and maximum. */
  readonly lagP99Ms: number
  readonly lagMaxMs: number
}

/** What one sample socket received of the last window. */
export interface SampleStats {
  readonly port: number
  /** The SSRC of its consumer (the first packet's). */
  readonly ssrc: number | undefined
  /** Distinct packets of the window received. */
  readonly received: number
  readonly duplicates: number
  /** Packets of other windows (or before one), and RTCP or runts. */
  readonly outside: number
  readonly other: number
  /** Packets of another SSRC than the first one. */
  readonly foreign: number
  /** One-way delay of each packet received, in ms. */
  readonly delays: Float64Array
  /** For each of those packets, 1 if it belongs to a keyframe. */
  readonly keyFrame: Uint8Array
}

/** The media thread: paced sender and sample receivers. */
export interface MediaThread {
  /** The local port the streams are sent from. */
  readonly senderPort: number
  /**
   * Gives the thread a stream to send to `target` (e.g. an ingress PlainTransport's tuple).
   * Its packets are paced at `pacing` times its nominal bitrate (default 2.5, as libwebrtc's
   * pacer does); 0 sends each frame's packets in one burst.
   */
  readonly defineStream: (
    name: string,
    stream: FanoutStream,
    target: UdpEndpoint,
    pacing?: number
  ) => Promise<void>
  /**
   * Starts sending `name` from the start of its cycle (a keyframe), stopping any other
   * stream; with `window`, also starts a measurement window (sample counters reset).
   */
  readonly start: (name: string, options?: { readonly window?: boolean }) => Promise<void>
  /** Stops sending (after a whole frame); what the window sent, if one was open. */
  readonly stop: () => Promise<WindowSent | undefined>
  /** Binds `count` new sample sockets on 127.0.0.1. */
  readonly openSamples: (count: number) => Promise<ReadonlyArray<UdpEndpoint>>
  /** What these sample sockets received of the last window. */
  readonly sampleStats: (ports: ReadonlyArray<number>) => Promise<ReadonlyArray<SampleStats>>
  readonly close: () => Promise<void>
}

/** Starts the media thread. */
export const openMediaThread = async (): Promise<MediaThread> => {
  const worker = new Worker(mediaThreadSource, { eval: true })
  const pending = new Map<number, { resolve: (v: never) => void; reject: (e: Error) => void }>()
  let nextId = 0
  let failed: Error | undefined
  const failAll = (error: Error) => {
    failed = error
    for (const p of pending.values()) p.reject(error)
    pending.clear()
  }
  worker.on("message", (m: { id: number; ok: boolean; result?: unknown; error?: string }) => {
    const p = pending.get(m.id)
    if (p === undefined) return
    pending.delete(m.id)
    if (m.ok) p.resolve(m.result as never)
    else p.reject(new Error(`fan-out media thread: ${m.error}`))
  })
  worker.on("error", failAll)
  worker.on("exit", () => failAll(new Error("fan-out media thread exited")))
  const call = <A>(op: string, message: Record<string, unknown> = {}): Promise<A> =>
    new Promise<A>((resolve, reject) => {
      if (failed !== undefined) return reject(failed)
      const id = nextId++
      pending.set(id, { resolve: resolve as (v: never) => void, reject })
      worker.postMessage({ ...message, id, op })
    })
  const { port } = await call<{ port: number }>("hello")
  let closed = false
  return {
    senderPort: port,
    defineStream: async (name, stream, target, pacing = DEFAULT_PACING) => {
      const { frames, frameIntervalMs, timestampStep, pictureIdOffset } = stream
      const msPerByte = pacing > 0 ? 8000 / (pacing * stream.nominal.bitsPerSecond) : 0
      await call("stream", {
        stream: name,
        spec: { frames, frameIntervalMs, timestampStep, pictureIdOffset, msPerByte },
        target: { address: target.address, port: target.port }
      })
    },
    start: async (name, options) => {
      await call("start", { stream: name, window: options?.window === true })
    },
    stop: async () => (await call<{ window: WindowSent | undefined }>("stop")).window,
    openSamples: async (count) =>
      (await call<{ ports: Array<number> }>("samples", { count })).ports.map((p) => ({
        address: "127.0.0.1",
        port: p
      })),
    sampleStats: async (ports) => (await call<{ stats: Array<SampleStats> }>("sampleStats", { ports })).stats,
    close: async () => {
      if (closed) return
      closed = true
      const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()))
      await call("close").catch(() => undefined)
      await Promise.race([exited, new Promise((r) => setTimeout(r, 2000))])
      await worker.terminate()
    }
  }
}

/** Sockets nobody reads. */
export interface Sinks {
  readonly endpoints: ReadonlyArray<UdpEndpoint>
  readonly close: () => Promise<void>
}

/** Binds `count` sink sockets (receive buffer `recvBufferSize`, default 4 KiB) in a blocked thread. */
export const openSinks = async (count: number, recvBufferSize = 4096): Promise<Sinks> => {
  const flag = new SharedArrayBuffer(4)
  const worker = new Worker(sinkThreadSource, { eval: true, workerData: { flag, count, recvBufferSize } })
  const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()))
  const ports = await new Promise<Array<number>>((resolve, reject) => {
    worker.once("message", resolve)
    worker.once("error", reject)
  })
  return {
    endpoints: ports.map((port) => ({ address: "127.0.0.1", port })),
    close: async () => {
      const view = new Int32Array(flag)
      Atomics.store(view, 0, 1)
      Atomics.notify(view, 0)
      await Promise.race([exited, new Promise((r) => setTimeout(r, 2000))])
      await worker.terminate()
    }
  }
}
