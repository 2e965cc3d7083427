/**
 * The transports a Mafalda Router returns: the real mediasoup transport on the underlying
 * Router the core chose, with `produce`, `consume`, `produceData` and `consumeData` going
 * through the shell (everything else is the transport itself).
 *
 * - `produce` records the producer (Index, `ProducerCreated`);
 * - `consume` of a producer that this Router does not receive yet pipes it there first,
 *   along the producer's stream tree; when the Router receives it already (the usual
 *   case) it adds two map lookups to mediasoup's own `consume`;
 * - `consumeData` of a data producer made on another Router pipes it there first (mediasoup
 *   `pipeToRouter` with `dataProducerId`, once per Router, closed with its last data
 *   consumer there); data producers are tracked here, in the shell, not in the core;
 * - closes are recorded from mediasoup's `observer` `close` events, whatever their cause;
 * - a transport on another Node (cluster mode, a `RemoteTransport`) is wrapped alike: a
 *   consume there pipes the producer across Nodes (`Placement` through `Delegation`); its
 *   producers are written to the Index by their own Node, not here;
 * - consumers of a producer that reached this Mafalda Router from another one are wrapped
 *   so that a paused mirrored pipe producer (`pipeMirrors.ts`) shows as `producerPaused`,
 *   not `paused` (`setMirrorPaused`); data consumers are tracked per Mafalda Router and
 *   data producer (`dataConsumersOf`), for a mirrored or explicit data pipe to close them.
 *
 * @module
 */
import { Effect } from "effect"
import type { types } from "mediasoup"
import type { ConsumerId, MafaldaRouterId, ProducerId, RouterId, TransportId } from "../core/Ids.js"
import type { ProducerLocation } from "../services/IndexService.js"
import type { PipeInfo } from "../services/WorkerService.js"
import { retryInDeathWindow } from "./deathWindow.js"
import { InvalidArgumentError, type MafaldaRouterError } from "./errors.js"
import { forwardingProxy } from "./forwardingProxy.js"
import {
  call,
  type DataPipe,
  type MafaldaContext,
  runPromise,
  sharedKey,
  visibleTo
} from "./MafaldaContext.js"
import * as Relocation from "./relocation.js"

const producerNotFound = (id: unknown) => new Error(`Producer with id "${String(id)}" not found`)
const dataProducerNotFound = (id: unknown) => new Error(`DataProducer with id "${String(id)}" not found`)

/** Announces pipes made on the Mafalda instance's observer (`pipe`). */
export const emitPipes = (ctx: MafaldaContext, pipes: ReadonlyArray<PipeInfo>, pinned: boolean): void => {
  for (const p of pipes) ctx.events.safeEmit("pipe", { producer: p.producer, from: p.from, to: p.to, pinned })
}

/**
 * Makes `router` receive `producer` (a pipe along its tree when needed), as an Effect; in a
 * Worker's death window, once the death is recorded.
 */
export const ensureProducerOn = (
  ctx: MafaldaContext,
  producer: string,
  router: RouterId
): Effect.Effect<void, MafaldaRouterError> =>
  retryInDeathWindow(ctx, () => ctx.placement.ensureProducer(producer as ProducerId, router)).pipe(
    Effect.tap((pipes) => {
      if (pipes.length > 0) emitPipes(ctx, pipes, false)
    }),
    Effect.asVoid
  )

/**
 * Makes `router` receive a data producer: a mediasoup `pipeToRouter` from the Router it was
 * made on, once per Router, shared by the data consumers there. Resolves to a release
 * function (call it when the data consumer closes: the last one closes the pipe), or to
 * `undefined` when `router` is the data producer's own.
 */
const acquireDataPipe = async (
  ctx: MafaldaContext,
  dataProducer: string,
  router: RouterId
): Promise<{ readonly release: () => void; readonly result: types.PipeToRouterResult } | undefined> => {
  const entry = ctx.dataProducers.get(dataProducer)
  if (entry === undefined) throw dataProducerNotFound(dataProducer)
  if (entry.router === router) return undefined
  const key = `${dataProducer} ${router}`
  // A pipe whose last user just went is still closing: a new one must wait for it.
  const closing = ctx.dataPipesClosing.get(key)
  if (closing !== undefined) await closing
  let pipe = ctx.dataPipes.get(key)
  if (pipe === undefined) {
    const from = ctx.local.router(entry.router)
    const to = ctx.local.router(router)
    if (from === undefined || to === undefined) throw dataProducerNotFound(dataProducer)
    const made: DataPipe = {
      pending: from.pipeToRouter({ dataProducerId: dataProducer, router: to }),
      users: 0
    }
    pipe = made
    ctx.dataPipes.set(key, made)
    const forget = () => {
      if (ctx.dataPipes.get(key) === made) ctx.dataPipes.delete(key)
    }
    made.pending.then((result) => {
      result.pipeDataProducer?.observer.once("close", forget)
      passPauseOn(result)
    }, forget)
  }
  const used = pipe
  used.users++
  let released = false
  const release = () => {
    if (released) return
    released = true
    if (--used.users > 0 || ctx.dataPipes.get(key) !== used) return
    ctx.dataPipes.delete(key)
    const done = used.pending.then(
      (result) => result.pipeDataProducer?.close(),
      () => undefined
    )
    const tracked = done.finally(() => {
      if (ctx.dataPipesClosing.get(key) === tracked) ctx.dataPipesClosing.delete(key)
    })
    ctx.dataPipesClosing.set(key, tracked)
  }
  let result: types.PipeToRouterResult
  try {
    result = await used.pending
  } catch (error) {
    release()
    throw error
  }
  return { release, result }
}

