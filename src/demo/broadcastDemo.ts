/**
 * The main demo: a real broadcast through one Mafalda Router over all local CPUs. One
 * producer fed with real RTP from a UDP socket, hundreds of consumers, each on its own
 * PlainTransport sending to local UDP receivers that tell the consumers apart by SSRC and
 * the packets apart by the index in their payload. Returns, as a plain JSON-able object,
 * per Worker its consumers and load, the stream tree, the pipes, and per consumer what
 * arrived. Everything is closed before it returns.
 *
 * Receiving hundreds of streams in one Node process: every packet the producer gets is
 * fanned out by the Workers as one datagram per consumer, all at once. One UDP socket with
 * the default receive buffer (about 208 KiB on Linux) overflows on such a burst, and the
 * kernel drops datagrams. So the consumers are spread over several receiver sockets (one
 * per 64 consumers, at most 32), each asking for a 4 MiB receive buffer (the kernel caps it
 * at `net.core.rmem_max`; the size it granted is reported), and the sender paces the
 * packets 20 ms apart, as a real 50 packets/s audio stream would.
 *
 * By default the consumers are spread over every local CPU: one Worker per CPU
 * (`os.availableParallelism()`), and a consumer cost such that each Worker fills up after
 * its share. Placement follows the cost model only (no load sampling during set-up); the
 * CPU each Worker really used while streaming is measured and reported next to it.
 *
 * @module
 */
import * as dgram from "node:dgram"
import { readFileSync } from "node:fs"
import { availableParallelism } from "node:os"
import { performance } from "node:perf_hooks"
import { Duration, Effect, Either, Exit, Scope } from "effect"
import type { types } from "mediasoup"
import type { ConsumerId } from "../core/Ids.js"
import { lookup } from "../core/Snapshot.js"
import { isRtcpPacket, makeRtpPackets, makeRtpSender, parseRtpPacket, payloadIndex } from "../media/rtp.js"
import { createMafalda } from "../promise.js"
import type { MafaldaOptionsInput } from "../router/MafaldaOptions.js"
import type { ClusterStatus } from "../router/status.js"

export interface BroadcastDemoOptions {
  /** Consumers (default 300). */
  readonly consumers?: number | undefined
  /** Packets each consumer must receive (default 50, one every 20 ms). */
  readonly packets?: number | undefined
  /**
   * Mafalda options. Default: one Worker per local CPU, watermark 60, and costs that give
   * each Worker an equal share of the consumers; given options replace all of that.
   */
  readonly mafalda?: MafaldaOptionsInput | undefined
  /** How long to wait for missing packets after the last is sent (default 3 s). */
  readonly timeout?: Duration.DurationInput | undefined
  /** Receiver sockets (default: one per 64 consumers, at most 32). */
  readonly receivers?: number | undefined
  /** Receive buffer asked for each receiver socket, in bytes (default 4 MiB). */
  readonly recvBufferSize?: number | undefined
}

export interface BroadcastDemoWorker {
  readonly id: string
  readonly pid: number | undefined
  readonly routers: ReadonlyArray<string>
  readonly consumers: number
  /** Its consumers that received every packet. */
  readonly consumersComplete: number
  /** Mafalda's view: last reported CPU % plus the estimated cost of what was placed since. */
  readonly load: number
  readonly reportedLoad: number
  /** CPU % of one core the Worker process really used while the packets were streamed. */
  readonly cpuWhileStreaming: number | undefined
}

export interface BroadcastDemoConsumer {
  readonly id: string
  readonly ssrc: number
  readonly worker: string | undefined
  /** Distinct packets received (by payload index). */
  readonly received: number
}

