/**
 * A Worker another Node told died (a `WorkerDied` notice) while that Node's registry record,
 * rewritten only at its next heartbeat, still lists it: the syncs must not bring it back into
 * the snapshot as started (placements would plan on a dead Worker), nor after the record drops
 * it.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, HashMap, Queue, Stream } from "effect"
import { applyEvent } from "../../src/core/applyEvent.js"
import type { ClusterEvent } from "../../src/core/ClusterEvent.js"
import { MafaldaRouterId, NodeId, RouterId, WorkerId } from "../../src/core/Ids.js"
import { defaultPolicyOptions } from "../../src/core/PolicyOptions.js"
import { type ClusterSnapshot, emptySnapshot } from "../../src/core/Snapshot.js"
import type { NodeNotice } from "../../src/rpc/NodeRpcs.js"
import type { NodeClient } from "../../src/rpc/transport.js"
import { workerSettingsKey } from "../../src/services/SettingsKeys.js"
import { delegationTo, peerRecord } from "../support/simulatedPeers.js"

const peer = NodeId.make("n1")
const dead = WorkerId.make("n1/worker-1")
const other = WorkerId.make("n1/worker-2")
const settings = workerSettingsKey({})

const applyAll = (s: ClusterSnapshot, events: ReadonlyArray<ClusterEvent>): ClusterSnapshot =>
  events.reduce((out, e) => {
    const r = applyEvent(out, e, defaultPolicyOptions.costs)
    return Either.isRight(r) ? r.right : out
  }, s)

describe("a Worker another Node told died while its registry record still lists it", () => {
  it.scoped("is not brought back by the next syncs", () =>
    Effect.gen(function* () {
      const notices = yield* Queue.unbounded<NodeNotice>()
      // n1's record lists both Workers until its next heartbeat (`listed` changed below).
      let listed = [dead, other]
      const records = Effect.sync(() => [
        peerRecord(
          peer,
          2,
          listed.map((id) => ({ id, settings }))
        )
      ])
      const client = {
        Notices: () => Stream.fromQueue(notices),
        CreatePlainTransport: () =>
          Effect.succeed({
            id: "pt-1",
            tuple: { localAddress: "127.0.0.1", localPort: 40000, protocol: "udp" }
          })
      } as unknown as NodeClient
      const delegation = yield* delegationTo(client, records)
      let snapshot = emptySnapshot
      const sync = Effect.map(
        delegation.peerEvents(() => snapshot),
        (events) => {
          snapshot = applyAll(snapshot, events)
          return events
        }
      )
      yield* sync
      expect(HashMap.has(snapshot.workers, dead)).toBe(true)
      // A transport on the Worker opens n1's session, whose notices then say the Worker died.
      yield* delegation.createTransport({
        node: peer,
        worker: dead,
        router: RouterId.make("n1/router-1"),
        mafaldaRouter: MafaldaRouterId.make("m1"),
        kind: "plain",
        options: { listenInfo: { protocol: "udp", ip: "127.0.0.1" } }
      })
      yield* Queue.offer(notices, { _tag: "WorkerDied", worker: dead, reason: "killed" })
      for (let i = 0; i < 100 && (yield* Queue.size(notices)) > 0; i++) yield* Effect.yieldNow()
      for (let i = 0; i < 10; i++) yield* Effect.yieldNow()
      const died = yield* sync
      expect(died.map((e) => e._tag)).toContain("WorkerDied")
      expect(HashMap.has(snapshot.workers, dead)).toBe(false)
      // The record still lists it: the next syncs leave it out.
      const again = yield* sync
      expect(again.filter((e) => e._tag === "WorkerStarted")).toEqual([])
      expect(HashMap.has(snapshot.workers, dead)).toBe(false)
      expect(HashMap.has(snapshot.workers, other)).toBe(true)
      // n1's next heartbeat drops it: nothing to leave out any more.
      listed = [other]
      yield* sync
      expect(HashMap.has(snapshot.workers, dead)).toBe(false)
      expect(HashMap.has(snapshot.workers, other)).toBe(true)
    })
  )
})
