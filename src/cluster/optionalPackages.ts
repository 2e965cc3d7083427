/**
 * The packages of the multi-machine mode (Redis, RPC: `@effect/platform`,
 * `@effect/platform-node`, `@effect/rpc`, `redis`): optional peer dependencies, which an app
 * installs only when it runs Mafalda Nodes. The embedded entry points (`mafalda`,
 * `mafalda/mediasoup`, `mafalda/core`, ...) never load them, so that an app on an older
 * Effect (3.21) gets one copy of Effect and no version warnings.
 *
 * When one is missing, loading the multi-machine code fails with Node's
 * `ERR_MODULE_NOT_FOUND`; {@link missingPackagesMessage} turns that into what to install.
 * This module itself imports nothing but Node's own modules: any path may load it.
 *
 * @module
 */
import { readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

/** The mafalda package's root (where package.json is), from `src/cluster` or `dist/cluster`. */
const packageRoot = fileURLToPath(new URL("../../", import.meta.url))

/** The Effect that the multi-machine packages need (`@effect/platform` 0.97's peer range). */
export const multiMachineEffect = "^3.22.2"

const packageJson = (): Record<string, unknown> => {
  try {
    return JSON.parse(readFileSync(join(packageRoot, "package.json"), "utf8")) as Record<string, unknown>
  } catch {
    return {}
  }
}

/** The optional peer dependencies with their ranges, from mafalda's package.json. */
export const multiMachinePackages = (): ReadonlyArray<{ readonly name: string; readonly range: string }> => {
  const json = packageJson()
  const peers = (json.peerDependencies ?? {}) as Record<string, string>
  const meta = (json.peerDependenciesMeta ?? {}) as Record<string, { readonly optional?: boolean }>
  return Object.keys(meta)
    .filter((name) => meta[name]?.optional === true && peers[name] !== undefined)
    .map((name) => ({ name, range: peers[name] ?? "" }))
}

/** Whether `name` resolves from mafalda's own location (as its modules import it). */
const installed = (name: string): boolean => {
  try {
    createRequire(join(packageRoot, "package.json")).resolve(name)
    return true
  } catch (error) {
    // Present, but its exports give no CommonJS entry: still installed.
    return (error as { readonly code?: string }).code === "ERR_PACKAGE_PATH_NOT_EXPORTED"
  }
}

/** The version of the `effect` that mafalda loads, or undefined. */
const effectVersion = (): string | undefined => {
  try {
    const path = createRequire(join(packageRoot, "package.json")).resolve("effect/package.json")
    return String((JSON.parse(readFileSync(path, "utf8")) as { version?: unknown }).version)
  } catch {
    return undefined
  }
}

/**
 * When `error` is a failed import of a multi-machine package: what is missing and the npm
 * command that installs it (with the Effect those packages need), for `feature` (what
 * needed them). Otherwise undefined.
 */
export const missingPackagesMessage = (
  error: unknown,
  feature = "the multi-machine mode (mafalda node)"
): string | undefined => {
  const e = error as { readonly code?: unknown; readonly message?: unknown } | null
  if (e?.code !== "ERR_MODULE_NOT_FOUND" && e?.code !== "MODULE_NOT_FOUND") return undefined
  const packages = multiMachinePackages()
  const named = /Cannot find (?:package|module) '([^']+)'/.exec(String(e.message))?.[1]
  if (named === undefined || !packages.some((p) => named === p.name || named.startsWith(`${p.name}/`))) {
    return undefined
  }
  const missing = packages.filter((p) => !installed(p.name))
  const effect = effectVersion()
  return [
    `${feature} needs packages that are not installed: ${(missing.length > 0 ? missing.map((p) => p.name) : [named]).join(", ")}.`,
    "They are optional peer dependencies of mafalda (an embedded app does not need them). Install them next to mafalda:",
    `  npm install ${packages.map((p) => `"${p.name}@${p.range}"`).join(" ")}`,
    `They need effect ${multiMachineEffect}${effect === undefined ? "" : ` (this app has effect ${effect})`}.`
  ].join("\n")
}
