/**
 * The cluster services of one Node, over its `WorkerService` and `TrackerService`: the
 * snapshot store, the locks, the notices, placement, scale-down, and the Node's own
 * announcement and watchers (`LocalNode`).
 *
 * @module
 */
import { type Duration, Layer } from "effect"
import type { PolicyOptions } from "../core/PolicyOptions.js"
import type { ClusterLocks } from "../services/ClusterLocks.js"
import type { ClusterNotices } from "../services/ClusterNotices.js"
import type { Placement } from "../services/Placement.js"
import type { ScaleDown } from "../services/ScaleDown.js"
import type { SnapshotStore } from "../services/SnapshotStore.js"
import type { TrackerService } from "../services/TrackerService.js"
import type { WorkerService } from "../services/WorkerService.js"
import * as ClusterLocksLayer from "./ClusterLocks.js"
import * as ClusterNoticesLayer from "./ClusterNotices.js"
import * as LocalNodeLayer from "./LocalNode.js"
import * as PlacementLayer from "./Placement.js"
import * as ScaleDownLayer from "./ScaleDown.js"
import * as SnapshotStoreLayer from "./SnapshotStore.js"

export interface ClusterOptions {
  readonly policy: PolicyOptions
  /** How often idle things are looked for (default: a quarter of the grace period, 250 ms to 10 s). */
  readonly scaleDownInterval?: Duration.DurationInput | undefined
}

/** The services a Node's shell is made of. */
export type ClusterServices = SnapshotStore | ClusterLocks | ClusterNotices | Placement | ScaleDown

export const layer = (
  options: ClusterOptions
): Layer.Layer<ClusterServices, never, WorkerService | TrackerService> => {
  const state = Layer.mergeAll(
    SnapshotStoreLayer.layer(options.policy.costs),
    ClusterLocksLayer.layer,
    ClusterNoticesLayer.layer
  )
  const shell = Layer.mergeAll(
    LocalNodeLayer.layer,
    PlacementLayer.layer(options.policy),
    ScaleDownLayer.layer({ policy: options.policy, interval: options.scaleDownInterval })
  )
  return shell.pipe(Layer.provideMerge(state))
}