/**
 * mediasoup's data pipes do not pass the data producer's pause on: its pipe data consumer
 * learns of it (`dataproducerpause`), the pipe data producer does not, and neither do the
 * data consumers on the other Router. Here the pipe data producer follows, so that they do
 * (`dataproducerpause`, and their observer's `pause`), as on the data producer's own Router.
 */
const passPauseOn = (pipe: types.PipeToRouterResult): void => {
  const consumer = pipe.pipeDataConsumer
  const producer = pipe.pipeDataProducer
  if (consumer === undefined || producer === undefined) return
  // What it was last told (its `paused` changes only once mediasoup answers).
  let told = producer.paused
  const follow = (paused: boolean) => {
    if (producer.closed || told === paused) return
    told = paused
    void (paused ? producer.pause() : producer.resume()).catch(() => undefined)
  }
  consumer.on("dataproducerpause", () => follow(true))
  consumer.on("dataproducerresume", () => follow(false))
  follow(consumer.dataProducerPaused)
}

/**
 * The data pipe of `dataProducer` into `router` that an application asked for with
 * `pipeToRouter`: the one data consumers there use already, or a new one. The application
 * holds it (it is never released by data consumers going) until it closes its pipe data
 * producer or consumer. `undefined` when `router` is the data producer's own.
 */
export const pinDataPipe = async (
  ctx: MafaldaContext,
  dataProducer: string,
  router: RouterId
): Promise<types.PipeToRouterResult | undefined> => (await acquireDataPipe(ctx, dataProducer, router))?.result

// --- Consumers of producers from other Mafalda Routers ------------------------------------

/** A wrapped consumer's pause state: the application's own, and its mirrored pipe producer's. */
interface PauseState {
  own: boolean
  mirror: boolean
  readonly consumer: types.Consumer
}
const pauseStates = new WeakMap<types.Consumer, PauseState>()
/** Per context, the `mafaldaRouter producer` keys whose mirrored pipe producer is paused. */
const pausedMirrors = new WeakMap<MafaldaContext, Set<string>>()
const pausedMirrorsOf = (ctx: MafaldaContext): Set<string> => {
  let set = pausedMirrors.get(ctx)
  if (set === undefined) {
    set = new Set()
    pausedMirrors.set(ctx, set)
  }
  return set
}

/** A consumer whose `paused` is the application's and `producerPaused` includes the mirror's. */
const wrapSharedConsumer = (consumer: types.Consumer): types.Consumer => {
  const state: PauseState = { own: consumer.paused, mirror: false, consumer }
  const wrapped = forwardingProxy(consumer, {
    get paused() {
      return state.own
    },
    get producerPaused() {
      return consumer.producerPaused || state.mirror
    },
    pause: async () => {
      state.own = true
      if (!state.mirror) await consumer.pause()
    },
    resume: async () => {
      state.own = false
      if (!state.mirror) await consumer.resume()
    }
  } as never)
  pauseStates.set(wrapped, state)
  return wrapped
}

const applyMirrorPause = async (wrapped: types.Consumer, paused: boolean): Promise<void> => {
  const state = pauseStates.get(wrapped)
  if (state === undefined || state.mirror === paused) return
  const consumer = state.consumer
  const before = consumer.producerPaused || state.mirror
  state.mirror = paused
  if (consumer.closed) return
  if (!state.own) {
    try {
      await (paused ? consumer.pause() : consumer.resume())
    } catch (error) {
      if (!consumer.closed) throw error
      return
    }
  }
  // The application may have changed it meanwhile: announce only what holds now.
  const after = consumer.producerPaused || state.mirror
  if (before !== after && after === paused && !consumer.closed) {
    consumer.safeEmit(paused ? "producerpause" : "producerresume")
  }
}

/**
 * The mirrored pipe producer of `producer` in Mafalda Router `owner` was paused (or
 * resumed): its consumers there stop (or restart) receiving RTP and report
 * `producerPaused`; consumers made there later start so. Resolves once all are done.
 */
