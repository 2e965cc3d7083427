/**
 * A placement re-plans when its view of another Node's Workers is a report behind (README,
 * "Known problems"): the app's snapshot of a Node comes from the registry's load reports, which
 * may not list yet a Worker the Node started meanwhile (for another client, or before a Redis
 * restart emptied the registry). The core then plans to start a Worker there, the Node refuses
 * ("N Workers with these settings already run (one per CPU)", a `NodeCallError` of
 * `startWorker`), and the placement must use the Worker the Node has instead of failing.
 *
 * The real shell of Node `n0` (`Cluster.layer`: `Placement`, `SnapshotStore`, over simulated
 * Workers on `TestClock`) with the cluster's own `Delegation` (`ClusterDelegation.layer`)
 * delegating to one other Node, `n1` (1 CPU), simulated here: its Workers are a simulated
 * `WorkerService`, its client answers `StartWorker`, `CreateRouter` and `NodeInfo` as
 * `NodeHost` does (a refusal of `WorkerService` as a `NodeCallError` with its operation), and
 * its registry record lists only the Workers the test lets it show (the stale report).
 *
 * `n0` has one CPU: its one Worker takes the room's first transport, then reports itself
 * full, so the second transport is delegated to `n1` (and so is the Router of a
 * `pipeToRouter` into another Mafalda Router, which goes where its next transport would).
 *
 * Then the same with real components: a real `mafalda node` (in this process: real mediasoup
 * Workers, its real RPC API and `NodeHost`, the real Redis registry) whose report lags (a
 * heartbeat of a minute) and an app in cluster mode (`createMafalda`): a client starts the
 * Node's one Worker after its report, and the app's delegated transport lands on it.
 *
 * @module
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Context, Effect, Either, Exit, HashMap, Layer, Stream, TestClock } from "effect"
import * as ClusterDelegation from "../../src/cluster/ClusterDelegation.js"
import { type RunningNode, startNode } from "../../src/cluster/MafaldaNode.js"
import { NodeClients, parseAddress } from "../../src/cluster/NodeClients.js"
import { RemoteTransport } from "../../src/cluster/RemoteTransport.js"
import {
  MafaldaRouterId,
  NodeId,
  ProducerId,
  type RouterId,
  TransportId,
  type WorkerId
} from "../../src/core/Ids.js"
import { lookup, workerOfRouter } from "../../src/core/Snapshot.js"
import * as ClusterLayer from "../../src/layers/Cluster.js"
import * as TrackerLayer from "../../src/layers/TrackerService.js"
import { layerSimulated } from "../../src/layers/WorkerService.js"
import { processExists } from "../../src/media/worker.js"
import { createMafalda, type MafaldaInstance } from "../../src/promise.js"
import {
  NodeCallError,
  NodeDrainingError,
  type NodeInfo,
  UnknownObjectError
} from "../../src/rpc/NodeRpcs.js"
import { makeClient, type NodeClient } from "../../src/rpc/transport.js"
import { Delegation } from "../../src/services/Delegation.js"
import { NoCapacityError, type WorkerServiceError } from "../../src/services/errors.js"
import { NodeRegistry } from "../../src/services/NodeRegistry.js"
import { Placement } from "../../src/services/Placement.js"
import { SnapshotStore } from "../../src/services/SnapshotStore.js"
import { WorkerService, type WorkerServiceShape } from "../../src/services/WorkerService.js"
import { cleanPrefix, redisAvailable, redisUrl, testPrefix } from "../multi/redisSupport.js"
import { listingRegistry, peerRecord } from "../support/simulatedPeers.js"
import { unitCostPolicy } from "../support/unitCostPolicy.js"

const policy = unitCostPolicy(1000)

const local = NodeId.make("n0")
const peer = NodeId.make("n1")
const third = NodeId.make("n2")

type Call =
  | { readonly call: "StartWorker" | "CreateRouter"; readonly draining: true }
  | { readonly call: "StartWorker"; readonly refused?: string }
  | { readonly call: "CreateRouter"; readonly worker: WorkerId; readonly router: RouterId }
  | { readonly call: "NodeInfo"; readonly workers: ReadonlyArray<WorkerId> }
  | { readonly call: "CloseRouter"; readonly router: RouterId }
  | { readonly call: "CreateWebRtcTransport"; readonly router: RouterId }

interface PeerShape {
  /** The peer's Workers. */
  readonly workers: WorkerServiceShape
  /** The calls its client answered, in order. */
  readonly calls: Array<Call>
  /** Workers its registry record leaves out (the stale report). */
  readonly unreported: Set<WorkerId>
  /** Workers its `NodeInfo` leaves out (still starting there, say). */
  readonly unlisted: Set<WorkerId>
  /** Draining (its registry record not saying so): it refuses starts and Routers as `NodeHost` does. */
  readonly draining: { value: boolean }
  /** Run after it made a Router and before it answers (what happens meanwhile on the app's side). */
  readonly beforeRouterAnswer: { effect: Effect.Effect<void> }
  /** What its `CreateRouter` says of the app's hold on the Router before (`heldBefore`). */
  readonly heldBefore: { value: boolean | undefined }
  /**
   * Lets go of the app's Router there, as `NodeHost` does when the app's connection drops (the
   * app's snapshot still has it): closed, and a transport asked on it refused (`UnknownObjectError`).
   */
  readonly letGo: (router: RouterId) => Effect.Effect<void>
}

