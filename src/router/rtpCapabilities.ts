/**
 * mediasoup's pure RTP functions (`ortc`), used the way mediasoup uses them:
 *  - the RTP capabilities of a Router with given media codecs, computed as mediasoup does
 *    when it creates a Router (`generateRouterRtpCapabilities`, pure and deterministic):
 *    every Router with the same codecs has the same capabilities, so a Mafalda Router knows
 *    its own before any underlying Router exists;
 *  - the RTP parameters a pipe consumer (and the pipe producer it feeds) reports.
 *
 * @module
 */
import { createRequire } from "node:module"
import type { types } from "mediasoup"
import type { RouterSettings } from "../services/SettingsKeys.js"

const require = createRequire(import.meta.url)
const ortc = require("mediasoup/node/lib/ortc.js") as {
  generateRouterRtpCapabilities: (mediaCodecs?: types.RtpCodecCapability[]) => types.RtpCapabilities
  getPipeConsumerRtpParameters: (args: {
    consumableRtpParameters: types.RtpParameters
    enableRtx?: boolean
  }) => types.RtpParameters
  validateRtpParameters: (params: types.RtpParameters) => void
}

/** Throws mediasoup's own `TypeError`/`UnsupportedError` for bad codecs. */
export const routerRtpCapabilities = (settings: RouterSettings): types.RtpCapabilities =>
  ortc.generateRouterRtpCapabilities(
    settings.mediaCodecs === undefined ? [] : structuredClone([...settings.mediaCodecs])
  )

/** What a pipe consumer of a producer with these consumable parameters reports (mediasoup's rule). */
export const pipeConsumerRtpParameters = (
  consumable: types.RtpParameters,
  enableRtx: boolean
): types.RtpParameters =>
  ortc.getPipeConsumerRtpParameters({ consumableRtpParameters: consumable, enableRtx })

/** What the pipe producer made from those parameters reports (validated as `produce()` does). */
export const pipeProducerRtpParameters = (pipeConsumer: types.RtpParameters): types.RtpParameters => {
  const params = structuredClone(pipeConsumer)
  ortc.validateRtpParameters(params)
  return params
}