export const setMirrorPaused = async (
  ctx: MafaldaContext,
  owner: string,
  producer: string,
  paused: boolean
): Promise<void> => {
  const key = sharedKey(owner, producer)
  const keys = pausedMirrorsOf(ctx)
  if (paused) keys.add(key)
  else keys.delete(key)
  const consumers = Array.from(ctx.sharedConsumers.get(key) ?? [])
  await Promise.all(consumers.map((c) => applyMirrorPause(c, paused)))
}

/** The mirrored pipe producer of `producer` in `owner` closed: forget its pause. */
export const forgetMirror = (ctx: MafaldaContext, owner: string, producer: string): void => {
  pausedMirrors.get(ctx)?.delete(sharedKey(owner, producer))
}

// --- Data consumers ------------------------------------------------------------------------

const dataConsumerSets = new WeakMap<MafaldaContext, Map<string, Set<types.DataConsumer>>>()

/** The open data consumers of `dataProducer` on transports of Mafalda Router `owner`. */
export const dataConsumersOf = (
  ctx: MafaldaContext,
  owner: string,
  dataProducer: string
): ReadonlySet<types.DataConsumer> =>
  dataConsumerSets.get(ctx)?.get(sharedKey(owner, dataProducer)) ?? new Set()

const trackDataConsumer = (ctx: MafaldaContext, owner: string, dataConsumer: types.DataConsumer): void => {
  let byKey = dataConsumerSets.get(ctx)
  if (byKey === undefined) {
    byKey = new Map()
    dataConsumerSets.set(ctx, byKey)
  }
  const key = sharedKey(owner, dataConsumer.dataProducerId)
  let set = byKey.get(key)
  if (set === undefined) {
    set = new Set()
    byKey.set(key, set)
  }
  set.add(dataConsumer)
  const tracked = set
  const map = byKey
  dataConsumer.observer.once("close", () => {
    tracked.delete(dataConsumer)
    if (tracked.size === 0 && map.get(key) === tracked) map.delete(key)
  })
}

