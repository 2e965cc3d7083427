/**
 * What the test page (client.ts, bundled for Chromium) and the test's signalling server
 * (test/support/signalling.ts) exchange. Every endpoint is `POST /api/<name>` with a JSON
 * body and a JSON answer; a failure answers HTTP 500 with `{ error }`.
 */
import type { types } from "mediasoup-client"

export interface SignallingApi {
  /** RTP capabilities of the routers (A and B have the same codecs). */
  readonly "router-capabilities": {
    readonly request: Record<string, never>
    readonly response: types.RtpCapabilities
  }
  /** A WebRtcTransport: `send` on Router A (Worker 1), `recv` on Router B (Worker 2). */
  readonly "create-transport": {
    readonly request: { readonly direction: "send" | "recv" }
    readonly response: {
      readonly id: string
      readonly iceParameters: types.IceParameters
      readonly iceCandidates: Array<types.IceCandidate>
      readonly dtlsParameters: types.DtlsParameters
    }
  }
  readonly "connect-transport": {
    readonly request: { readonly transportId: string; readonly dtlsParameters: types.DtlsParameters }
    readonly response: Record<string, never>
  }
  /** Produces on Router A, then pipes the Producer to Router B. */
  readonly produce: {
    readonly request: {
      readonly transportId: string
      readonly kind: types.MediaKind
      readonly rtpParameters: types.RtpParameters
    }
    readonly response: { readonly id: string }
  }
  /** Consumes a (piped) Producer on Router B, paused until `resume-consumer`. */
  readonly consume: {
    readonly request: {
      readonly transportId: string
      readonly producerId: string
      readonly rtpCapabilities: types.RtpCapabilities
    }
    readonly response: {
      readonly id: string
      readonly producerId: string
      readonly kind: types.MediaKind
      readonly rtpParameters: types.RtpParameters
    }
  }
  readonly "resume-consumer": {
    readonly request: { readonly consumerId: string }
    readonly response: Record<string, never>
  }
}

export type SignallingEndpoint = keyof SignallingApi

/** One `inbound-rtp` entry of a page consumer's `getStats()`. */
export interface InboundRtpStats {
  readonly kind: string
  readonly consumerId: string
  readonly packetsReceived: number
  readonly bytesReceived: number
  readonly framesDecoded: number | undefined
}

/** What `window.mafalda.run()` resolves to. */
export interface PageRunResult {
  readonly handlerName: string
  /** Whether mediasoup-client detected the browser (`Device.factory()`) or the test fell back to Chrome111. */
  readonly handlerDetected: boolean
  readonly producerIds: { readonly audio: string; readonly video: string }
  readonly consumerIds: { readonly audio: string; readonly video: string }
}

/**
 * What the application tells the page when its receive transport was relocated (a Mafalda
 * relocation's `prepared.parameters`): the new transport, and the consumers that replace
 * the old ones.
 */
export interface PageRecvRelocation {
  readonly transport: {
    readonly id: string
    readonly iceParameters: types.IceParameters
    readonly iceCandidates: Array<types.IceCandidate>
    readonly dtlsParameters: types.DtlsParameters
  }
  readonly consumers: ReadonlyArray<{
    readonly replaces: string
    readonly id: string
    readonly producerId: string
    readonly kind: types.MediaKind
    readonly rtpParameters: types.RtpParameters
  }>
}

/** What the page exposes to the test, on `window.mafalda`. */
export interface PageApi {
  /** Produces camera + microphone on Router A, consumes both from Router B. */
  readonly run: () => Promise<PageRunResult>
  /** The `inbound-rtp` stats of the page's consumers. */
  readonly inboundStats: () => Promise<Array<InboundRtpStats>>
  /**
   * Switches to a new receive transport: creates it, consumes the new consumers there (their
   * video shown in place of the old), then closes the old consumers and transport.
   */
  readonly switchRecvTransport: (relocation: PageRecvRelocation) => Promise<PageRunResult["consumerIds"]>
}

declare global {
  interface Window {
    mafalda?: PageApi
  }
}
