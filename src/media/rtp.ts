/**
 * RTP over UDP for demos, benchmarks and tests.
 *
 * Two layers:
 *
 * - Pure helpers that build and parse RTP packets (RFC 3550, version 2):
 *   {@link buildRtpPacket}, {@link parseRtpPacket}, {@link isRtcpPacket},
 *   {@link makeRtpPackets}, {@link indexedPayload} and {@link payloadIndex}.
 * - Scoped UDP endpoints built on `node:dgram`: {@link makeRtpSender} sends packets
 *   (one by one, a batch, paced or from a `Stream`) and {@link makeRtpReceiver}
 *   collects the packets that arrive on a local port and lets a caller wait, on
 *   events and with a timeout, until enough of them have arrived. Both close their
 *   socket when their `Scope` closes.
 *
 * @example
 * ```ts
 * const program = Effect.gen(function* () {
 *   const receiver = yield* makeRtpReceiver()
 *   const sender = yield* makeRtpSender({ target: receiver.local })
 *   yield* sender.sendAll(makeRtpPackets({ ssrc: 1234, payloadType: 100, count: 10 }))
 *   return yield* receiver.awaitPackets(10, { timeout: "2 seconds" })
 * }).pipe(Effect.scoped)
 * ```
 *
 * @module
 */
import * as dgram from "node:dgram"
import { performance } from "node:perf_hooks"
import type { Scope } from "effect"
import { Data, Duration, Effect, Either, Stream } from "effect"

// ---------------------------------------------------------------------------
// Packets
// ---------------------------------------------------------------------------

/** The only RTP version in use (RFC 3550). */
export const RTP_VERSION = 2

/** Size in bytes of the fixed RTP header (without CSRCs or header extension). */
export const RTP_FIXED_HEADER_SIZE = 12

/** An RTP header extension block (RFC 3550 section 5.3.1): a 16-bit profile and its data. */
export interface RtpHeaderExtension {
  /** The 16-bit "defined by profile" field, e.g. `0xbede` for one-byte extensions (RFC 8285). */
  readonly profile: number
  /** The extension data; its length must be a multiple of 4 bytes. */
  readonly data: Uint8Array
}

/** The fields of an RTP packet to build with {@link buildRtpPacket}. */
export interface RtpPacketInit {
  /** 7-bit payload type (0–127). */
  readonly payloadType: number
  /** 16-bit sequence number (0–65535). */
  readonly sequenceNumber: number
  /** 32-bit RTP timestamp (0–2^32-1). */
  readonly timestamp: number
  /** 32-bit synchronisation source identifier (0–2^32-1). */
  readonly ssrc: number
  /** The marker bit; `false` when absent. */
  readonly marker?: boolean | undefined
  /** Up to 15 contributing sources; none when absent. */
  readonly csrcs?: ReadonlyArray<number> | undefined
  /** An optional header extension block. */
  readonly headerExtension?: RtpHeaderExtension | undefined
  /** The payload; empty when absent. */
  readonly payload?: Uint8Array | undefined
  /** Number of padding bytes to append (0–255, the last one holds the count); none when absent or 0. */
  readonly paddingLength?: number | undefined
}

/** A parsed RTP packet, as returned by {@link parseRtpPacket}. */
export interface RtpPacket {
  readonly payloadType: number
  readonly sequenceNumber: number
  readonly timestamp: number
  readonly ssrc: number
  readonly marker: boolean
  readonly csrcs: ReadonlyArray<number>
  readonly headerExtension: RtpHeaderExtension | undefined
  /** The payload, without header and padding (a view into the parsed bytes, not a copy). */
  readonly payload: Uint8Array
  /** Number of padding bytes the packet carried (0 when the P bit is unset). */
  readonly paddingLength: number
}

/** {@link buildRtpPacket} was given a field outside its range: a programming error (thrown, a defect). */
export class RtpBuildError extends Data.TaggedError("RtpBuildError")<{
  readonly field: string
  readonly value: unknown
  readonly reason: string
}> {
  override get message(): string {
    return `cannot build RTP packet: ${this.field}=${String(this.value)} ${this.reason}`
  }
}

/** The bytes given to {@link parseRtpPacket} are not a well-formed RTP packet. */
export class RtpParseError extends Data.TaggedError("RtpParseError")<{
  readonly reason: string
  readonly length: number
}> {
  override get message(): string {
    return `not an RTP packet (${this.length} bytes): ${this.reason}`
  }
}

