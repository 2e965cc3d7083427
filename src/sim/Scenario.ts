/**
 * What a simulation runs: the cluster (Nodes and their CPUs, Nodes added, drained or
 * failing over time, Worker failures), the rooms (groups of rooms with their sizes,
 * publishers, join and leave rates, bursts, a daily rate profile), how often and how
 * late load is reported, bitrates per media kind, and the policy options. Validated with
 * `effect/Schema`; an invalid scenario is an `InvalidScenario` naming each bad field.
 */
import * as fs from "node:fs"
import { Data, Either, ParseResult, Schema } from "effect"
import { PolicyOptions } from "../core/PolicyOptions.js"
import { MediaKind } from "../core/Snapshot.js"

const Seconds = Schema.Number.pipe(Schema.nonNegative(), Schema.finite())
const PositiveSeconds = Schema.Number.pipe(Schema.positive(), Schema.finite())
const PositiveInt = Schema.Int.pipe(Schema.positive())
const NonNegativeInt = Schema.Int.pipe(Schema.nonNegative())

/** An inclusive integer range; a draw is uniform in it. */
export const IntRange = Schema.Struct({ min: PositiveInt, max: PositiveInt }).pipe(
  Schema.filter((r) =>
    r.min <= r.max ? undefined : { path: ["max"], message: `max (${r.max}) is below min (${r.min})` }
  )
)

export const Burst = Schema.Struct({
  /** When the burst starts. */
  atSeconds: Seconds,
  /** Joins in the burst, on top of the steady rate. */
  joins: PositiveInt,
  /** The burst's joins are spread uniformly over this long. */
  withinSeconds: PositiveSeconds
})

export const RoomGroup = Schema.Struct({
  name: Schema.optionalWith(Schema.String, { default: () => "rooms" }),
  /** How many rooms of this kind exist (each is one Mafalda Router). */
  rooms: PositiveInt,
  /** Participants per room, drawn once per room; joins beyond it go to other rooms. */
  size: IntRange,
  /** How many of a room's participants publish (the first ones to join); "all" for meetings. */
  publishers: Schema.optionalWith(Schema.Union(NonNegativeInt, Schema.Literal("all")), {
    default: () => 1
  }),
  /**
   * What the application tells the library of each room's size when it opens it: `size`
   * passes the room's size and its publishers as the Mafalda Router's hint (as an app would
   * with `expectedParticipants`); `none` tells nothing, and the policy projects the room from
   * what it has seen. Only the `mafalda` policy reads it.
   */
  hint: Schema.optionalWith(Schema.Literal("size", "none"), { default: () => "none" as const }),
  /** The producers each publisher creates. */
  produces: Schema.optionalWith(Schema.Array(MediaKind), { default: () => ["audio", "video"] as const }),
  /**
   * Roles of the first publishers, in order: the first `count` publishers present create
   * the first role's producers, the next `count` the second's, and the publishers after
   * the roles create `produces`. A seat in a role left free goes to the next publisher.
   * Teacher on video, students on audio: `publishers: "all"`, `produces: ["audio"]`,
   * `roles: [{ count: 1, produces: ["audio", "video"] }]`. Default: no roles.
   */
  roles: Schema.optionalWith(
    Schema.Array(Schema.Struct({ count: PositiveInt, produces: Schema.Array(MediaKind) })),
    {
      default: () => []
    }
  ),
  /**
   * Last-N: each participant consumes at most this many video producers, those of the
   * latest publishers (the room's newest video producers), and every audio producer; when
   * a new video producer comes, each participant's oldest one is dropped. Default: all.
   */
  lastN: Schema.optional(PositiveInt),
  /**
   * Rooms with start times and fixed lengths: room `i` of the group starts at `startSeconds
   * + i * everySeconds`, its `size` participants join at times drawn uniformly over its first
   * `joinWithinSeconds`, and it ends `lengthSeconds` after its start (everyone present leaves).
   * Such a group's seats are filled by these joins (set `joinsPerSecond` to 0 for no others).
   * Default: none (rooms fill from the group's steady joins and bursts).
   */
  scheduled: Schema.optional(
    Schema.Struct({
      startSeconds: Seconds,
      everySeconds: Schema.optionalWith(Seconds, { default: () => 0 }),
      lengthSeconds: PositiveSeconds,
      joinWithinSeconds: Schema.optionalWith(PositiveSeconds, { default: () => 60 })
    })
  ),
  /**
   * Promotions of viewers to speakers: at `atSeconds`, in each room of the group with
   * someone present, the `count` earliest joiners present that do not publish start to
   * publish (their role's kinds, else `produces`), as a viewer asked on stage; the room has
   * that many more publishers from then on. Default: none.
   */
  promotions: Schema.optionalWith(
    Schema.Array(
      Schema.Struct({ atSeconds: Seconds, count: Schema.optionalWith(PositiveInt, { default: () => 1 }) })
    ),
    { default: () => [] }
  ),
  /** Steady join rate over the whole group (Poisson arrivals). */
  joinsPerSecond: Schema.Number.pipe(Schema.nonNegative(), Schema.finite()),
  startSeconds: Schema.optionalWith(Seconds, { default: () => 0 }),
  /** No steady joins after this (default: the end of the scenario). */
  stopSeconds: Schema.optional(Seconds),
  /** Mean time a participant stays (exponential); absent: until the end. */
  meanStaySeconds: Schema.optional(PositiveSeconds),
  /**
   * A multiplier of the join rate over time, piecewise linear between [seconds, factor]
   * points (a daily curve); absent: 1.
   */
  rateProfile: Schema.optional(
    Schema.NonEmptyArray(Schema.Tuple(Seconds, Schema.Number.pipe(Schema.nonNegative(), Schema.finite())))
  ),
  bursts: Schema.optionalWith(Schema.Array(Burst), { default: () => [] }),
  /**
   * Which room a join goes to: `random` (any room with a free seat: all rooms grow at
   * once) or `inOrder` (the first room with a free seat: rooms fill one after another).
   */
  fill: Schema.optionalWith(Schema.Literal("random", "inOrder"), { default: () => "random" as const })
})
export type RoomGroup = typeof RoomGroup.Type

