/**
 * Coverage of property tests: what share of a property's runs reached each case, printed as
 * one line per property and asserted against targets, so that a generator that stops
 * reaching the hard cases fails instead of passing on easy runs. Also the runner the
 * properties use, which yields to the event loop now and then so that a long property does
 * not starve vitest's RPC.
 */
import { FastCheck as fc } from "effect"

export class Coverage<K extends string> {
  runs = 0
  private readonly hits = new Map<K, number>()

  constructor(
    readonly name: string,
    readonly keys: ReadonlyArray<K>
  ) {}

  /** Records one run: the cases it reached. */
  add(reached: Partial<Record<K, boolean>>) {
    this.runs++
    for (const k of this.keys) if (reached[k]) this.hits.set(k, (this.hits.get(k) ?? 0) + 1)
  }

  /** The share of runs (0 to 1) that reached `key`. */
  share(key: K): number {
    return this.runs === 0 ? 0 : (this.hits.get(key) ?? 0) / this.runs
  }

  /** One line: the runs, then each case with the share of runs that reached it. */
  line(): string {
    const cases = this.keys.map((k) => `${k} ${(100 * this.share(k)).toFixed(1)} %`)
    return `coverage of ${this.name} (${this.runs} runs): ${cases.join(", ")}`
  }

  /** Prints the line, then fails naming every case under its target with the measured figure. */
  expectAtLeast(targets: Partial<Record<K, number>>) {
    console.log(this.line())
    const short = Object.entries(targets as Record<string, number>)
      .filter(([k, min]) => this.share(k as K) < min)
      .map(([k, min]) => `${k}: ${(100 * this.share(k as K)).toFixed(1)} % of runs, target ${100 * min} %`)
    if (short.length > 0) throw new Error(`${this.name}: too few runs reach ${short.join("; ")}`)
  }
}

/**
 * Runs a property like `fc.assert`, yielding to the event loop about every 100 ms (a long
 * synchronous run starves vitest's RPC with its worker). Coverage counted in `predicate` is
 * only meaningful when the property passed (shrinking reruns it).
 */
export const assertProperty = async <A>(
  arbitrary: fc.Arbitrary<A>,
  predicate: (a: A) => void,
  parameters: fc.Parameters<[A]>
): Promise<void> => {
  let last = Date.now()
  await fc.assert(
    fc.asyncProperty(arbitrary, async (a) => {
      predicate(a)
      if (Date.now() - last > 100) {
        await new Promise((resolve) => setImmediate(resolve))
        last = Date.now()
      }
    }),
    parameters
  )
}
