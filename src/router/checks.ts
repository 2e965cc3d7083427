/**
 * The argument checks mediasoup's `Router` methods make, made before anything is placed (so
 * a bad call starts no Worker), with the `TypeError` messages mediasoup uses.
 *
 * @module
 */

type Options = Record<string, unknown>

const isObject = (value: unknown): value is Options => typeof value === "object" && value !== null

/** `appData`, when given, must be an object (mediasoup lets arrays through, and so do we). */
export const badAppData = (appData: unknown): string | undefined =>
  appData && typeof appData !== "object" ? "if given, appData must be an object" : undefined

/**
 * The room size hint of `createRouter` (`expectedParticipants`, `expectedPublishers`), checked
 * as mediasoup checks numeric options: integers, participants at least 1, publishers at least 0
 * and at most the participants (and only with them).
 */
export const badRoomHint = (options: {
  readonly expectedParticipants?: unknown
  readonly expectedPublishers?: unknown
}): string | undefined => {
  const { expectedParticipants: participants, expectedPublishers: publishers } = options
  const isInt = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v)
  if (participants !== undefined && (!isInt(participants) || participants < 1)) {
    return "if given, expectedParticipants must be a positive integer"
  }
  if (publishers === undefined) return undefined
  if (!isInt(publishers) || publishers < 0)
    return "if given, expectedPublishers must be a non-negative integer"
  if (participants === undefined) return "expectedPublishers requires expectedParticipants"
  return publishers > participants ? "expectedPublishers must not exceed expectedParticipants" : undefined
}

const first = (...checks: ReadonlyArray<() => string | undefined>): string | undefined => {
  for (const check of checks) {
    const bad = check()
    if (bad !== undefined) return bad
  }
  return undefined
}

const optionsObject = (options: unknown): string | undefined =>
  isObject(options) ? undefined : "options must be an object"

const listenOne = (o: Options): string | undefined => {
  if (!o.listenInfo && !o.listenIp) return "missing listenInfo and listenIp (one of them is mandatory)"
  if (o.listenInfo && o.listenIp) return "only one of listenInfo and listenIp must be given"
  return undefined
}

const sctpStreams = (o: Options): string | undefined => {
  const n = o.numSctpStreams as { OS?: unknown; MIS?: unknown } | undefined
  return n && (typeof n.OS !== "number" || typeof n.MIS !== "number")
    ? "if given, numSctpStreams must contain OS and MIS"
    : undefined
}

export const checkWebRtcTransportOptions = (options: unknown): string | undefined => {
  const o = options as Options
  return first(
    () => optionsObject(options),
    () =>
      !o.webRtcServer && !Array.isArray(o.listenInfos) && !Array.isArray(o.listenIps)
        ? "missing webRtcServer, listenInfos and listenIps (one of them is mandatory)"
        : undefined,
    () =>
      o.webRtcServer && o.listenInfos && o.listenIps
        ? "only one of webRtcServer, listenInfos and listenIps must be given"
        : undefined,
    () => sctpStreams(o),
    () => badAppData(o.appData)
  )
}

export const checkPlainTransportOptions = (options: unknown): string | undefined => {
  const o = options as Options
  return first(
    () => optionsObject(options),
    () => listenOne(o),
    () => badAppData(o.appData)
  )
}

export const checkPipeTransportOptions = checkPlainTransportOptions

export const checkDirectTransportOptions = (options: unknown): string | undefined => {
  const o = (options ?? {}) as Options
  const max = o.maxMessageSize ?? 262144
  return first(
    () => optionsObject(options ?? {}),
    () =>
      typeof max !== "number" || max < 0 ? "if given, maxMessageSize must be a positive number" : undefined,
    () => badAppData(o.appData)
  )
}

export const checkActiveSpeakerObserverOptions = (options: unknown): string | undefined => {
  const o = (options ?? {}) as Options
  return first(
    () => optionsObject(options ?? {}),
    () => (typeof (o.interval ?? 300) !== "number" ? "if given, interval must be an number" : undefined),
    () => badAppData(o.appData)
  )
}

export const checkAudioLevelObserverOptions = (options: unknown): string | undefined => {
  const o = (options ?? {}) as Options
  const maxEntries = o.maxEntries ?? 1
  const threshold = o.threshold ?? -80
  return first(
    () => optionsObject(options ?? {}),
    () =>
      typeof maxEntries !== "number" || maxEntries <= 0
        ? "if given, maxEntries must be a positive number"
        : undefined,
    () =>
      typeof threshold !== "number" || threshold < -127 || threshold > 0
        ? "if given, threshold must be a negative number greater than -127"
        : undefined,
    () => (typeof (o.interval ?? 1000) !== "number" ? "if given, interval must be an number" : undefined),
    () => badAppData(o.appData)
  )
}