export const NodeEvent = Schema.Struct({
  atSeconds: Seconds,
  /** `add` Nodes; `drain` (no new work); `fail` (the Node and everything on it are gone). */
  action: Schema.Literal("add", "drain", "fail"),
  count: Schema.optionalWith(PositiveInt, { default: () => 1 }),
  /** CPUs of added Nodes (default: the scenario's `nodes.cpus`). */
  cpus: Schema.optional(PositiveInt),
  /** For drain/fail: which Node (index in order of creation); default the busiest. */
  node: Schema.optional(NonNegativeInt)
})
export type NodeEvent = typeof NodeEvent.Type

/**
 * Each reconnecting client's own delay, drawn from the run's seed: `uniform` in [min, max];
 * `exponential`: min plus an exponential draw of mean `mean`, capped at `max` (when given).
 */
export const SpreadDelay = Schema.Union(
  Schema.Struct({ distribution: Schema.Literal("uniform"), min: Seconds, max: Seconds }).pipe(
    Schema.filter((r) =>
      r.min <= r.max ? undefined : { path: ["max"], message: `max (${r.max}) is below min (${r.min})` }
    )
  ),
  Schema.Struct({
    distribution: Schema.Literal("exponential"),
    min: Schema.optionalWith(Seconds, { default: () => 0 }),
    mean: PositiveSeconds,
    max: Schema.optional(Seconds)
  }).pipe(
    Schema.filter((r) =>
      r.max === undefined || r.min <= r.max
        ? undefined
        : { path: ["max"], message: `max (${r.max}) is below min (${r.min})` }
    )
  )
)
export type SpreadDelay = typeof SpreadDelay.Type

/** One delay in seconds for every client, or a spread of delays. */
export const RejoinDelay = Schema.Union(Seconds, SpreadDelay)
export type RejoinDelay = typeof RejoinDelay.Type

export const WorkerFailure = Schema.Struct({
  atSeconds: Seconds,
  target: Schema.optionalWith(Schema.Literal("busiest", "random"), { default: () => "busiest" as const }),
  count: Schema.optionalWith(PositiveInt, { default: () => 1 })
})
export type WorkerFailure = typeof WorkerFailure.Type

