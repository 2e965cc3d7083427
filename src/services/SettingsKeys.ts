/**
 * Stable keys for sets of settings: two Workers started with settings that have the same
 * key are interchangeable, and so are two Routers created with router options of the same
 * key. The key is a short SHA-256 of the canonical JSON (object keys sorted, `undefined`
 * fields and `appData` left out), so field order and absent-vs-undefined never matter.
 *
 * @module
 */
import { createHash } from "node:crypto"
import type { types } from "mediasoup"
import { SettingsKey } from "../core/Ids.js"

/** Worker settings that define a Worker (everything but `appData`). */
export type WorkerSettings = Omit<types.WorkerSettings, "appData">

/** Router settings that define a Router (its media codecs). */
export interface RouterSettings {
  readonly mediaCodecs?: ReadonlyArray<types.RtpCodecCapability> | undefined
}

/** JSON with object keys sorted and `undefined` values dropped. */
export const canonicalJson = (value: unknown): string => {
  if (value === undefined) return "null"
  if (value === null || typeof value !== "object") return JSON.stringify(value)
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`
}

const hash = (prefix: string, value: unknown): SettingsKey =>
  SettingsKey.make(
    `${prefix}-${createHash("sha256").update(canonicalJson(value)).digest("hex").slice(0, 16)}`
  )

/** The key of a set of Worker settings (`appData` ignored). */
export const workerSettingsKey = (settings: WorkerSettings & { readonly appData?: unknown }): SettingsKey => {
  const { appData: _appData, ...rest } = settings
  return hash("w", rest)
}

/** The key of a set of Router settings (`appData` ignored). */
export const routerSettingsKey = (settings: RouterSettings & { readonly appData?: unknown }): SettingsKey =>
  hash("r", { mediaCodecs: settings.mediaCodecs ?? [] })
