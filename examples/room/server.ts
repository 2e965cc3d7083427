/**
 * A small mediasoup app, written against plain mediasoup: rooms (one Router each, on the
 * Workers in turn), one WebRtcServer per Worker (port `webRtcPort + i`), WebRtcTransports
 * through it, produce/consume, a data channel per room (a DirectTransport data producer and
 * a data consumer that collects what it sends), Worker death handling (the rooms of a dead
 * Worker are closed and the Worker replaced), and `dump()`.
 *
 * It runs unchanged on Mafalda: swap the one import below for
 * `import * as mediasoup from "mafalda/mediasoup"`. Its HTTP API is the one the browser
 * client in `test/page/client.ts` speaks (mediasoup-client: send camera and microphone,
 * receive both back); `test/dropin/example.test.ts` runs it both ways with Chromium.
 */
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import type { types } from "mediasoup"
import * as mediasoup from "mediasoup"

export interface RoomServerOptions {
  /** The browser client: its page, and its bundled script (served at `/client.js`). */
  readonly page: { readonly html: string; readonly script: string }
  readonly numWorkers?: number
  /** The WebRtcServer of Worker `i` listens on `webRtcPort + i` (UDP and TCP). */
  readonly webRtcPort?: number
  readonly rtcMinPort?: number
  readonly rtcMaxPort?: number
}

interface Room {
  readonly id: string
  readonly router: types.Router
  readonly worker: number
  readonly transports: Map<string, types.WebRtcTransport>
  readonly producers: Map<string, types.Producer>
  readonly consumers: Map<string, types.Consumer>
  readonly chat: types.DataProducer
  readonly received: Array<string>
}

const mediaCodecs: Array<types.RtpCodecCapability> = [
  { kind: "audio", mimeType: "audio/opus", clockRate: 48000, channels: 2 },
  { kind: "video", mimeType: "video/VP8", clockRate: 90000, parameters: { "x-google-start-bitrate": 1000 } }
]

