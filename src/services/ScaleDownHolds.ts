/**
 * `ScaleDownHolds`: what the shell uses although the snapshot does not say so, and scale-down
 * must therefore leave alone:
 *  - a pipe of a producer into a Router while an RTP observer there observes the producer,
 *    or while a `consume()` of it there is under way (from the moment it decides the Router
 *    receives the producer until the consumer is recorded);
 *  - a Worker that an application object stands for (a Worker of `mafalda/mediasoup`, the
 *    home of a WebRtcServer);
 *  - a Router that feeds a pipe another Node leases (cluster mode: another app's media may
 *    flow through it although this instance let go of everything it had there), and the
 *    pipe into it that carries the producer.
 *
 * A hold is counted: each `hold` returns its own release (idempotent). `ScaleDown` asks
 * `isHeld` for every action, in the same synchronous step in which it records the action.
 *
 * Layer: `layer` in `src/layers/ScaleDownHolds.ts`.
 *
 * @module
 */
import { Context } from "effect"
import type { ProducerId, RouterId, WorkerId } from "../core/Ids.js"
import type { ScaleDownAction } from "../core/scaleDown.js"

export interface ScaleDownHoldsShape {
  /** Holds the pipe of `producer` into `router` (whether it exists yet or not). */
  readonly holdPipe: (producer: ProducerId, router: RouterId) => () => void
  /** Holds a Worker. */
  readonly holdWorker: (worker: WorkerId) => () => void
  /** Holds a Router. */
  readonly holdRouter: (router: RouterId) => () => void
  /** Whether a scale-down action would close something held. */
  readonly isHeld: (action: ScaleDownAction) => boolean
}

export class ScaleDownHolds extends Context.Tag("mafalda/ScaleDownHolds")<
  ScaleDownHolds,
  ScaleDownHoldsShape
>() {}
