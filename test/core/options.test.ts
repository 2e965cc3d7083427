import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import {
  defaultPolicyOptions,
  InvalidPolicyOptions,
  kindCosts,
  makePolicyOptions
} from "../../src/core/index.js"

const invalid = (input: unknown): InvalidPolicyOptions => {
  const r = makePolicyOptions(input)
  if (Either.isRight(r)) throw new Error(`expected ${JSON.stringify(input)} to be rejected`)
  return r.left
}

describe("makePolicyOptions: defaults", () => {
  it("fills in every default", () => {
    const o = Either.getOrThrow(makePolicyOptions())
    expect(o).toEqual({
      watermark: 60,
      plannedLimit: 85,
      roomGrowth: 0,
      relocateAbove: 92,
      consolidateBelow: 8,
      consolidateMaxTransports: 1,
      maxMovesPerStep: 8,
      maxTreeDepth: 4,
      idleGraceMillis: 30_000,
      warmWorkers: 1,
      scaleDownHysteresis: 10,
      costs: {
        transport: 0.1,
        producer: 0.327,
        consumer: 0.101,
        pipe: 0.153,
        audio: { producer: 0.159, consumer: 0.028, pipe: 0.128 },
        video: { producer: 0.327, consumer: 0.101, pipe: 0.153 }
      }
    })
    expect("maxWorkersPerNode" in o).toBe(false)
    expect(Either.getOrThrow(makePolicyOptions({}))).toEqual(o)
    expect(defaultPolicyOptions).toEqual(o)
  })

  it("keeps what is given and defaults the rest, inside costs too", () => {
    const o = Either.getOrThrow(
      makePolicyOptions({ watermark: 80, maxWorkersPerNode: 2, costs: { consumer: 0.5 } })
    )
    expect(o).toMatchObject({ watermark: 80, maxWorkersPerNode: 2, maxTreeDepth: 4 })
    expect(o.costs).toEqual({
      transport: 0.1,
      producer: 0.327,
      consumer: 0.5,
      pipe: 0.153,
      audio: { producer: 0.159, consumer: 0.5, pipe: 0.128 },
      video: { producer: 0.327, consumer: 0.5, pipe: 0.153 }
    })
  })

  it("costs per media kind: a kind's own figure wins over the flat one, which applies to both kinds", () => {
    const o = Either.getOrThrow(
      makePolicyOptions({
        costs: { consumer: 0.3, pipe: 1, audio: { consumer: 0.05 }, video: { producer: 2 } }
      })
    )
    expect(kindCosts(o.costs, "audio")).toEqual({ producer: 0.159, consumer: 0.05, pipe: 1 })
    expect(kindCosts(o.costs, "video")).toEqual({ producer: 2, consumer: 0.3, pipe: 1 })
    // The kind-less figures (what has no kind): the flat input, else video's.
    expect(o.costs).toMatchObject({ producer: 2, consumer: 0.3, pipe: 1 })
    // Defaults differ by kind: a video consumer forwards many times the packets of an audio one.
    const d = defaultPolicyOptions.costs
    expect(kindCosts(d, "video").consumer).toBeGreaterThan(2 * kindCosts(d, "audio").consumer)
  })

  it("costs per kind reject bad figures, naming the field", () => {
    const e = invalid({ costs: { video: { consumer: -1 } } })
    expect(e.issues.map((i) => i.path)).toEqual(["costs.video.consumer"])
    expect(invalid({ costs: { data: { consumer: 1 } } }).issues.map((i) => i.path)).toEqual(["costs.data"])
  })

  it("accepts the bounds", () => {
    for (const input of [
      { watermark: 100 },
      { watermark: 0.5 },
      { scaleDownHysteresis: 0 },
      { scaleDownHysteresis: 100 },
      { warmWorkers: 0 },
      { idleGraceMillis: 0 },
      { maxTreeDepth: 1 },
      { maxWorkersPerNode: 1 },
      { costs: { transport: 0, producer: 0, consumer: 0, pipe: 0 } }
    ]) {
      expect(Either.isRight(makePolicyOptions(input))).toBe(true)
    }
  })
})