export interface BroadcastDemoResult {
  readonly consumers: number
  readonly producer: { readonly id: string; readonly ssrc: number; readonly router: string | undefined }
  /** How the consumers were placed: CPUs, Workers allowed, watermark, costs. */
  readonly placement: {
    readonly cpus: number
    readonly maxWorkers: number | undefined
    readonly watermark: number | undefined
    readonly costs: MafaldaOptionsInput["costs"]
  }
  readonly workers: ReadonlyArray<BroadcastDemoWorker>
  readonly tree: ReadonlyArray<{
    readonly router: string
    readonly worker: string | undefined
    readonly parent: string | null
    readonly depth: number
    readonly consumers: number
  }>
  readonly pipes: ClusterStatus["pipes"]
  readonly rtp: {
    readonly packetsSent: number
    readonly packetsPerConsumer: number
    /** Consumers that received at least one packet with their own SSRC. */
    readonly consumersReceiving: number
    /** Consumers that received every packet sent. */
    readonly consumersComplete: number
    readonly minimumReceived: number
    readonly totalReceived: number
    /** Packets received more than once (by consumer and payload index). */
    readonly duplicates: number
    /** Datagrams that were not RTP of a known consumer (RTCP, strangers). */
    readonly ignored: number
    /** The consumers that missed packets, with what they got (empty when all are complete). */
    readonly incomplete: ReadonlyArray<BroadcastDemoConsumer>
    readonly receiverSockets: number
    /** Receive buffer each receiver socket got from the kernel, in bytes. */
    readonly receiveBufferBytes: number
    /**
     * UDP datagrams the kernel dropped for full receive buffers during the stream, on the
     * whole machine (Linux `/proc/net/snmp` `RcvbufErrors`; undefined elsewhere).
     */
    readonly kernelReceiveBufferDrops: number | undefined
    /** Time from the first packet sent to the last one received. */
    readonly streamMs: number
  }
  readonly setupMs: number
  readonly elapsedMs: number
}

const listenInfo: types.TransportListenInfo = { protocol: "udp", ip: "127.0.0.1" }
const PAYLOAD_TYPE = 111
const PACKET_INTERVAL = Duration.millis(20)
const WATERMARK = 60

/** Linux's machine-wide count of UDP datagrams dropped for a full receive buffer. */
const udpReceiveBufferErrors = (): number | undefined => {
  try {
    const lines = readFileSync("/proc/net/snmp", "utf8")
      .split("\n")
      .filter((l) => l.startsWith("Udp: "))
    const names = lines[0]?.split(/\s+/) ?? []
    const values = lines[1]?.split(/\s+/) ?? []
    const i = names.indexOf("RcvbufErrors")
    return i < 0 || values[i] === undefined ? undefined : Number(values[i])
  } catch {
    return undefined
  }
}

/** The default placement: every CPU gets a Worker, every Worker an equal share of consumers. */
const spreadOverCpus = (count: number, cpus: number): MafaldaOptionsInput => {
  const perWorker = Math.max(1, Math.ceil((count + 1) / cpus))
  // Transports: the producer's, and one per consumer. A Worker takes a transport while its
  // load plus the transport's cost stays at or under the watermark: `perWorker` of them, not one more.
  return {
    maxWorkers: cpus,
    watermark: WATERMARK,
    samplingInterval: 3_600_000,
    // Charged on the transport (placed under a lock) rather than the consumer, so that
    // consumers set up concurrently split exactly.
    costs: { transport: WATERMARK / (perWorker + 0.5), producer: 0, pipe: 0, consumer: 0 }
  }
}

interface Tally {
  readonly index: number
  readonly seen: Uint8Array
  received: number
}

