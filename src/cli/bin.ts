/**
 * The `mafalda` process: runs the command line and sets the exit code. An unexpected error
 * is printed as one line (with a hint when mediasoup's worker binary is missing, and what to
 * install when a package of the multi-machine mode is missing); the stack trace only with
 * `MAFALDA_DEBUG=1`.
 *
 * @module
 */
import { missingPackagesMessage } from "../cluster/optionalPackages.js"
import { main } from "./main.js"

const describe = (error: unknown): string => {
  const missing = missingPackagesMessage(error)
  if (missing !== undefined) return missing
  const message = error instanceof Error ? error.message : String(error)
  if (/mediasoup-worker/.test(message) && /ENOENT|not found|no such file/i.test(message)) {
    return `${message}\nThe mediasoup worker binary is missing: build it with npx mafalda build-worker (or set MEDIASOUP_WORKER_BIN).`
  }
  return process.env.MAFALDA_DEBUG
    ? String(error instanceof Error ? (error.stack ?? message) : message)
    : `${message}\n(MAFALDA_DEBUG=1 prints the stack trace)`
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
  },
  (error: unknown) => {
    console.error(`mafalda: ${describe(error)}`)
    process.exitCode = 1
  }
)