const checkUint = (field: string, value: number, bits: number): void => {
  if (!Number.isInteger(value) || value < 0 || value >= 2 ** bits) {
    throw new RtpBuildError({ field, value, reason: `is not an unsigned ${bits}-bit integer` })
  }
}

/**
 * Serialises an RTP packet (version 2).
 *
 * @throws {@link RtpBuildError} when a field is out of range (payload type above 127, more
 *   than 15 CSRCs, a header extension whose length is not a multiple of 4, ...).
 */
export const buildRtpPacket = (init: RtpPacketInit): Uint8Array => {
  const csrcs = init.csrcs ?? []
  const payload = init.payload ?? new Uint8Array(0)
  const paddingLength = init.paddingLength ?? 0
  const extension = init.headerExtension
  checkUint("payloadType", init.payloadType, 7)
  checkUint("sequenceNumber", init.sequenceNumber, 16)
  checkUint("timestamp", init.timestamp, 32)
  checkUint("ssrc", init.ssrc, 32)
  checkUint("paddingLength", paddingLength, 8)
  if (csrcs.length > 15) {
    throw new RtpBuildError({ field: "csrcs", value: csrcs.length, reason: "has more than 15 entries" })
  }
  for (const [i, csrc] of csrcs.entries()) checkUint(`csrcs[${i}]`, csrc, 32)
  if (extension !== undefined) {
    checkUint("headerExtension.profile", extension.profile, 16)
    if (extension.data.length % 4 !== 0 || extension.data.length / 4 >= 2 ** 16) {
      throw new RtpBuildError({
        field: "headerExtension.data",
        value: extension.data.length,
        reason: "length is not a multiple of 4 below 262144"
      })
    }
  }

  const extensionSize = extension === undefined ? 0 : 4 + extension.data.length
  const headerSize = RTP_FIXED_HEADER_SIZE + 4 * csrcs.length + extensionSize
  const bytes = new Uint8Array(headerSize + payload.length + paddingLength)
  const view = new DataView(bytes.buffer)
  bytes[0] =
    (RTP_VERSION << 6) | (paddingLength > 0 ? 0x20 : 0) | (extension !== undefined ? 0x10 : 0) | csrcs.length
  bytes[1] = (init.marker === true ? 0x80 : 0) | init.payloadType
  view.setUint16(2, init.sequenceNumber)
  view.setUint32(4, init.timestamp)
  view.setUint32(8, init.ssrc)
  let offset = RTP_FIXED_HEADER_SIZE
  for (const csrc of csrcs) {
    view.setUint32(offset, csrc)
    offset += 4
  }
  if (extension !== undefined) {
    view.setUint16(offset, extension.profile)
    view.setUint16(offset + 2, extension.data.length / 4)
    bytes.set(extension.data, offset + 4)
    offset += extensionSize
  }
  bytes.set(payload, offset)
  if (paddingLength > 0) bytes[bytes.length - 1] = paddingLength
  return bytes
}

/**
 * Whether a datagram is RTCP rather than RTP, by the RFC 5761 rule used to demultiplex
 * RTP and RTCP on one port (rtcpMux): the second byte is in 192–223.
 */
export const isRtcpPacket = (bytes: Uint8Array): boolean => {
  const first = bytes[0]
  const second = bytes[1]
  return (
    bytes.length >= 4 &&
    first !== undefined &&
    second !== undefined &&
    first >> 6 === RTP_VERSION &&
    second >= 192 &&
    second <= 223
  )
}

/**
 * Parses an RTP packet (version 2): fixed header, CSRCs, header extension, payload and
 * padding. RTCP packets (see {@link isRtcpPacket}) are rejected.
 */