/** Receiver sockets that count, per consumer SSRC, the distinct packets (payload indexes). */
const openReceivers = async (count: number, bufferSize: number) => {
  const sockets: Array<dgram.Socket> = []
  const tallies = new Map<number, Tally>()
  let duplicates = 0
  let ignored = 0
  let lastArrival = 0
  let complete = 0
  let expected = Number.POSITIVE_INFINITY
  let onComplete: (() => void) | undefined
  const onMessage = (datagram: Buffer) => {
    if (isRtcpPacket(datagram)) {
      ignored++
      return
    }
    const parsed = parseRtpPacket(datagram)
    const tally = Either.isRight(parsed) ? tallies.get(parsed.right.ssrc) : undefined
    const index = Either.isRight(parsed) ? payloadIndex(parsed.right.payload) : undefined
    if (tally === undefined || index === undefined || index >= tally.seen.length) {
      ignored++
      return
    }
    lastArrival = performance.now()
    if (tally.seen[index] === 1) {
      duplicates++
      return
    }
    tally.seen[index] = 1
    tally.received++
    if (tally.received === expected && ++complete === tallies.size) onComplete?.()
  }
  try {
    for (let i = 0; i < count; i++) {
      const socket = dgram.createSocket({ type: "udp4", recvBufferSize: bufferSize })
      sockets.push(socket)
      socket.on("error", () => {})
      socket.on("message", onMessage)
      await new Promise<void>((resolve, reject) => {
        socket.once("error", reject)
        socket.bind({ address: "127.0.0.1", port: 0, exclusive: true }, () => {
          socket.off("error", reject)
          resolve()
        })
      })
    }
  } catch (error) {
    for (const s of sockets) s.close()
    throw error
  }
  return {
    endpoints: sockets.map((s) => s.address()),
    /** The receive buffer the kernel granted (Linux reports twice what it keeps for data). */
    bufferBytes: Math.min(...sockets.map((s) => s.getRecvBufferSize())),
    expect: (ssrc: number, packets: number) => {
      tallies.set(ssrc, { index: tallies.size, seen: new Uint8Array(packets), received: 0 })
    },
    tallies,
    counters: () => ({ duplicates, ignored, lastArrival }),
    /** Resolves when every consumer has `packets` distinct packets, or after `ms`. */
    awaitComplete: (packets: number, ms: number) =>
      new Promise<void>((resolve) => {
        expected = packets
        complete = 0
        for (const t of tallies.values()) if (t.received >= packets) complete++
        if (complete === tallies.size) return resolve()
        const timer = setTimeout(resolve, ms)
        onComplete = () => {
          clearTimeout(timer)
          resolve()
        }
      }),
    close: () =>
      Promise.all(sockets.map((s) => new Promise<void>((resolve) => s.close(() => resolve())))).then(
        () => undefined
      )
  }
}

