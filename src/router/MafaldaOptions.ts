/**
 * The options of a Mafalda instance, validated with `effect/Schema`, and the checks of a
 * set of mediasoup Worker settings that mediasoup (or its worker process) makes, made here
 * before any Worker starts.
 *
 * @module
 */
import { accessSync, constants, statSync } from "node:fs"
import { availableParallelism } from "node:os"
import { Either, ParseResult, Schema } from "effect"
import { Costs, makePolicyOptions, type PolicyOptions } from "../core/PolicyOptions.js"
import type { WorkerSettings } from "../services/SettingsKeys.js"
import { InvalidOptionsError } from "./errors.js"

/** A port, as the mediasoup worker reads it (0 included: mediasoup accepts it). */
const Port = Schema.Int.pipe(Schema.between(0, 65535))
const Millis = Schema.Number.pipe(Schema.positive(), Schema.finite())

/**
 * The longest `libwebrtcFieldTrials` the worker process can be given: Linux limits one
 * argument to 128 KiB (`MAX_ARG_STRLEN`), `--libwebrtcFieldTrials=` and the final NUL included.
 */
export const MAX_FIELD_TRIALS_LENGTH = 128 * 1024 - "--libwebrtcFieldTrials=".length - 1

/** Why a certificate or key file cannot be used, or undefined when it can. */
const unreadable = (path: string): string | undefined => {
  try {
    if (!statSync(path).isFile()) return `${path} is not a file`
    accessSync(path, constants.R_OK)
    return undefined
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    return code === "ENOENT" ? `${path} does not exist` : `${path} cannot be read (${code ?? String(error)})`
  }
}

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
  libwebrtcFieldTrials: Schema.optional(
    Schema.String.pipe(
      Schema.maxLength(MAX_FIELD_TRIALS_LENGTH, {
        message: () => `libwebrtcFieldTrials is longer than ${MAX_FIELD_TRIALS_LENGTH} characters`
      })
    )
  )
}).pipe(
  Schema.filter((s) => {
    if ((s.rtcMinPort ?? 10000) > (s.rtcMaxPort ?? 59999)) return "rtcMinPort must not be above rtcMaxPort"
    // What the worker process checks at start (it would exit with "wrong settings").
    const cert = s.dtlsCertificateFile === "" ? undefined : s.dtlsCertificateFile
    const key = s.dtlsPrivateKeyFile === "" ? undefined : s.dtlsPrivateKeyFile
    if (cert !== undefined && key === undefined)
      return "missing dtlsPrivateKeyFile (dtlsCertificateFile is given)"
    if (cert === undefined && key !== undefined)
      return "missing dtlsCertificateFile (dtlsPrivateKeyFile is given)"
    if (cert !== undefined && key !== undefined) {
      const bad = unreadable(cert)
      if (bad !== undefined) return `dtlsCertificateFile: ${bad}`
      const badKey = unreadable(key)
      if (badKey !== undefined) return `dtlsPrivateKeyFile: ${badKey}`
    }
    return undefined
  })
)

/** How the WebRtcServers of Mafalda find ports on the Workers after the first (see `webRtcServer.ts`). */
export const WebRtcServerPorts = Schema.Union(
  Schema.Literal("workerRange"),
  Schema.Struct({ min: Port, max: Port })
)

export const MafaldaOptions = Schema.Struct({
  /** CPU % at which a Worker takes nothing new (default 60). */
  watermark: Schema.optional(Schema.Number.pipe(Schema.greaterThan(0), Schema.lessThanOrEqualTo(100))),
  /** The most Workers per set of Worker settings (default: `cpus`). */
  maxWorkers: Schema.optional(Schema.Int.pipe(Schema.positive())),
  /**
   * The most Worker processes of this Mafalda instance, whatever their settings (default: no
   * cap beyond `maxWorkers` per set of settings). Placements that would need one more fail.
   */
  maxWorkerProcesses: Schema.optional(Schema.Int.pipe(Schema.positive())),
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
  costs: Schema.optional(Schema.encodedSchema(Costs)),
  /**
   * Ports of a WebRtcServer's listeners on the Workers after the one it was created on:
   * `"workerRange"` (default: a port of the Worker's `rtcMinPort`-`rtcMaxPort`, or the
   * listener's own `portRange` when it has one), or a range `{ min, max }` for all of them.
   */
  webRtcServerPorts: Schema.optional(WebRtcServerPorts),
  /**
   * Whether Mafalda decides relocations on its own (the core's `decideRelocations`, after
   * each load sampling round) and offers them (`relocation` event, reasons `Overload`,
   * `Drain`, `Consolidate`): `"off"` (default) or `"offer"`. Off by default because each
   * move is a reconnect the application must carry out (`prepare`, its client switches,
   * `complete`); an application turns it on once it handles the event. Offers are made only
   * to a Mafalda Router with a `relocation` listener, for a transport with no move under way.
   * (`WorkerLost` is offered when a Worker dies, whatever this says.)
   */
  relocation: Schema.optional(Schema.Literal("off", "offer")),
  /** CPU % of a Worker's measured load above which its transports are moved off (default 92). */
  relocateAbove: Schema.optional(Schema.Number.pipe(Schema.greaterThan(0), Schema.lessThanOrEqualTo(100))),
  /** CPU % an overloaded Worker sheds transports down to, and a move's target stays within (default 85). */
  plannedLimit: Schema.optional(Schema.Number.pipe(Schema.greaterThan(0), Schema.lessThanOrEqualTo(100)))
})
export type MafaldaOptionsInput = typeof MafaldaOptions.Encoded