export const parseRtpPacket = (bytes: Uint8Array): Either.Either<RtpPacket, RtpParseError> => {
  const fail = (reason: string) => Either.left(new RtpParseError({ reason, length: bytes.length }))
  if (bytes.length < RTP_FIXED_HEADER_SIZE) return fail("shorter than the 12-byte fixed header")
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const first = view.getUint8(0)
  const second = view.getUint8(1)
  if (first >> 6 !== RTP_VERSION) return fail(`version is ${first >> 6}, not 2`)
  if (isRtcpPacket(bytes)) return fail("it is an RTCP packet")
  const hasPadding = (first & 0x20) !== 0
  const hasExtension = (first & 0x10) !== 0
  const csrcCount = first & 0x0f

  let offset = RTP_FIXED_HEADER_SIZE
  if (bytes.length < offset + 4 * csrcCount) return fail("truncated CSRC list")
  const csrcs: Array<number> = []
  for (let i = 0; i < csrcCount; i++) {
    csrcs.push(view.getUint32(offset))
    offset += 4
  }

  let headerExtension: RtpHeaderExtension | undefined
  if (hasExtension) {
    if (bytes.length < offset + 4) return fail("truncated header extension")
    const profile = view.getUint16(offset)
    const dataLength = 4 * view.getUint16(offset + 2)
    if (bytes.length < offset + 4 + dataLength) return fail("truncated header extension data")
    headerExtension = { profile, data: bytes.subarray(offset + 4, offset + 4 + dataLength) }
    offset += 4 + dataLength
  }

  let paddingLength = 0
  if (hasPadding) {
    paddingLength = view.getUint8(bytes.length - 1)
    if (paddingLength === 0 || offset + paddingLength > bytes.length) return fail("invalid padding length")
  }

  return Either.right({
    payloadType: second & 0x7f,
    sequenceNumber: view.getUint16(2),
    timestamp: view.getUint32(4),
    ssrc: view.getUint32(8),
    marker: (second & 0x80) !== 0,
    csrcs,
    headerExtension,
    payload: bytes.subarray(offset, bytes.length - paddingLength),
    paddingLength
  })
}

/**
 * A recognisable payload for test traffic: the first 4 bytes hold `index` (big-endian),
 * the rest a pattern derived from it, so that a receiver can check that a payload is
 * byte-for-byte what was sent, and which packet it was ({@link payloadIndex}).
 *
 * @param size total payload size in bytes, at least 4 (default 160, an opus 20 ms frame).
 */
export const indexedPayload = (index: number, size = 160): Uint8Array => {
  checkUint("index", index, 32)
  if (!Number.isInteger(size) || size < 4) {
    throw new RtpBuildError({ field: "size", value: size, reason: "is below 4" })
  }
  const payload = new Uint8Array(size)
  new DataView(payload.buffer).setUint32(0, index)
  for (let i = 4; i < size; i++) payload[i] = (index * 31 + i) & 0xff
  return payload
}

/** The index stored by {@link indexedPayload}, or `undefined` for a payload shorter than 4 bytes. */
export const payloadIndex = (payload: Uint8Array): number | undefined =>
  payload.length < 4 ? undefined : new DataView(payload.buffer, payload.byteOffset, 4).getUint32(0)

/** Options of {@link makeRtpPackets}. */
export interface RtpPacketSeriesOptions {
  readonly ssrc: number
  readonly payloadType: number
  /** Number of packets. */
  readonly count: number
  /** Sequence number of the first packet (default 1); later ones wrap at 65536. */
  readonly firstSequenceNumber?: number | undefined
  /** Timestamp of the first packet (default 0); later ones wrap at 2^32. */
  readonly firstTimestamp?: number | undefined
  /** Timestamp increment per packet (default 960: 20 ms at 48 kHz, one opus frame). */
  readonly timestampStep?: number | undefined
  /** Payload of the packet at `index` (default `indexedPayload(index)`). */
  readonly payload?: ((index: number) => Uint8Array) | undefined
  /** Marker bit of the packet at `index` (default `false`). */
  readonly marker?: ((index: number) => boolean) | undefined
}

/**
 * A series of consecutive packets of one stream (same SSRC and payload type, increasing
 * sequence numbers and timestamps), ready for {@link RtpSender.sendAll}.
 */
export const makeRtpPackets = (options: RtpPacketSeriesOptions): ReadonlyArray<RtpPacketInit> => {
  const firstSequenceNumber = options.firstSequenceNumber ?? 1
  const firstTimestamp = options.firstTimestamp ?? 0
  const timestampStep = options.timestampStep ?? 960
  const payload = options.payload ?? ((index: number) => indexedPayload(index))
  const marker = options.marker ?? (() => false)
  return Array.from({ length: options.count }, (_, index) => ({
    ssrc: options.ssrc,
    payloadType: options.payloadType,
    sequenceNumber: (firstSequenceNumber + index) % 2 ** 16,
    timestamp: (firstTimestamp + index * timestampStep) % 2 ** 32,
    marker: marker(index),
    payload: payload(index)
  }))
}

