/**
 * The pipe consumer and pipe producer that `MafaldaRouter.pipeToRouter` returns when the
 * two Mafalda Routers simply share the underlying Router that carries the producer (so no
 * PipeTransport exists). They have the shapes of mediasoup's `Consumer` and `Producer` of
 * type `"pipe"` and behave like a piped pair: closing, pausing or resuming one reaches the
 * other and, through the callbacks, the destination's consumers of the producer; closing
 * or pausing the original producer reaches both.
 *
 * @module
 */
import { randomUUID } from "node:crypto"
import { EventEmitter } from "node:events"
import { types } from "mediasoup"

/** What the destination Mafalda Router does when its mirrored pipe producer changes. */
export interface MirrorHooks {
  readonly onPause: () => void
  readonly onResume: () => void
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
    this.#hooks.onPause()
    this.observer.emit("pause")
  }
  async resume(): Promise<void> {
    if (this.#closed || !this.#paused) return
    this.#paused = false
    this.#hooks.onResume()
    this.observer.emit("resume")
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
