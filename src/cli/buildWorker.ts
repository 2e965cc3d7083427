/**
 * `mafalda build-worker`: builds mediasoup's worker binary for the mediasoup installed next
 * to mafalda (an app installed from npm), with the package's offline build script
 * (`scripts/build-mediasoup-worker.sh`).
 *
 * @module
 */
import { spawn } from "node:child_process"
import { join } from "node:path"
import { findMediasoup, packageRoot, supportedMediasoup } from "./environment.js"

/** The mediasoup minor version the build script's patches are written for. */
const BUILDABLE_MINOR = "3.14."

export const buildWorkerUsage = `usage: mafalda build-worker
  Builds mediasoup's worker (mediasoup-worker) from the C++ sources inside the installed
  mediasoup package, against Debian's libraries, downloading nothing (no prebuilt binary, no
  PyPI). As root it installs the Debian packages it needs (meson, ninja, g++ and the
  libraries); otherwise it prints the apt-get line to run. The binary is cached in
  ~/.cache/mafalda (or $MAFALDA_CACHE_DIR), keyed by the mediasoup version, and copied to where
  mediasoup looks for it. With MEDIASOUP_WORKER_BIN naming a worker of your own, it builds
  nothing. Supports mediasoup ${BUILDABLE_MINOR}x.`

export const runBuildWorkerCommand = async (argv: ReadonlyArray<string>): Promise<number> => {
  if (argv.length > 0) {
    console.error(`mafalda build-worker: unknown argument ${argv[0]}\n${buildWorkerUsage}`)
    return 2
  }
  const mediasoup = findMediasoup()
  if (mediasoup === undefined) {
    console.error(
      `mafalda build-worker: mediasoup is not installed. Install it next to mafalda first:\n  npm install mediasoup@"${supportedMediasoup()}"`
    )
    return 1
  }
  if (!process.env.MEDIASOUP_WORKER_BIN && !mediasoup.version.startsWith(BUILDABLE_MINOR)) {
    console.error(
      `mafalda build-worker: mediasoup ${mediasoup.version} is installed, and this build supports ${BUILDABLE_MINOR}x only (mafalda supports mediasoup ${supportedMediasoup()}):\n` +
        `  npm install mediasoup@"${supportedMediasoup()}"\n` +
        "or build the worker yourself and set MEDIASOUP_WORKER_BIN to it."
    )
    return 1
  }
  const script = join(packageRoot, "scripts", "build-mediasoup-worker.sh")
  return new Promise<number>((resolve) => {
    const child = spawn("bash", [script], { stdio: "inherit" })
    child.on("error", (error) => {
      console.error(`mafalda build-worker: cannot run bash ${script}: ${error.message}`)
      resolve(1)
    })
    child.on("exit", (code, signal) => resolve(code ?? (signal === null ? 1 : 128)))
  })
}
