/**
 * What the command line needs to know about its installation: the package's version and
 * root, the mediasoup it runs with, and whether mediasoup's worker binary is there.
 *
 * @module
 */
import { existsSync, readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

/** The mafalda package's root (where package.json is), from `src/cli` or `dist/cli`. */
export const packageRoot = fileURLToPath(new URL("../../", import.meta.url))

const readJson = (path: string): Record<string, unknown> | undefined => {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>
  } catch {
    return undefined
  }
}

/** The mafalda package's version. */
export const packageVersion = (): string =>
  String(readJson(join(packageRoot, "package.json"))?.version ?? "?")

/** The mediasoup versions this package supports (its peer range). */
export const supportedMediasoup = (): string =>
  String(
    (readJson(join(packageRoot, "package.json"))?.peerDependencies as Record<string, string>)?.mediasoup ??
      "?"
  )

/**
 * The directory and version of the mediasoup package this one loads, or undefined when it
 * is not installed. Found from its entry point (newer mediasoup packages do not export
 * their package.json).
 */
export const findMediasoup = (): { readonly dir: string; readonly version: string } | undefined => {
  let entry: string
  try {
    entry = createRequire(join(packageRoot, "package.json")).resolve("mediasoup")
  } catch {
    return undefined
  }
  for (let dir = dirname(entry); dir !== dirname(dir); dir = dirname(dir)) {
    const json = readJson(join(dir, "package.json"))
    if (json?.name === "mediasoup") return { dir, version: String(json.version) }
  }
  return undefined
}

/** Where mediasoup runs its worker from: `MEDIASOUP_WORKER_BIN`, or inside its package. */
export const workerBinary = (mediasoupDir: string): string =>
  process.env.MEDIASOUP_WORKER_BIN || join(mediasoupDir, "worker", "out", "Release", "mediasoup-worker")

/** Why the mediasoup worker cannot start, with what to do about it; undefined when it can. */
export const workerProblem = (): string | undefined => {
  const mediasoup = findMediasoup()
  if (mediasoup === undefined) {
    return `mediasoup is not installed. Install it next to mafalda: npm install mediasoup@"${supportedMediasoup()}"`
  }
  const bin = workerBinary(mediasoup.dir)
  if (existsSync(bin)) return undefined
  return [
    `the mediasoup worker binary is missing: ${bin}`,
    process.env.MEDIASOUP_WORKER_BIN
      ? "MEDIASOUP_WORKER_BIN names a file that does not exist: point it at a mediasoup-worker, or unset it."
      : `Build it (Debian, no download; a few minutes the first time): npx mafalda build-worker`
  ].join("\n")
}
