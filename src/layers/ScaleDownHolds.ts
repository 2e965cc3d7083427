/**
 * `ScaleDownHolds` in memory: a count per held pipe, Worker and Router.
 *
 * @module
 */
import { Layer } from "effect"
import { ScaleDownHolds, type ScaleDownHoldsShape } from "../services/ScaleDownHolds.js"

const pipeKey = (producer: string, router: string): string => `${producer}\u0000${router}`

/** A counted set of keys: `add` returns the release of that one hold. */
const countedKeys = () => {
  const counts = new Map<string, number>()
  return {
    has: (key: string): boolean => counts.has(key),
    add: (key: string): (() => void) => {
      counts.set(key, (counts.get(key) ?? 0) + 1)
      let released = false
      return () => {
        if (released) return
        released = true
        const n = (counts.get(key) ?? 1) - 1
        if (n <= 0) counts.delete(key)
        else counts.set(key, n)
      }
    }
  }
}

export const make = (): ScaleDownHoldsShape => {
  const pipes = countedKeys()
  const workers = countedKeys()
  const routers = countedKeys()
  return {
    holdPipe: (producer, router) => pipes.add(pipeKey(producer, router)),
    holdWorker: (worker) => workers.add(worker),
    holdRouter: (router) => routers.add(router),
    isHeld: (action) => {
      switch (action._tag) {
        case "ClosePipe":
          return pipes.has(pipeKey(action.producer, action.router))
        case "CloseWorker":
          return workers.has(action.worker)
        case "CloseRouter":
          return routers.has(action.router)
      }
    }
  }
}

export const layer: Layer.Layer<ScaleDownHolds> = Layer.sync(ScaleDownHolds, make)
