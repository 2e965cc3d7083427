/**
 * The channel given to the mediasoup base classes that Mafalda's objects extend (`Router`,
 * `WebRtcServer`), so that they are what code typed against mediasoup's classes expects
 * (and `instanceof` holds). Mafalda overrides every public method of those classes; should
 * a base method ever reach the channel, it fails with mediasoup's `UnsupportedError`
 * instead of talking to a Worker.
 *
 * @module
 */
import { types } from "mediasoup"

export const inertChannel: never = new Proxy(
  {},
  {
    get: (_target, property) => {
      throw new types.UnsupportedError(
        `not available on a Mafalda object (mediasoup channel access: ${String(property)})`
      )
    }
  }
) as never
