/**
 * mediasoup's own Node test suite (the compiled tests the mediasoup npm package ships in
 * `node/lib/test`), pointed at `mafalda/mediasoup`: each test file is copied with its
 * `require("../")` (mediasoup itself) replaced by an import of `mafalda/mediasoup`, its other
 * requires of mediasoup's internals (`../errors`, `../enhancedEvents`, `../utils`...) kept
 * on the installed mediasoup, and its `data/` files (a DTLS certificate and key the package
 * does not ship) made here. Jest's `jest.fn()` is vitest's `vi.fn()`.
 *
 * `generateMediasoupSuite` writes the files; `test/dropin/vitest.mediasoup.config.ts` runs
 * them (`npm run test:mediasoup-suite`).
 *
 * @module
 */
import { execFileSync } from "node:child_process"
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"

const here = dirname(fileURLToPath(import.meta.url))
export const repoRoot = resolve(here, "..", "..")
const require = createRequire(import.meta.url)
/** The installed mediasoup's `node/lib`. */
export const mediasoupLib = dirname(require.resolve("mediasoup"))

/** What the copied tests import as mediasoup: the sources (default) or the built package. */
export type SuiteTarget = "src" | "dist"

const targetPath = (target: SuiteTarget): string =>
  target === "src"
    ? join(repoRoot, "src", "mediasoup", "index.ts")
    : join(repoRoot, "dist", "mediasoup", "index.js")

/** A self-signed certificate and key, as mediasoup's test data has (openssl). */
const makeCertificate = (dir: string): void => {
  mkdirSync(dir, { recursive: true })
  const cert = join(dir, "dtls-cert.pem")
  const key = join(dir, "dtls-key.pem")
  if (existsSync(cert) && existsSync(key)) return
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-days",
      "3650",
      "-subj",
      "/CN=mediasoup-test",
      "-keyout",
      key,
      "-out",
      cert
    ],
    { stdio: "ignore" }
  )
}

/** Rewrites one compiled mediasoup test file (see the module comment). */
export const rewriteTest = (source: string, target: SuiteTarget, dataDir: string): string => {
  const testDir = join(mediasoupLib, "test")
  const body = source
    .replace(/require\("\.\.\/"\)/g, "__mafaldaMediasoup")
    .replace(
      /require\("\.\.\/([^"]+)"\)/g,
      (_m, path: string) => `require(${JSON.stringify(join(mediasoupLib, path))})`
    )
    .replace(/path\.join\(__dirname, 'data'/g, `path.join(${JSON.stringify(dataDir)}`)
    .replace(/__dirname/g, JSON.stringify(testDir))
  const header = `import * as __mafaldaMediasoupModule from ${JSON.stringify(targetPath(target))};\nconst __mafaldaMediasoup = __mafaldaMediasoupModule;\n`
  return header + body.replace(/^"use strict";\n/, "")
}

/** Writes the suite into `outDir` (emptied first) and returns the test files' names. */
export const generateMediasoupSuite = (
  outDir: string = join(repoRoot, ".cache", "mediasoup-suite"),
  target: SuiteTarget = "src"
): ReadonlyArray<string> => {
  rmSync(outDir, { recursive: true, force: true })
  mkdirSync(outDir, { recursive: true })
  const dataDir = join(outDir, "data")
  makeCertificate(dataDir)
  const testDir = join(mediasoupLib, "test")
  const files = readdirSync(testDir).filter((f) => /^test-.*\.js$/.test(f))
  for (const file of files) {
    const out = join(outDir, file.replace(/\.js$/, ".test.mjs"))
    writeFileSync(out, rewriteTest(readFileSync(join(testDir, file), "utf8"), target, dataDir))
  }
  return files
}
