/**
 * The costs (CPU % of one Worker) that tests working figures out by hand were written with:
 * the defaults before the calibration of 2026-12-06. Tests pin them so that their arithmetic
 * does not move with the default costs: transport 0.1; audio producer 0.32, consumer 0.043,
 * pipe end 0.18; video 0.7, 0.108, 0.4.
 */
export const handCosts = {
  transport: 0.1,
  audio: { producer: 0.32, consumer: 0.043, pipe: 0.18 },
  video: { producer: 0.7, consumer: 0.108, pipe: 0.4 }
} as const
