/**
 * The colours of a Worker's load, as the live view and the simulator's report draw them:
 * four bands relative to the placement watermark (under half of it, under it, under 100 %,
 * overloaded).
 *
 * @module
 */

/** The bands' colours, from the lightest load up. */
export const LOAD_COLOURS = ["#c7e9c0", "#fdbb84", "#e34a33", "#7f0000"] as const

export interface LoadBand {
  /** The band holds loads under this CPU % (the last one: everything else). */
  readonly below: number
  readonly colour: string
  readonly label: string
}

const pct = (n: number) => String(Math.round(n * 10) / 10)

/** The bands for a watermark (CPU %), from the lightest load up. */
export const loadBands = (watermark: number): ReadonlyArray<LoadBand> => [
  {
    below: watermark / 2,
    colour: LOAD_COLOURS[0],
    label: `under ${pct(watermark / 2)} % (half the watermark)`
  },
  {
    below: watermark,
    colour: LOAD_COLOURS[1],
    label: `${pct(watermark / 2)}–${pct(watermark)} % (under the watermark)`
  },
  { below: 100, colour: LOAD_COLOURS[2], label: `${pct(watermark)}–100 % (at or over the watermark)` },
  { below: Number.POSITIVE_INFINITY, colour: LOAD_COLOURS[3], label: "100 % or more (overloaded)" }
]

/** The colour of a load. */
export const loadColour = (load: number, watermark: number): string =>
  (loadBands(watermark).find((b) => load < b.below) ?? { colour: LOAD_COLOURS[3] }).colour