class Peer extends Context.Tag("test/replan/Peer")<Peer, PeerShape>() {}

/** The error `NodeHost` answers with when its `WorkerService` fails (`fromWorkerError`). */
const asNodeError = (e: WorkerServiceError) =>
  new NodeCallError({ operation: e.operation, errorName: "Error", message: e.message })

/** One other Node, simulated: its client, what the registry lists of it, and `PeerShape`. */
const makePeer = (id: NodeId, cpus: number, maxProcesses?: number, capInRecord = false) =>
  Effect.gen(function* () {
    const built = yield* Layer.build(layerSimulated({ node: id, cpus, maxProcesses, costs: policy.costs }))
    const workers = Context.get(built, WorkerService)
    const calls: Array<Call> = []
    const unreported = new Set<WorkerId>()
    const unlisted = new Set<WorkerId>()
    const draining = { value: false }
    const beforeRouterAnswer = { effect: Effect.void }
    const heldBefore: { value: boolean | undefined } = { value: false }
    const gone = new Set<RouterId>()
    const refuseWhenDraining = (call: "StartWorker" | "CreateRouter") =>
      Effect.suspend(() => {
        if (!draining.value) return Effect.void
        calls.push({ call, draining: true })
        return Effect.fail(new NodeDrainingError({ node: id }))
      })
    const client = {
      StartWorker: ({ settings }: { settings: never }) =>
        Effect.zipRight(
          refuseWhenDraining("StartWorker"),
          workers.startWorker(settings).pipe(
            Effect.tapBoth({
              onFailure: (e) => Effect.sync(() => calls.push({ call: "StartWorker", refused: e.message })),
              onSuccess: () => Effect.sync(() => calls.push({ call: "StartWorker" }))
            }),
            Effect.mapError(asNodeError)
          )
        ),
      CreateRouter: ({ worker, settings }: { worker: WorkerId; settings: never }) =>
        Effect.zipRight(
          refuseWhenDraining("CreateRouter"),
          workers.createRouter(worker, settings).pipe(
            Effect.tap((info) =>
              Effect.sync(() => calls.push({ call: "CreateRouter", worker, router: info.id }))
            ),
            Effect.tap(() => beforeRouterAnswer.effect),
            Effect.map((info) => ({
              ...info,
              rtpCapabilities: {},
              ...(heldBefore.value === undefined ? {} : { heldBefore: heldBefore.value })
            })),
            Effect.mapError(asNodeError)
          )
        ),
      CloseRouter: ({ router }: { router: RouterId }) =>
        Effect.zipRight(
          Effect.sync(() => calls.push({ call: "CloseRouter", router })),
          workers.closeRouter(router)
        ),
      NodeInfo: () =>
        Effect.map(workers.workers, (all) => {
          const listed = all.filter((w) => !unlisted.has(w.id))
          calls.push({ call: "NodeInfo", workers: listed.map((w) => w.id) })
          const info: NodeInfo = {
            node: id,
            cpus,
            announcedIp: "127.0.0.1",
            state: "up",
            workers: listed,
            transports: 0,
            pipes: 0
          }
          return info
        }),
      PipeFrom: (p: { producer: string; from: string; to: string }) =>
        Effect.succeed({
          producer: p.producer,
          from: p.from,
          to: p.to,
          pipeConsumer: `pipe-consumer-of-${p.producer}`,
          pipeProducer: p.producer,
          srtp: true
        }),
      // The app's session: open for the test's life.
      Notices: () => Stream.never,
      CreateWebRtcTransport: ({ router }: { router: RouterId }) =>
        gone.has(router)
          ? Effect.fail(new UnknownObjectError({ what: "Router", id: router }))
          : Effect.sync(() => {
              calls.push({ call: "CreateWebRtcTransport", router })
              return {
                id: `transport-${calls.length}`,
                iceRole: "controlled",
                iceParameters: { usernameFragment: "u", password: "p", iceLite: true },
                iceCandidates: [],
                dtlsParameters: { fingerprints: [], role: "auto" }
              }
            })
    } as unknown as NodeClient
    // Reported at time 0: `registryEvents` reports no load, and closes no Worker it left out.
    const record = Effect.map(workers.workers, (all) =>
      peerRecord(
        id,
        cpus,
        all.filter((w) => !unreported.has(w.id)),
        capInRecord ? maxProcesses : undefined
      )
    )
    const shape: PeerShape = {
      workers,
      calls,
      unreported,
      unlisted,
      draining,
      beforeRouterAnswer,
      heldBefore,
      letGo: (router) =>
        Effect.zipRight(
          Effect.sync(() => void gone.add(router)),
          workers.closeRouter(router)
        )
    }
    return { id, client, record, shape }
  })

/** `n2`, a third Node, when the test has one. */
class ThirdPeer extends Context.Tag("test/replan/ThirdPeer")<ThirdPeer, PeerShape | undefined>() {}

