/**
 * The streams of the fan-out benchmark: a video-like VP8 stream and an audio-like Opus
 * stream, as cycles of RTP packet templates that a paced sender replays (patching the
 * sequence numbers, timestamps, PictureIDs and the stamp of each packet).
 *
 * Every packet ends with a 12-byte stamp: the send time (a float64, `performance.now()`
 * milliseconds of the sending thread) and a uint32 index counting every packet the sender
 * sent. mediasoup forwards payloads untouched (it rewrites only the VP8 PictureID), so a
 * receiver in the same thread reads the one-way delay and which packet it got.
 *
 * @module
 */
import type { types } from "mediasoup"
import { buildRtpPacket } from "./rtp.js"
import { packetizeVp8Frame, VP8_PICTURE_ID_OFFSET } from "./vp8.js"

/** Bytes at the end of every packet: float64 send time, then uint32 packet index. */
export const STAMP_SIZE = 12

export type FanoutKind = "audio" | "video"

/** One stream: a cycle of frames to replay at a fixed frame rate. */
export interface FanoutStream {
  readonly kind: FanoutKind
  readonly ssrc: number
  readonly payloadType: number
  readonly frameIntervalMs: number
  /** RTP timestamp increment per frame. */
  readonly timestampStep: number
  /**
   * One cycle of frames, each as its RTP packets (the stamp bytes are overwritten when
   * sent). For video a GOP: the first frame is a keyframe, so a cycle restarts with one.
   */
  readonly frames: ReadonlyArray<ReadonlyArray<Uint8Array>>
  /** Where the two PictureID bytes are (video), or -1. */
  readonly pictureIdOffset: number
  /** What the producer is created with. */
  readonly rtpParameters: types.RtpParameters
  /** Packets and RTP bits per second of one cycle, as built. */
  readonly nominal: { readonly packetsPerSecond: number; readonly bitsPerSecond: number }
}

const nominal = (frames: ReadonlyArray<ReadonlyArray<Uint8Array>>, frameIntervalMs: number) => {
  const seconds = (frames.length * frameIntervalMs) / 1000
  const packets = frames.reduce((n, f) => n + f.length, 0)
  const bytes = frames.reduce((n, f) => n + f.reduce((m, p) => m + p.length, 0), 0)
  return {
    packetsPerSecond: Math.round((packets / seconds) * 10) / 10,
    bitsPerSecond: Math.round((bytes * 8) / seconds)
  }
}

/** Options of {@link videoStream}. */
export interface VideoStreamOptions {
  readonly ssrc?: number | undefined
  readonly payloadType?: number | undefined
  /** Frames per second (default 30). */
  readonly fps?: number | undefined
  /** RTP bits per second (default 1,000,000). */
  readonly bitrate?: number | undefined
  /** Frames from one keyframe to the next (default 60: one every 2 s at 30 fps). */
  readonly keyFrameInterval?: number | undefined
  /** Keyframe size over the mean delta frame size (default 8). */
  readonly keyFrameRatio?: number | undefined
  /** Largest RTP payload (default 1200 bytes, as browsers send). */
  readonly maxPayload?: number | undefined
}

/**
 * A VP8-like video stream: a keyframe every `keyFrameInterval` frames, delta frames of
 * varying size (60 % to 140 % of their mean, a fixed pseudo-random sequence), each frame
 * split into packets of at most `maxPayload` bytes with the marker bit on its last.
 */
export const videoStream = (options: VideoStreamOptions = {}): FanoutStream => {
  const ssrc = options.ssrc ?? 0x0f00d001
  const payloadType = options.payloadType ?? 96
  const fps = options.fps ?? 30
  const gop = options.keyFrameInterval ?? 60
  const ratio = options.keyFrameRatio ?? 8
  const maxPayload = options.maxPayload ?? 1200
  // RTP bytes of one GOP, less about 16 bytes of RTP header and descriptor per packet.
  const gopBytes = ((options.bitrate ?? 1_000_000) / 8) * (gop / fps)
  const dataBytes = gopBytes * (1 - 16 / maxPayload)
  const meanDelta = dataBytes / (ratio + gop - 1)
  let seed = 12345
  const weights = Array.from({ length: gop - 1 }, () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31
    return 0.6 + 0.8 * (seed / 2 ** 31)
  })
  const weightSum = weights.reduce((a, b) => a + b, 0)
  const sizes = [meanDelta * ratio, ...weights.map((w) => (meanDelta * (gop - 1) * w) / weightSum)]
  const frames = sizes.map((size, i) =>
    packetizeVp8Frame({
      ssrc,
      payloadType,
      keyFrame: i === 0,
      frameBytes: Math.max(64, Math.round(size)),
      maxPayload
    })
  )
  const frameIntervalMs = 1000 / fps
  return {
    kind: "video",
    ssrc,
    payloadType,
    frameIntervalMs,
    timestampStep: Math.round(90000 / fps),
    frames,
    pictureIdOffset: VP8_PICTURE_ID_OFFSET,
    rtpParameters: {
      codecs: [
        {
          mimeType: "video/VP8",
          payloadType,
          clockRate: 90000,
          rtcpFeedback: [
            { type: "nack" },
            { type: "nack", parameter: "pli" },
            { type: "ccm", parameter: "fir" }
          ]
        }
      ],
      encodings: [{ ssrc }]
    },
    nominal: nominal(frames, frameIntervalMs)
  }
}

/** Options of {@link audioStream}. */
export interface AudioStreamOptions {
  readonly ssrc?: number | undefined
  readonly payloadType?: number | undefined
  /** Opus payload bytes per 20 ms packet (default 120: 48 kbit/s of payload). */
  readonly payloadBytes?: number | undefined
}

/** An Opus-like audio stream: one packet every 20 ms. */
export const audioStream = (options: AudioStreamOptions = {}): FanoutStream => {
  const ssrc = options.ssrc ?? 0x0f00a001
  const payloadType = options.payloadType ?? 111
  const size = Math.max(STAMP_SIZE + 1, options.payloadBytes ?? 120)
  const payload = new Uint8Array(size)
  payload[0] = 0xfc // TOC: CELT fullband, 20 ms, one frame
  for (let i = 1; i < size; i++) payload[i] = (i * 13 + 5) & 0xff
  const frames = [[buildRtpPacket({ ssrc, payloadType, sequenceNumber: 0, timestamp: 0, payload })]]
  return {
    kind: "audio",
    ssrc,
    payloadType,
    frameIntervalMs: 20,
    timestampStep: 960,
    frames,
    pictureIdOffset: -1,
    rtpParameters: {
      codecs: [{ mimeType: "audio/opus", payloadType, clockRate: 48000, channels: 2 }],
      encodings: [{ ssrc }]
    },
    nominal: nominal(frames, 20)
  }
}

/** The stream of a kind, with default options. */
export const fanoutStream = (kind: FanoutKind): FanoutStream =>
  kind === "video" ? videoStream() : audioStream()

/** Reads the stamp at the end of a packet: send time (ms) and packet index. */
export const readStamp = (
  packet: Uint8Array
): { readonly sentAt: number; readonly index: number } | undefined => {
  if (packet.length < STAMP_SIZE) return undefined
  const view = new DataView(packet.buffer, packet.byteOffset, packet.byteLength)
  return { sentAt: view.getFloat64(packet.length - STAMP_SIZE), index: view.getUint32(packet.length - 4) }
}
