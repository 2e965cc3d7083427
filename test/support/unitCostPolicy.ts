/**
 * The policy the shell tests over simulated Nodes use: a 20 % watermark, no warm Worker, and
 * whole-number costs (transport 1, producer 2, consumer 1, pipe end 1) so that a handful of
 * objects fills a Worker; `idleGraceMillis` as the test needs.
 */
import { Either } from "effect"
import { makePolicyOptions, type PolicyOptions } from "../../src/core/PolicyOptions.js"

export const unitCostPolicy = (idleGraceMillis: number): PolicyOptions =>
  Either.getOrThrow(
    makePolicyOptions({
      watermark: 20,
      idleGraceMillis,
      warmWorkers: 0,
      costs: { transport: 1, producer: 2, consumer: 1, pipe: 1 }
    })
  )