/**
 * The other Nodes: `NodeClients` (their clients only) and `NodeRegistry` (their records only),
 * `Peer` (`n1`, one CPU unless said) and `ThirdPeer` (`n2`, one CPU, with `third`; else undefined).
 */
const peersLayer = (
  options: {
    readonly peerCpus?: number
    readonly peerMaxProcesses?: number
    /** n1's registry record gives its cap on Worker processes (a Node of this version does; an older one does not). */
    readonly peerCapInRecord?: boolean
    readonly third?: boolean
  } = {}
): Layer.Layer<NodeClients | NodeRegistry | Peer | ThirdPeer> =>
  Layer.scopedContext(
    Effect.gen(function* () {
      const first = yield* makePeer(
        peer,
        options.peerCpus ?? 1,
        options.peerMaxProcesses,
        options.peerCapInRecord
      )
      const peers = options.third === true ? [first, yield* makePeer(third, 1)] : [first]
      const registry = listingRegistry(Effect.forEach(peers, (p) => p.record))
      const clients = NodeClients.of({
        get: (node) => {
          const p = peers.find((p) => p.id === node)
          return p !== undefined
            ? Effect.succeed(p.client)
            : Effect.die(new Error(`no client of Node ${node} expected`))
        },
        drop: () => Effect.void
      })
      return Context.make(NodeClients, clients).pipe(
        Context.add(NodeRegistry, registry),
        Context.add(Peer, first.shape),
        Context.add(ThirdPeer, peers[1]?.shape)
      )
    })
  )

/** Starts asked of n0's `WorkerService`, admitted or refused. */
class OwnStarts extends Context.Tag("test/replan/OwnStarts")<OwnStarts, { asked: number }>() {}

/** n0's Workers (`cpus`, at most `maxProcesses` processes), counting the starts asked of them. */
const localWorkers = (cpus: number, maxProcesses?: number): Layer.Layer<WorkerService | OwnStarts> =>
  Layer.scopedContext(
    Effect.gen(function* () {
      const built = yield* Layer.build(
        layerSimulated({ node: local, cpus, maxProcesses, costs: policy.costs })
      )
      const workers = Context.get(built, WorkerService)
      const starts = { asked: 0 }
      const counted: WorkerServiceShape = {
        ...workers,
        startWorker: (settings) =>
          Effect.zipRight(
            Effect.sync(() => {
              starts.asked += 1
            }),
            workers.startWorker(settings)
          )
      }
      return Context.make(WorkerService, counted).pipe(Context.add(OwnStarts, starts))
    })
  )

/**
 * The shell of `n0`, with `cpus` CPUs (and at most `maxProcesses` Worker processes), and the
 * other Nodes (`peersLayer`).
 */
const shellOf = (cpus: number, maxProcesses?: number, peers: Parameters<typeof peersLayer>[0] = {}) =>
  ClusterLayer.layer({ policy, scaleDownInterval: "1 day" }).pipe(
    Layer.provideMerge(ClusterDelegation.layer({ syncMillis: 100 })),
    Layer.provideMerge(peersLayer(peers)),
    Layer.provideMerge(TrackerLayer.layerMemory({ interval: "1 day" })),
    Layer.provideMerge(localWorkers(cpus, maxProcesses))
  )
const shell = shellOf(1)

const room = MafaldaRouterId.make("m1")
const opus = { kind: "audio", mimeType: "audio/opus", clockRate: 48000, channels: 2 } as const

const placeOne = (n: number) =>
  Effect.flatMap(Placement, (placement) =>
    placement.placeTransport(
      room,
      "webrtc",
      () => Effect.succeed({ id: `t${n}` }),
      (t) => t.id
    )
  )

/**
 * A producer of the room (`p0`, on its transport `t0`, made at `at`) piped into a Mafalda Router
 * of other Router settings (`m2`: nothing to share), whose Router goes where its next transport
 * would.
 */
const pipeIntoOtherRoom = (at: number) =>
  Effect.gen(function* () {
    const store = yield* SnapshotStore
    const placement = yield* Placement
    const producer = ProducerId.make("p0")
    yield* store.apply({
      _tag: "ProducerCreated",
      producer,
      kind: "audio",
      transport: TransportId.make("t0"),
      at
    })
    const other = MafaldaRouterId.make("m2")
    yield* placement.createMafaldaRouter(other, {}, { mediaCodecs: [opus] })
    return yield* placement.pipeToMafaldaRouter(producer, room, other)
  })

/**
 * The peer runs a Worker with the room's settings that its registry record leaves out (started
 * for another client: the report that lists it is still to come); `n0`'s one Worker holds the
 * room's first transport and reports itself full. Returns that hidden Worker.
 */
const setUp = Effect.gen(function* () {
  const store = yield* SnapshotStore
  const placement = yield* Placement
  const { workers, unreported } = yield* Peer
  const hidden = (yield* workers.startWorker({})).id
  unreported.add(hidden)
  // The first sync brings n1 (without its Worker).
  while (!HashMap.has(store.current().nodes, peer)) yield* Effect.yieldNow()
  expect(HashMap.has(store.current().workers, hidden)).toBe(false)
  yield* placement.createMafaldaRouter(room, {}, { mediaCodecs: [] })
  yield* TestClock.setTime(10)
  const first = yield* placeOne(0)
  expect(lookup(store.current().workers, first.worker)?.node).toBe(local)
  yield* TestClock.setTime(20)
  yield* store.apply({ _tag: "LoadReported", worker: first.worker, load: 95, at: 20 })
  yield* TestClock.setTime(30)
  return hidden
})