// ---------------------------------------------------------------------------
// UDP
// ---------------------------------------------------------------------------

/** A UDP address and port. */
export interface UdpEndpoint {
  readonly address: string
  readonly port: number
}

/** A UDP socket could not be bound. */
export class UdpBindError extends Data.TaggedError("UdpBindError")<{
  readonly address: string
  readonly port: number
  readonly cause: unknown
}> {
  override get message(): string {
    return `cannot bind UDP socket on ${this.address}:${this.port}: ${String(this.cause)}`
  }
}

/** A datagram could not be sent. */
export class UdpSendError extends Data.TaggedError("UdpSendError")<{
  readonly target: UdpEndpoint
  readonly cause: unknown
}> {
  override get message(): string {
    return `cannot send UDP datagram to ${this.target.address}:${this.target.port}: ${String(this.cause)}`
  }
}

/** Fewer packets than expected arrived before the timeout. */
export class RtpReceiveTimeoutError extends Data.TaggedError("RtpReceiveTimeoutError")<{
  readonly expected: number
  readonly received: number
  readonly timeout: Duration.Duration
}> {
  override get message(): string {
    return `received ${this.received} of ${this.expected} RTP packets within ${Duration.format(this.timeout)}`
  }
}

/** Binds a UDP/IPv4 socket; its release closes the socket and waits until it is closed. */
const bindUdpSocket = (
  address: string,
  port: number
): Effect.Effect<dgram.Socket, UdpBindError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<dgram.Socket, UdpBindError>((resume) => {
      const socket = dgram.createSocket({ type: "udp4" })
      const onError = (cause: Error) => {
        socket.close()
        resume(Effect.fail(new UdpBindError({ address, port, cause })))
      }
      socket.once("error", onError)
      socket.bind({ address, port, exclusive: true }, () => {
        socket.off("error", onError)
        resume(Effect.succeed(socket))
      })
    }),
    (socket) =>
      Effect.async<void>((resume) => {
        try {
          socket.close(() => resume(Effect.void))
        } catch {
          resume(Effect.void) // already closed
        }
      })
  )

const localEndpoint = (socket: dgram.Socket): UdpEndpoint => {
  const { address, port } = socket.address()
  return { address, port }
}

/** A datagram to send: an RTP packet to build, or bytes sent as they are. */
export type Datagram = RtpPacketInit | Uint8Array

const toBytes = (datagram: Datagram): Uint8Array =>
  datagram instanceof Uint8Array ? datagram : buildRtpPacket(datagram)

/** Options of {@link makeRtpSender}. */
export interface RtpSenderOptions {
  /** Where datagrams go, e.g. a mediasoup PlainTransport's `tuple.localAddress`/`localPort`. */
  readonly target: UdpEndpoint
  /** Local address to bind (default `127.0.0.1`). */
  readonly address?: string | undefined
  /** Local port to bind (default 0: an ephemeral port). */
  readonly port?: number | undefined
}

/** Options of {@link RtpSender.sendAll}. */
export interface SendAllOptions {
  /** Pause between two consecutive packets (default: none, a burst). */
  readonly interval?: Duration.DurationInput | undefined
}

/** Sends datagrams from one local UDP socket to one target. Create it with {@link makeRtpSender}. */
export interface RtpSender {
  /** The local address and port datagrams are sent from (what a comedia transport learns). */
  readonly local: UdpEndpoint
  /** Where datagrams are sent. */
  readonly target: UdpEndpoint
  /** Sends one datagram (an {@link RtpPacketInit} with out-of-range fields is a defect, {@link RtpBuildError}). */
  readonly send: (datagram: Datagram) => Effect.Effect<void, UdpSendError>
  /** Sends datagrams in order, optionally paced; succeeds with the number sent. */
  readonly sendAll: (
    datagrams: Iterable<Datagram>,
    options?: SendAllOptions
  ) => Effect.Effect<number, UdpSendError>
  /**
   * Sends every element of a stream as soon as it is emitted (pace it with e.g.
   * `Stream.schedule(Schedule.spaced("20 millis"))`); succeeds with the number sent
   * when the stream ends.
   */
  readonly sendStream: <E, R>(
    datagrams: Stream.Stream<Datagram, E, R>
  ) => Effect.Effect<number, UdpSendError | E, R>
  /** Number of datagrams sent so far. */
  readonly sent: Effect.Effect<number>
}

