/**
 * The sources of the consumer project of `consumer.test.ts`: an app that uses the package as
 * installed (`mafalda`, `mafalda/mediasoup`) with mediasoup's own types. They are strings,
 * written into the consumer project at test time, so that this repository's own type check
 * does not compile them (`misspelt.ts` must not compile).
 */

/** `package.json` of the consumer: an ES module app. */
export const consumerPackageJson = JSON.stringify({ name: "consumer", private: true, type: "module" })

/** A strict `tsconfig.json`: NodeNext, every declaration file checked (`skipLibCheck: false`). */
export const consumerTsconfig = JSON.stringify({
  compilerOptions: {
    target: "ES2022",
    module: "NodeNext",
    moduleResolution: "NodeNext",
    strict: true,
    exactOptionalPropertyTypes: true,
    noUncheckedIndexedAccess: true,
    skipLibCheck: false,
    noEmit: true,
    types: ["node"]
  },
  include: ["src"]
})

/**
 * Code typed against mediasoup's `types`, given Mafalda's objects: Mafalda Routers (with and
 * without appData), their transports, producers, consumers, data producers, RTP observers
 * and WebRtcServers, the instance's and the Router's typed events, and `mafalda/mediasoup`
 * used as mediasoup is (`mediasoup.types.Worker` and friends). It must compile as it is.
 */
export const compilingSource = `import { createMafalda, type MafaldaInstance } from "mafalda"
import * as mediasoup from "mafalda/mediasoup"
import type { types } from "mediasoup"

// An app's helpers, written for mediasoup.
const useRouter = (r: types.Router): string => r.id
const useRoomRouter = (r: types.Router<{ room: string }>): string => r.appData.room
const useTransport = (t: types.Transport): string => t.id
const useWebRtcTransport = (t: types.WebRtcTransport): string => t.iceRole
const usePlainTransport = (t: types.PlainTransport): string => t.id
const useWebRtcServer = (s: types.WebRtcServer): string => s.id
const useProducer = (p: types.Producer): string => p.id
const useConsumer = (c: types.Consumer): string => c.kind
const useDataProducer = (p: types.DataProducer): string => p.id
const useAudioLevelObserver = (o: types.AudioLevelObserver): string => o.id
const useWorker = (w: types.Worker): number => w.pid

const mediaCodecs: Array<types.RtpCodecCapability> = [
  { kind: "audio", mimeType: "audio/opus", clockRate: 48000, channels: 2 }
]

export const withMafalda = async (mafalda: MafaldaInstance): Promise<void> => {
  const router = await mafalda.createRouter({ mediaCodecs, appData: { room: "lobby" } })
  useRouter(router)
  useRoomRouter(router)
  const routers: Array<types.Router> = [router]
  const rooms = new Map<string, types.Router<{ room: string }>>([["lobby", router]])
  router.on("workerclose", () => undefined)
  router.on("workerdied", (error: Error) => error.message)
  router.observer.on("newtransport", (t) => useTransport(t))
  router.observer.on("close", () => undefined)
  mafalda.observer.on("workerdied", () => undefined)
  mafalda.observer.on("newrouter", () => undefined)

  const server = await mafalda.createWebRtcServer({
    listenInfos: [{ protocol: "udp", ip: "127.0.0.1", port: 40000 }]
  })
  useWebRtcServer(server)
  const send = await router.createWebRtcTransport({ webRtcServer: server })
  useWebRtcTransport(send)
  send.on("routerclose", () => undefined)
  const plain = await router.createPlainTransport({ listenInfo: { protocol: "udp", ip: "127.0.0.1" } })
  usePlainTransport(plain)
  const producer = await send.produce({ kind: "audio", rtpParameters: { codecs: [] } })
  useProducer(producer)
  const consumer = await plain.consume({ producerId: producer.id, rtpCapabilities: router.rtpCapabilities })
  useConsumer(consumer)
  consumer.on("producerclose", () => undefined)
  useDataProducer(await send.produceData({}))
  useAudioLevelObserver(await router.createAudioLevelObserver({ interval: 500 }))
  const other = await mafalda.createRouter({ mediaCodecs })
  const piped = await router.pipeToRouter({ producerId: producer.id, router: other })
  if (piped.pipeProducer !== undefined) useProducer(piped.pipeProducer)
  useRouter(other)
  console.log(routers.length, rooms.size, await router.dump())
}

// An app written against mediasoup, with its one import swapped.
export const withDropIn = async (): Promise<void> => {
  mediasoup.observer.on("newworker", (w) => useWorker(w))
  const worker: mediasoup.types.Worker = await mediasoup.createWorker({ logLevel: "warn" })
  useWorker(worker)
  worker.on("died", (error) => console.error(error.message))
  worker.observer.on("newrouter", (r) => useRouter(r))
  const server: mediasoup.types.WebRtcServer = await worker.createWebRtcServer({
    listenInfos: [{ protocol: "udp", ip: "127.0.0.1", port: 40001 }]
  })
  const router: mediasoup.types.Router = await worker.createRouter({ mediaCodecs })
  const transport: mediasoup.types.WebRtcTransport = await router.createWebRtcTransport({
    webRtcServer: server
  })
  useWebRtcTransport(transport)
  console.log(mediasoup.version, mediasoup.getSupportedRtpCapabilities().codecs?.length)
  await withMafalda(await createMafalda({ maxWorkers: 2 }))
  worker.close()
}
`

/** Misspelt event names, one per line, each of which must fail to compile (the rest compiles). */
export const misspeltLines: ReadonlyArray<string> = [
  `router.on("workerclsoe", () => undefined)`,
  `router.observer.on("newtransprot", () => undefined)`,
  `mafalda.observer.on("workerdeid", () => undefined)`,
  `worker.on("dide", () => undefined)`,
  `worker.observer.on("newrouterr", () => undefined)`,
  `mediasoup.observer.on("newwroker", () => undefined)`
]

