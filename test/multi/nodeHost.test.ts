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
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer } from "effect"
import { NodeClients } from "../../src/cluster/NodeClients.js"
import * as NodeHostLayer from "../../src/cluster/NodeHost.js"
import { NodeHost } from "../../src/cluster/NodeHost.js"
import { NodeId, ProducerId, RouterId } from "../../src/core/Ids.js"
import * as IndexLayer from "../../src/layers/IndexService.js"
import * as RegistryLayer from "../../src/layers/NodeRegistry.js"
import { layerMediasoup } from "../../src/layers/WorkerService.js"
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

describe("PipeFrom interrupted during the handshake", () => {
  it.live("closes the PipeTransport it opened and tells the origin to close its end", () =>
    Effect.gen(function* () {
      const connecting = yield* Deferred.make<void>()
      const closed: Array<string> = []
      yield* Effect.gen(function* () {
        const workers = yield* WorkerService
        const local = yield* LocalMediasoup
        const host = yield* NodeHost
        const worker = yield* workers.startWorker({})
        const info = yield* workers.createRouter(worker.id, { mediaCodecs: [opus] })
        const router = local.router(info.id)!
        const fiber = yield* Effect.fork(
          handlerOf(host, "PipeFrom")(
            {
              producer: ProducerId.make("p1"),
              origin,
              from: RouterId.make("a-router"),
              to: info.id,
              enableSrtp: false
            },
            { clientId: 1, headers: {} }
          )
        )
        yield* Deferred.await(connecting)
        expect((yield* Effect.promise(() => router.dump())).transportIds).toHaveLength(1)
        yield* Fiber.interrupt(fiber)
        expect((yield* Effect.promise(() => router.dump())).transportIds).toEqual([])
        // The origin is told to close its end (forked: give it a moment).
        for (let i = 0; i < 50 && closed.length === 0; i++) yield* Effect.sleep(10)
        expect(closed).toEqual(["a-pipe"])
      }).pipe(Effect.provide(hostLayer(connecting, closed)))
    })
  )
})

describe("CreateRouter", () => {
  it.live("says whether the asking client held the Router already", () =>
    Effect.gen(function* () {
      const connecting = yield* Deferred.make<void>()
      yield* Effect.gen(function* () {
        const host = yield* NodeHost
        const worker = yield* (yield* WorkerService).startWorker({})
        const create = (clientId: number) =>
          Effect.map(
            handlerOf(host, "CreateRouter")(
              { worker: worker.id, settings: { mediaCodecs: [opus] } },
              { clientId, headers: {} }
            ),
            (made) => made as { readonly id: string; readonly heldBefore?: boolean }
          )
        const first = yield* create(1)
        expect(first.heldBefore).toBe(false)
        // The same Router for the same settings: held by client 1 already, not by client 2.
        expect(yield* create(1)).toMatchObject({ id: first.id, heldBefore: true })
        expect(yield* create(2)).toMatchObject({ id: first.id, heldBefore: false })
      }).pipe(Effect.provide(hostLayer(connecting, [])))
    })
  )
})

describe("Produce racing the close of its transport", () => {
  it.live("is refused and leaves no producer in the Index", () =>
    Effect.gen(function* () {
      const connecting = yield* Deferred.make<void>()
      yield* Effect.gen(function* () {
        const host = yield* NodeHost
        const workers = yield* WorkerService
        const index = yield* IndexService
        const worker = yield* workers.startWorker({})
        const router = yield* workers.createRouter(worker.id, { mediaCodecs: [opus] })
        const call = (rpc: string, request: unknown) =>
          handlerOf(host, rpc)(request, { clientId: 1, headers: {} })
        for (let round = 0; round < 3; round++) {
          const transport = (yield* call("CreatePlainTransport", {
            router: router.id,
            listenInfo: { protocol: "udp", ip: "127.0.0.1" }
          })) as { readonly id: string }
          const produce = yield* Effect.fork(
            call("Produce", {
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
          yield* call("Close", { what: "transport", id: transport.id })
          const exit = yield* Fiber.await(produce)
          expect(exit).toMatchObject({ _tag: "Failure" })
        }
        // The Index writes are queued: give them a moment.
        yield* Effect.sleep(100)
        expect(yield* index.ofNode(NodeId.make("b"))).toEqual([])
      }).pipe(Effect.provide(hostLayer(connecting, [])))
    })
  )
})

describe("CreatePlainTransport interrupted while mediasoup makes the transport", () => {
  it.live("closes it as soon as it exists", () =>
    Effect.gen(function* () {
      const connecting = yield* Deferred.make<void>()
      yield* Effect.gen(function* () {
        const host = yield* NodeHost
        const workers = yield* WorkerService
        const local = yield* LocalMediasoup
        const worker = yield* workers.startWorker({})
        const info = yield* workers.createRouter(worker.id, { mediaCodecs: [opus] })
        const router = local.router(info.id)!
        const create = yield* Effect.fork(
          handlerOf(host, "CreatePlainTransport")(
            { router: info.id, listenInfo: { protocol: "udp", ip: "127.0.0.1" } },
            { clientId: 1, headers: {} }
          )
        )
        // The request is under way (mediasoup waits for its Worker's answer): interrupt now.
        yield* Effect.yieldNow()
        yield* Fiber.interrupt(create)
        let left = (yield* Effect.promise(() => router.dump())).transportIds
        for (let i = 0; i < 50 && left.length > 0; i++) {
          yield* Effect.sleep(10)
          left = (yield* Effect.promise(() => router.dump())).transportIds
        }
        expect(left).toEqual([])
      }).pipe(Effect.provide(hostLayer(connecting, [])))
    })
  )
})
