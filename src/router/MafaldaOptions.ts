/**
 * The options of a Mafalda instance, validated with `effect/Schema`.
 *
 * @module
 */
import { availableParallelism } from "node:os"
import { Either, ParseResult, Schema } from "effect"
import { Costs, makePolicyOptions, type PolicyOptions } from "../core/PolicyOptions.js"
import type { WorkerSettings } from "../services/SettingsKeys.js"
import { InvalidOptionsError } from "./errors.js"

const Port = Schema.Int.pipe(Schema.between(1, 65535))
const Millis = Schema.Number.pipe(Schema.positive(), Schema.finite())

/** mediasoup Worker settings (those that define a Worker; no `appData`). */
export const WorkerSettingsSchema = Schema.Struct({
  logLevel: Schema.optional(Schema.Literal("debug", "warn", "error", "none")),
  logTags: Schema.optional(
    Schema.Array(
      Schema.Literal(
        "info",
        "ice",
        "dtls",
        "rtp",
        "srtp",
        "rtcp",
        "rtx",
        "bwe",
        "score",
        "simulcast",
        "svc",
        "sctp",
        "message"
      )
    )
  ),
  rtcMinPort: Schema.optional(Port),
  rtcMaxPort: Schema.optional(Port),
  dtlsCertificateFile: Schema.optional(Schema.String),
  dtlsPrivateKeyFile: Schema.optional(Schema.String),
  libwebrtcFieldTrials: Schema.optional(Schema.String)
}).pipe(
  Schema.filter((s) =>
    s.rtcMinPort !== undefined && s.rtcMaxPort !== undefined && s.rtcMinPort > s.rtcMaxPort
      ? "rtcMinPort must not be above rtcMaxPort"
      : undefined
  )
)

export const MafaldaOptions = Schema.Struct({
  /** CPU % at which a Worker takes nothing new (default 60). */
  watermark: Schema.optional(Schema.Number.pipe(Schema.greaterThan(0), Schema.lessThanOrEqualTo(100))),
  /** The most Workers per set of Worker settings (default: `cpus`). */
  maxWorkers: Schema.optional(Schema.Int.pipe(Schema.positive())),
  /** CPUs of this machine (default `os.availableParallelism()`); a test may claim more. */
  cpus: Schema.optional(Schema.Int.pipe(Schema.positive())),
  /** Default Worker settings of the Mafalda Routers. */
  workerSettings: Schema.optional(WorkerSettingsSchema),
  /** Log level of Mafalda's own logs (default `"warning"`). */
  logLevel: Schema.optional(Schema.Literal("all", "trace", "debug", "info", "warning", "error", "none")),
  /** How often each Worker's CPU is sampled, in milliseconds (default 1000). */
  samplingInterval: Schema.optional(Millis),
  /** How long a pipe, Router or Worker stays idle before it closes, in ms (default 30000). */
  idleGraceMillis: Schema.optional(Schema.Number.pipe(Schema.nonNegative(), Schema.finite())),
  /** How often idle things are looked for, in ms (default: a quarter of the grace, 250 ms to 10 s). */
  scaleDownInterval: Schema.optional(Millis),
  /** Workers (busy or idle) kept open per set of settings: scale-down stops there (default 1). */
  warmWorkers: Schema.optional(Schema.Int.pipe(Schema.nonNegative())),
  /** Most pipe hops from a producer's Router to any consumer's (default 4). */
  maxTreeDepth: Schema.optional(Schema.Int.pipe(Schema.positive())),
  /** CPU % under which a busy Router may still feed new pipes (default: halfway to 100). */
  pipeWatermark: Schema.optional(Schema.Number.pipe(Schema.greaterThan(0), Schema.lessThanOrEqualTo(100))),
  scaleDownHysteresis: Schema.optional(Schema.Number.pipe(Schema.between(0, 100))),
  /** Estimated CPU % of each object (see the core's `Costs`). */
  costs: Schema.optional(Schema.encodedSchema(Costs))
})
export type MafaldaOptionsInput = typeof MafaldaOptions.Encoded

/** Options checked and completed. */
export interface ResolvedMafaldaOptions {
  readonly policy: PolicyOptions
  readonly cpus: number | undefined
  readonly workerSettings: WorkerSettings
  readonly logLevel: NonNullable<(typeof MafaldaOptions.Type)["logLevel"]>
  readonly samplingInterval: number
  readonly scaleDownInterval: number | undefined
}

const decode = Schema.decodeUnknownEither(MafaldaOptions, { errors: "all", onExcessProperty: "error" })

const issuesOf = (error: ParseResult.ParseError) =>
  ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) => ({
    path: issue.path.length === 0 ? "(options)" : issue.path.join("."),
    message: issue.message
  }))

const invalid = (issues: ReadonlyArray<{ readonly path: string; readonly message: string }>) =>
  new InvalidOptionsError({
    message: `invalid Mafalda options: ${issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`,
    issues
  })

export const resolveMafaldaOptions = (
  input: unknown = {}
): Either.Either<ResolvedMafaldaOptions, InvalidOptionsError> => {
  const decoded = decode(input ?? {})
  if (Either.isLeft(decoded)) return Either.left(invalid(issuesOf(decoded.left)))
  const o = decoded.right
  const policyInput: Record<string, unknown> = {}
  if (o.watermark !== undefined) policyInput.watermark = o.watermark
  if (o.maxWorkers !== undefined) policyInput.maxWorkersPerNode = o.maxWorkers
  if (o.idleGraceMillis !== undefined) policyInput.idleGraceMillis = o.idleGraceMillis
  if (o.warmWorkers !== undefined) policyInput.warmWorkers = o.warmWorkers
  if (o.maxTreeDepth !== undefined) policyInput.maxTreeDepth = o.maxTreeDepth
  if (o.pipeWatermark !== undefined) policyInput.pipeWatermark = o.pipeWatermark
  if (o.scaleDownHysteresis !== undefined) policyInput.scaleDownHysteresis = o.scaleDownHysteresis
  if (o.costs !== undefined) policyInput.costs = o.costs
  const policy = makePolicyOptions(policyInput)
  if (Either.isLeft(policy)) return Either.left(invalid(policy.left.issues))
  const workerSettings: Record<string, unknown> = { logLevel: "warn", ...o.workerSettings }
  if (o.workerSettings?.logTags !== undefined) workerSettings.logTags = [...o.workerSettings.logTags]
  return Either.right({
    policy: policy.right,
    // A machine claimed to have fewer CPUs than maxWorkers would cap the Workers below it.
    cpus: o.cpus ?? (o.maxWorkers === undefined ? undefined : Math.max(o.maxWorkers, availableParallelism())),
    workerSettings: workerSettings as WorkerSettings,
    logLevel: o.logLevel ?? "warning",
    samplingInterval: o.samplingInterval ?? 1000,
    scaleDownInterval: o.scaleDownInterval
  })
}
