/**
 * A binary min-heap of scheduled simulator events, ordered by time then insertion order,
 * so that events at the same millisecond run in the order they were scheduled
 * (determinism).
 */
export interface Scheduled<T> {
  readonly at: number
  readonly seq: number
  readonly item: T
}

export class EventHeap<T> {
  private readonly items: Array<Scheduled<T>> = []
  private seq = 0

  get size(): number {
    return this.items.length
  }

  push(at: number, item: T): void {
    const entry: Scheduled<T> = { at, seq: this.seq++, item }
    const a = this.items
    a.push(entry)
    let i = a.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      const p = a[parent]!
      if (p.at < at || (p.at === at && p.seq < entry.seq)) break
      a[i] = p
      i = parent
    }
    a[i] = entry
  }

  peekTime(): number {
    return this.items[0]?.at ?? Number.POSITIVE_INFINITY
  }

  pop(): Scheduled<T> | undefined {
    const a = this.items
    const top = a[0]
    if (top === undefined) return undefined
    const last = a.pop()!
    if (a.length === 0) return top
    let i = 0
    const n = a.length
    for (;;) {
      const l = 2 * i + 1
      if (l >= n) break
      const r = l + 1
      let c = l
      const cl = a[l]!
      if (r < n) {
        const cr = a[r]!
        if (cr.at < cl.at || (cr.at === cl.at && cr.seq < cl.seq)) c = r
      }
      const child = a[c]!
      if (last.at < child.at || (last.at === child.at && last.seq < child.seq)) break
      a[i] = child
      i = c
    }
    a[i] = last
    return top
  }
}
