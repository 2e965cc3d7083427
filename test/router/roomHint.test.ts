/**
 * The room size hint of `createRouter` (`expectedParticipants`, `expectedPublishers`), with real
 * Workers: it reaches the cluster snapshot as the Mafalda Router's `hint` (what room-aware
 * placement projects the room by), and bad values reject with mediasoup's `TypeError` before
 * anything is recorded or started.
 */
import { HashMap } from "effect"
import { describe, expect, it } from "vitest"
import { MafaldaRouterId } from "../../src/core/Ids.js"
import { lookup } from "../../src/core/Snapshot.js"
import type { MafaldaInstance } from "../../src/promise.js"
import { useMafaldaHarness } from "../support/mafaldaHarness.js"
import { listenInfo, opus } from "./support.js"

const harness = useMafaldaHarness()

const hintOf = (mafalda: MafaldaInstance, id: string) =>
  lookup(mafalda.snapshot().mafaldaRouters, MafaldaRouterId.make(id))?.hint

describe("createRouter's room size hint", () => {
  it("reaches the snapshot as the Mafalda Router's hint, and stays while it is used", async () => {
    const mafalda = await harness.createMafalda({ maxWorkers: 1, samplingInterval: 3_600_000 })
    const room = await mafalda.createRouter({
      mediaCodecs: [opus],
      expectedParticipants: 40,
      expectedPublishers: 4
    })
    const everyone = await mafalda.createRouter({ mediaCodecs: [opus], expectedParticipants: 12 })
    const none = await mafalda.createRouter({ mediaCodecs: [opus] })
    expect(hintOf(mafalda, room.id)).toEqual({ participants: 40, publishers: 4 })
    expect(hintOf(mafalda, everyone.id)).toEqual({ participants: 12, publishers: null })
    expect(hintOf(mafalda, none.id)).toBeNull()

    await room.createPlainTransport({ listenInfo, rtcpMux: true, comedia: true })
    harness.track(await mafalda.workers())
    expect(hintOf(mafalda, room.id)).toEqual({ participants: 40, publishers: 4 })
    room.close()
    expect(hintOf(mafalda, room.id)).toBeUndefined()
  })

  it("rejects bad values with a TypeError naming the field, recording nothing", async () => {
    const mafalda = await harness.createMafalda({ maxWorkers: 1, samplingInterval: 3_600_000 })
    const bad: ReadonlyArray<[Record<string, unknown>, RegExp]> = [
      [{ expectedParticipants: 0 }, /expectedParticipants must be a positive integer/],
      [{ expectedParticipants: -3 }, /expectedParticipants must be a positive integer/],
      [{ expectedParticipants: 2.5 }, /expectedParticipants must be a positive integer/],
      [{ expectedParticipants: "40" }, /expectedParticipants must be a positive integer/],
      [{ expectedParticipants: Number.NaN }, /expectedParticipants must be a positive integer/],
      [
        { expectedParticipants: 10, expectedPublishers: -1 },
        /expectedPublishers must be a non-negative integer/
      ],
      [
        { expectedParticipants: 10, expectedPublishers: 1.5 },
        /expectedPublishers must be a non-negative integer/
      ],
      [{ expectedParticipants: 10, expectedPublishers: 11 }, /must not exceed expectedParticipants/],
      [{ expectedPublishers: 3 }, /expectedPublishers requires expectedParticipants/]
    ]
    for (const [options, message] of bad) {
      await expect(mafalda.createRouter({ mediaCodecs: [opus], ...options } as never)).rejects.toThrow(
        TypeError
      )
      await expect(mafalda.createRouter({ mediaCodecs: [opus], ...options } as never)).rejects.toThrow(
        message
      )
    }
    expect(HashMap.size(mafalda.snapshot().mafaldaRouters)).toBe(0)
    expect(await mafalda.workers()).toEqual([])
    // The edges are fine: no publishers at all, and everyone publishing.
    const listeners = await mafalda.createRouter({ expectedParticipants: 1, expectedPublishers: 0 })
    const all = await mafalda.createRouter({ expectedParticipants: 5, expectedPublishers: 5 })
    expect(hintOf(mafalda, listeners.id)).toEqual({ participants: 1, publishers: 0 })
    expect(hintOf(mafalda, all.id)).toEqual({ participants: 5, publishers: 5 })
  })
})
