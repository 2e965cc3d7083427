/**
 * The RTP capabilities of a Router with given media codecs, computed the way mediasoup
 * computes them when it creates a Router (`ortc.generateRouterRtpCapabilities`, pure and
 * deterministic): every Router with the same codecs has the same capabilities, so a Mafalda
 * Router knows its own before any underlying Router exists.
 *
 * @module
 */
import { createRequire } from "node:module"
import type { types } from "mediasoup"
import type { RouterSettings } from "../services/SettingsKeys.js"

const require = createRequire(import.meta.url)
const ortc = require("mediasoup/node/lib/ortc.js") as {
  generateRouterRtpCapabilities: (mediaCodecs?: types.RtpCodecCapability[]) => types.RtpCapabilities
}

/** Throws mediasoup's own `TypeError`/`UnsupportedError` for bad codecs. */
export const routerRtpCapabilities = (settings: RouterSettings): types.RtpCapabilities =>
  ortc.generateRouterRtpCapabilities(
    settings.mediaCodecs === undefined ? [] : structuredClone([...settings.mediaCodecs])
  )
