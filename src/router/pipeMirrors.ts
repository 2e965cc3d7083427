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
import { pipeConsumerRtpParameters, pipeProducerRtpParameters } from "./rtpCapabilities.js"

/** What the destination Mafalda Router does when its mirrored pipe producer changes. */
export interface MirrorHooks {
  /** Awaited by `pause()`: it resolves once the destination's consumers are paused. */
  readonly onPause: () => Promise<void> | void
  readonly onResume: () => Promise<void> | void
  readonly onClose: () => void
}

/** What the destination Mafalda Router does when its mirrored pipe data producer changes. */
export interface DataMirrorHooks {
  readonly onPause: () => Promise<void> | void
  readonly onResume: () => Promise<void> | void
  /** `"source"`: the original data producer closed; `"mirror"`: the application closed a mirror. */
  readonly onClose: (cause: "source" | "mirror") => void
}

/** What a mirror reads of the original (data) producer it stands for. */
interface MirrorSource {
  readonly id: string
  readonly paused: boolean
  readonly observer: EventEmitter
}

// --- The mirror ends, media and data alike --------------------------------------------------

/** Either end of a mirrored pair: its observer, appData and closed/paused state. */
abstract class MirrorEnd extends EventEmitter {
  readonly observer = new EventEmitter()
  appData: Record<string, unknown> = {}
  #closed = false
  #paused: boolean

