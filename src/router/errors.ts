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

/** What Mafalda does not do (mediasoup throws `UnsupportedError` for these). */
export class UnsupportedCallError extends Data.TaggedError("UnsupportedCallError")<{
  readonly message: string
}> {}

/** Invalid Mafalda options. */
export class InvalidOptionsError extends Data.TaggedError("InvalidOptionsError")<{
  readonly message: string
  readonly issues: ReadonlyArray<{ readonly path: string; readonly message: string }>
}> {}

export type MafaldaRouterError =
  | MediasoupCallError
  | InvalidArgumentError
  | ClosedError
  | UnsupportedCallError
  | NoCapacityError
  | ProducerNotFoundError
  | MafaldaRouterClosedError
  | WorkerServiceError
  | InvalidEvent

/** mediasoup's own error kinds (and its plain `Error`): these pass through unchanged. */
const isMediasoupKind = (error: unknown): error is Error =>
  error instanceof Error &&
  (error.constructor === TypeError ||
    error.constructor === Error ||
    error.constructor === types.InvalidStateError ||
    error.constructor === types.UnsupportedError)

/** A plain `Error` (the kind mediasoup uses for failures that are not the caller's fault). */
const plainError = (message: string, cause: unknown): Error => new Error(message, { cause })

/**
 * The error mediasoup would throw for the same situation: `TypeError` for bad arguments,
 * `InvalidStateError` for closed objects, `UnsupportedError`, or a plain `Error` naming the
 * problem (the typed error is its `cause`). Nothing else leaves the Promise API.
 */
export const toMediasoupError = (error: MafaldaRouterError | InvalidOptionsError): Error => {
  switch (error._tag) {
    case "MediasoupCallError":
      return isMediasoupKind(error.cause)
        ? error.cause
        : plainError(error.cause instanceof Error ? error.cause.message : String(error.cause), error.cause)
    case "InvalidArgumentError":
    case "InvalidOptionsError":
      return new TypeError(error.message)
    case "ClosedError":
    case "MafaldaRouterClosedError":
      return new types.InvalidStateError(error.message)
    case "UnsupportedCallError":
      return new types.UnsupportedError(error.message)
    case "ProducerNotFoundError":
      return plainError(error.message, error)
    case "NoCapacityError":
      return plainError(`no capacity left: ${error.message}`, error)
    case "WorkerServiceError":
      // A Worker that would not start with its settings (mediasoup's TypeError), say.
      return isMediasoupKind(error.cause) && error.cause.constructor !== Error
        ? error.cause
        : plainError(`${error.operation} failed: ${error.message}`, error)
    case "InvalidEvent":
      return plainError(`inconsistent cluster state: ${error.message}`, error)
  }
}