/**
 * A UDP sender bound on a local port (default `127.0.0.1`, ephemeral), closed with its scope.
 */
export const makeRtpSender = (
  options: RtpSenderOptions
): Effect.Effect<RtpSender, UdpBindError, Scope.Scope> =>
  Effect.gen(function* () {
    const socket = yield* bindUdpSocket(options.address ?? "127.0.0.1", options.port ?? 0)
    // Asynchronous socket errors (e.g. ICMP) must not crash the process; sends report theirs.
    socket.on("error", () => {})
    const target = { address: options.target.address, port: options.target.port }
    let sent = 0

    const send = (datagram: Datagram): Effect.Effect<void, UdpSendError> =>
      Effect.suspend(() => {
        const bytes = toBytes(datagram)
        return Effect.async<void, UdpSendError>((resume) => {
          socket.send(bytes, target.port, target.address, (cause) => {
            if (cause) {
              resume(Effect.fail(new UdpSendError({ target, cause })))
            } else {
              sent++
              resume(Effect.void)
            }
          })
        })
      })

    const sendAll = (datagrams: Iterable<Datagram>, sendOptions?: SendAllOptions) =>
      Effect.suspend(() => {
        const list = Array.from(datagrams)
        const interval = sendOptions?.interval
        return Effect.forEach(
          list,
          (datagram, index) =>
            interval === undefined || index === 0
              ? send(datagram)
              : Effect.zipRight(Effect.sleep(interval), send(datagram)),
          { discard: true }
        ).pipe(Effect.as(list.length))
      })

    const sendStream = <E, R>(datagrams: Stream.Stream<Datagram, E, R>) =>
      Stream.runFold(Stream.mapEffect(datagrams, send), 0, (n) => n + 1)

    return {
      local: localEndpoint(socket),
      target,
      send,
      sendAll,
      sendStream,
      sent: Effect.sync(() => sent)
    } satisfies RtpSender
  })

/** An RTP packet as received by an {@link RtpReceiver}. */
export interface ReceivedRtpPacket extends RtpPacket {
  /** 0 for the first RTP packet the receiver got, then 1, 2, ... */
  readonly arrivalIndex: number
  /** Arrival time, `performance.now()` milliseconds (monotonic). */
  readonly receivedAt: number
  /** Where the datagram came from. */
  readonly from: UdpEndpoint
  /** Datagram size in bytes. */
  readonly size: number
}

/** Counters of an {@link RtpReceiver}. */
export interface RtpReceiverStats {
  /** RTP packets received (and kept). */
  readonly rtp: number
  /** Total size of those RTP packets, in bytes. */
  readonly rtpBytes: number
  /** RTCP packets received (e.g. sender reports on an rtcpMux transport); counted, not kept. */
  readonly rtcp: number
  /** Datagrams that were neither RTP nor RTCP; counted, not kept. */
  readonly malformed: number
}

/** Options of {@link RtpReceiver.awaitPackets}. */
export interface AwaitPacketsOptions {
  /** How long to wait at most. */
  readonly timeout: Duration.DurationInput
  /** Count only the packets that match (default: all). */
  readonly where?: ((packet: ReceivedRtpPacket) => boolean) | undefined
}

/** Collects the RTP packets that arrive on a local UDP port. Create it with {@link makeRtpReceiver}. */
export interface RtpReceiver {
  /** The bound address and port, e.g. to `connect()` a mediasoup PlainTransport to. */
  readonly local: UdpEndpoint
  /** The RTP packets received so far, in arrival order. */
  readonly packets: Effect.Effect<ReadonlyArray<ReceivedRtpPacket>>
  /** Counters of what has arrived so far. */
  readonly stats: Effect.Effect<RtpReceiverStats>
  /**
   * Every RTP packet, in arrival order: those already received, then the following ones
   * as they arrive. Never ends while the receiver is open; ends when its scope closes.
   * Each run of the stream sees every packet.
   */
  readonly stream: Stream.Stream<ReceivedRtpPacket>
  /**
   * Waits until at least `count` RTP packets (matching `where`, if given) have been
   * received, woken by arrivals rather than by polling, and succeeds with those packets;
   * fails with {@link RtpReceiveTimeoutError} when `timeout` elapses first.
   */
  readonly awaitPackets: (
    count: number,
    options: AwaitPacketsOptions
  ) => Effect.Effect<ReadonlyArray<ReceivedRtpPacket>, RtpReceiveTimeoutError>
}

