/**
 * Identifiers of the things a cluster snapshot talks about. Each is a branded string so
 * that a Worker id can never be passed where a Router id is expected.
 */
import { Schema } from "effect"

/** A Mafalda Node: one machine (or one process) running mediasoup Workers. */
export const NodeId = Schema.String.pipe(Schema.brand("NodeId"))
export type NodeId = typeof NodeId.Type

/** A mediasoup Worker (one C++ process, one CPU). */
export const WorkerId = Schema.String.pipe(Schema.brand("WorkerId"))
export type WorkerId = typeof WorkerId.Type

/** A mediasoup Router living on one Worker. */
export const RouterId = Schema.String.pipe(Schema.brand("RouterId"))
export type RouterId = typeof RouterId.Type

/** A Mafalda Router: the one Router object an application sees. */
export const MafaldaRouterId = Schema.String.pipe(Schema.brand("MafaldaRouterId"))
export type MafaldaRouterId = typeof MafaldaRouterId.Type

export const TransportId = Schema.String.pipe(Schema.brand("TransportId"))
export type TransportId = typeof TransportId.Type

export const ProducerId = Schema.String.pipe(Schema.brand("ProducerId"))
export type ProducerId = typeof ProducerId.Type

export const ConsumerId = Schema.String.pipe(Schema.brand("ConsumerId"))
export type ConsumerId = typeof ConsumerId.Type

/** An RTP observer (active speaker or audio level) on a Router. */
export const RtpObserverId = Schema.String.pipe(Schema.brand("RtpObserverId"))
export type RtpObserverId = typeof RtpObserverId.Type

/**
 * A stable key for a set of settings (Worker settings, or Router options). Two Workers
 * with the same key are interchangeable; so are two Routers.
 */
export const SettingsKey = Schema.String.pipe(Schema.brand("SettingsKey"))
export type SettingsKey = typeof SettingsKey.Type
