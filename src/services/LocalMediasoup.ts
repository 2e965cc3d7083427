/**
 * `LocalMediasoup`: the mediasoup objects behind the ids of this process' Workers. Only the
 * real mediasoup layer (`layerMediasoup`) provides it; `WorkerService` itself deals in data
 * only, so that Workers of another process or machine can stand behind it.
 *
 * @module
 */
import { Context } from "effect"
import type { types } from "mediasoup"
import type { ProducerId, RouterId, WorkerId } from "../core/Ids.js"

export interface LocalMediasoupShape {
  readonly worker: (id: WorkerId) => types.Worker | undefined
  readonly router: (id: RouterId) => types.Router | undefined
  /** The pipe consumer (on `from`) and pipe producer (on `to`) of a pipe made by `WorkerService.pipe`. */
  readonly pipe: (
    producer: ProducerId,
    to: RouterId
  ) => { readonly consumer: types.Consumer; readonly producer: types.Producer } | undefined
}

export class LocalMediasoup extends Context.Tag("mafalda/LocalMediasoup")<
  LocalMediasoup,
  LocalMediasoupShape
>() {}
