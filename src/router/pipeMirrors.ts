/**
 * The pipe consumer and pipe producer that `MafaldaRouter.pipeToRouter` returns when the
 * two Mafalda Routers simply share the underlying Router that carries the producer (so no
 * PipeTransport exists). They have the shapes of mediasoup's `Consumer` and `Producer` of
 * type `"pipe"` and behave like a piped pair: closing, pausing or resuming one reaches the
 * other and, through the callbacks, the destination's consumers of the producer; closing
 * or pausing the original producer reaches both.
 *
 * Pausing a mirrored pipe producer (or its pipe consumer). With a real pipe, pausing the
 * pipe producer pauses a producer of the destination Router only: its consumers there get
 * `producerpause` and `producerPaused === true`, their own `paused` flag untouched, and
 * the original producer's other consumers keep receiving. Here there is no such producer:
 * the destination's consumers consume the original one. Pausing the original (the only
 * way to make mediasoup itself report `producerPaused`) would stop every consumer of it,
 * the source Mafalda Router's included, which a pipe never does. So the destination
 * Mafalda Router pauses its own consumers of it in mediasoup (`consumer.pause()`: RTP
 * stops reaching them, and only them) and its consumer wrappers (`wrapTransport.ts`)
 * report what a real pipe would: `producerPaused === true` and a `producerpause` event
 * (`producerresume` on resume), `paused` staying the application's own flag, and an
 * application `resume()` not restarting RTP while the mirror is paused. Consumers made
 * there while it is paused start producer-paused. What shows the difference: the
 * underlying mediasoup Consumer (its `dump()`, `transport.observer` `newconsumer`) reports
 * `paused: true`.
 *
 * Data: when the two Mafalda Routers share the Router that carries a data producer,
 * `pipeToRouter({ dataProducerId })` returns a `DataConsumer`/`DataProducer` mirror pair of
 * type `"sctp"` (the type mediasoup's pipe data objects have). Their `sctpStreamParameters`
 * are the original data producer's (`undefined` for one made on a DirectTransport): no
 * SCTP stream exists. Closing either closes both and, through the callbacks, the
 * destination's data consumers of it; closing the original data producer closes both
 * (the destination's data consumers then get mediasoup's own `dataproducerclose`).
 * Pausing either pauses both and the destination's data consumers of it that were not
 * paused (those made later are not), resuming resumes the ones it paused; their
 * `dataProducerPaused` stays false (no data producer of theirs is paused).
 *
 * @module
 */
import { randomUUID } from "node:crypto"
import { EventEmitter } from "node:events"
import { types } from "mediasoup"

/** What the destination Mafalda Router does when its mirrored pipe producer changes. */
export interface MirrorHooks {
  /** Awaited by `pause()`: it resolves once the destination's consumers are paused. */
  readonly onPause: () => Promise<void> | void
  readonly onResume: () => Promise<void> | void
  readonly onClose: () => void
}

/** The destination side: a `Producer` of type `"pipe"` with the original's id. */
export class PipeProducerMirror extends EventEmitter {
  readonly observer = new EventEmitter()
  readonly type = "pipe" as const
  appData: Record<string, unknown> = {}
  #closed = false
  #paused: boolean
  readonly #source: types.Producer
  readonly #hooks: MirrorHooks
  /** @internal set by the pair */
  consumer: PipeConsumerMirror | undefined

