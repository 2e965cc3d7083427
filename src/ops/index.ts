/**
 * For operators (`mafalda/ops`): logs, metrics and the live view.
 *
 * - `Logging.layer({ level, format })`: the logger (levels, structured, JSON when asked;
 *   `MAFALDA_LOG_LEVEL` and `MAFALDA_LOG_FORMAT` win over the options);
 * - `Metrics`: the `effect/Metric`s Mafalda keeps, and their Prometheus text (`scrape`);
 * - `OpsServerLayer.layer({ port, host })` and the `OpsServer` service: the live view, with
 *   `/status`, `/events` and `/metrics`, over HTTP on the loopback interface by default;
 * - `Observe`: the log-and-count calls the shell makes (for other backends of the services).
 *
 * @module
 */
export * as OpsServerLayer from "../layers/OpsServer.js"
export { OpsServer, OpsServerError, type OpsServerShape } from "../services/OpsServer.js"
export * as Logging from "./logging.js"
export * as Metrics from "./metrics.js"
export * as Observe from "./observe.js"
export { livePage } from "./page.js"
export { type OpsStatus, type OpsTreeStatus, opsStatus, type RoomStatus } from "./status.js"
