/**
 * Set-up of each file of mediasoup's test suite run against `mafalda/mediasoup`: Jest's
 * globals (`jest.fn`) as vitest's, and the options of the shared Mafalda instance:
 * `MAFALDA_SUITE_OPTIONS` (JSON), by default every transport and RTP observer of a Router on
 * a Worker of its own (a transport costs 50 % under a 50 % watermark), up to 6 Workers, so
 * that a Router with two transports already spans two Workers and consumers need pipes.
 */
import { vi } from "vitest"
import { configure } from "../../src/mediasoup/index.js"

;(globalThis as { jest?: unknown }).jest = vi

export const defaultSuiteOptions = {
  cpus: 6,
  maxWorkers: 6,
  watermark: 50,
  costs: { transport: 50 },
  samplingInterval: 3_600_000,
  logLevel: "error"
} as const

const raw = process.env.MAFALDA_SUITE_OPTIONS
configure(raw === undefined || raw === "" ? defaultSuiteOptions : JSON.parse(raw))
