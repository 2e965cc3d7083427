/**
 * An independent model of which cluster events fit a snapshot, written from the events'
 * documentation (`src/core/ClusterEvent.ts`) over the snapshot's plain data, not from
 * `applyEvent`. The raw-events property holds the core to it both ways: an event the model
 * finds valid must be accepted, one it finds invalid must be refused with an `InvalidEvent`.
 */
import { HashMap } from "effect"
import {
  type ClusterEvent,
  type ClusterSnapshot,
  lookup,
  type MafaldaRouterId,
  type ProducerId,
  type RouterId
} from "../../src/core/index.js"
import { contains } from "./helpers.js"

/** Why the event does not fit the snapshot: every reason found, none when it is valid. */
export const invalidReasons = (s: ClusterSnapshot, e: ClusterEvent): Array<string> => {
  const out: Array<string> = []
  const known = <K, V>(map: HashMap.HashMap<K, V>, id: K, what: string) => {
    if (!HashMap.has(map, id)) out.push(`unknown ${what} ${String(id)}`)
  }
  const fresh = <K, V>(map: HashMap.HashMap<K, V>, id: K, what: string) => {
    if (HashMap.has(map, id)) out.push(`${what} ${String(id)} exists already`)
  }
  /** A Mafalda Router may use a Router it uses already, or one whose Router and Worker settings are its own. */
  const usable = (m: MafaldaRouterId, r: RouterId) => {
    const mafaldaRouter = lookup(s.mafaldaRouters, m)
    const router = lookup(s.routers, r)
    if (mafaldaRouter === undefined || router === undefined) return
    if (contains(mafaldaRouter.routers, r)) return
    const worker = lookup(s.workers, router.worker)
    if (router.settings !== mafaldaRouter.routerSettings || worker?.settings !== mafaldaRouter.workerSettings)
      out.push(`Router ${r} has other settings than Mafalda Router ${m}`)
  }
  /** The Routers that receive a producer: its origin and every Router piped to. */
  const receives = (producer: ProducerId, r: RouterId) => {
    const tree = lookup(s.trees, producer)
    return tree !== undefined && HashMap.has(tree, r)
  }
  switch (e._tag) {
    case "NodeUp":
      // A Node announces itself, or announces itself again (back up, or with other CPUs).
      break
    case "NodeDraining":
    case "NodeDown":
    case "NodeLeft":
      known(s.nodes, e.node, "Node")
      break
    case "WorkerStarted": {
      known(s.nodes, e.node, "Node")
      fresh(s.workers, e.worker, "Worker")
      if (lookup(s.nodes, e.node)?.state === "down") out.push(`Node ${e.node} is down`)
      break
    }
    case "WorkerDied":
    case "WorkerClosed":
    case "LoadReported":
      known(s.workers, e.worker, "Worker")
      break
    case "RouterCreated": {
      known(s.workers, e.worker, "Worker")
      fresh(s.routers, e.router, "Router")
      // One Router per Worker and set of Router settings.
      for (const r of HashMap.values(s.routers))
        if (r.worker === e.worker && r.settings === e.settings)
          out.push(`Worker ${e.worker} has Router ${r.id} with these settings`)
      break
    }
    case "RouterClosed":
      known(s.routers, e.router, "Router")
      break
    case "MafaldaRouterCreated":
      fresh(s.mafaldaRouters, e.mafaldaRouter, "Mafalda Router")
      break
    case "MafaldaRouterClosed":
      known(s.mafaldaRouters, e.mafaldaRouter, "Mafalda Router")
      break
    case "RouterRegistered":
      known(s.mafaldaRouters, e.mafaldaRouter, "Mafalda Router")
      known(s.routers, e.router, "Router")
      usable(e.mafaldaRouter, e.router)
      break
    case "TransportCreated":
      fresh(s.transports, e.transport, "Transport")
      known(s.mafaldaRouters, e.mafaldaRouter, "Mafalda Router")
      known(s.routers, e.router, "Router")
      usable(e.mafaldaRouter, e.router)
      break
    case "TransportClosed":
      known(s.transports, e.transport, "Transport")
      break
    case "ProducerCreated":
      known(s.transports, e.transport, "Transport")
      fresh(s.producers, e.producer, "Producer")
      break
    case "ProducerClosed":
      known(s.producers, e.producer, "Producer")
      break
    case "ConsumerCreated": {
      known(s.transports, e.transport, "Transport")
      fresh(s.consumers, e.consumer, "Consumer")
      known(s.producers, e.producer, "Producer")
      const t = lookup(s.transports, e.transport)
      if (t !== undefined && HashMap.has(s.producers, e.producer) && !receives(e.producer, t.router))
        out.push(`Router ${t.router} does not receive Producer ${e.producer}`)
      break
    }
    case "ConsumerClosed":
      known(s.consumers, e.consumer, "Consumer")
      break
    case "PipeCreated":
      known(s.producers, e.producer, "Producer")
      known(s.routers, e.to, "Router")
      if (HashMap.has(s.producers, e.producer)) {
        if (!receives(e.producer, e.from))
          out.push(`Router ${e.from} does not receive Producer ${e.producer}`)
        if (receives(e.producer, e.to)) out.push(`Router ${e.to} already receives Producer ${e.producer}`)
      }
      break
    case "PipeClosed": {
      // A pipe into `to`: `to` receives the producer and is not where it was made.
      const p = lookup(s.producers, e.producer)
      if (p === undefined || !receives(e.producer, e.to) || p.origin === e.to)
        out.push(`no pipe of Producer ${e.producer} into Router ${e.to}`)
      break
    }
    case "RtpObserverCreated":
      known(s.routers, e.router, "Router")
      break
    case "RtpObserverClosed": {
      const r = lookup(s.routers, e.router)
      if (r === undefined || !contains(r.observers, e.observer))
        out.push(`no RTP observer ${e.observer} on Router ${e.router}`)
      break
    }
  }
  return out
}