export const wrapTransport = <T extends types.Transport>(
  ctx: MafaldaContext,
  owner: MafaldaRouterId,
  router: RouterId,
  transport: T,
  /** On another Node (cluster mode): its Node writes its producers in the Index. */
  remote = false
): T => {
  const store = ctx.store
  const transportId = transport.id as TransportId
  const visible = visibleTo(ctx, owner)

  transport.observer.once("close", () => {
    store.recordNow({ _tag: "TransportClosed", transport: transportId })
  })

  /** Records in the Index that this Mafalda Router owns a (data) producer made here. */
  const indexProducer = (id: string, kind: ProducerLocation["kind"]) => {
    if (remote) return
    ctx.writeIndex(
      ctx.index.add({ producer: id as ProducerId, node: ctx.node, mafaldaRouter: owner, router, kind })
    )
  }

  const produce = async (options: types.ProducerOptions): Promise<types.Producer> => {
    const producer = await transport.produce(options)
    const id = producer.id
    store.recordNow({
      _tag: "ProducerCreated",
      producer: id as ProducerId,
      kind: producer.kind,
      transport: transportId
    })
    ctx.producers.set(id, { producer, owner, router })
    visible.add(id)
    indexProducer(id, producer.kind)
    producer.observer.once("close", () => {
      store.recordNow({ _tag: "ProducerClosed", producer: id as ProducerId })
      ctx.producers.delete(id)
      for (const set of ctx.visible.values()) set.delete(id)
      if (!remote) ctx.writeIndex(ctx.index.remove(id as ProducerId))
    })
    return producer
  }

  const recordConsumer = (
    consumer: types.Consumer,
    producerId: string
  ): types.Consumer | Promise<types.Consumer> => {
    const consumerId = consumer.id as ConsumerId
    store.recordNow({
      _tag: "ConsumerCreated",
      consumer: consumerId,
      producer: producerId as ProducerId,
      transport: transportId
    })
    const entry = ctx.producers.get(producerId)
    if (entry === undefined || entry.owner === owner) {
      consumer.observer.once("close", () => {
        store.recordNow({ _tag: "ConsumerClosed", consumer: consumerId })
      })
      return consumer
    }
    // A producer from another Mafalda Router: its mirrored pipe producer may be paused.
    const key = sharedKey(owner, producerId)
    let shared = ctx.sharedConsumers.get(key)
    if (shared === undefined) {
      shared = new Set()
      ctx.sharedConsumers.set(key, shared)
    }
    const wrapped = wrapSharedConsumer(consumer)
    shared.add(wrapped)
    const set = shared
    consumer.observer.once("close", () => {
      store.recordNow({ _tag: "ConsumerClosed", consumer: consumerId })
      set.delete(wrapped)
    })
    if (!pausedMirrors.get(ctx)?.has(key)) return wrapped
    return applyMirrorPause(wrapped, true).then(() => wrapped)
  }

  // Not `async`: the fast path (the Router receives the producer already: two O(1) lookups,
  // no Effect) hands mediasoup's own promise on with one `then`, and no extra await.
  // From the moment it decides until the consumer is recorded, it holds the pipe into this
  // Router against scale-down (the snapshot does not count the consumer yet).
  const consume = (options: types.ConsumerOptions): Promise<types.Consumer> => {
    const producerId = options?.producerId
    if (typeof producerId !== "string") return Promise.reject(new TypeError("missing producerId"))
    if (!visible.has(producerId)) return Promise.reject(producerNotFound(producerId))
    const release = ctx.holds.holdPipe(producerId as ProducerId, router)
    const consumed = store.receives(producerId as ProducerId, router)
      ? transport.consume(options)
      : runPromise(ctx, ensureProducerOn(ctx, producerId, router)).then(() => transport.consume(options))
    return consumed.then(
      (consumer) => {
        const recorded = recordConsumer(consumer, producerId)
        release()
        // Remembered for a relocation of this transport (see relocation.ts).
        Relocation.consumed(wrapped, options, recorded)
        return recorded
      },
      (error: unknown) => {
        release()
        throw error
      }
    )
  }

  const produceData = async (options: types.DataProducerOptions = {}): Promise<types.DataProducer> => {
    const dataProducer = await transport.produceData(options)
    const id = dataProducer.id
    ctx.dataProducers.set(id, { dataProducer, owner, router })
    visible.add(id)
    indexProducer(id, "data")
    dataProducer.observer.once("close", () => {
      ctx.dataProducers.delete(id)
      for (const set of ctx.visible.values()) set.delete(id)
      ctx.writeIndex(ctx.index.remove(id as ProducerId))
    })
    return dataProducer
  }

  const consumeData = async (options: types.DataConsumerOptions): Promise<types.DataConsumer> => {
    const dataProducerId = options?.dataProducerId
    if (typeof dataProducerId !== "string") throw new TypeError("missing dataProducerId")
    if (!visible.has(dataProducerId)) throw dataProducerNotFound(dataProducerId)
    const release = (await acquireDataPipe(ctx, dataProducerId, router))?.release
    let dataConsumer: types.DataConsumer
    try {
      dataConsumer = await transport.consumeData(options)
    } catch (error) {
      release?.()
      throw error
    }
    if (release !== undefined) dataConsumer.observer.once("close", release)
    trackDataConsumer(ctx, owner, dataConsumer)
    Relocation.consumedData(wrapped, options, dataConsumer)
    return dataConsumer
  }

  const wrapped: T = forwardingProxy(transport, { produce, consume, produceData, consumeData } as never)
  return wrapped
}

/**
 * An RTP observer whose `addProducer` first makes its Router receive the producer, and
 * holds the pipe that feeds it (if any) against scale-down until the producer is removed,
 * closes, or the observer closes: the snapshot counts consumers, not observers, as users of
 * a pipe.
 */
export const wrapRtpObserver = <T extends types.RtpObserver>(
  ctx: MafaldaContext,
  owner: MafaldaRouterId,
  router: RouterId,
  observer: T
): T => {
  const visible = visibleTo(ctx, owner)
  const held = new Map<string, () => void>()
  const release = (producerId: string) => {
    held.get(producerId)?.()
    held.delete(producerId)
  }
  observer.observer.once("close", () => {
    for (const id of Array.from(held.keys())) release(id)
  })
  const addProducer = async (options: { producerId: string }): Promise<void> => {
    const producerId = options?.producerId
    if (typeof producerId !== "string") throw new TypeError("missing producerId")
    if (!visible.has(producerId)) throw producerNotFound(producerId)
    const first = !held.has(producerId)
    if (first) {
      held.set(producerId, ctx.holds.holdPipe(producerId as ProducerId, router))
      ctx.producers.get(producerId)?.producer.observer.once("close", () => release(producerId))
    }
    try {
      await runPromise(ctx, ensureProducerOn(ctx, producerId, router))
      await observer.addProducer({ producerId })
    } catch (error) {
      if (first) release(producerId)
      throw error
    }
  }
  const removeProducer = async (options: { producerId: string }): Promise<void> => {
    try {
      await observer.removeProducer(options)
    } finally {
      if (typeof options?.producerId === "string") release(options.producerId)
    }
  }
  return forwardingProxy(observer, { addProducer, removeProducer } as never)
}

/** Creates a mediasoup object as an Effect (mediasoup's error kept as the cause). */
export const create = <A>(operation: string, f: () => Promise<A>) => call(operation, f)

export const badArgument = (message: string) => new InvalidArgumentError({ message })
