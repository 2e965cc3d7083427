/**
 * mediasoup's data, as `Schema`s: what crosses a process boundary between Mafalda Nodes
 * (RTP parameters and capabilities, listen infos, transport tuples, ICE, DTLS and SRTP
 * parameters). Each decodes to a type mediasoup accepts as is; unknown fields are dropped
 * on decoding (`Schema`'s default), so nothing unchecked reaches a Worker.
 *
 * @module
 */
import { Schema } from "effect"

const Int = Schema.Int
const UInt = Schema.Int.pipe(Schema.nonNegative())
const Port = Schema.Int.pipe(Schema.between(0, 65535))
/** Short strings only: nothing of unbounded size gets through. */
const Str = Schema.String.pipe(Schema.maxLength(4096))

export const MediaKind = Schema.Literal("audio", "video")
export const TransportProtocol = Schema.Literal("udp", "tcp")

/** Codec or header extension parameters (`profile-id`, `packetization-mode`...). */
export const CodecParameters = Schema.Record({
  key: Str,
  value: Schema.Union(Str, Schema.Number)
})

export const RtcpFeedback = Schema.Struct({ type: Str, parameter: Schema.optional(Str) })

export const RtpCodecCapability = Schema.Struct({
  kind: MediaKind,
  mimeType: Str,
  preferredPayloadType: Schema.optional(UInt),
  clockRate: UInt,
  channels: Schema.optional(UInt),
  parameters: Schema.optional(CodecParameters),
  rtcpFeedback: Schema.optional(Schema.Array(RtcpFeedback))
})

export const RtpHeaderExtensionUri = Schema.Literal(
  "urn:ietf:params:rtp-hdrext:sdes:mid",
  "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
  "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
  "http://tools.ietf.org/html/draft-ietf-avtext-framemarking-07",
  "urn:ietf:params:rtp-hdrext:framemarking",
  "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
  "urn:3gpp:video-orientation",
  "urn:ietf:params:rtp-hdrext:toffset",
  "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
  "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
  "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time"
)

export const RtpHeaderExtension = Schema.Struct({
  kind: MediaKind,
  uri: RtpHeaderExtensionUri,
  preferredId: UInt,
  preferredEncrypt: Schema.optional(Schema.Boolean),
  direction: Schema.optional(Schema.Literal("sendrecv", "sendonly", "recvonly", "inactive"))
})

export const RtpCapabilities = Schema.Struct({
  codecs: Schema.optional(Schema.Array(RtpCodecCapability)),
  headerExtensions: Schema.optional(Schema.Array(RtpHeaderExtension))
})
export type RtpCapabilities = typeof RtpCapabilities.Type

export const RtpCodecParameters = Schema.Struct({
  mimeType: Str,
  payloadType: UInt,
  clockRate: UInt,
  channels: Schema.optional(UInt),
  parameters: Schema.optional(CodecParameters),
  rtcpFeedback: Schema.optional(Schema.Array(RtcpFeedback))
})

export const RtpHeaderExtensionParameters = Schema.Struct({
  uri: RtpHeaderExtensionUri,
  id: UInt,
  encrypt: Schema.optional(Schema.Boolean),
  parameters: Schema.optional(CodecParameters)
})

export const RtpEncodingParameters = Schema.Struct({
  ssrc: Schema.optional(UInt),
  rid: Schema.optional(Str),
  codecPayloadType: Schema.optional(UInt),
  rtx: Schema.optional(Schema.Struct({ ssrc: UInt })),
  dtx: Schema.optional(Schema.Boolean),
  scalabilityMode: Schema.optional(Str),
  scaleResolutionDownBy: Schema.optional(Schema.Number),
  maxBitrate: Schema.optional(Schema.Number)
})

export const RtcpParameters = Schema.Struct({
  cname: Schema.optional(Str),
  reducedSize: Schema.optional(Schema.Boolean)
})