/** The misspelt names, in the order of `misspeltLines`. */
export const misspeltNames: ReadonlyArray<string> = misspeltLines.map((l) => l.split('"')[1] ?? "")

/** Line 1-based of `misspeltLines[i]` in `misspeltSource` is `misspeltFirstLine + i`. */
export const misspeltFirstLine = 7

export const misspeltSource = `import { createMafalda } from "mafalda"
import * as mediasoup from "mafalda/mediasoup"

export const app = async (): Promise<void> => {
  const mafalda = await createMafalda()
  const router = await mafalda.createRouter({}); const worker = await mediasoup.createWorker()
${misspeltLines.map((l) => `  ${l}`).join("\n")}
}
`

/**
 * A CommonJS app: requires `mafalda` and `mafalda/mediasoup`, makes a Worker, a Router and a
 * WebRtcTransport through the drop-in, closes the Worker, and prints what it saw as JSON.
 */
export const commonJsSource = `const mafalda = require("mafalda")
const mediasoup = require("mafalda/mediasoup")
const real = require("mediasoup")

const main = async () => {
  const worker = await mediasoup.createWorker({ logLevel: "warn" })
  const router = await worker.createRouter({
    mediaCodecs: [{ kind: "audio", mimeType: "audio/opus", clockRate: 48000, channels: 2 }]
  })
  const transport = await router.createWebRtcTransport({
    listenInfos: [{ protocol: "udp", ip: "127.0.0.1" }]
  })
  const closed = new Promise((resolve) => worker.on("subprocessclose", resolve))
  const seen = {
    createMafalda: typeof mafalda.createMafalda,
    version: mediasoup.version,
    workerIsMediasoupWorker: worker instanceof real.types.Worker,
    pid: worker.pid,
    iceCandidates: transport.iceCandidates.length
  }
  worker.close()
  await closed
  console.log(JSON.stringify(seen))
}
main().catch((error) => {
  console.error(error)
  process.exit(1)
})
`

/** The Effect of the older-Effect consumer: the devDependency alias `effect-3-21` (npm:effect@3.21.5). */
export const olderEffectVersion = "3.21.5"

/** `package.json` of the older-Effect consumer, as npm writes it for `npm install effect@3.21.5 mafalda mediasoup`. */
export const olderEffectPackageJson = JSON.stringify({
  name: "consumer-effect-3-21",
  private: true,
  type: "module",
  dependencies: { effect: olderEffectVersion, mafalda: "0.1.0", mediasoup: "3.14.7" }
})

/**
 * An embedded app on the consumer's own Effect: says which `effect` it and mafalda resolve
 * (path and version), loads every embedded entry point, runs a real Worker through the
 * Promise API (a Mafalda Router, a PlainTransport, a producer, a WebRtcTransport, a
 * consumer, close) and then through the Effect API, run by the app's `Effect` (an Effect
 * built by a second copy would make Effect print a version warning), and prints one JSON line.
 */
export const olderEffectAppSource = `import { readFileSync, realpathSync } from "node:fs"
import { createRequire } from "node:module"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import { createMafalda, Mafalda, MafaldaLayer } from "mafalda"
import * as core from "mafalda/core"
import * as demo from "mafalda/demo"
import * as mediasoup from "mafalda/mediasoup"
import * as ops from "mafalda/ops"
import * as rtp from "mafalda/rtp"

const effectFrom = (file) => {
  const path = createRequire(file).resolve("effect/package.json")
  return { path: realpathSync(path), version: JSON.parse(readFileSync(path, "utf8")).version }
}
const require = createRequire(import.meta.url)
const mediaCodecs = [{ kind: "audio", mimeType: "audio/opus", clockRate: 48000, channels: 2 }]

const mafalda = await createMafalda({ maxWorkers: 1 })
const router = await mafalda.createRouter({ mediaCodecs })
const send = await router.createPlainTransport({ listenInfo: { protocol: "udp", ip: "127.0.0.1" } })
const producer = await send.produce({
  kind: "audio",
  rtpParameters: {
    codecs: [{ mimeType: "audio/opus", payloadType: 111, clockRate: 48000, channels: 2 }],
    encodings: [{ ssrc: 1111 }]
  }
})
const recv = await router.createWebRtcTransport({ listenInfos: [{ protocol: "udp", ip: "127.0.0.1" }] })
const consumer = await recv.consume({ producerId: producer.id, rtpCapabilities: router.rtpCapabilities })
const status = await mafalda.status()
await mafalda.close()

const viaEffect = await Effect.runPromise(
  Effect.gen(function* () {
    const m = yield* Mafalda
    const r = yield* m.createRouter({ mediaCodecs })
    const t = yield* Effect.promise(() => r.createPlainTransport({ listenInfo: { protocol: "udp", ip: "127.0.0.1" } }))
    const s = yield* m.status
    return { transport: typeof t.id, workers: s.workers.length }
  }).pipe(Effect.provide(MafaldaLayer.layerLocal({ maxWorkers: 1 })))
)

console.log(JSON.stringify({
  appEffect: effectFrom(fileURLToPath(import.meta.url)),
  mafaldaEffect: effectFrom(require.resolve("mafalda")),
  entryPoints: [core, demo, mediasoup, ops, rtp].map((m) => Object.keys(m).length > 0),
  consumer: { kind: consumer.kind, producer: consumer.producerId === producer.id },
  workers: status.workers.map((w) => w.consumers),
  viaEffect
}))
`