describe("a placement whose view of another Node's Workers is a report behind", () => {
  it.scoped("lands on the Worker that Node has instead of failing on its refusal to start one", () =>
    Effect.gen(function* () {
      const store = yield* SnapshotStore
      const { calls } = yield* Peer
      const hidden = yield* setUp
      const placed = yield* placeOne(1)
      // On n1's Worker the registry did not report, with a Router created there.
      expect(placed.worker).toBe(hidden)
      expect(lookup(store.current().workers, hidden)?.node).toBe(peer)
      expect(lookup(store.current().routers, placed.router)?.worker).toBe(hidden)
      expect(placed.added).toBe(true)
      // Asked to start a Worker (refused), then what it runs, then a Router on that Worker.
      expect(calls).toEqual([
        { call: "StartWorker", refused: "1 Workers with these settings already run (one per CPU)" },
        { call: "NodeInfo", workers: [hidden] },
        { call: "CreateRouter", worker: hidden, router: placed.router }
      ])
      // The next transport of the room goes there too, without asking for a Worker again.
      const next = yield* placeOne(2)
      expect(next.router).toBe(placed.router)
      expect(calls.filter((c) => c.call === "StartWorker")).toHaveLength(1)
      // Later syncs (the registry still a report behind) keep the Worker.
      yield* TestClock.adjust(1000)
      expect(lookup(store.current().workers, hidden)?.alive).toBe(true)
    }).pipe(Effect.provide(shell))
  )

  it.scoped("pipeToRouter into another Mafalda Router lands there too", () =>
    Effect.gen(function* () {
      const store = yield* SnapshotStore
      const { calls } = yield* Peer
      const hidden = yield* setUp
      // A producer of the room on n0, piped into a Mafalda Router of other Router settings
      // (nothing to share): its Router goes where its next transport would, on n1.
      const outcome = yield* pipeIntoOtherRoom(30)
      if (outcome._tag !== "Piped") return expect.fail(`expected a pipe, got ${outcome._tag}`)
      expect(outcome.placement.worker).toBe(hidden)
      expect(lookup(store.current().routers, outcome.pipe.to)?.worker).toBe(hidden)
      expect(calls.map((c) => c.call)).toEqual(["StartWorker", "NodeInfo", "CreateRouter"])
    }).pipe(Effect.provide(shell))
  )

  it.scoped("fails as before when the Node's current Workers do not change the decision", () =>
    Effect.gen(function* () {
      const { calls, unlisted } = yield* Peer
      const hidden = yield* setUp
      // Its NodeInfo does not list the Worker either (still starting there, say): the core
      // decides the same start again, which is not asked twice.
      unlisted.add(hidden)
      const exit = yield* Effect.exit(placeOne(1))
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) {
        const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
        expect(error).toMatchObject({
          _tag: "WorkerServiceError",
          operation: `placement on Node ${peer}`,
          message: "1 Workers with these settings already run (one per CPU)"
        })
      }
      expect(calls.map((c) => c.call)).toEqual(["StartWorker", "NodeInfo"])
    }).pipe(Effect.provide(shell))
  )
})

/**
 * n0's WorkerService runs a Worker started as `NodeHost` starts one for another app's client
 * (left out of this app's snapshot); the app knows n1 and opens the room. Returns that Worker.
 */
const foreignSetUp = Effect.gen(function* () {
  const store = yield* SnapshotStore
  const foreign = (yield* (yield* WorkerService).startWorker({})).id
  while (!HashMap.has(store.current().nodes, peer)) yield* Effect.yieldNow()
  expect(HashMap.has(store.current().workers, foreign)).toBe(false)
  yield* (yield* Placement).createMafaldaRouter(room, {}, { mediaCodecs: [] })
  yield* TestClock.setTime(10)
  return foreign
})