/** Options of {@link makeRtpReceiver}. */
export interface RtpReceiverOptions {
  /** Local address to bind (default `127.0.0.1`). */
  readonly address?: string | undefined
  /** Local port to bind (default 0: an ephemeral port, see {@link RtpReceiver.local}). */
  readonly port?: number | undefined
}

interface Subscriber {
  readonly onPacket: (packet: ReceivedRtpPacket) => void
  readonly onClose: () => void
}

/**
 * A UDP receiver bound on a local port (default `127.0.0.1`, ephemeral) that keeps every
 * RTP packet it receives, closed with its scope (open streams then end).
 */
export const makeRtpReceiver = (
  options: RtpReceiverOptions = {}
): Effect.Effect<RtpReceiver, UdpBindError, Scope.Scope> =>
  Effect.gen(function* () {
    const received: Array<ReceivedRtpPacket> = []
    const subscribers = new Set<Subscriber>()
    let rtpBytes = 0
    let rtcp = 0
    let malformed = 0

    // Registered first, so released last: streams end once the socket is closed.
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        for (const subscriber of subscribers) subscriber.onClose()
        subscribers.clear()
      })
    )
    const socket = yield* bindUdpSocket(options.address ?? "127.0.0.1", options.port ?? 0)
    socket.on("error", () => {})
    socket.on("message", (datagram, remote) => {
      // A copy, so that the packets kept do not depend on how Node allocates datagrams.
      const message = new Uint8Array(datagram)
      if (isRtcpPacket(message)) {
        rtcp++
        return
      }
      const parsed = parseRtpPacket(message)
      if (Either.isLeft(parsed)) {
        malformed++
        return
      }
      const packet: ReceivedRtpPacket = {
        ...parsed.right,
        arrivalIndex: received.length,
        receivedAt: performance.now(),
        from: { address: remote.address, port: remote.port },
        size: message.length
      }
      received.push(packet)
      rtpBytes += message.length
      for (const subscriber of subscribers) subscriber.onPacket(packet)
    })

    // Subscribes and snapshots in one synchronous step, so no packet is missed or repeated.
    const subscribe = (
      subscriber: Subscriber
    ): Effect.Effect<ReadonlyArray<ReceivedRtpPacket>, never, Scope.Scope> =>
      Effect.acquireRelease(
        Effect.sync(() => {
          subscribers.add(subscriber)
          return received.slice()
        }),
        () => Effect.sync(() => subscribers.delete(subscriber))
      )

    const stream = Stream.asyncPush<ReceivedRtpPacket>((emit) =>
      subscribe({ onPacket: (packet) => emit.single(packet), onClose: () => emit.end() }).pipe(
        Effect.tap((snapshot) => {
          if (snapshot.length > 0) emit.array(snapshot)
        })
      )
    )

    const awaitPackets = (count: number, awaitOptions: AwaitPacketsOptions) =>
      Effect.suspend(() => {
        const where = awaitOptions.where ?? (() => true)
        const timeout = Duration.decode(awaitOptions.timeout)
        let matching: Array<ReceivedRtpPacket> = []
        return Effect.async<ReadonlyArray<ReceivedRtpPacket>>((resume) => {
          const subscriber: Subscriber = {
            onPacket: (packet) => {
              if (!where(packet)) return
              matching.push(packet)
              if (matching.length === count) {
                subscribers.delete(subscriber)
                resume(Effect.succeed(matching))
              }
            },
            onClose: () => {}
          }
          matching = received.filter(where)
          if (matching.length >= count) {
            resume(Effect.succeed(matching))
            return
          }
          subscribers.add(subscriber)
          return Effect.sync(() => subscribers.delete(subscriber))
        }).pipe(
          Effect.timeoutFail({
            duration: timeout,
            onTimeout: () =>
              new RtpReceiveTimeoutError({ expected: count, received: matching.length, timeout })
          })
        )
      })

    return {
      local: localEndpoint(socket),
      packets: Effect.sync(() => received.slice()),
      stats: Effect.sync(() => ({ rtp: received.length, rtpBytes, rtcp, malformed })),
      stream,
      awaitPackets
    } satisfies RtpReceiver
  })
