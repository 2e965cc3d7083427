/**
 * The functional core: pure placement, stream-tree, pipe and scale-down decisions over an
 * immutable cluster snapshot. No I/O, no clock, no randomness, no mediasoup.
 */
export * from "./applyEvent.js"
export * from "./ClusterEvent.js"
export * from "./consumerPlacement.js"
export * from "./Ids.js"
export * from "./interpret.js"
export * from "./PolicyOptions.js"
export * from "./pipeToRouter.js"
export * from "./relocation.js"
export * from "./Snapshot.js"
export * from "./scaleDown.js"
export * from "./transportPlacement.js"