describe("a placement on this Node, whose CPUs run a Worker its NodeHost started for another app", () => {
  it.scoped("goes to another Node instead of failing on this Node's refusal to start a Worker", () =>
    Effect.gen(function* () {
      const store = yield* SnapshotStore
      const local0 = yield* WorkerService
      const { calls } = yield* Peer
      // n0's one CPU runs another app's Worker: the core's view has n0 start none (its
      // snapshot alone would show a free CPU there, and n0 would refuse), so a Worker on n1.
      const foreign = yield* foreignSetUp
      const placed = yield* placeOne(0)
      expect(placed.worker).not.toBe(foreign)
      expect(lookup(store.current().workers, placed.worker)?.node).toBe(peer)
      expect(calls.map((c) => c.call)).toEqual(["StartWorker", "CreateRouter"])
      // The refusal changed nothing on n0, and its snapshot still leaves the foreign Worker out.
      expect((yield* local0.workers).map((w) => w.id)).toEqual([foreign])
      expect(HashMap.has(store.current().workers, foreign)).toBe(false)
      // The room's next transport joins it there, without a start asked of anyone.
      const next = yield* placeOne(1)
      expect(next.router).toBe(placed.router)
      expect(calls.filter((c) => c.call === "StartWorker")).toHaveLength(1)
    }).pipe(Effect.provide(shell))
  )

  it.scoped("still uses the Workers the app runs on this Node", () =>
    Effect.gen(function* () {
      const store = yield* SnapshotStore
      const local0 = yield* WorkerService
      const { calls } = yield* Peer
      // n0 has 2 CPUs: another app's Worker takes one, the app's first transport starts a
      // Worker on the other; then every CPU runs a Worker, and the room's next transport
      // joins the app's Worker there (a Node seen as starting no Worker still places on its
      // own), without asking n1 for anything.
      yield* foreignSetUp
      const first = yield* placeOne(0)
      expect(lookup(store.current().workers, first.worker)?.node).toBe(local)
      expect(yield* local0.workers).toHaveLength(2)
      const next = yield* placeOne(1)
      expect(next.router).toBe(first.router)
      expect(calls).toEqual([])
    }).pipe(Effect.provide(shellOf(2)))
  )

  it.scoped("pipeToRouter into another Mafalda Router goes to another Node too", () =>
    Effect.gen(function* () {
      const store = yield* SnapshotStore
      const local0 = yield* WorkerService
      const { calls } = yield* Peer
      yield* foreignSetUp
      const first = yield* placeOne(0)
      expect(lookup(store.current().workers, first.worker)?.node).toBe(peer)
      // A producer of the room on n1, piped into a Mafalda Router of other Router settings:
      // its Router goes where its next transport would, on n1 (n0 starts no Worker).
      const outcome = yield* pipeIntoOtherRoom(10)
      if (outcome._tag !== "Piped") return expect.fail(`expected a pipe, got ${outcome._tag}`)
      expect(lookup(store.current().workers, outcome.placement.worker)?.node).toBe(peer)
      expect(calls.map((c) => c.call)).toEqual(["StartWorker", "CreateRouter", "CreateRouter"])
      expect((yield* local0.workers).length).toBe(1)
    }).pipe(Effect.provide(shell))
  )

  it.scoped(
    "goes to another Node when the other app's Worker takes this Node's cap on Worker processes",
    () =>
      Effect.gen(function* () {
        const store = yield* SnapshotStore
        const starts = yield* OwnStarts
        const { calls } = yield* Peer
        // n0 has 2 CPUs but runs at most 1 Worker process, taken by the other app's Worker:
        // n0 is asked for no start (it would refuse), the transport goes to a Worker on n1.
        yield* foreignSetUp
        expect(starts.asked).toBe(1)
        const placed = yield* placeOne(0)
        expect(lookup(store.current().workers, placed.worker)?.node).toBe(peer)
        expect(starts.asked).toBe(1)
        expect(calls.map((c) => c.call)).toEqual(["StartWorker", "CreateRouter"])
      }).pipe(Effect.provide(shellOf(2, 1)))
  )

  it.scoped(
    "fails with NoCapacityError when no other Node can take it, asking no Node to start a Worker",
    () =>
      Effect.gen(function* () {
        const store = yield* SnapshotStore
        const local0 = yield* WorkerService
        const { workers: peerWorkers, calls } = yield* Peer
        // n1's one CPU is in use too (reported): nowhere to go.
        yield* peerWorkers.startWorker({})
        yield* local0.startWorker({})
        // The next sync brings it in.
        while (HashMap.size(store.current().workers) === 0) yield* TestClock.adjust(100)
        const placement = yield* Placement
        yield* placement.createMafaldaRouter(room, {}, { mediaCodecs: [] })
        const [peerWorker] = HashMap.keys(store.current().workers)
        yield* store.apply({
          _tag: "LoadReported",
          worker: peerWorker!,
          load: 95,
          at: yield* Clock.currentTimeMillis
        })
        const exit = yield* Effect.exit(placeOne(0))
        expect(Exit.isFailure(exit)).toBe(true)
        if (Exit.isFailure(exit)) {
          const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
          expect(error).toMatchObject({ _tag: "NoCapacityError" })
          // It says why this Node started none.
          expect((error as { message: string }).message).toMatch(
            /this Node starts no Worker: 1 Workers with these settings already run/
          )
        }
        expect(calls).toEqual([])
        expect(yield* local0.workers).toHaveLength(1)
      }).pipe(Effect.provide(shell))
  )
})

/**
 * n1 has 2 CPUs but runs at most 1 Worker process, taken by a Worker of other settings
 * (listed): the snapshot shows a CPU free there for the room's settings. n0's one CPU runs
 * another app's Worker; n2 is empty. Places the room's first transport, which lands on n2;
 * returns the calls n1 answered.
 */
