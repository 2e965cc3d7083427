/**
 * A Node API call that failed with one of mediasoup's error kinds on the other Node (its
 * `errorName`, a TypeError for Worker settings mediasoup refuses, say) reaches the app as that
 * kind, as it would on its own Node: `ClusterDelegation` keeps it as the cause of its
 * `WorkerServiceError`, which the Mafalda Router's errors turn back into it.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import { MafaldaRouterId, NodeId } from "../../src/core/Ids.js"
import { toMediasoupError } from "../../src/router/errors.js"
import { NodeCallError } from "../../src/rpc/NodeRpcs.js"
import type { NodeClient } from "../../src/rpc/transport.js"
import { routerSettingsKey, workerSettingsKey } from "../../src/services/SettingsKeys.js"
import { delegationTo, peerRecord } from "../support/simulatedPeers.js"

const peer = NodeId.make("n1")

describe("a Node API failure of one of mediasoup's kinds", () => {
  it.scoped("reaches the app as that kind", () =>
    Effect.gen(function* () {
      const client = {
        Notices: () => Stream.never,
        StartWorker: () =>
          Effect.fail(
            new NodeCallError({ operation: "startWorker", errorName: "TypeError", message: "wrong settings" })
          ),
        NodeInfo: () => Effect.fail(new Error("not listed"))
      } as unknown as NodeClient
      const delegation = yield* delegationTo(client, Effect.succeed([peerRecord(peer, 1, [])]))
      const error = yield* Effect.flip(
        delegation.carryOut(
          {
            mafaldaRouter: MafaldaRouterId.make("m1"),
            workerSettings: workerSettingsKey({ rtcMinPort: 40010, rtcMaxPort: 40000 }),
            routerSettings: routerSettingsKey({}),
            delegations: [],
            node: peer,
            worker: null,
            router: null,
            register: true
          },
          { worker: { rtcMinPort: 40010, rtcMaxPort: 40000 }, router: {} }
        )
      )
      expect(error._tag).toBe("WorkerServiceError")
      const seen = toMediasoupError(error)
      expect(seen.constructor).toBe(TypeError)
      expect(seen.message).toBe("wrong settings")
    })
  )
})
