/**
 * A Node API call that failed with one of mediasoup's error kinds on the other Node (its
 * `errorName`, a TypeError for Worker settings mediasoup refuses, say) reaches the app as that
 * kind, as it would on its own Node: `ClusterDelegation` keeps it as the cause of its
 * `WorkerServiceError`, which the Mafalda Router's errors turn back into it. A Node that
 * refuses as it is draining is told apart: `NoCapacityError` ("Node … is draining").
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import { MafaldaRouterId, NodeId, RouterId, WorkerId } from "../../src/core/Ids.js"
import { toMediasoupError } from "../../src/router/errors.js"
import { NodeCallError, NodeDrainingError } from "../../src/rpc/NodeRpcs.js"
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

describe("a Node draining since the app's last sync", () => {
  it.scoped("refuses a transport as NoCapacityError, which Placement places again (replan.test.ts)", () =>
    Effect.gen(function* () {
      const client = {
        Notices: () => Stream.never,
        CreateWebRtcTransport: () => Effect.fail(new NodeDrainingError({ node: peer }))
      } as unknown as NodeClient
      const delegation = yield* delegationTo(client, Effect.succeed([peerRecord(peer, 1, [])]))
      const error = yield* Effect.flip(
        delegation.createTransport({
          node: peer,
          worker: WorkerId.make("n1-w"),
          router: RouterId.make("n1-r"),
          mafaldaRouter: MafaldaRouterId.make("m1"),
          kind: "webrtc",
          options: { listenInfos: [{ protocol: "udp", ip: "127.0.0.1" }] }
        })
      )
      expect(error).toMatchObject({ _tag: "NoCapacityError", message: `Node ${peer} is draining` })
    })
  )
})

describe("a transport's options on another Node", () => {
  const transportOn = (options: unknown, seen: Array<unknown>) =>
    Effect.gen(function* () {
      const client = {
        Notices: () => Stream.never,
        CreateWebRtcTransport: (payload: unknown) =>
          Effect.sync(() => {
            seen.push(payload)
            return {
              id: "t1",
              iceRole: "controlled",
              iceParameters: { usernameFragment: "u", password: "p", iceLite: true },
              iceCandidates: [],
              dtlsParameters: { fingerprints: [], role: "auto" }
            }
          })
      } as unknown as NodeClient
      const delegation = yield* delegationTo(client, Effect.succeed([peerRecord(peer, 1, [])]))
      return yield* delegation.createTransport({
        node: peer,
        worker: WorkerId.make("n1-w"),
        router: RouterId.make("n1-r"),
        mafaldaRouter: MafaldaRouterId.make("m1"),
        kind: "webrtc",
        options
      })
    })

  it.scoped("reach it in their current form (listenIps and announcedIp as mediasoup turns them)", () =>
    Effect.gen(function* () {
      const seen: Array<unknown> = []
      yield* transportOn({ listenIps: [{ ip: "0.0.0.0", announcedIp: "203.0.113.7" }] }, seen)
      expect(seen).toEqual([
        {
          router: "n1-r",
          listenInfos: [{ protocol: "udp", ip: "0.0.0.0", announcedAddress: "203.0.113.7" }]
        }
      ])
    })
  )

  it.scoped("that it does not offer fail with mediasoup's UnsupportedError, asking it nothing", () =>
    Effect.gen(function* () {
      const seen: Array<unknown> = []
      const error = yield* Effect.flip(
        transportOn({ listenInfos: [{ protocol: "udp", ip: "127.0.0.1" }], enableSctp: true }, seen)
      )
      const thrown = toMediasoupError(error)
      expect(thrown.name).toBe("UnsupportedError")
      expect(thrown.message).toMatch(/SCTP \(enableSctp\) is not supported on another Node/)
      expect(seen).toEqual([])
    })
  )
})