export const Scenario = Schema.Struct({
  name: Schema.String.pipe(Schema.minLength(1)),
  description: Schema.optionalWith(Schema.String, { default: () => "" }),
  durationSeconds: PositiveSeconds,
  /** The policies to run when the command line names none (default: all of them). */
  policies: Schema.optional(
    Schema.Array(Schema.Literal("mafalda", "round-robin", "least-loaded", "mesh", "chain", "room-per-node"))
  ),
  seed: Schema.optionalWith(Schema.Int, { default: () => 1 }),
  nodes: Schema.Struct({ count: PositiveInt, cpus: PositiveInt }),
  nodeEvents: Schema.optionalWith(Schema.Array(NodeEvent), { default: () => [] }),
  workerFailures: Schema.optionalWith(Schema.Array(WorkerFailure), { default: () => [] }),
  /** How often each Worker's load is sampled and reported. */
  reportIntervalSeconds: Schema.optionalWith(PositiveSeconds, { default: () => 2 }),
  /** How long a report takes to reach the policy after it was sampled (staleness). */
  reportDelaySeconds: Schema.optionalWith(Seconds, { default: () => 0 }),
  /** How often the policy's scale-down runs. */
  scaleDownIntervalSeconds: Schema.optionalWith(PositiveSeconds, { default: () => 10 }),
  /**
   * After a Node or Worker failure, how long its clients take to reconnect: one delay for
   * everyone (seconds), or each client its own delay drawn from a distribution (see
   * `RejoinDelay`). The others re-consume what they lost after the shortest delay.
   */
  rejoinDelaySeconds: Schema.optionalWith(RejoinDelay, { default: () => 1 }),
  bitratesKbps: Schema.optionalWith(
    Schema.Struct({
      audio: Schema.optionalWith(PositiveSeconds, { default: () => 50 }),
      video: Schema.optionalWith(PositiveSeconds, { default: () => 1000 })
    }),
    { default: () => ({ audio: 50, video: 1000 }) }
  ),
  /**
   * When set, the true CPU cost of media (producers, consumers, pipes) is the cost model's
   * figure times bitrate / this reference: the policy's estimates are then off between
   * load reports. Absent: the true cost is exactly the cost model.
   */
  referenceBitrateKbps: Schema.optional(PositiveSeconds),
  /** Placement policy options (watermark, costs...), as `makePolicyOptions` takes them. */
  policy: Schema.optionalWith(PolicyOptions, { default: () => Schema.decodeSync(PolicyOptions)({}) }),
  /** Mesh baseline: peers per Router before the room spreads to another Worker (EduMeet: 40). */
  meshPeersPerRouter: Schema.optionalWith(PositiveInt, { default: () => 40 }),
  /** Nodes the tracker offers when the entry Node has no room. */
  trackerCandidates: Schema.optionalWith(PositiveInt, { default: () => 2 }),
  rooms: Schema.NonEmptyArray(RoomGroup)
})
export type Scenario = typeof Scenario.Type
export type ScenarioInput = typeof Scenario.Encoded

/** A scenario that does not validate: `issues` names each bad field (`rooms.0.size.max`). */
export class InvalidScenario extends Data.TaggedError("InvalidScenario")<{
  readonly message: string
  readonly issues: ReadonlyArray<{ readonly path: string; readonly message: string }>
}> {}

/** A scenario file that cannot be read or is not JSON. */
export class ScenarioFileError extends Data.TaggedError("ScenarioFileError")<{
  readonly path: string
  readonly message: string
}> {}

const decode = Schema.decodeUnknownEither(Scenario, { errors: "all", onExcessProperty: "error" })

export const decodeScenario = (input: unknown): Either.Either<Scenario, InvalidScenario> =>
  Either.mapLeft(decode(input), (error) => {
    const issues = ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) => ({
      path: issue.path.length === 0 ? "(scenario)" : issue.path.join("."),
      message: issue.message
    }))
    return new InvalidScenario({
      message: `invalid scenario: ${issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`,
      issues
    })
  })

export const loadScenarioFile = (
  path: string
): Either.Either<Scenario, InvalidScenario | ScenarioFileError> => {
  let text: string
  try {
    text = fs.readFileSync(path, "utf8")
  } catch (e) {
    return Either.left(new ScenarioFileError({ path, message: `cannot read ${path}: ${String(e)}` }))
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (e) {
    return Either.left(new ScenarioFileError({ path, message: `${path} is not JSON: ${String(e)}` }))
  }
  return decodeScenario(json)
}
