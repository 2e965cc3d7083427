/**
 * A Node's `NodeHost`, its handlers called as its RPC server calls them (the real host over
 * real mediasoup Workers; the origin Node `a` of a pipe is a client stub):
 *
 * - `PipeFrom` (the receiving side of the pipe handshake between Nodes) interrupted half-way,
 *   e.g. because the client that asked went away: the PipeTransport it opened on its Router
 *   closes, and the origin is told to close its end. Before, that end stayed open and
 *   unregistered until the Router closed.
 * - `CreateRouter` says whether the asking client held the Router already (`heldBefore`), so
 *   that an app lets go only of a hold its placement gave it.
 * - `Produce` racing the close of its transport: mediasoup resolves it all the same, with a
 *   producer that never emits `close`; the Node refuses it and keeps nothing of it (no
 *   phantom producer in the Index).
 * - `CreatePlainTransport` interrupted (its client gone) while mediasoup makes the transport:
 *   the transport is closed as soon as it exists, instead of staying unhosted on the Router.
 * - A client's connection ending closes its transports, also on a Router it does not hold.
 * - Newer notices (a PlainTransport's `tuple`) go only to clients that ask for them
 *   (`takesNotice`): a client of an earlier version, whose schema does not know them, would
 *   fail its whole notices stream.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer, Stream } from "effect"
import type { types } from "mediasoup"
import { NodeClients } from "../../src/cluster/NodeClients.js"
import * as NodeHostLayer from "../../src/cluster/NodeHost.js"
import { NodeHost } from "../../src/cluster/NodeHost.js"
import { NodeId, ProducerId, RouterId, type WorkerId } from "../../src/core/Ids.js"
import * as IndexLayer from "../../src/layers/IndexService.js"
import * as RegistryLayer from "../../src/layers/NodeRegistry.js"
import { layerMediasoup } from "../../src/layers/WorkerService.js"
import { takesNotice } from "../../src/rpc/NodeRpcs.js"
import type { NodeClient } from "../../src/rpc/transport.js"
import { IndexService } from "../../src/services/IndexService.js"
import { LocalMediasoup } from "../../src/services/LocalMediasoup.js"
import { WorkerService } from "../../src/services/WorkerService.js"

const origin = NodeId.make("a")

/** The origin's client: `PipeOpen` answers, `PipeConnect` never does, `Close` is noted. */
const originLayer = (connecting: Deferred.Deferred<void>, closed: Array<string>) =>
  Layer.succeed(
    NodeClients,
    NodeClients.of({
      get: () =>
        Effect.succeed({
          PipeOpen: () => Effect.succeed({ transport: "a-pipe", ip: "127.0.0.1", port: 40000 }),
          PipeConnect: () => Effect.zipRight(Deferred.succeed(connecting, undefined), Effect.never),
          Close: ({ id }: { id: string }) => Effect.sync(() => void closed.push(id))
        } as unknown as NodeClient),
      drop: () => Effect.void
    })
  )

/** Node `b`'s host (and its Workers and Index), over one CPU of real Workers, with the origin's client of `originLayer`. */
const hostLayer = (connecting: Deferred.Deferred<void>, closed: Array<string>) =>
  NodeHostLayer.layer({ announcedIp: "127.0.0.1" }).pipe(
    Layer.provideMerge(layerMediasoup({ node: "b", cpus: 1 })),
    Layer.provideMerge(IndexLayer.layerMemory),
    Layer.provide(RegistryLayer.layerMemory()),
    Layer.provide(originLayer(connecting, closed))
  )

/** The host's handler of `rpc`, called as its RPC server calls it. */
const handlerOf = (host: NodeHost["Type"], rpc: string) =>
  (
    host.handlers.unsafeMap.get(`@effect/rpc/Rpc/${rpc}`) as {
      readonly handler: (request: unknown, options: unknown) => Effect.Effect<unknown, unknown>
    }
  ).handler

const opus = { kind: "audio", mimeType: "audio/opus", clockRate: 48000, channels: 2 } as const