export const startRoomServer = async (options: RoomServerOptions) => {
  const numWorkers = options.numWorkers ?? 2
  const webRtcPort = options.webRtcPort ?? 44444
  const workers: Array<types.Worker> = []
  const servers: Array<types.WebRtcServer> = []
  const rooms = new Map<string, Room>()
  const events: Array<string> = []
  let nextWorker = 0
  let closing = false

  const startWorker = async (i: number): Promise<void> => {
    const worker = await mediasoup.createWorker({
      logLevel: "warn",
      rtcMinPort: options.rtcMinPort ?? 40000,
      rtcMaxPort: options.rtcMaxPort ?? 49999
    })
    workers[i] = worker
    servers[i] = await worker.createWebRtcServer({
      listenInfos: [
        { protocol: "udp", ip: "127.0.0.1", port: webRtcPort + i },
        { protocol: "tcp", ip: "127.0.0.1", port: webRtcPort + i }
      ]
    })
    worker.on("died", (error) => {
      events.push(`worker ${i} died: ${error.message}`)
      // Its rooms are gone (their Routers closed with it); clients join again elsewhere.
      for (const [id, room] of rooms) if (room.worker === i) rooms.delete(id)
      if (!closing) void startWorker(i).then(() => events.push(`worker ${i} replaced`))
    })
  }
  for (let i = 0; i < numWorkers; i++) await startWorker(i)

  const getRoom = async (id: string): Promise<Room> => {
    const existing = rooms.get(id)
    if (existing !== undefined) return existing
    const worker = nextWorker++ % numWorkers
    const router = await workers[worker]!.createRouter({ mediaCodecs })
    // The room's data channel: a bot sends on it, another one collects.
    const sender = await router.createDirectTransport()
    const chat = await sender.produceData({ label: "chat" })
    const receiver = await router.createDirectTransport()
    const collector = await receiver.consumeData({ dataProducerId: chat.id })
    const room: Room = {
      id,
      router,
      worker,
      transports: new Map(),
      producers: new Map(),
      consumers: new Map(),
      chat,
      received: []
    }
    collector.on("message", (message: Buffer) => room.received.push(message.toString("utf8")))
    router.observer.on("close", () => rooms.delete(id))
    rooms.set(id, room)
    return room
  }

  type Body = Record<string, unknown>
  const handlers: Record<string, (room: Room, body: Body) => Promise<unknown>> = {
    "router-capabilities": async (room) => room.router.rtpCapabilities,
    "create-transport": async (room) => {
      const transport = await room.router.createWebRtcTransport({
        webRtcServer: servers[room.worker]!,
        enableUdp: true,
        enableTcp: true,
        preferUdp: true
      })
      room.transports.set(transport.id, transport)
      transport.on("routerclose", () => events.push(`transport ${transport.id} routerclose`))
      transport.observer.on("close", () => room.transports.delete(transport.id))
      return {
        id: transport.id,
        iceParameters: transport.iceParameters,
        iceCandidates: transport.iceCandidates,
        dtlsParameters: transport.dtlsParameters
      }
    },
    "connect-transport": async (room, body) => {
      await transportOf(room, body).connect({ dtlsParameters: body.dtlsParameters as types.DtlsParameters })
      return {}
    },
    produce: async (room, body) => {
      const producer = await transportOf(room, body).produce({
        kind: body.kind as types.MediaKind,
        rtpParameters: body.rtpParameters as types.RtpParameters
      })
      room.producers.set(producer.id, producer)
      producer.observer.on("close", () => room.producers.delete(producer.id))
      return { id: producer.id }
    },
    consume: async (room, body) => {
      const producerId = String(body.producerId)
      const rtpCapabilities = body.rtpCapabilities as types.RtpCapabilities
      if (!room.router.canConsume({ producerId, rtpCapabilities })) throw new Error("cannot consume")
      const consumer = await transportOf(room, body).consume({ producerId, rtpCapabilities, paused: true })
      room.consumers.set(consumer.id, consumer)
      consumer.observer.on("close", () => room.consumers.delete(consumer.id))
      return {
        id: consumer.id,
        producerId,
        kind: consumer.kind,
        rtpParameters: consumer.rtpParameters
      }
    },
    "resume-consumer": async (room, body) => {
      await room.consumers.get(String(body.consumerId))?.resume()
      return {}
    },
    chat: async (room, body) => {
      room.chat.send(String(body.text))
      return {}
    },
    messages: async (room) => room.received,
    dump: async (room) => ({ router: await room.router.dump(), worker: await workers[room.worker]!.dump() })
  }

  const transportOf = (room: Room, body: Body): types.WebRtcTransport => {
    const transport = room.transports.get(String(body.transportId))
    if (transport === undefined) throw new Error(`no transport ${String(body.transportId)}`)
    return transport
  }

  const readBody = async (request: http.IncomingMessage): Promise<Body> => {
    const chunks: Array<Buffer> = []
    for await (const chunk of request) chunks.push(chunk as Buffer)
    const text = Buffer.concat(chunks).toString("utf8")
    return text === "" ? {} : (JSON.parse(text) as Body)
  }

  const server = http.createServer((request, response) => {
    const url = new URL(request.url ?? "/", "http://127.0.0.1")
    const reply = (status: number, type: string, body: string) => {
      response.writeHead(status, { "content-type": type, "cache-control": "no-store" })
      response.end(body)
    }
    if (url.pathname === "/") return reply(200, "text/html", options.page.html)
    if (url.pathname === "/client.js") return reply(200, "text/javascript", options.page.script)
    const handler = handlers[url.pathname.replace(/^\/api\//, "")]
    if (handler === undefined) return reply(404, "text/plain", "not found")
    const roomId = url.searchParams.get("room") ?? "lobby"
    readBody(request)
      .then(async (body) => handler(await getRoom(roomId), body))
      .then(
        (result) => reply(200, "application/json", JSON.stringify(result)),
        (error: unknown) =>
          reply(
            500,
            "application/json",
            JSON.stringify({ error: error instanceof Error ? error.message : String(error) })
          )
      )
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as AddressInfo

  return {
    url: `http://127.0.0.1:${port}/`,
    workers: () => workers.slice(),
    rooms: () => rooms,
    events,
    close: async () => {
      closing = true
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
      await Promise.all(
        workers.map(async (worker) => {
          if (worker.subprocessClosed) return
          const exited = new Promise<void>((resolve) => worker.once("subprocessclose", resolve))
          worker.close()
          await exited
        })
      )
    }
  }
}

export type RoomServer = Awaited<ReturnType<typeof startRoomServer>>
