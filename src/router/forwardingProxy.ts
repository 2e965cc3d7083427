/**
 * A wrapper that forwards everything to a mediasoup object except a few methods.
 *
 * mediasoup classes keep their state in `#private` fields, which only work with the real
 * object as `this`; so forwarded methods are bound to the target (once, then cached), and
 * property reads and writes (`appData`, say) go to the target too. `instanceof` still
 * holds, since the prototype is the target's.
 *
 * @module
 */

export const forwardingProxy = <T extends object>(
  target: T,
  overrides: Partial<Record<keyof T, unknown>>
): T => {
  const bound = new Map<PropertyKey, unknown>()
  return new Proxy(target, {
    get(t, property) {
      if (Object.hasOwn(overrides, property)) return overrides[property as keyof T]
      const value: unknown = Reflect.get(t, property, t)
      if (typeof value !== "function") return value
      let fn = bound.get(property)
      if (fn === undefined) {
        fn = (value as (...args: Array<unknown>) => unknown).bind(t)
        bound.set(property, fn)
      }
      return fn
    },
    set(t, property, value) {
      return Reflect.set(t, property, value, t)
    }
  })
}