export const RtpParameters = Schema.Struct({
  mid: Schema.optional(Str),
  codecs: Schema.Array(RtpCodecParameters),
  headerExtensions: Schema.optional(Schema.Array(RtpHeaderExtensionParameters)),
  encodings: Schema.optional(Schema.Array(RtpEncodingParameters)),
  rtcp: Schema.optional(RtcpParameters)
})
export type RtpParameters = typeof RtpParameters.Type

export const ListenInfo = Schema.Struct({
  protocol: TransportProtocol,
  ip: Str,
  announcedAddress: Schema.optional(Str),
  port: Schema.optional(Port),
  portRange: Schema.optional(Schema.Struct({ min: Port, max: Port })),
  flags: Schema.optional(
    Schema.Struct({
      ipv6Only: Schema.optional(Schema.Boolean),
      udpReusePort: Schema.optional(Schema.Boolean)
    })
  ),
  sendBufferSize: Schema.optional(UInt),
  recvBufferSize: Schema.optional(UInt)
})
export type ListenInfo = typeof ListenInfo.Type

export const TransportTuple = Schema.Struct({
  localAddress: Str,
  localPort: Port,
  remoteIp: Schema.optional(Str),
  remotePort: Schema.optional(Port),
  protocol: TransportProtocol
})
export type TransportTuple = typeof TransportTuple.Type

export const SrtpCryptoSuite = Schema.Literal(
  "AEAD_AES_256_GCM",
  "AEAD_AES_128_GCM",
  "AES_CM_128_HMAC_SHA1_80",
  "AES_CM_128_HMAC_SHA1_32"
)

export const SrtpParameters = Schema.Struct({ cryptoSuite: SrtpCryptoSuite, keyBase64: Str })
export type SrtpParameters = typeof SrtpParameters.Type

export const IceParameters = Schema.Struct({
  usernameFragment: Str,
  password: Str,
  iceLite: Schema.optional(Schema.Boolean)
})

export const IceCandidate = Schema.Struct({
  foundation: Str,
  priority: Int,
  address: Str,
  protocol: TransportProtocol,
  port: Port,
  type: Schema.Literal("host"),
  tcpType: Schema.optional(Schema.Literal("passive"))
})

export const DtlsParameters = Schema.Struct({
  role: Schema.optional(Schema.Literal("auto", "client", "server")),
  fingerprints: Schema.Array(
    Schema.Struct({
      algorithm: Schema.Literal("sha-1", "sha-224", "sha-256", "sha-384", "sha-512"),
      value: Str
    })
  )
})
export type DtlsParameters = typeof DtlsParameters.Type

/** The Worker settings a remote caller may choose (file paths stay the Node's own business). */
export const RemoteWorkerSettings = Schema.Struct({
  logLevel: Schema.optional(Schema.Literal("debug", "warn", "error", "none")),
  logTags: Schema.optional(Schema.Array(Str)),
  rtcMinPort: Schema.optional(Port),
  rtcMaxPort: Schema.optional(Port)
})
export type RemoteWorkerSettings = typeof RemoteWorkerSettings.Type

export const RemoteRouterSettings = Schema.Struct({
  mediaCodecs: Schema.optional(Schema.Array(RtpCodecCapability))
})
export type RemoteRouterSettings = typeof RemoteRouterSettings.Type

/**
 * mediasoup's `getStats()` of a transport, producer or consumer: an array of records (their
 * fields are mediasoup's and vary by version, so their values are not checked), bounded.
 */
export const Stats = Schema.Array(
  Schema.Record({ key: Schema.String.pipe(Schema.maxLength(128)), value: Schema.Unknown })
).pipe(Schema.maxItems(64))
export type Stats = typeof Stats.Type

/** A WebRtcTransport's ICE, DTLS or SCTP state (mediasoup's `IceState`, `DtlsState`, `SctpState`). */
export const TransportState = Schema.Literal(
  "new",
  "connecting",
  "connected",
  "completed",
  "disconnected",
  "failed",
  "closed"
)
export type TransportState = typeof TransportState.Type
