/**
 * Debian's Chromium driven by playwright-core, and the test page's script bundled with
 * esbuild in memory (nothing written to the repository).
 *
 * `MAFALDA_CHROMIUM_PATH` names another Chromium binary (`scripts/setup.sh` honours it too);
 * pointing it at a missing file shows what a machine without Chromium does.
 */
import { existsSync } from "node:fs"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { Scope } from "effect"
import { Data, Effect } from "effect"
import { build } from "esbuild"
import { type BrowserContext, chromium } from "playwright-core"

/** Debian's Chromium, where `apt-get install chromium` puts it. */
export const DEFAULT_CHROMIUM_PATH = "/usr/bin/chromium"

/** The Chromium the real-client tests launch: `MAFALDA_CHROMIUM_PATH`, or Debian's. */
export const CHROMIUM_PATH = process.env.MAFALDA_CHROMIUM_PATH || DEFAULT_CHROMIUM_PATH

/** Whether that Chromium is installed. */
export const hasChromium = (): boolean => existsSync(CHROMIUM_PATH)

export const CHROMIUM_ARGS: ReadonlyArray<string> = [
  "--headless=new",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--use-fake-device-for-media-stream",
  "--use-fake-ui-for-media-stream"
]

export class BundleError extends Data.TaggedError("BundleError")<{ readonly cause: unknown }> {}
export class BrowserLaunchError extends Data.TaggedError("BrowserLaunchError")<{ readonly cause: unknown }> {}

/** Bundles a browser entry point (TypeScript, with its npm imports) into one ES module, in memory. */
export const bundleBrowserScript = (entryPoint: string): Effect.Effect<string, BundleError> =>
  Effect.tryPromise({
    try: async () => {
      const result = await build({
        entryPoints: [entryPoint],
        bundle: true,
        write: false,
        format: "esm",
        platform: "browser",
        target: "chrome120",
        sourcemap: "inline",
        logLevel: "silent"
      })
      const [output] = result.outputFiles
      if (output === undefined) throw new Error("esbuild produced no output")
      return output.text
    },
    catch: (cause) => new BundleError({ cause })
  })

/**
 * Launches Chromium with a fresh user-data directory; the release closes it and removes
 * the directory.
 */
export const launchChromium = (): Effect.Effect<BrowserContext, BrowserLaunchError, Scope.Scope> =>
  Effect.gen(function* () {
    const userDataDir = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () => mkdtemp(join(tmpdir(), "mafalda-chromium-")),
        catch: (cause) => new BrowserLaunchError({ cause })
      }),
      (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true }))
    )
    return yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () =>
          chromium.launchPersistentContext(userDataDir, {
            executablePath: CHROMIUM_PATH,
            headless: true,
            args: [...CHROMIUM_ARGS],
            timeout: 30_000
          }),
        catch: (cause) => new BrowserLaunchError({ cause })
      }),
      (context) => Effect.promise(() => context.close()).pipe(Effect.timeout("10 seconds"), Effect.ignore)
    )
  })