const besideCappedPeer = Effect.gen(function* () {
  const store = yield* SnapshotStore
  const { workers: peerWorkers, calls } = yield* Peer
  const thirdCalls = (yield* ThirdPeer)?.calls
  yield* peerWorkers.startWorker({ logLevel: "warn" })
  yield* foreignSetUp
  while (HashMap.size(store.current().workers) === 0) yield* TestClock.adjust(100)
  expect(HashMap.has(store.current().nodes, third)).toBe(true)
  const placed = yield* placeOne(0)
  expect(lookup(store.current().workers, placed.worker)?.node).toBe(third)
  expect(thirdCalls?.map((c) => c.call)).toEqual(["StartWorker", "CreateRouter"])
  return calls
})
const cappedPeer = { peerCpus: 2, peerMaxProcesses: 1, third: true }

describe("a placement after another Node refused a start its Workers do not explain", () => {
  it.scoped("goes to a third Node instead of asking the Node that refused again", () =>
    Effect.gen(function* () {
      // n1's record does not give its cap (a Node of an earlier version): n1 refuses once.
      expect(yield* besideCappedPeer).toEqual([
        { call: "StartWorker", refused: "1 Worker processes already run (maxWorkerProcesses)" },
        { call: "NodeInfo", workers: [expect.any(String)] }
      ])
    }).pipe(Effect.provide(shellOf(1, undefined, cappedPeer)))
  )

  it.scoped("asks that Node nothing when its registry record gives the cap", () =>
    Effect.gen(function* () {
      expect(yield* besideCappedPeer).toEqual([])
      expect(lookup((yield* SnapshotStore).current().nodes, peer)?.maxWorkerProcesses).toBe(1)
    }).pipe(Effect.provide(shellOf(1, undefined, { ...cappedPeer, peerCapInRecord: true })))
  )
})

/** The room's first transport, on n1 (n0's one CPU runs another app's Worker): a Router there. */
const firstOnPeer = Effect.gen(function* () {
  yield* foreignSetUp
  const first = yield* placeOne(0)
  expect(workerOfRouter((yield* SnapshotStore).current(), first.router)?.node).toBe(peer)
  return first
})

/** The room's next transport, made by `create`; returns it and the Routers `create` was asked for, in order. */
const placeNext = <E>(create: (router: RouterId) => Effect.Effect<{ readonly id: string }, E>) =>
  Effect.gen(function* () {
    const tried: Array<RouterId> = []
    const next = yield* (yield* Placement).placeTransport(
      room,
      "webrtc",
      (router) => {
        tried.push(router)
        return create(router)
      },
      (t) => t.id
    )
    return { next, tried }
  })

/**
 * n0's one CPU runs another app's Worker, n2 is empty, and n1 (after `before`) drains, its
 * registry record still up: places the room's first transport, which lands on n2. Returns
 * the calls n1 answered.
 */
const placedWhileDraining = (before: Effect.Effect<void, never, Peer | SnapshotStore> = Effect.void) =>
  Effect.gen(function* () {
    const store = yield* SnapshotStore
    const { calls, draining } = yield* Peer
    const thirdCalls = (yield* ThirdPeer)?.calls
    yield* before
    yield* foreignSetUp
    expect(HashMap.has(store.current().nodes, third)).toBe(true)
    draining.value = true
    const placed = yield* placeOne(0)
    expect(lookup(store.current().workers, placed.worker)?.node).toBe(third)
    expect(thirdCalls?.map((c) => c.call)).toEqual(["StartWorker", "CreateRouter"])
    return calls
  })

describe("a placement on another Node that started draining after the snapshot last heard of it", () => {
  it.scoped("goes to a third Node instead of failing", () =>
    Effect.gen(function* () {
      // The core plans a start on n1 (the first Node up with a CPU free), n1 refuses.
      expect(yield* placedWhileDraining()).toEqual([{ call: "StartWorker", draining: true }])
    }).pipe(Effect.provide(shellOf(1, undefined, { third: true })))
  )

  it.scoped("goes to a third Node when the plan used a Worker the draining Node runs", () =>
    Effect.gen(function* () {
      // n1 runs a Worker with the room's settings (listed): the core plans a Router on it.
      const listedWorker = Effect.gen(function* () {
        const store = yield* SnapshotStore
        const running = (yield* (yield* Peer).workers.startWorker({}).pipe(Effect.orDie)).id
        while (!HashMap.has(store.current().workers, running)) yield* TestClock.adjust(100)
      })
      expect(yield* placedWhileDraining(listedWorker)).toEqual([{ call: "CreateRouter", draining: true }])
    }).pipe(Effect.provide(shellOf(1, undefined, { third: true })))
  )

  it.scoped("a transport on the room's Router there goes to a third Node instead of failing", () =>
    Effect.gen(function* () {
      const store = yield* SnapshotStore
      const { draining } = yield* Peer
      const thirdCalls = (yield* ThirdPeer)?.calls
      // The room's first transport on n1, then n1 drains.
      const first = yield* firstOnPeer
      draining.value = true
      // Its Router there refuses the next transport as the cluster's Delegation says so
      // (`createTransport`: NodeDrainingError as NoCapacityError, see remoteErrors.test.ts).
      const { next, tried } = yield* placeNext((router) =>
        workerOfRouter(store.current(), router)?.node === peer
          ? Effect.fail(new NoCapacityError({ message: `Node ${peer} is draining` }))
          : Effect.succeed({ id: "t1" })
      )
      expect(tried).toEqual([first.router, next.router])
      expect(workerOfRouter(store.current(), next.router)?.node).toBe(third)
      expect(lookup(store.current().nodes, peer)?.state).toBe("draining")
      expect(thirdCalls?.map((c) => c.call)).toEqual(["StartWorker", "CreateRouter"])
    }).pipe(Effect.provide(shellOf(1, undefined, { third: true })))
  )

  it.scoped("fails with NoCapacityError saying so when no other Node can take it", () =>
    Effect.gen(function* () {
      const { calls, draining } = yield* Peer
      yield* foreignSetUp
      draining.value = true
      const exit = yield* Effect.exit(placeOne(0))
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) {
        const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
        expect(error).toMatchObject({ _tag: "NoCapacityError", message: `Node ${peer} is draining` })
      }
      expect(calls).toEqual([{ call: "StartWorker", draining: true }])
    }).pipe(Effect.provide(shell))
  )
})

