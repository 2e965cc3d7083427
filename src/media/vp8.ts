/**
 * VP8 over RTP (RFC 7741), enough to make a video-like stream that mediasoup forwards.
 *
 * mediasoup 3.14 parses the VP8 payload descriptor of every packet a video Producer
 * receives, and a video Consumer forwards nothing until it has seen a keyframe. A bare
 * one-byte descriptor (`0x10`) does not parse (mediasoup requires the X bit), so such a
 * stream is dropped whole. The descriptors built here have the X bit and a 15-bit
 * PictureID (`0x90 0x80 0x80|hi lo` on the first packet of a frame, `0x80 0x80 ..` on the
 * others), and a keyframe is marked by the P bit of the VP8 payload header (0 = keyframe)
 * on the first packet of the frame, as a real encoder does.
 *
 * @module
 */
import { buildRtpPacket, RTP_FIXED_HEADER_SIZE } from "./rtp.js"

/** Size of the payload descriptors built here: X, I and a 15-bit PictureID. */
export const VP8_DESCRIPTOR_SIZE = 4

/** Offset of the two PictureID bytes in an RTP packet built by {@link packetizeVp8Frame}. */
export const VP8_PICTURE_ID_OFFSET = RTP_FIXED_HEADER_SIZE + 2

/**
 * A VP8 payload descriptor with the X bit, the I bit and a 15-bit PictureID.
 *
 * @param start the S bit: this packet starts a frame (partition 0).
 */
export const vp8PayloadDescriptor = (start: boolean, pictureId: number): Uint8Array =>
  Uint8Array.of(0x80 | (start ? 0x10 : 0), 0x80, 0x80 | ((pictureId >> 8) & 0x7f), pictureId & 0xff)

/**
 * The start of a VP8 frame (RFC 6386 section 9.1): the 3-byte frame tag, and for a
 * keyframe the start code and the dimensions (10 bytes in all).
 */
export const vp8FrameHeader = (keyFrame: boolean, width = 1280, height = 720): Uint8Array => {
  // Frame tag: bit 0 is the inverse keyframe flag (P), bits 1-3 the version, bit 4 show_frame.
  const tag = Uint8Array.of((keyFrame ? 0 : 1) | 0x10, 0, 0)
  if (!keyFrame) return tag
  return Uint8Array.of(
    ...tag,
    0x9d,
    0x01,
    0x2a,
    width & 0xff,
    (width >> 8) & 0x3f,
    height & 0xff,
    (height >> 8) & 0x3f
  )
}

/** What {@link parseVp8PayloadDescriptor} reads. */
export interface Vp8Descriptor {
  /** The S bit. */
  readonly start: boolean
  readonly pictureId: number | undefined
  /** The first packet of a keyframe (S set, partition 0, P bit clear). */
  readonly keyFrame: boolean
  /** Descriptor length in bytes. */
  readonly size: number
}

/**
 * Reads a VP8 payload descriptor as mediasoup does; `undefined` when mediasoup would drop
 * the packet (no X bit, or truncated).
 */
export const parseVp8PayloadDescriptor = (payload: Uint8Array): Vp8Descriptor | undefined => {
  const first = payload[0]
  const second = payload[1]
  if (first === undefined || (first & 0x80) === 0 || second === undefined) return undefined
  let offset = 2
  let pictureId: number | undefined
  if ((second & 0x80) !== 0) {
    const p = payload[offset]
    if (p === undefined) return undefined
    if ((p & 0x80) !== 0) {
      const low = payload[offset + 1]
      if (low === undefined) return undefined
      pictureId = ((p & 0x7f) << 8) | low
      offset += 2
    } else {
      pictureId = p & 0x7f
      offset += 1
    }
  }
  if ((second & 0x40) !== 0) offset += 1 // TL0PICIDX
  if ((second & 0x30) !== 0) offset += 1 // TID / KEYIDX
  if (offset > payload.length) return undefined
  const start = (first & 0x10) !== 0
  const header = payload[offset]
  const keyFrame = start && (first & 0x07) === 0 && header !== undefined && (header & 0x01) === 0
  return { start, pictureId, keyFrame, size: offset }
}

/** Options of {@link packetizeVp8Frame}. */
export interface Vp8FrameOptions {
  readonly ssrc: number
  readonly payloadType: number
  readonly keyFrame: boolean
  /** Bytes of VP8 data in the frame (frame header included), at least 16. */
  readonly frameBytes: number
  /** Largest RTP payload (descriptor + VP8 data) per packet (default 1200). */
  readonly maxPayload?: number | undefined
  readonly sequenceNumber?: number | undefined
  readonly timestamp?: number | undefined
  readonly pictureId?: number | undefined
}

/**
 * One VP8 frame as RTP packets: the data split evenly over as few packets as fit in
 * `maxPayload`, the S bit on the first, the marker bit on the last, consecutive sequence
 * numbers from `sequenceNumber`, one timestamp and PictureID for all.
 */
export const packetizeVp8Frame = (options: Vp8FrameOptions): Array<Uint8Array> => {
  const maxData = (options.maxPayload ?? 1200) - VP8_DESCRIPTOR_SIZE
  const header = vp8FrameHeader(options.keyFrame)
  const total = Math.max(options.frameBytes, header.length + 6)
  const data = new Uint8Array(total)
  data.set(header)
  for (let i = header.length; i < total; i++) data[i] = (i * 7 + 3) & 0xff
  const count = Math.ceil(total / maxData)
  const packets: Array<Uint8Array> = []
  let offset = 0
  for (let i = 0; i < count; i++) {
    const size = Math.floor(total / count) + (i < total % count ? 1 : 0)
    const payload = new Uint8Array(VP8_DESCRIPTOR_SIZE + size)
    payload.set(vp8PayloadDescriptor(i === 0, options.pictureId ?? 0))
    payload.set(data.subarray(offset, offset + size), VP8_DESCRIPTOR_SIZE)
    offset += size
    packets.push(
      buildRtpPacket({
        ssrc: options.ssrc,
        payloadType: options.payloadType,
        sequenceNumber: ((options.sequenceNumber ?? 0) + i) % 65536,
        timestamp: options.timestamp ?? 0,
        marker: i === count - 1,
        payload
      })
    )
  }
  return packets
}
