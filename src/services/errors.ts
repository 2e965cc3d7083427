/**
 * The errors of the cluster services. They are `Schema.TaggedError`s: plain data that can
 * cross a process boundary (an RPC to another Mafalda Node) and be decoded on the other side.
 *
 * @module
 */
import { Schema } from "effect"

/** No Worker has room for the transport, and no CPU is left to start one. */
export class NoCapacityError extends Schema.TaggedError<NoCapacityError>()("NoCapacityError", {
  message: Schema.String
}) {}

/** The producer is unknown, or no live Router carries it any more. */
export class ProducerNotFoundError extends Schema.TaggedError<ProducerNotFoundError>()(
  "ProducerNotFoundError",
  { producer: Schema.String, message: Schema.String }
) {}

/** The Mafalda Router is unknown (closed). */
export class MafaldaRouterClosedError extends Schema.TaggedError<MafaldaRouterClosedError>()(
  "MafaldaRouterClosedError",
  { mafaldaRouter: Schema.String, message: Schema.String }
) {}

/**
 * The `operation` of a `WorkerServiceError` saying that another Node no longer has the Router
 * an object was to be made on (it let go of it: the app's connection to it dropped, say).
 * `Placement` records the Router closed and places again.
 */
export const routerGoneOperation = "createTransport (the Router is gone)"

/** A Worker or Router operation failed. */
export class WorkerServiceError extends Schema.TaggedError<WorkerServiceError>()("WorkerServiceError", {
  operation: Schema.String,
  message: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {}