/**
 * n1 runs a Worker with the room's settings (listed), n0's one CPU another app's: the room's
 * first transport gets a Router made on n1's Worker, during which `meanwhile` runs on the app's
 * side. Returns whether the placement failed and the calls n1 answered after the Router made.
 */
const routerMadeWhile = (
  meanwhile: (store: SnapshotStore["Type"], worker: WorkerId) => Effect.Effect<void>
) =>
  Effect.gen(function* () {
    const store = yield* SnapshotStore
    const { workers: peerWorkers, calls, beforeRouterAnswer } = yield* Peer
    const running = (yield* peerWorkers.startWorker({})).id
    yield* foreignSetUp
    while (!HashMap.has(store.current().workers, running)) yield* TestClock.adjust(100)
    beforeRouterAnswer.effect = meanwhile(store, running)
    const exit = yield* Effect.exit(placeOne(0))
    const made = calls.find((c) => c.call === "CreateRouter")
    if (made?.call !== "CreateRouter" || !("router" in made)) return yield* Effect.die("no Router made")
    return { failed: Exit.isFailure(exit), router: made.router, after: calls.slice(calls.indexOf(made) + 1) }
  })

/** A sync learns meanwhile that the Worker closed: the Router cannot be recorded on it. */
const workerClosed = (store: SnapshotStore["Type"], worker: WorkerId) =>
  Effect.flatMap(Clock.currentTimeMillis, (at) =>
    Effect.orDie(store.apply({ _tag: "WorkerClosed", worker, at }))
  )

describe("a Router made on another Node that the placement cannot record", () => {
  it.scoped("is let go there again", () =>
    Effect.gen(function* () {
      const { failed, router, after } = yield* routerMadeWhile(workerClosed)
      expect(failed).toBe(true)
      expect(after).toEqual([{ call: "CloseRouter", router }])
    }).pipe(Effect.provide(shell))
  )

  it.scoped("is not let go when the app held it there already (a Router its snapshot lost)", () =>
    Effect.gen(function* () {
      const { heldBefore } = yield* Peer
      heldBefore.value = true
      const { failed, after } = yield* routerMadeWhile(workerClosed)
      expect(failed).toBe(true)
      expect(after).toEqual([])
    }).pipe(Effect.provide(shell))
  )

  it.scoped("stays, in the snapshot, when only its registration is refused (the room closed meanwhile)", () =>
    Effect.gen(function* () {
      const { failed, router, after } = yield* routerMadeWhile((store) =>
        Effect.flatMap(Clock.currentTimeMillis, (at) =>
          Effect.orDie(store.apply({ _tag: "MafaldaRouterClosed", mafaldaRouter: room, at }))
        )
      )
      expect(failed).toBe(true)
      expect(after).toEqual([])
      expect(lookup((yield* SnapshotStore).current().routers, router)).toBeDefined()
    }).pipe(Effect.provide(shell))
  )
})

describe("a Router another Node let go of (the app's connection to it dropped)", () => {
  it.scoped(
    "is recorded closed when that Node refuses a transport on it, and the transport placed again",
    () =>
      Effect.gen(function* () {
        const store = yield* SnapshotStore
        const delegation = yield* Delegation
        const { letGo, calls } = yield* Peer
        const first = yield* firstOnPeer
        // n1 lets go of it; the app's snapshot still has it.
        yield* letGo(first.router)
        const { next, tried } = yield* placeNext((router) => {
          const worker = workerOfRouter(store.current(), router)!
          return delegation.createTransport({
            node: worker.node,
            worker: worker.id,
            router,
            mafaldaRouter: room,
            kind: "webrtc",
            options: { listenInfos: [{ protocol: "udp", ip: "127.0.0.1" }] }
          })
        })
        // Refused on the Router that is gone, then made on a new Router of the same Worker.
        expect(tried).toEqual([first.router, next.router])
        expect(next.router).not.toBe(first.router)
        expect(next.worker).toBe(first.worker)
        expect(lookup(store.current().routers, first.router)).toBeUndefined()
        expect(calls.slice(-2)).toEqual([
          { call: "CreateRouter", worker: first.worker, router: next.router },
          { call: "CreateWebRtcTransport", router: next.router }
        ])
      }).pipe(Effect.provide(shell))
  )
})