  constructor(source: types.Producer, hooks: MirrorHooks) {
    super()
    this.#source = source
    this.#hooks = hooks
    this.#paused = source.paused
  }
  get id(): string {
    return this.#source.id
  }
  get kind(): types.MediaKind {
    return this.#source.kind
  }
  get rtpParameters(): types.RtpParameters {
    return this.#source.consumableRtpParameters
  }
  get consumableRtpParameters(): types.RtpParameters {
    return this.#source.consumableRtpParameters
  }
  get closed(): boolean {
    return this.#closed
  }
  get paused(): boolean {
    return this.#paused
  }
  get score(): Array<types.ProducerScore> {
    return this.#source.score
  }
  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#hooks.onClose()
    this.emit("@close")
    this.observer.emit("close")
    this.consumer?.close()
  }
  /** The original producer's transport (or the source side) closed. */
  transportClosed(): void {
    if (this.#closed) return
    this.emit("transportclose")
    this.close()
  }
  async pause(): Promise<void> {
    if (this.#closed || this.#paused) return
    this.#paused = true
    this.observer.emit("pause")
    await this.#hooks.onPause()
  }
  async resume(): Promise<void> {
    if (this.#closed || !this.#paused) return
    this.#paused = false
    this.observer.emit("resume")
    await this.#hooks.onResume()
  }
  getStats(): Promise<Array<types.ProducerStat>> {
    return this.#source.getStats()
  }
  dump(): ReturnType<types.Producer["dump"]> {
    return this.#source.dump()
  }
  async enableTraceEvent(): Promise<void> {}
  send(): void {
    throw new types.UnsupportedError("send() is for DirectTransport producers only")
  }
}

/** The source side: a `Consumer` of type `"pipe"` of the original producer. */
export class PipeConsumerMirror extends EventEmitter {
  readonly observer = new EventEmitter()
  readonly id = randomUUID()
  readonly type = "pipe" as const
  readonly priority = 1
  appData: Record<string, unknown> = {}
  #closed = false
  #paused = false
  #producerPaused: boolean
  readonly #source: types.Producer
  readonly #producer: PipeProducerMirror
  readonly #detach: () => void

  constructor(source: types.Producer, producer: PipeProducerMirror) {
    super()
    this.#source = source
    this.#producer = producer
    this.#producerPaused = source.paused
    producer.consumer = this
    const onClose = () => {
      if (this.#closed) return
      this.emit("producerclose")
      this.close()
    }
    const onPause = () => {
      this.#producerPaused = true
      this.emit("producerpause")
      this.observer.emit("pause")
    }
    const onResume = () => {
      this.#producerPaused = false
      this.emit("producerresume")
      this.observer.emit("resume")
    }
    source.observer.on("close", onClose)
    source.observer.on("pause", onPause)
    source.observer.on("resume", onResume)
    this.#detach = () => {
      source.observer.off("close", onClose)
      source.observer.off("pause", onPause)
      source.observer.off("resume", onResume)
    }
  }
  get producerId(): string {
    return this.#source.id
  }
  get kind(): types.MediaKind {
    return this.#source.kind
  }
  get rtpParameters(): types.RtpParameters {
    return this.#source.consumableRtpParameters
  }
  get closed(): boolean {
    return this.#closed
  }
  get paused(): boolean {
    return this.#paused
  }
  get producerPaused(): boolean {
    return this.#producerPaused
  }
  get score(): types.ConsumerScore {
    return { score: 10, producerScore: 10, producerScores: [] }
  }
  get preferredLayers(): undefined {
    return undefined
  }
  get currentLayers(): undefined {
    return undefined
  }
  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#detach()
    this.emit("@close")
    this.observer.emit("close")
    this.#producer.close()
  }
  async pause(): Promise<void> {
    if (this.#closed || this.#paused) return
    this.#paused = true
    this.observer.emit("pause")
    await this.#producer.pause()
  }
  async resume(): Promise<void> {
    if (this.#closed || !this.#paused) return
    this.#paused = false
    this.observer.emit("resume")
    await this.#producer.resume()
  }
  async getStats(): Promise<Array<types.ConsumerStat>> {
    return []
  }
  async dump(): Promise<Record<string, unknown>> {
    return {
      id: this.id,
      producerId: this.producerId,
      kind: this.kind,
      type: this.type,
      paused: this.#paused
    }
  }
  async setPreferredLayers(): Promise<void> {}
  async setPriority(): Promise<void> {}
  async unsetPriority(): Promise<void> {}
  async requestKeyFrame(): Promise<void> {}
  async enableTraceEvent(): Promise<void> {}
}

/** A mirrored pipe pair over `source`. */
export const makePipeMirrors = (
  source: types.Producer,
  hooks: MirrorHooks
): { readonly pipeConsumer: PipeConsumerMirror; readonly pipeProducer: PipeProducerMirror } => {
  const pipeProducer = new PipeProducerMirror(source, hooks)
  const pipeConsumer = new PipeConsumerMirror(source, pipeProducer)
  return { pipeConsumer, pipeProducer }
}

// --- Data ----------------------------------------------------------------------------------

/** What the destination Mafalda Router does when its mirrored pipe data producer changes. */
export interface DataMirrorHooks {
  readonly onPause: () => Promise<void> | void
  readonly onResume: () => Promise<void> | void
  /** `"source"`: the original data producer closed; `"mirror"`: the application closed a mirror. */
  readonly onClose: (cause: "source" | "mirror") => void
}

/** The destination side: a `DataProducer` of type `"sctp"` with the original's id. */
export class PipeDataProducerMirror extends EventEmitter {
  readonly observer = new EventEmitter()
  readonly type = "sctp" as const
  appData: Record<string, unknown> = {}
  #closed = false
  #paused: boolean
  readonly #source: types.DataProducer
  readonly #hooks: DataMirrorHooks
  /** @internal set by the pair */
  consumer: PipeDataConsumerMirror | undefined

  constructor(source: types.DataProducer, hooks: DataMirrorHooks) {
    super()
    this.#source = source
    this.#hooks = hooks
    this.#paused = source.paused
  }
  get id(): string {
    return this.#source.id
  }
  get closed(): boolean {
    return this.#closed
  }
  get sctpStreamParameters(): types.SctpStreamParameters | undefined {
    return this.#source.sctpStreamParameters
  }
  get label(): string {
    return this.#source.label
  }
  get protocol(): string {
    return this.#source.protocol
  }
  get paused(): boolean {
    return this.#paused
  }
  close(): void {
    this.#close("mirror")
  }
  /** @internal The original data producer closed. */
  sourceClosed(): void {
    if (this.#closed) return
    this.emit("transportclose")
    this.#close("source")
  }
  #close(cause: "source" | "mirror"): void {
    if (this.#closed) return
    this.#closed = true
    this.#hooks.onClose(cause)
    this.emit("@close")
    this.observer.emit("close")
    this.consumer?.close()
  }
  async pause(): Promise<void> {
    if (this.#closed || this.#paused) return
    this.#paused = true
    this.observer.emit("pause")
    await this.#hooks.onPause()
    await this.consumer?.pause()
  }
  async resume(): Promise<void> {
    if (this.#closed || !this.#paused) return
    this.#paused = false
    this.observer.emit("resume")
    await this.#hooks.onResume()
    await this.consumer?.resume()
  }
  getStats(): Promise<Array<types.DataProducerStat>> {
    return this.#source.getStats()
  }
  dump(): ReturnType<types.DataProducer["dump"]> {
    return this.#source.dump()
  }
  send(): void {
    throw new types.UnsupportedError("send() is for DirectTransport data producers only")
  }
}

/** The source side: a `DataConsumer` of type `"sctp"` of the original data producer. */
export class PipeDataConsumerMirror extends EventEmitter {
  readonly observer = new EventEmitter()
  readonly id = randomUUID()
  readonly type = "sctp" as const
  readonly subchannels: Array<number> = []
  appData: Record<string, unknown> = {}
  #closed = false
  #paused = false
  #dataProducerPaused: boolean
  readonly #source: types.DataProducer
  readonly #producer: PipeDataProducerMirror
  readonly #detach: () => void

  constructor(source: types.DataProducer, producer: PipeDataProducerMirror) {
    super()
    this.#source = source
    this.#producer = producer
    this.#dataProducerPaused = source.paused
    producer.consumer = this
    const onClose = () => {
      if (this.#closed) return
      this.#closed = true
      this.#detach()
      this.emit("dataproducerclose")
      this.observer.emit("close")
      this.#producer.sourceClosed()
    }
    const onPause = () => {
      if (this.#dataProducerPaused) return
      this.#dataProducerPaused = true
      this.emit("dataproducerpause")
      if (!this.#paused) this.observer.emit("pause")
    }
    const onResume = () => {
      if (!this.#dataProducerPaused) return
      this.#dataProducerPaused = false
      this.emit("dataproducerresume")
      if (!this.#paused) this.observer.emit("resume")
    }
    source.observer.on("close", onClose)
    source.observer.on("pause", onPause)
    source.observer.on("resume", onResume)
    this.#detach = () => {
      source.observer.off("close", onClose)
      source.observer.off("pause", onPause)
      source.observer.off("resume", onResume)
    }
  }
  get dataProducerId(): string {
    return this.#source.id
  }
  get closed(): boolean {
    return this.#closed
  }
  get sctpStreamParameters(): types.SctpStreamParameters | undefined {
    return this.#source.sctpStreamParameters
  }
  get label(): string {
    return this.#source.label
  }
  get protocol(): string {
    return this.#source.protocol
  }
  get paused(): boolean {
    return this.#paused
  }
  get dataProducerPaused(): boolean {
    return this.#dataProducerPaused
  }
  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#detach()
    this.emit("@close")
    this.observer.emit("close")
    this.#producer.close()
  }
  async pause(): Promise<void> {
    if (this.#closed || this.#paused) return
    this.#paused = true
    if (!this.#dataProducerPaused) this.observer.emit("pause")
    await this.#producer.pause()
  }
  async resume(): Promise<void> {
    if (this.#closed || !this.#paused) return
    this.#paused = false
    if (!this.#dataProducerPaused) this.observer.emit("resume")
    await this.#producer.resume()
  }
  async getStats(): Promise<Array<types.DataConsumerStat>> {
    return []
  }
  async dump(): Promise<Record<string, unknown>> {
    return {
      id: this.id,
      dataProducerId: this.dataProducerId,
      type: this.type,
      label: this.label,
      protocol: this.protocol,
      paused: this.#paused,
      dataProducerPaused: this.#dataProducerPaused
    }
  }
  async setBufferedAmountLowThreshold(): Promise<void> {}
  async getBufferedAmount(): Promise<number> {
    return 0
  }
  async send(): Promise<void> {
    throw new types.UnsupportedError("send() is for DirectTransport data consumers only")
  }
  async setSubchannels(): Promise<void> {}
  async addSubchannel(): Promise<void> {}
  async removeSubchannel(): Promise<void> {}
}

/** A mirrored pipe data pair over `source`. */
export const makeDataPipeMirrors = (
  source: types.DataProducer,
  hooks: DataMirrorHooks
): {
  readonly pipeDataConsumer: PipeDataConsumerMirror
  readonly pipeDataProducer: PipeDataProducerMirror
} => {
  const pipeDataProducer = new PipeDataProducerMirror(source, hooks)
  const pipeDataConsumer = new PipeDataConsumerMirror(source, pipeDataProducer)
  return { pipeDataConsumer, pipeDataProducer }
}
