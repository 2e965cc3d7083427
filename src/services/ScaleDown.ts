/**
 * `ScaleDown`: closes what nothing uses (pipes nobody consumes, empty Routers, idle
 * Workers) once idle for the grace period, as the core's `decideScaleDown` says, on an
 * interval; each action re-checked (`isScaleDownDue`) under `ClusterLocks` just before it
 * is carried out. What it closed is published as a `ClusterNotices` notice.
 *
 * Layer: `layer` in `src/layers/ScaleDown.ts`.
 *
 * @module
 */
import { Context, type Effect } from "effect"
import type { ScaleDownAction } from "../core/scaleDown.js"

export interface ScaleDownShape {
  /** Closes what has been idle for the grace period, once; returns what it closed. */
  readonly run: Effect.Effect<ReadonlyArray<ScaleDownAction>>
}

export class ScaleDown extends Context.Tag("mafalda/ScaleDown")<ScaleDown, ScaleDownShape>() {}