const secret = "replan-secret-0123456789"
const listenInfo = { protocol: "udp", ip: "127.0.0.1" } as const

describe.skipIf(!redisAvailable)("a real Node whose report lags, and an app in cluster mode", () => {
  it.scopedLive(
    "the app's delegated transport lands on the Worker the Node started for another client",
    () => {
      const prefix = testPrefix("replan")
      let node: RunningNode | undefined
      let app: MafaldaInstance | undefined
      const pids: Array<number> = []
      return Effect.gen(function* () {
        // One CPU, and a report a minute: the registry keeps its first report (no Worker).
        node = yield* Effect.promise(() =>
          startNode({
            redis: redisUrl,
            prefix,
            secret,
            node: "lagging-node",
            cpus: 1,
            heartbeatMillis: 60_000,
            leaseMillis: 120_000
          })
        )
        const client = yield* makeClient({ ...parseAddress(node.address)!, secret })
        // Another client takes the Node's one CPU, with the app's Worker settings.
        const hidden = yield* client.StartWorker({ settings: { logLevel: "warn" } })
        pids.push(hidden.pid)
        // The app: one CPU, full after one transport, so that the next is delegated.
        app = yield* Effect.promise(() =>
          createMafalda({
            cpus: 1,
            watermark: 60,
            costs: { transport: 40 },
            samplingInterval: 600_000,
            cluster: {
              secret,
              redis: redisUrl,
              prefix,
              node: "replan-app",
              heartbeatMillis: 250,
              syncMillis: 100
            }
          })
        )
        const mafalda = app
        // A few syncs: the app knows the Node, without its Worker.
        yield* Effect.sleep(500)
        const router = yield* Effect.promise(() => mafalda.createRouter({ mediaCodecs: [opus] }))
        const here = yield* Effect.promise(() => router.createPlainTransport({ listenInfo, rtcpMux: true }))
        expect(here).not.toBeInstanceOf(RemoteTransport)
        const there = yield* Effect.promise(() => router.createPlainTransport({ listenInfo, rtcpMux: true }))
        expect(there).toBeInstanceOf(RemoteTransport)
        const remote = there as unknown as RemoteTransport
        expect(remote.node).toBe("lagging-node")
        expect(remote.workerId).toBe(hidden.id)
        // Still the one Worker there, now with the app's Router on it.
        const info = yield* client.NodeInfo()
        expect(info.workers.map((w) => w.id)).toEqual([hidden.id])
        expect(info.transports).toBe(1)
        pids.push(...(yield* Effect.promise(() => mafalda.workers())).map((w) => w.pid))
        there.close()
        here.close()
      }).pipe(
        Effect.ensuring(
          Effect.promise(async () => {
            await app?.close().catch(() => undefined)
            await node?.close()
            for (const pid of pids) expect(processExists(pid)).toBe(false)
            expect(await cleanPrefix(prefix)).toBe(0)
          })
        )
      )
    }
  )
  it.scopedLive(
    "a start refused while another client's start is under way finds that Worker in the Node's list",
    () => {
      const prefix = testPrefix("replan-starting")
      let node: RunningNode | undefined
      const pids: Array<number> = []
      return Effect.gen(function* () {
        node = yield* Effect.promise(() =>
          startNode({
            redis: redisUrl,
            prefix,
            secret,
            node: "starting-node",
            cpus: 1,
            heartbeatMillis: 60_000
          })
        )
        const one = yield* makeClient({ ...parseAddress(node.address)!, secret })
        const two = yield* makeClient({ ...parseAddress(node.address)!, secret })
        // Both ask for the Node's one CPU at once: one start wins, the other is refused; the
        // Node's list, asked right after the refusal, has the winner's Worker (starts run one
        // at a time, and a list waits for a start under way).
        const [a, b] = yield* Effect.all(
          [
            Effect.either(one.StartWorker({ settings: { logLevel: "warn" } })),
            Effect.either(two.StartWorker({ settings: { logLevel: "warn" } })).pipe(
              Effect.flatMap((r) => Effect.map(two.NodeInfo(), (info) => [r, info] as const))
            )
          ],
          { concurrency: "unbounded" }
        )
        const [refusedOrStarted, info] = b
        const started = [a, refusedOrStarted].filter(Either.isRight).map((r) => r.right)
        const refused = [a, refusedOrStarted].filter(Either.isLeft).map((r) => r.left)
        expect(started).toHaveLength(1)
        expect(refused).toHaveLength(1)
        expect(refused[0]).toMatchObject({ _tag: "NodeCallError", operation: "startWorker" })
        pids.push(started[0]!.pid)
        if (Either.isLeft(refusedOrStarted)) expect(info.workers.map((w) => w.id)).toEqual([started[0]!.id])
      }).pipe(
        Effect.ensuring(
          Effect.promise(async () => {
            await node?.close()
            for (const pid of pids) expect(processExists(pid)).toBe(false)
            expect(await cleanPrefix(prefix)).toBe(0)
          })
        )
      )
    }
  )
})