describe("makePolicyOptions: invalid options give InvalidPolicyOptions naming the field", () => {
  const cases: ReadonlyArray<readonly [unknown, string]> = [
    [{ watermark: 150 }, "watermark"],
    [{ watermark: 0 }, "watermark"],
    [{ watermark: -5 }, "watermark"],
    [{ watermark: "60" }, "watermark"],
    [{ maxWorkersPerNode: 0 }, "maxWorkersPerNode"],
    [{ maxWorkersPerNode: 1.5 }, "maxWorkersPerNode"],
    [{ maxTreeDepth: 0 }, "maxTreeDepth"],
    [{ maxTreeDepth: 2.5 }, "maxTreeDepth"],
    [{ idleGraceMillis: -1 }, "idleGraceMillis"],
    [{ idleGraceMillis: Number.NaN }, "idleGraceMillis"],
    [{ idleGraceMillis: Number.POSITIVE_INFINITY }, "idleGraceMillis"],
    [{ warmWorkers: -1 }, "warmWorkers"],
    [{ warmWorkers: 0.5 }, "warmWorkers"],
    [{ scaleDownHysteresis: 101 }, "scaleDownHysteresis"],
    [{ scaleDownHysteresis: -1 }, "scaleDownHysteresis"],
    [{ costs: { consumer: -1 } }, "costs.consumer"],
    [{ costs: { transport: Number.POSITIVE_INFINITY } }, "costs.transport"],
    [{ costs: { producer: "cheap" } }, "costs.producer"],
    [{ costs: { pipe: -0.1 } }, "costs.pipe"],
    [{ costs: 3 }, "costs"],
    [{ foo: 1 }, "foo"],
    [{ costs: { bar: 1 } }, "costs.bar"],
    [42, "(options)"],
    [null, "(options)"],
    ["watermark=60", "(options)"]
  ]

  for (const [input, path] of cases) {
    it(`${JSON.stringify(input) ?? String(input)} -> ${path}`, () => {
      const e = invalid(input)
      expect(e).toBeInstanceOf(InvalidPolicyOptions)
      expect(e._tag).toBe("InvalidPolicyOptions")
      expect(e.issues.map((i) => i.path)).toContain(path)
      expect(e.issues.every((i) => i.message.length > 0)).toBe(true)
      expect(e.message).toContain(`${path}:`)
    })
  }

  it("an unknown field is called unexpected", () => {
    const e = invalid({ foo: 1 })
    expect(e.issues).toEqual([{ path: "foo", message: expect.stringContaining("is unexpected") }])
  })

  it("reports every bad field at once", () => {
    const e = invalid({ watermark: 150, maxTreeDepth: 0, foo: 1, costs: { consumer: -1 } })
    const paths = new Set(e.issues.map((i) => i.path))
    for (const p of ["watermark", "maxTreeDepth", "foo", "costs.consumer"]) expect(paths.has(p)).toBe(true)
  })

  it("says why", () => {
    expect(invalid({ watermark: 150 }).issues[0]?.message).toContain("150")
    expect(invalid({ costs: { consumer: -1 } }).issues[0]?.message).toContain("non-negative")
  })
})

describe("regressions: core bugs these tests found", () => {
  // Every optional field is `optionalWith(X, { default })`, whose encoded side is
  // `X | undefined`; with errors: "all" the union reports a second, misleading issue per
  // bad field ("watermark: Expected undefined, actual 150", and for costs.consumer also
  // "costs: Expected undefined, actual {...}"). Suggested fix in src/core/PolicyOptions.ts:
  // `Schema.optionalWith(X, { default: ..., exact: true })` (matches exactOptionalPropertyTypes).
  it("each bad field is reported once, with its reason only", () => {
    expect(invalid({ watermark: 150 }).issues).toEqual([
      { path: "watermark", message: expect.stringContaining("150") }
    ])
    expect(invalid({ costs: { consumer: -1 } }).issues).toHaveLength(1)
  })
})
