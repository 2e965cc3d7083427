/**
 * This process as a Node of the cluster: it announces itself in the `SnapshotStore`
 * (`NodeUp`) and keeps the snapshot in step with what happens to its Workers on their own:
 * loads sampled by the `TrackerService`, Worker deaths and pipe closes from `WorkerService`
 * (a death is also published to `ClusterNotices`, with the Mafalda Routers it hit).
 *
 * @module
 */
import { Effect, Layer, Stream } from "effect"
import { mafaldaRoutersOnWorkers } from "../core/Snapshot.js"
import * as Observe from "../ops/observe.js"
import { ClusterNotice, ClusterNotices } from "../services/ClusterNotices.js"
import { SnapshotStore } from "../services/SnapshotStore.js"
import { TrackerService } from "../services/TrackerService.js"
import { WorkerService } from "../services/WorkerService.js"

/** Where other Nodes and clients reach this Node (informative for now). */
const LOCAL_ADDRESS = "127.0.0.1"

export const layer: Layer.Layer<
  never,
  never,
  WorkerService | TrackerService | SnapshotStore | ClusterNotices
> = Layer.scopedDiscard(
  Effect.gen(function* () {
    const workers = yield* WorkerService
    const tracker = yield* TrackerService
    const store = yield* SnapshotStore
    const notices = yield* ClusterNotices
    const at = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
    yield* store
      .apply({
        _tag: "NodeUp",
        node: workers.node,
        cpus: workers.cpus,
        ...(workers.maxProcesses === undefined ? {} : { maxWorkerProcesses: workers.maxProcesses }),
        address: LOCAL_ADDRESS,
        at
      })
      .pipe(Effect.orDie)

    // Subscribe now (not when the fibers start), so nothing published from here on is missed.
    const loads = yield* tracker.subscribe
    const workerNotices = yield* workers.subscribe
    yield* Stream.fromQueue(loads).pipe(
      Stream.runForEach((report) => store.record(report)),
      Effect.interruptible,
      Effect.forkScoped
    )
    yield* Stream.fromQueue(workerNotices).pipe(
      Stream.runForEach((notice) =>
        Effect.gen(function* () {
          if (notice._tag === "PipeClosed") {
            yield* store.record({
              _tag: "PipeClosed",
              producer: notice.producer,
              to: notice.to,
              at: notice.at
            })
            yield* Observe.pipeClosed(notice.producer, notice.to)
            return
          }
          const mafaldaRouters = mafaldaRoutersOnWorkers(store.current(), [notice.worker])
          yield* store.record({ _tag: "WorkerDied", worker: notice.worker, at: notice.at })
          yield* notices.publish(
            ClusterNotice.WorkerLost({ worker: notice.worker, reason: notice.reason, mafaldaRouters })
          )
        })
      ),
      Effect.interruptible,
      Effect.forkScoped
    )
  })
)