  constructor(paused: boolean) {
    super()
    this.#paused = paused
  }
  get closed(): boolean {
    return this.#closed
  }
  get paused(): boolean {
    return this.#paused
  }
  abstract close(): void
  async pause(): Promise<void> {
    if (this.#closed || this.#paused) return
    this.#paused = true
    await this.pausedChanged(true)
  }
  async resume(): Promise<void> {
    if (this.#closed || !this.#paused) return
    this.#paused = false
    await this.pausedChanged(false)
  }
  /** Marks it closed: false when it was already. */
  protected markClosed(): boolean {
    if (this.#closed) return false
    this.#closed = true
    return true
  }
  /** `pause()` or `resume()` changed `paused`: tell the observer and pass it on. */
  protected abstract pausedChanged(paused: boolean): Promise<void> | void
}

/**
 * The destination side: a producer with the original's id. Closing it calls the hooks and
 * closes its consumer; pausing or resuming it calls the hooks.
 */
abstract class ProducerMirrorEnd<C extends MirrorEnd> extends MirrorEnd {
  /** @internal set by the pair */
  consumer: C | undefined
  readonly #source: MirrorSource
  readonly #hooks: MirrorHooks | DataMirrorHooks

  constructor(source: MirrorSource, hooks: MirrorHooks | DataMirrorHooks) {
    super(source.paused)
    this.#source = source
    this.#hooks = hooks
  }
  get id(): string {
    return this.#source.id
  }
  close(): void {
    this.#closeFor("mirror")
  }
  /** The source side ended it: `transportclose`, then closed. */
  protected endedBySource(): void {
    if (this.closed) return
    this.emit("transportclose")
    this.#closeFor("source")
  }
  #closeFor(cause: "source" | "mirror"): void {
    if (!this.markClosed()) return
    this.#hooks.onClose(cause)
    this.emit("@close")
    this.observer.emit("close")
    this.consumer?.close()
  }
  protected pausedChanged(paused: boolean): Promise<void> | void {
    this.observer.emit(paused ? "pause" : "resume")
    return paused ? this.#hooks.onPause() : this.#hooks.onResume()
  }
}

/** How a consumer end reports the original's changes. */
interface ConsumerStyle {
  /** Its events for the original's pause and resume: `producerpause`, `dataproducerpause`… */
  readonly prefix: "producer" | "dataproducer"
  /**
   * The observer reports the end's overall pause (its own or the original's) as a mediasoup
   * `DataConsumer` does, and repeated changes of the original are ignored; otherwise (a
   * `Consumer`) each pause and resume is reported.
   */
  readonly overall: boolean
}

/**
 * The source side: a consumer of the original. Closing it closes its producer end;
 * pausing or resuming it pauses or resumes that one.
 */
abstract class ConsumerMirrorEnd<P extends MirrorEnd> extends MirrorEnd {
  readonly id = randomUUID()
  #sourcePaused: boolean
  readonly #producer: P
  readonly #style: ConsumerStyle
  readonly #detach: () => void

  constructor(source: MirrorSource, producer: P, style: ConsumerStyle) {
    super(false)
    this.#producer = producer
    this.#style = style
    this.#sourcePaused = source.paused
    const onClose = () => this.onSourceClose()
    const onPause = () => this.#sourcePausedChanged(true)
    const onResume = () => this.#sourcePausedChanged(false)
    source.observer.on("close", onClose)
    source.observer.on("pause", onPause)
    source.observer.on("resume", onResume)
    this.#detach = () => {
      source.observer.off("close", onClose)
      source.observer.off("pause", onPause)
      source.observer.off("resume", onResume)
    }
  }
  /** Whether the original is paused. */
  protected get sourcePaused(): boolean {
    return this.#sourcePaused
  }
  close(): void {
    this.end("@close", (producer) => producer.close())
  }
  /** Closes it, emitting `event`, then `then` with its producer end. */
  protected end(event: string, then: (producer: P) => void): void {
    if (!this.markClosed()) return
    this.#detach()
    this.emit(event)
    this.observer.emit("close")
    then(this.#producer)
  }
  /** The original closed. */
  protected abstract onSourceClose(): void
  #sourcePausedChanged(paused: boolean): void {
    const { prefix, overall } = this.#style
    if (overall && this.#sourcePaused === paused) return
    this.#sourcePaused = paused
    this.emit(`${prefix}${paused ? "pause" : "resume"}`)
    if (!overall || !this.paused) this.observer.emit(paused ? "pause" : "resume")
  }
  protected pausedChanged(paused: boolean): Promise<void> {
    if (!this.#style.overall || !this.#sourcePaused) this.observer.emit(paused ? "pause" : "resume")
    return paused ? this.#producer.pause() : this.#producer.resume()
  }
}

// --- Media ---------------------------------------------------------------------------------

/** The destination side: a `Producer` of type `"pipe"` with the original's id. */
export class PipeProducerMirror extends ProducerMirrorEnd<PipeConsumerMirror> {
  readonly type = "pipe" as const
  readonly #source: types.Producer
  readonly #rtpParameters: types.RtpParameters

  constructor(source: types.Producer, hooks: MirrorHooks, rtpParameters: types.RtpParameters) {
    super(source, hooks)
    this.#source = source
    this.#rtpParameters = rtpParameters
  }
  get kind(): types.MediaKind {
    return this.#source.kind
  }
  /** What a real pipe producer reports: its pipe consumer's parameters, validated by `produce()`. */
  get rtpParameters(): types.RtpParameters {
    return this.#rtpParameters
  }
  get consumableRtpParameters(): types.RtpParameters {
    return this.#source.consumableRtpParameters
  }
  get score(): Array<types.ProducerScore> {
    return this.#source.score
  }
  /** The original producer's transport (or the source side) closed. */
  transportClosed(): void {
    this.endedBySource()
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
export class PipeConsumerMirror extends ConsumerMirrorEnd<PipeProducerMirror> {
  readonly type = "pipe" as const
  readonly priority = 1
  readonly #source: types.Producer
  readonly #rtpParameters: types.RtpParameters

  constructor(source: types.Producer, producer: PipeProducerMirror, rtpParameters: types.RtpParameters) {
    super(source, producer, { prefix: "producer", overall: false })
    this.#source = source
    this.#rtpParameters = rtpParameters
    producer.consumer = this
  }
  get producerId(): string {
    return this.#source.id
  }
  get kind(): types.MediaKind {
    return this.#source.kind
  }
  /** What a real pipe consumer reports (mediasoup's pipe consumer parameters). */
  get rtpParameters(): types.RtpParameters {
    return this.#rtpParameters
  }
  get producerPaused(): boolean {
    return this.sourcePaused
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
  protected onSourceClose(): void {
    if (this.closed) return
    this.emit("producerclose")
    this.close()
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
      paused: this.paused
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
  hooks: MirrorHooks,
  enableRtx = false
): { readonly pipeConsumer: PipeConsumerMirror; readonly pipeProducer: PipeProducerMirror } => {
  const consumerParameters = pipeConsumerRtpParameters(source.consumableRtpParameters, enableRtx)
  const pipeProducer = new PipeProducerMirror(source, hooks, pipeProducerRtpParameters(consumerParameters))
  const pipeConsumer = new PipeConsumerMirror(source, pipeProducer, consumerParameters)
  return { pipeConsumer, pipeProducer }
}

// --- Data ----------------------------------------------------------------------------------

/** The destination side: a `DataProducer` of type `"sctp"` with the original's id. */
export class PipeDataProducerMirror extends ProducerMirrorEnd<PipeDataConsumerMirror> {
  readonly type = "sctp" as const
  readonly #source: types.DataProducer

  constructor(source: types.DataProducer, hooks: DataMirrorHooks) {
    super(source, hooks)
    this.#source = source
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
  /** @internal The original data producer closed. */
  sourceClosed(): void {
    this.endedBySource()
  }
  /** Pausing or resuming it pauses or resumes its pipe data consumer too. */
  protected override async pausedChanged(paused: boolean): Promise<void> {
    await super.pausedChanged(paused)
    await (paused ? this.consumer?.pause() : this.consumer?.resume())
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
export class PipeDataConsumerMirror extends ConsumerMirrorEnd<PipeDataProducerMirror> {
  readonly type = "sctp" as const
  readonly subchannels: Array<number> = []
  readonly #source: types.DataProducer

  constructor(source: types.DataProducer, producer: PipeDataProducerMirror) {
    super(source, producer, { prefix: "dataproducer", overall: true })
    this.#source = source
    producer.consumer = this
  }
  get dataProducerId(): string {
    return this.#source.id
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
  get dataProducerPaused(): boolean {
    return this.sourcePaused
  }
  /** Closed without `@close`: `dataproducerclose`, then the pipe data producer's `transportclose`. */
  protected onSourceClose(): void {
    this.end("dataproducerclose", (producer) => producer.sourceClosed())
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
      paused: this.paused,
      dataProducerPaused: this.dataProducerPaused
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
