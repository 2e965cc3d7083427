/**
 * Runs mediasoup's own Node test suite against `mafalda/mediasoup` (see `mediasoupSuite.ts`):
 * `npm run test:mediasoup-suite`, or `npx vitest run --config test/dropin/vitest.mediasoup.config.ts`.
 * `MAFALDA_SUITE_TARGET=dist` tests the built package instead of the sources.
 */
import { join } from "node:path"
import { defineConfig } from "vitest/config"
import { generateMediasoupSuite, repoRoot, type SuiteTarget } from "./mediasoupSuite.js"

const outDir = join(repoRoot, ".cache", "mediasoup-suite")
generateMediasoupSuite(outDir, (process.env.MAFALDA_SUITE_TARGET as SuiteTarget | undefined) ?? "src")

export default defineConfig({
  root: repoRoot,
  test: {
    include: [".cache/mediasoup-suite/*.test.mjs"],
    exclude: ["**/node_modules/**"],
    globals: true,
    setupFiles: [join(repoRoot, "test", "dropin", "mediasoupSuiteSetup.ts")],
    fileParallelism: false,
    testTimeout: 5_000,
    hookTimeout: 30_000,
    reporters: ["default", ["json", { outputFile: ".cache/mediasoup-suite-results.json" }]]
  }
})
