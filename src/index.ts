/**
 * mafalda: scale mediasoup past one CPU core and one machine.
 *
 * - `createMafalda(options)` (Promise API) or the `Mafalda` service and its layers (Effect API)
 *   give one Router object per room over many real mediasoup Workers.
 * - `Core` is the functional core: pure placement, stream-tree, pipe and scale-down decisions.
 * - Subpaths: `mafalda/core` (the core alone), `mafalda/ops` (logs, metrics, live view),
 *   `mafalda/rtp` (RTP packets over UDP, for demos and tests), `mafalda/demo` (the broadcast demo).
 */
export * as Core from "./core/index.js"
export * as ClusterLayer from "./layers/Cluster.js"
export * as IndexLayer from "./layers/IndexService.js"
export * as MafaldaLayer from "./layers/Mafalda.js"
export * as TrackerLayer from "./layers/TrackerService.js"
export { layerMediasoup, layerSimulated, SimulatedWorkers } from "./layers/WorkerService.js"
export {
  type CreateMafaldaOptions,
  createMafalda,
  type MafaldaIndex,
  type MafaldaInstance
} from "./promise.js"
export * from "./router/errors.js"
export { MafaldaOptions, type MafaldaOptionsInput, resolveMafaldaOptions } from "./router/MafaldaOptions.js"
export {
  ClusterPipe,
  type ClusterPipeEvents,
  MafaldaRouter,
  type MafaldaRouterOptions,
  type PipeFromClusterOptions
} from "./router/MafaldaRouter.js"
export type { ClusterStatus } from "./router/status.js"
export * from "./services/ClusterLocks.js"
export * from "./services/ClusterNotices.js"
export * from "./services/errors.js"
export * from "./services/IndexService.js"
export * from "./services/LocalMediasoup.js"
export * from "./services/Mafalda.js"
export * from "./services/Placement.js"
export * from "./services/ScaleDown.js"
export * from "./services/SettingsKeys.js"
export * from "./services/SnapshotStore.js"
export * from "./services/TrackerService.js"
export * from "./services/WorkerService.js"