interface OnHost {
  /** Calls the host's handler of `rpc` as client `clientId` (1 unless said). */
  readonly call: (rpc: string, request: unknown, clientId?: number) => Effect.Effect<unknown, unknown>
  /** The host's `Notices` stream for client `clientId` (while one runs, the client is connected). */
  readonly notices: (clientId: number, request?: unknown) => Stream.Stream<unknown, unknown>
  readonly index: IndexService["Type"]
  /** A Worker of the Node, and a Router on it (made through its `WorkerService`). */
  readonly worker: WorkerId
  readonly routerId: RouterId
  readonly router: types.Router
  /** The transports on that Router now. */
  readonly transportsOnRouter: Effect.Effect<ReadonlyArray<string>>
  /** Resolved when the origin's `PipeConnect` is called (it never answers). */
  readonly connecting: Deferred.Deferred<void>
}

/** Runs `test` against Node `b`'s host; `closed` gets the transports the origin is told to close. */
const onHost = <A>(test: (b: OnHost) => Effect.Effect<A, unknown, never>, closed: Array<string> = []) =>
  Effect.gen(function* () {
    const connecting = yield* Deferred.make<void>()
    return yield* Effect.gen(function* () {
      const host = yield* NodeHost
      const workers = yield* WorkerService
      const worker = yield* workers.startWorker({})
      const info = yield* workers.createRouter(worker.id, { mediaCodecs: [opus] })
      const router = (yield* LocalMediasoup).router(info.id)!
      return yield* test({
        call: (rpc, request, clientId = 1) => handlerOf(host, rpc)(request, { clientId, headers: {} }),
        notices: (clientId) =>
          handlerOf(host, "Notices")({}, { clientId, headers: {} }) as unknown as Stream.Stream<
            unknown,
            unknown
          >,
        index: yield* IndexService,
        worker: worker.id,
        routerId: info.id,
        router,
        transportsOnRouter: Effect.map(
          Effect.promise(() => router.dump()),
          (d) => d.transportIds
        ),
        connecting
      })
    }).pipe(Effect.provide(hostLayer(connecting, closed)))
  })

/** Polls `check` every 10 ms for up to half a second, until it holds. */
const eventually = (check: Effect.Effect<boolean>) =>
  Effect.gen(function* () {
    for (let i = 0; i < 50 && !(yield* check); i++) yield* Effect.sleep(10)
  })

describe("PipeFrom interrupted during the handshake", () => {
  it.live("closes the PipeTransport it opened and tells the origin to close its end", () => {
    const closed: Array<string> = []
    return onHost(
      (b) =>
        Effect.gen(function* () {
          const fiber = yield* Effect.fork(
            b.call("PipeFrom", {
              producer: ProducerId.make("p1"),
              origin,
              from: RouterId.make("a-router"),
              to: b.routerId,
              enableSrtp: false
            })
          )
          yield* Deferred.await(b.connecting)
          expect(yield* b.transportsOnRouter).toHaveLength(1)
          yield* Fiber.interrupt(fiber)
          expect(yield* b.transportsOnRouter).toEqual([])
          // The origin is told to close its end (forked: give it a moment).
          yield* eventually(Effect.sync(() => closed.length > 0))
          expect(closed).toEqual(["a-pipe"])
        }),
      closed
    )
  })
})

describe("CreateRouter", () => {
  it.live("says whether the asking client held the Router already", () =>
    onHost((b) =>
      Effect.gen(function* () {
        const create = (clientId: number) =>
          Effect.map(
            b.call("CreateRouter", { worker: b.worker, settings: { mediaCodecs: [opus] } }, clientId),
            (made) => made as { readonly id: string; readonly heldBefore?: boolean }
          )
        // Its WorkerService made `b.router` already: the host's first client does not hold it.
        const first = yield* create(1)
        expect(first).toMatchObject({ id: b.routerId, heldBefore: false })
        // The same Router for the same settings: held by client 1 already, not by client 2.
        expect(yield* create(1)).toMatchObject({ id: first.id, heldBefore: true })
        expect(yield* create(2)).toMatchObject({ id: first.id, heldBefore: false })
      })
    )
  )
})

