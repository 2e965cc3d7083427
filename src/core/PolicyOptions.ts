/**
 * The knobs of the placement policy, with their defaults, validated by `effect/Schema`.
 */
import { Data, Either, ParseResult, Schema } from "effect"

const Percent = Schema.Number.pipe(
  Schema.greaterThan(0),
  Schema.lessThanOrEqualTo(100),
  Schema.annotations({ description: "a CPU percentage in (0, 100]" })
)
const NonNegative = Schema.Number.pipe(Schema.nonNegative(), Schema.finite())
const PositiveInt = Schema.Int.pipe(Schema.positive())
const NonNegativeInt = Schema.Int.pipe(Schema.nonNegative())

/** The costs of a producer, of a consumer and of a pipe end of one media kind. */
export interface KindCosts {
  readonly producer: number
  readonly consumer: number
  readonly pipe: number
}

/**
 * The default costs per media kind, in CPU % of one Worker (one core), measured with the
 * real-capacity fan-out benchmark's calibration (`npm run bench:fanout`, the same measurement
 * as `mafalda calibrate`) on the project's 2-core development machine with no other work on it
 * (2026-12-06; README, "Real capacity"):
 *  - producer: a sending stream received by the Worker (audio ~50 kbit/s Opus, video ~1 Mbit/s
 *    VP8): 0.159 % audio, 0.327 % video;
 *  - consumer: a stream forwarded to one more consumer: 0.028 % audio, 0.101 % video;
 *  - pipe: the marginal cost of one more producer piped over a PipeTransport pair, charged at
 *    each end (the mean of the sending and receiving ends; the pair's own cost left out):
 *    0.128 % audio, 0.153 % video.
 * A transport's own cost measured close to 0 (300 idle transports); 0.1 % is an allowance for
 * its ICE/DTLS upkeep that keeps a transport with no media yet from being free. Re-measure on
 * the target machine with `mafalda calibrate` and pass the result as `costs`.
 */
export const defaultKindCosts: { readonly audio: KindCosts; readonly video: KindCosts } = {
  audio: { producer: 0.159, consumer: 0.028, pipe: 0.128 },
  video: { producer: 0.327, consumer: 0.101, pipe: 0.153 }
}
export const defaultTransportCost = 0.1

const KindCostsInput = Schema.Struct({
  producer: Schema.optionalWith(NonNegative, { exact: true }),
  consumer: Schema.optionalWith(NonNegative, { exact: true }),
  pipe: Schema.optionalWith(NonNegative, { exact: true })
})

/** What an application gives: flat costs (both kinds), per-kind ones, or both (per kind wins). */
const CostsInput = Schema.Struct({
  transport: Schema.optionalWith(NonNegative, { exact: true }),
  producer: Schema.optionalWith(NonNegative, { exact: true }),
  consumer: Schema.optionalWith(NonNegative, { exact: true }),
  /** Charged on both ends of a pipe: the pipe consumer and the pipe producer. */
  pipe: Schema.optionalWith(NonNegative, { exact: true }),
  audio: Schema.optionalWith(KindCostsInput, { exact: true }),
  video: Schema.optionalWith(KindCostsInput, { exact: true })
})

const KindCostsFull = Schema.Struct({ producer: Schema.Number, consumer: Schema.Number, pipe: Schema.Number })
const CostsFull = Schema.Struct({
  transport: Schema.Number,
  /** Kind-less figures, for what has no kind (the simulated backend's objects): video's. */
  producer: Schema.Number,
  consumer: Schema.Number,
  pipe: Schema.Number,
  audio: KindCostsFull,
  video: KindCostsFull
})

/**
 * The estimated CPU cost, in percent of one Worker, of each kind of object. Used for the
 * load of placements that no load report shows yet, by the placement's projections, and by
 * the simulated backend and the simulator as their cost model.
 *
 * Input: `transport`; `producer`, `consumer` and `pipe` (a pipe end, charged on both ends of
 * a pipe), which apply to both media kinds; and `audio` / `video` with the same three fields,
 * which win over the flat ones for their kind. Anything not given takes its default
 * (`defaultKindCosts`). Decoded, every field is filled in: `audio` and `video` complete, and
 * the flat fields (used where the kind is not known) the flat input or else video's figure.
 */
export const Costs = Schema.transform(CostsInput, CostsFull, {
  strict: true,
  decode: (i) => {
    const kind = (k: "audio" | "video"): KindCosts => ({
      producer: i[k]?.producer ?? i.producer ?? defaultKindCosts[k].producer,
      consumer: i[k]?.consumer ?? i.consumer ?? defaultKindCosts[k].consumer,
      pipe: i[k]?.pipe ?? i.pipe ?? defaultKindCosts[k].pipe
    })
    const video = kind("video")
    return {
      transport: i.transport ?? defaultTransportCost,
      producer: i.producer ?? video.producer,
      consumer: i.consumer ?? video.consumer,
      pipe: i.pipe ?? video.pipe,
      audio: kind("audio"),
      video
    }
  },
  encode: (c) => c
})
export type Costs = typeof Costs.Type

/** Costs from their input form (flat and/or per kind), defaults filled in. */
export const makeCosts = (input: typeof Costs.Encoded = {}): Costs => Schema.decodeSync(Costs)(input)

