/**
 * The typed errors of the Mafalda Router's Effect API, and their translation to the kinds
 * of error mediasoup throws (`TypeError`, `InvalidStateError`, `UnsupportedError`, `Error`)
 * for the Promise API.
 *
 * @module
 */
import { Data } from "effect"
import { types } from "mediasoup"
import type { InvalidEvent } from "../core/applyEvent.js"
import type {
  MafaldaRouterClosedError,
  NoCapacityError,
  ProducerNotFoundError,
  WorkerServiceError
} from "../services/errors.js"

/** A mediasoup call threw or rejected; `cause` is mediasoup's own error. */
export class MediasoupCallError extends Data.TaggedError("MediasoupCallError")<{
  readonly operation: string
  readonly cause: unknown
}> {
  override get message(): string {
    return this.cause instanceof Error ? this.cause.message : String(this.cause)
  }
}

/** Bad arguments (mediasoup throws `TypeError` for these). */
export class InvalidArgumentError extends Data.TaggedError("InvalidArgumentError")<{
  readonly message: string
}> {}

/** The Mafalda Router (or Mafalda) is closed (mediasoup throws `InvalidStateError`). */
export class ClosedError extends Data.TaggedError("ClosedError")<{ readonly message: string }> {}

/** Invalid Mafalda options. */
export class InvalidOptionsError extends Data.TaggedError("InvalidOptionsError")<{
  readonly message: string
  readonly issues: ReadonlyArray<{ readonly path: string; readonly message: string }>
}> {}

export type MafaldaRouterError =
  | MediasoupCallError
  | InvalidArgumentError
  | ClosedError
  | NoCapacityError
  | ProducerNotFoundError
  | MafaldaRouterClosedError
  | WorkerServiceError
  | InvalidEvent

/** The error mediasoup would throw for the same situation. */
export const toMediasoupError = (error: MafaldaRouterError | InvalidOptionsError): Error => {
  switch (error._tag) {
    case "MediasoupCallError":
      return error.cause instanceof Error ? error.cause : new Error(String(error.cause))
    case "InvalidArgumentError":
    case "InvalidOptionsError":
      return new TypeError(error.message)
    case "ClosedError":
    case "MafaldaRouterClosedError":
      return new types.InvalidStateError(error.message)
    case "ProducerNotFoundError":
      return new Error(error.message)
    case "NoCapacityError":
    case "WorkerServiceError":
    case "InvalidEvent":
      return Object.assign(new Error(error.message), { name: error._tag })
  }
}