/**
 * What a valid event must have done, checked on the snapshot after it: the thing made is
 * there, the thing closed is gone. Returns what is wrong.
 */
export const postconditionViolations = (after: ClusterSnapshot, e: ClusterEvent): Array<string> => {
  const there = <K, V>(map: HashMap.HashMap<K, V>, id: K, yes: boolean) =>
    HashMap.has(map, id) === yes ? [] : [`${e._tag}: ${String(id)} ${yes ? "missing" : "still there"}`]
  switch (e._tag) {
    case "NodeUp":
      return lookup(after.nodes, e.node)?.state === "up" ? [] : [`NodeUp: ${e.node} not up`]
    case "NodeDraining":
      return lookup(after.nodes, e.node)?.state === "draining" ? [] : [`NodeDraining: ${e.node} not draining`]
    case "NodeDown": {
      const n = lookup(after.nodes, e.node)
      return n?.state === "down" && n.workers.length === 0 ? [] : [`NodeDown: ${e.node} not down and empty`]
    }
    case "NodeLeft":
      return there(after.nodes, e.node, false)
    case "WorkerStarted":
      return there(after.workers, e.worker, true)
    case "WorkerDied":
    case "WorkerClosed":
      return there(after.workers, e.worker, false)
    case "LoadReported":
      return there(after.workers, e.worker, true)
    case "RouterCreated":
      return there(after.routers, e.router, true)
    case "RouterClosed":
      return there(after.routers, e.router, false)
    case "MafaldaRouterCreated":
      return there(after.mafaldaRouters, e.mafaldaRouter, true)
    case "MafaldaRouterClosed":
      return there(after.mafaldaRouters, e.mafaldaRouter, false)
    case "RouterRegistered":
      return contains(lookup(after.mafaldaRouters, e.mafaldaRouter)?.routers ?? [], e.router)
        ? []
        : [`RouterRegistered: ${e.mafaldaRouter} does not use ${e.router}`]
    case "TransportCreated":
      return there(after.transports, e.transport, true)
    case "TransportClosed":
      return there(after.transports, e.transport, false)
    case "ProducerCreated":
      return there(after.producers, e.producer, true)
    case "ProducerClosed":
      return [...there(after.producers, e.producer, false), ...there(after.trees, e.producer, false)]
    case "ConsumerCreated":
      return there(after.consumers, e.consumer, true)
    case "ConsumerClosed":
      return there(after.consumers, e.consumer, false)
    case "PipeCreated": {
      const hop = lookup(lookup(after.trees, e.producer) ?? HashMap.empty(), e.to)
      return hop?.parent === e.from ? [] : [`PipeCreated: ${e.to} not piped from ${e.from}`]
    }
    case "PipeClosed":
      return there(lookup(after.trees, e.producer) ?? HashMap.empty<RouterId, unknown>(), e.to, false)
    case "RtpObserverCreated":
      return contains(lookup(after.routers, e.router)?.observers ?? [], e.observer)
        ? []
        : [`RtpObserverCreated: ${e.observer} not on ${e.router}`]
    case "RtpObserverClosed":
      return contains(lookup(after.routers, e.router)?.observers ?? [], e.observer)
        ? [`RtpObserverClosed: ${e.observer} still on ${e.router}`]
        : []
  }
}