describe("Produce racing the close of its transport", () => {
  it.live("is refused and leaves no producer in the Index", () =>
    onHost((b) =>
      Effect.gen(function* () {
        for (let round = 0; round < 3; round++) {
          const transport = (yield* b.call("CreatePlainTransport", {
            router: b.routerId,
            listenInfo: { protocol: "udp", ip: "127.0.0.1" }
          })) as { readonly id: string }
          const produce = yield* Effect.fork(
            b.call("Produce", {
              transport: transport.id,
              kind: "audio",
              rtpParameters: {
                codecs: [{ mimeType: "audio/opus", payloadType: 100, clockRate: 48000, channels: 2 }],
                encodings: [{ ssrc: 1000 + round }]
              },
              mafaldaRouter: "m1"
            })
          )
          // The request is under way (mediasoup waits for its Worker's answer): close now.
          yield* Effect.yieldNow()
          yield* b.call("Close", { what: "transport", id: transport.id })
          expect(yield* Fiber.await(produce)).toMatchObject({ _tag: "Failure" })
        }
        // The Index writes are queued: give them a moment.
        yield* Effect.sleep(100)
        expect(yield* b.index.ofNode(NodeId.make("b"))).toEqual([])
      })
    )
  )
})

describe("CreatePlainTransport interrupted while mediasoup makes the transport", () => {
  it.live("closes it as soon as it exists", () =>
    onHost((b) =>
      Effect.gen(function* () {
        const create = yield* Effect.fork(
          b.call("CreatePlainTransport", {
            router: b.routerId,
            listenInfo: { protocol: "udp", ip: "127.0.0.1" }
          })
        )
        // The request is under way (mediasoup waits for its Worker's answer): interrupt now.
        yield* Effect.yieldNow()
        yield* Fiber.interrupt(create)
        yield* eventually(Effect.map(b.transportsOnRouter, (ids) => ids.length === 0))
        expect(yield* b.transportsOnRouter).toEqual([])
      })
    )
  )
})

describe("a client's connection ending", () => {
  it.live("closes its transports, on a Router it holds or not", () =>
    onHost((b) =>
      Effect.gen(function* () {
        // Client 2 listens (its connection), holds no Router here, and makes a transport on the
        // Router the Node has (as an app does once its hold went with an earlier connection).
        const listening = yield* Effect.fork(Stream.runDrain(b.notices(2)))
        yield* Effect.yieldNow()
        yield* b.call(
          "CreatePlainTransport",
          { router: b.routerId, listenInfo: { protocol: "udp", ip: "127.0.0.1" } },
          2
        )
        expect(yield* b.transportsOnRouter).toHaveLength(1)
        // Its connection ends: its last Notices stream stops.
        yield* Fiber.interrupt(listening)
        yield* eventually(Effect.map(b.transportsOnRouter, (ids) => ids.length === 0))
        expect(yield* b.transportsOnRouter).toEqual([])
      })
    )
  )
})

describe("Notices", () => {
  // The wiring to a real client that asks is in remoteApi.test.ts (a comedia transport's tuple).
  it("a PlainTransport's tuples go to clients that ask for them, not to earlier ones", () => {
    const tuple = {
      _tag: "TransportState",
      transport: "t1",
      event: "tuple",
      tuple: { localAddress: "127.0.0.1", localPort: 40000, protocol: "udp" }
    } as const
    const ice = {
      _tag: "TransportState",
      transport: "t2",
      event: "icestatechange",
      state: "connected"
    } as const
    expect(takesNotice({ tuples: true }, tuple)).toBe(true)
    expect(takesNotice(undefined, tuple)).toBe(false)
    expect(takesNotice(null, { ...tuple, event: "rtcptuple" })).toBe(false)
    expect(takesNotice({}, tuple)).toBe(false)
    // Notices every version knows go to every client.
    expect(takesNotice(undefined, ice)).toBe(true)
    expect(takesNotice(undefined, { _tag: "Closed", what: "transport", id: "t1" } as never)).toBe(true)
  })
})
