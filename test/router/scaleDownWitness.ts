/**
 * Waiting for scale-down to have had its chance at what stopped being used, with real
 * Workers: a witness (a Mafalda Router of other codecs, so with an underlying Router of its
 * own) stops being used now; once scale-down has closed the witness's Router (a pass ran a
 * grace period later), one more pass runs to its end. Fails if the witness is not closed
 * within 10 s.
 */
import type { types } from "mediasoup"
import type { MafaldaInstance } from "../../src/promise.js"
import { once } from "./support.js"

const vp8: types.RtpCodecCapability = { kind: "video", mimeType: "video/VP8", clockRate: 90000 }

export const scaleDownHadItsChance = async (mafalda: MafaldaInstance): Promise<void> => {
  const witness = await mafalda.createRouter({ mediaCodecs: [vp8] })
  const placed = once<[types.Router, types.Worker]>(witness, "newrouter")
  const transport = await witness.createDirectTransport()
  const [router] = await placed
  const closed = once(router.observer, "close", 10_000)
  transport.close()
  await closed
  // The pass that closed the witness may still be closing other things: one more, to its end.
  await mafalda.scaleDown()
  witness.close()
}