/** What a producer, a consumer and a pipe end of this kind cost. */
export const kindCosts = (costs: Costs, kind: "audio" | "video"): KindCosts => costs[kind]

export const PolicyOptions = Schema.Struct({
  /** A Worker at or above this CPU % takes no new transports or consumers. */
  watermark: Schema.optionalWith(Percent, { exact: true, default: () => 60 }),
  /**
   * A Router whose Worker is at or above the watermark may still feed new pipes (a pipe
   * consumer costs little) while under this CPU %; by default halfway from the watermark to
   * 100. Above it, a Router feeds a new pipe only when no carrier of the producer is below.
   */
  pipeWatermark: Schema.optionalWith(Percent, { exact: true }),
  /**
   * The CPU % a Worker is planned up to once the rooms on it are full: a transport is placed
   * only where the Worker's projected load (its effective load plus the growth still to come
   * from its rooms, see `projection.ts`) stays at or under this with the transport's own
   * projected cost. Between the watermark and 100 %: the watermark bounds what a Worker
   * takes now, this what its rooms may grow it to.
   */
  plannedLimit: Schema.optionalWith(Percent, { exact: true, default: () => 85 }),
  /**
   * How much a room without a size hint is expected to grow beyond its recent high, as a
   * fraction (0.5: by half). A hint (`expectedParticipants`) replaces the guess.
   */
  roomGrowth: Schema.optionalWith(NonNegative, { exact: true, default: () => 0 }),
  /**
   * A Worker whose effective load is over this CPU % sheds transports to Workers with room
   * (relocation): each move is a reconnect for a user, so this sits well above the
   * watermark, below the 100 % at which a Worker drops packets.
   */
  relocateAbove: Schema.optionalWith(Percent, { exact: true, default: () => 92 }),
  /**
   * A Worker under this CPU % whose transports all fit elsewhere is emptied (consolidation)
   * so that it can close; 0 turns consolidation off.
   */
  consolidateBelow: Schema.optionalWith(Schema.Number.pipe(Schema.between(0, 100)), {
    exact: true,
    default: () => 8
  }),
  /**
   * Consolidation empties only a Worker with at most this many transports: each move is a
   * reconnect for a user, and a Worker with more is left to empty as its users leave (placement
   * no longer counts a Router its room has emptied as the room's own). With 1 (the default),
   * a Worker kept open by one user closes once that user moves.
   */
  consolidateMaxTransports: Schema.optionalWith(PositiveInt, { exact: true, default: () => 1 }),
  /** The most transports one relocation step moves (relocation and consolidation together). */
  maxMovesPerStep: Schema.optionalWith(PositiveInt, { exact: true, default: () => 8 }),
  /** Workers per Node and set of worker settings; by default the Node's CPU count. */
  maxWorkersPerNode: Schema.optionalWith(PositiveInt, { exact: true }),
  /** The most pipe hops between a producer's origin Router and any Router receiving it. */
  maxTreeDepth: Schema.optionalWith(PositiveInt, { exact: true, default: () => 4 }),
  /** How long a Router, Worker or pipe stays idle before it is closed. */
  idleGraceMillis: Schema.optionalWith(NonNegative, { exact: true, default: () => 30_000 }),
  /**
   * Workers (busy or idle) kept open per `up` Node and set of worker settings: scale-down never
   * goes below this, so the next transport does not wait for a Worker to start.
   */
  warmWorkers: Schema.optionalWith(NonNegativeInt, { exact: true, default: () => 1 }),
  /**
   * An idle Worker is not closed while the other Workers with its settings on its Node
   * average more than `watermark - scaleDownHysteresis` %: they would soon need it again.
   */
  scaleDownHysteresis: Schema.optionalWith(Schema.Number.pipe(Schema.between(0, 100)), {
    default: () => 10
  }),
  costs: Schema.optionalWith(Costs, { exact: true, default: () => makeCosts() })
})
export type PolicyOptions = typeof PolicyOptions.Type
export type PolicyOptionsInput = typeof PolicyOptions.Encoded

/** Options that do not validate. `issues` names each bad field and says why. */
export class InvalidPolicyOptions extends Data.TaggedError("InvalidPolicyOptions")<{
  readonly message: string
  readonly issues: ReadonlyArray<{ readonly path: string; readonly message: string }>
}> {}

const decode = Schema.decodeUnknownEither(PolicyOptions, { errors: "all", onExcessProperty: "error" })

/** Validates options and fills in the defaults. */
export const makePolicyOptions = (input: unknown = {}): Either.Either<PolicyOptions, InvalidPolicyOptions> =>
  Either.mapLeft(decode(input), (error) => {
    const issues = ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) => ({
      path: issue.path.length === 0 ? "(options)" : issue.path.join("."),
      message: issue.message
    }))
    return new InvalidPolicyOptions({
      message: `invalid options: ${issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`,
      issues
    })
  })

/** The CPU % under which a Router may feed new pipes (see `pipeWatermark`). */
export const pipeLimit = (options: PolicyOptions): number =>
  Math.max(options.watermark, options.pipeWatermark ?? (options.watermark + 100) / 2)

/** The defaults, for tests and tools. */
export const defaultPolicyOptions: PolicyOptions = Either.getOrThrow(makePolicyOptions({}))