/** Runs `f` over `items`, at most `concurrency` at a time, keeping the order of results. */
const mapConcurrent = async <A, B>(
  items: ReadonlyArray<A>,
  concurrency: number,
  f: (a: A, i: number) => Promise<B>
): Promise<Array<B>> => {
  const out = new Array<B>(items.length)
  let next = 0
  const lane = async () => {
    while (next < items.length) {
      const i = next++
      out[i] = await f(items[i]!, i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, lane))
  return out
}

const cpuMs = async (worker: types.Worker): Promise<number | undefined> => {
  try {
    const u = await worker.getResourceUsage()
    return u.ru_utime + u.ru_stime
  } catch {
    return undefined
  }
}

export const runBroadcastDemo = async (options: BroadcastDemoOptions = {}): Promise<BroadcastDemoResult> => {
  const start = performance.now()
  const count = options.consumers ?? 300
  const packets = options.packets ?? 50
  const timeoutMs = Duration.toMillis(Duration.decode(options.timeout ?? Duration.seconds(3)))
  const cpus = availableParallelism()
  const placementOptions = options.mafalda ?? spreadOverCpus(count, cpus)
  const ssrc = 0x5eed0001
  const scope = Effect.runSync(Scope.make())
  const receivers = await openReceivers(
    Math.max(1, options.receivers ?? Math.min(32, Math.ceil(count / 64))),
    options.recvBufferSize ?? 4 * 1024 * 1024
  )
  const mafalda = await createMafalda({
    workerSettings: { rtcMinPort: 45000, rtcMaxPort: 49999 },
    ...placementOptions
  }).catch(async (error) => {
    await receivers.close()
    throw error
  })
  try {
    const router = await mafalda.createRouter({
      mediaCodecs: [{ kind: "audio", mimeType: "audio/opus", clockRate: 48000, channels: 2 }]
    })
    const ingress = await router.createPlainTransport({ listenInfo, rtcpMux: true, comedia: true })
    const producer = await ingress.produce({
      kind: "audio",
      rtpParameters: {
        codecs: [{ mimeType: "audio/opus", payloadType: PAYLOAD_TYPE, clockRate: 48000, channels: 2 }],
        encodings: [{ ssrc }]
      }
    })
    const consumers = await mapConcurrent(
      Array.from({ length: count }, (_, i) => i),
      16,
      async (i) => {
        const transport = await router.createPlainTransport({ listenInfo, rtcpMux: true, comedia: false })
        const target = receivers.endpoints[i % receivers.endpoints.length]!
        await transport.connect({ ip: target.address, port: target.port })
        const consumer = await transport.consume({
          producerId: producer.id,
          rtpCapabilities: router.rtpCapabilities
        })
        const consumerSsrc = consumer.rtpParameters.encodings?.[0]?.ssrc ?? -1
        receivers.expect(consumerSsrc, packets)
        return { id: consumer.id, ssrc: consumerSsrc }
      }
    )
    const setupMs = Math.round(performance.now() - start)
    const status = await mafalda.status()
    const workerObjects = await mafalda.workers()

    const sender = await Effect.runPromise(
      Scope.extend(
        makeRtpSender({ target: { address: ingress.tuple.localAddress, port: ingress.tuple.localPort } }),
        scope
      )
    )
    const dropsBefore = udpReceiveBufferErrors()
    const cpuBefore = await Promise.all(workerObjects.map(cpuMs))
    const streamStart = performance.now()
    const packetsSent = await Effect.runPromise(
      sender.sendAll(makeRtpPackets({ ssrc, payloadType: PAYLOAD_TYPE, count: packets }), {
        interval: PACKET_INTERVAL
      })
    )
    await receivers.awaitComplete(packetsSent, timeoutMs)
    const streamEnd = performance.now()
    const cpuAfter = await Promise.all(workerObjects.map(cpuMs))
    const dropsAfter = udpReceiveBufferErrors()
    const { duplicates, ignored, lastArrival } = receivers.counters()

    // Per consumer: its Worker (from the snapshot) and what it got.
    const snapshot = mafalda.snapshot()
    const workerOf = (consumer: string) => {
      const router = lookup(snapshot.consumers, consumer as ConsumerId)?.router
      return router === undefined ? undefined : lookup(snapshot.routers, router)?.worker
    }
    const perConsumer: Array<BroadcastDemoConsumer> = consumers.map((c) => ({
      id: c.id,
      ssrc: c.ssrc,
      worker: workerOf(c.id),
      received: receivers.tallies.get(c.ssrc)?.received ?? 0
    }))
    const completeOn = new Map<string, number>()
    for (const c of perConsumer) {
      if (c.received >= packetsSent && c.worker !== undefined)
        completeOn.set(c.worker, (completeOn.get(c.worker) ?? 0) + 1)
    }
    const streamedMs = streamEnd - streamStart
    const cpuWhileStreaming = (pid: number | undefined): number | undefined => {
      const i = workerObjects.findIndex((w) => w.pid === pid)
      const before = cpuBefore[i]
      const after = cpuAfter[i]
      if (i < 0 || before === undefined || after === undefined || streamedMs <= 0) return undefined
      return Math.round(((after - before) / streamedMs) * 1000) / 10
    }
    const counts = perConsumer.map((c) => c.received)
    const tree = status.trees.find((t) => t.producer === producer.id)?.hops ?? []
    return {
      consumers: count,
      producer: { id: producer.id, ssrc, router: tree[0]?.router },
      placement: {
        cpus,
        maxWorkers: placementOptions.maxWorkers,
        watermark: placementOptions.watermark,
        costs: placementOptions.costs
      },
      workers: status.workers.map((w) => ({
        id: w.id,
        pid: w.pid,
        routers: w.routers,
        consumers: w.consumers,
        consumersComplete: completeOn.get(w.id) ?? 0,
        load: w.load,
        reportedLoad: w.reportedLoad,
        cpuWhileStreaming: cpuWhileStreaming(w.pid)
      })),
      tree,
      pipes: status.pipes,
      rtp: {
        packetsSent,
        packetsPerConsumer: packets,
        consumersReceiving: counts.filter((n) => n > 0).length,
        consumersComplete: counts.filter((n) => n >= packetsSent).length,
        minimumReceived: counts.length === 0 ? 0 : Math.min(...counts),
        totalReceived: counts.reduce((a, b) => a + b, 0),
        duplicates,
        ignored,
        incomplete: perConsumer.filter((c) => c.received < packetsSent),
        receiverSockets: receivers.endpoints.length,
        receiveBufferBytes: receivers.bufferBytes,
        kernelReceiveBufferDrops:
          dropsBefore === undefined || dropsAfter === undefined ? undefined : dropsAfter - dropsBefore,
        streamMs: Math.round(Math.max(lastArrival, streamStart) - streamStart)
      },
      setupMs,
      elapsedMs: Math.round(performance.now() - start)
    }
  } finally {
    await mafalda.close()
    await receivers.close()
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
}