/** Options checked and completed. */
export interface ResolvedMafaldaOptions {
  readonly policy: PolicyOptions
  readonly cpus: number | undefined
  readonly maxWorkerProcesses: number | undefined
  readonly webRtcServerPorts: typeof WebRtcServerPorts.Type
  readonly workerSettings: WorkerSettings
  readonly logLevel: NonNullable<(typeof MafaldaOptions.Type)["logLevel"]>
  readonly samplingInterval: number
  readonly scaleDownInterval: number | undefined
  readonly relocation: "off" | "offer"
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
  if (o.relocateAbove !== undefined) policyInput.relocateAbove = o.relocateAbove
  if (o.plannedLimit !== undefined) policyInput.plannedLimit = o.plannedLimit
  const policy = makePolicyOptions(policyInput)
  if (Either.isLeft(policy)) return Either.left(invalid(policy.left.issues))
  const workerSettings: Record<string, unknown> = { logLevel: "warn", ...o.workerSettings }
  if (o.workerSettings?.logTags !== undefined) workerSettings.logTags = [...o.workerSettings.logTags]
  return Either.right({
    policy: policy.right,
    // A machine claimed to have fewer CPUs than maxWorkers would cap the Workers below it.
    cpus: o.cpus ?? (o.maxWorkers === undefined ? undefined : Math.max(o.maxWorkers, availableParallelism())),
    maxWorkerProcesses: o.maxWorkerProcesses,
    webRtcServerPorts: o.webRtcServerPorts ?? "workerRange",
    workerSettings: workerSettings as WorkerSettings,
    logLevel: o.logLevel ?? "warning",
    samplingInterval: o.samplingInterval ?? 1000,
    scaleDownInterval: o.scaleDownInterval,
    relocation: o.relocation ?? "off"
  })
}

const decodeWorkerSettings = Schema.decodeUnknownEither(WorkerSettingsSchema, {
  errors: "all",
  onExcessProperty: "error"
})

/**
 * Checks a set of Worker settings as mediasoup and its worker process would (values, port
 * range, certificate files): the settings of one Mafalda Router, say. `appData` is ignored.
 */
export const validateWorkerSettings = (
  input: unknown
): Either.Either<WorkerSettings, InvalidOptionsError> => {
  if (input === undefined) return Either.right({})
  if (typeof input !== "object" || input === null) {
    return Either.left(invalid([{ path: "workerSettings", message: "must be an object" }]))
  }
  const { appData: _appData, ...settings } = input as Record<string, unknown>
  const decoded = decodeWorkerSettings(settings)
  if (Either.isLeft(decoded)) {
    return Either.left(
      invalid(
        issuesOf(decoded.left).map((i) => ({
          ...i,
          path: i.path === "(options)" ? "workerSettings" : `workerSettings.${i.path}`
        }))
      )
    )
  }
  const out: Record<string, unknown> = { ...decoded.right }
  if (decoded.right.logTags !== undefined) out.logTags = [...decoded.right.logTags]
  return Either.right(out as WorkerSettings)
}

/**
 * Cluster mode (`createMafalda({ ..., cluster })`): this process is also a Mafalda Node of a
 * cluster (registered in its Redis, serving the Node API on loopback by default), and its
 * Mafalda Routers place transports on the other Nodes when the core delegates to them
 * (`src/cluster/ClusterMafalda.ts`, loaded only in this mode).
 */
export interface ClusterModeOptions {
  /** The cluster's shared secret (every RPC carries it). Required. */
  readonly secret: string
  /** `redis://host:port` of the cluster's Redis (default `redis://127.0.0.1:6379`). */
  readonly redis?: string | undefined
  /** The cluster's key prefix in Redis (default `mafalda:`). */
  readonly prefix?: string | undefined
  /** This Node's id (default: hostname, pid and a random suffix). */
  readonly node?: string | undefined
  /** Where this Node's RPC server listens (default 127.0.0.1, any free port). */
  readonly listenHost?: string | undefined
  readonly listenPort?: number | undefined
  /** The IP other Nodes send pipe media to (default 127.0.0.1). */
  readonly announcedIp?: string | undefined
  /** The IP PipeTransports listen on (default: `announcedIp`). */
  readonly pipeListenIp?: string | undefined
  /** How often loads are reported, renewing the lease (default 1000 ms). */
  readonly heartbeatMillis?: number | undefined
  /** How long the lease lasts without a report (default 3000 ms). */
  readonly leaseMillis?: number | undefined
  /** How often the snapshot is brought in line with the registry (default 500 ms). */
  readonly syncMillis?: number | undefined
}

/** Checks cluster mode options; a message when they are wrong. */
export const badClusterOptions = (input: unknown): string | undefined => {
  if (typeof input !== "object" || input === null) return "cluster must be an object"
  const o = input as Record<string, unknown>
  if (typeof o.secret !== "string" || o.secret.length === 0)
    return "cluster.secret must be a non-empty string"
  for (const key of ["redis", "prefix", "node", "listenHost", "announcedIp", "pipeListenIp"]) {
    if (o[key] !== undefined && typeof o[key] !== "string") return `cluster.${key} must be a string`
  }
  for (const key of ["listenPort", "heartbeatMillis", "leaseMillis", "syncMillis"]) {
    const v = o[key]
    if (v !== undefined && (typeof v !== "number" || !Number.isFinite(v) || v < 0)) {
      return `cluster.${key} must be a non-negative number`
    }
  }
  return undefined
}
