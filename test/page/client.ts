/**
 * The test page's script (bundled with esbuild by the test, run in Chromium): a
 * mediasoup-client that sends the fake camera and microphone to Router A and receives
 * both back from Router B, through the test's signalling API (see protocol.ts).
 */
import { Device, type types } from "mediasoup-client"
import type {
  InboundRtpStats,
  PageApi,
  PageRecvRelocation,
  PageRunResult,
  SignallingApi,
  SignallingEndpoint
} from "./protocol.js"

const api = async <K extends SignallingEndpoint>(
  endpoint: K,
  request: SignallingApi[K]["request"]
): Promise<SignallingApi[K]["response"]> => {
  const response = await fetch(`/api/${endpoint}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(request)
  })
  const body = (await response.json()) as SignallingApi[K]["response"] | { error: string }
  if (!response.ok) throw new Error(`${endpoint}: ${"error" in body ? body.error : response.status}`)
  return body as SignallingApi[K]["response"]
}

const log = (...args: Array<unknown>) => console.log("[page]", ...args)

const createDevice = async (): Promise<{ device: Device; detected: boolean }> => {
  try {
    return { device: await Device.factory(), detected: true }
  } catch (error) {
    log("device detection failed, using Chrome111:", String(error))
    return { device: new Device({ handlerName: "Chrome111" }), detected: false }
  }
}

const consumers = new Map<string, types.Consumer>()
/** The video element of each video consumer. */
const videos = new Map<string, HTMLVideoElement>()
/** What a relocation of the receive transport needs. */
let session: { device: Device; recvTransport: types.Transport } | undefined

/** Shows a video consumer's track (in the element of the consumer it replaces, if any). */
const show = (consumer: types.Consumer, replaces?: string) => {
  let video = replaces === undefined ? undefined : videos.get(replaces)
  if (video === undefined) {
    video = document.createElement("video")
    video.muted = true
    video.autoplay = true
    video.playsInline = true
    document.body.append(video)
  } else if (replaces !== undefined) videos.delete(replaces)
  video.srcObject = new MediaStream([consumer.track])
  videos.set(consumer.id, video)
}

const connectOnDemand = (transport: types.Transport) => {
  transport.on("connect", ({ dtlsParameters }, callback, errback) => {
    api("connect-transport", { transportId: transport.id, dtlsParameters }).then(() => callback(), errback)
  })
  transport.on("connectionstatechange", (state) => log(`${transport.direction} transport ${state}`))
}

const run = async (): Promise<PageRunResult> => {
  const { device, detected } = await createDevice()
  await device.load({ routerRtpCapabilities: await api("router-capabilities", {}) })
  log("device loaded, handler", device.handlerName)

  const media = await navigator.mediaDevices.getUserMedia({
    audio: true,
    video: { width: 320, height: 240, frameRate: 15 }
  })
  const [audioTrack] = media.getAudioTracks()
  const [videoTrack] = media.getVideoTracks()
  if (audioTrack === undefined || videoTrack === undefined)
    throw new Error("getUserMedia gave no audio or video")

  const sendTransport = device.createSendTransport(await api("create-transport", { direction: "send" }))
  connectOnDemand(sendTransport)
  sendTransport.on("produce", ({ kind, rtpParameters }, callback, errback) => {
    api("produce", { transportId: sendTransport.id, kind, rtpParameters }).then(callback, errback)
  })
  const videoProducer = await sendTransport.produce({ track: videoTrack })
  const audioProducer = await sendTransport.produce({ track: audioTrack })
  log("producing", { video: videoProducer.id, audio: audioProducer.id })

  const recvTransport = device.createRecvTransport(await api("create-transport", { direction: "recv" }))
  connectOnDemand(recvTransport)
  const consume = async (producerId: string): Promise<types.Consumer> => {
    const parameters = await api("consume", {
      transportId: recvTransport.id,
      producerId,
      rtpCapabilities: device.recvRtpCapabilities
    })
    const consumer = await recvTransport.consume(parameters)
    consumers.set(consumer.id, consumer)
    if (consumer.kind === "video") show(consumer)
    await api("resume-consumer", { consumerId: consumer.id })
    return consumer
  }
  const videoConsumer = await consume(videoProducer.id)
  const audioConsumer = await consume(audioProducer.id)
  log("consuming", { video: videoConsumer.id, audio: audioConsumer.id })
  session = { device, recvTransport }

  return {
    handlerName: device.handlerName,
    handlerDetected: detected,
    producerIds: { audio: audioProducer.id, video: videoProducer.id },
    consumerIds: { audio: audioConsumer.id, video: videoConsumer.id }
  }
}

const numberOrUndefined = (value: unknown): number | undefined =>
  typeof value === "number" ? value : undefined

const inboundStats = async (): Promise<Array<InboundRtpStats>> => {
  const all: Array<InboundRtpStats> = []
  for (const consumer of consumers.values()) {
    const report = await consumer.getStats()
    report.forEach((entry: Record<string, unknown>) => {
      if (entry.type !== "inbound-rtp") return
      all.push({
        kind: String(entry.kind),
        consumerId: consumer.id,
        packetsReceived: numberOrUndefined(entry.packetsReceived) ?? 0,
        bytesReceived: numberOrUndefined(entry.bytesReceived) ?? 0,
        framesDecoded: numberOrUndefined(entry.framesDecoded)
      })
    })
  }
  return all
}

const switchRecvTransport = async (relocation: PageRecvRelocation): Promise<PageRunResult["consumerIds"]> => {
  if (session === undefined) throw new Error("run() first")
  const old = session.recvTransport
  const recvTransport = session.device.createRecvTransport(relocation.transport)
  connectOnDemand(recvTransport)
  const ids: { audio?: string; video?: string } = {}
  for (const { replaces, ...parameters } of relocation.consumers) {
    const consumer = await recvTransport.consume(parameters)
    consumers.set(consumer.id, consumer)
    if (consumer.kind === "video") show(consumer, replaces)
    consumers.get(replaces)?.close()
    consumers.delete(replaces)
    ids[consumer.kind] = consumer.id
  }
  old.close()
  session.recvTransport = recvTransport
  log("switched to recv transport", recvTransport.id, ids)
  if (ids.audio === undefined || ids.video === undefined) throw new Error("a kind is missing")
  return { audio: ids.audio, video: ids.video }
}

const pageApi: PageApi = { run, inboundStats, switchRecvTransport }
window.mafalda = pageApi
document.title = "mafalda ready"
