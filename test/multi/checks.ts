/**
 * Waiting and leak checks of the multi-process tests that need no shared Redis (a test that
 * runs its own `redis-server` uses them too): waiting for a condition, whether a TCP port
 * refuses connections, and the keys of a prefix on a given Redis.
 */
import * as net from "node:net"
import { Effect } from "effect"
import { createClient } from "redis"

/** Waits until `check` holds (every `everyMillis`), up to `millis`; whether it did. */
export const until = (check: () => boolean | Promise<boolean>, millis: number, everyMillis = 25) =>
  Effect.gen(function* () {
    const deadline = Date.now() + millis
    while (!(yield* Effect.promise(async () => check()))) {
      if (Date.now() > deadline) return false
      yield* Effect.sleep(everyMillis)
    }
    return true
  })

/** Whether a TCP connection to `port` on `host` is refused. */
export const refusedAt = (host: string, port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = net.connect(port, host)
    socket.once("connect", () => {
      socket.destroy()
      resolve(false)
    })
    socket.once("error", () => resolve(true))
  })

/** The keys of `prefix` on the Redis at `url` (SCAN, not KEYS). */
export const keysAt = async (url: string, prefix: string): Promise<Array<string>> => {
  const client = createClient({ url, socket: { connectTimeout: 1000, reconnectStrategy: false } })
  client.on("error", () => {})
  await client.connect()
  try {
    const found: Array<string> = []
    for await (const batch of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
      found.push(...(batch as Array<string>))
    }
    return found
  } finally {
    await client.close()
  }
}
