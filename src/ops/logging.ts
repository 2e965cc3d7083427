/**
 * Mafalda's logs go through Effect's `Logger`: every log is structured (a message and
 * annotations such as `worker`, `pid`, `producer`, `router`), with a level. This module
 * makes the logger layer from the `logLevel` option and the environment:
 *
 * - `MAFALDA_LOG_LEVEL`: `all`, `trace`, `debug`, `info`, `warning`, `error` or `none`;
 *   when set, it wins over the `logLevel` option (so an operator can turn logs up without
 *   a code change);
 * - `MAFALDA_LOG_FORMAT`: `logfmt` (the default: `key=value` pairs), `json` (one JSON
 *   object per line), `pretty` (coloured, for a terminal) or `off` (Effect's own logger,
 *   left as the application set it).
 *
 * Logs are written to stderr, so that a program's stdout stays its own.
 *
 * What is logged, and at which level: Worker started, closed and exited (info), Worker died
 * (error), pipe made and closed (info), placement rejected (warning), idle things closed by
 * scale-down (info), relocations (info).
 *
 * @module
 */
import { Effect, Layer, Logger, LogLevel } from "effect"

export const logLevelNames = ["all", "trace", "debug", "info", "warning", "error", "none"] as const
export type LogLevelName = (typeof logLevelNames)[number]

export const logFormats = ["logfmt", "json", "pretty", "off"] as const
export type LogFormat = (typeof logFormats)[number]

const levels: Record<LogLevelName, LogLevel.LogLevel> = {
  all: LogLevel.All,
  trace: LogLevel.Trace,
  debug: LogLevel.Debug,
  info: LogLevel.Info,
  warning: LogLevel.Warning,
  error: LogLevel.Error,
  none: LogLevel.None
}

/** The Effect log level of a level name. */
export const toLogLevel = (name: LogLevelName): LogLevel.LogLevel => levels[name]

export interface LoggingOptions {
  /** The level when `MAFALDA_LOG_LEVEL` is not set (default `"warning"`). */
  readonly level?: LogLevelName | undefined
  /** The format when `MAFALDA_LOG_FORMAT` is not set (default `"logfmt"`). */
  readonly format?: LogFormat | undefined
  /** Where the variables are read (default `process.env`). */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined
}

/** What the options and the environment come to, with any variable that was not understood. */
export const resolveLogging = (
  options: LoggingOptions = {}
): { readonly level: LogLevelName; readonly format: LogFormat; readonly problems: ReadonlyArray<string> } => {
  const env = options.env ?? process.env
  const problems: Array<string> = []
  const pick = <A extends string>(name: string, allowed: ReadonlyArray<A>, fallback: A): A => {
    const raw = env[name]?.trim().toLowerCase()
    if (raw === undefined || raw === "") return fallback
    const value = raw === "warn" ? "warning" : raw
    if ((allowed as ReadonlyArray<string>).includes(value)) return value as A
    problems.push(`${name}=${env[name]} is not one of ${allowed.join(", ")}; using ${fallback}`)
    return fallback
  }
  return {
    level: pick("MAFALDA_LOG_LEVEL", logLevelNames, options.level ?? "warning"),
    format: pick("MAFALDA_LOG_FORMAT", logFormats, options.format ?? "logfmt"),
    problems
  }
}

const loggerOf = (format: Exclude<LogFormat, "off">): Logger.Logger<unknown, void> => {
  switch (format) {
    case "json":
      return Logger.withConsoleError(Logger.jsonLogger)
    case "pretty":
      return Logger.prettyLogger({ stderr: true })
    case "logfmt":
      return Logger.withConsoleError(Logger.logfmtLogger)
  }
}

/**
 * The logger of a Mafalda instance: the minimum level and the format, from the options and
 * the environment (`MAFALDA_LOG_LEVEL`, `MAFALDA_LOG_FORMAT`). Provide it under the layers
 * whose logs it governs (`layerFromResolved` does).
 */
export const layer = (options: LoggingOptions = {}): Layer.Layer<never> => {
  const { level, format, problems } = resolveLogging(options)
  const minimum = Logger.minimumLogLevel(levels[level])
  const logger =
    format === "off" ? minimum : Layer.merge(minimum, Logger.replace(Logger.defaultLogger, loggerOf(format)))
  if (problems.length === 0) return logger
  // A variable that was not understood is said once, on stderr, whatever the level.
  return Layer.merge(
    logger,
    Layer.effectDiscard(Effect.sync(() => console.error(problems.map((p) => `mafalda: ${p}`).join("\n"))))
  )
}
