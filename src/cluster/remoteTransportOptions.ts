/**
 * mediasoup's options of a WebRtcTransport or PlainTransport as another Node's API takes them
 * (`CreateWebRtcTransport`, `CreatePlainTransport`): the forms mediasoup 3.14 still accepts
 * but deprecates turned into the current ones as mediasoup's own Router turns them (`listenIps`
 * into `listenInfos`, `listenIp` and `port` into `listenInfo`, a listen info's `announcedIp`
 * into its `announcedAddress`), and what another Node does not offer named instead of dropped.
 * Pure; the Mafalda Router has checked the options already (mediasoup's `TypeError`s).
 *
 * @module
 */
import { Either } from "effect"

type Options = Readonly<Record<string, unknown>>
type Info = Readonly<Record<string, unknown>>

/** What another Node does not offer on a transport (the `UnsupportedError`'s subject). */
export interface Unsupported {
  readonly what: string
}

/** A listen info with its deprecated `announcedIp` as `announcedAddress` (which wins, as in mediasoup). */
export const listenInfoOf = (info: Info): Info => {
  const { announcedIp, ...rest } = info
  const announcedAddress = rest.announcedAddress ?? announcedIp
  return announcedAddress === undefined ? rest : { ...rest, announcedAddress }
}

/** A deprecated listen IP (a string, or `{ ip, announcedIp }`) as mediasoup turns it into a listen info. */
const fromListenIp = (listenIp: unknown, protocol: "udp" | "tcp", port: unknown): Info => {
  const { ip, announcedIp } =
    typeof listenIp === "string" ? { ip: listenIp, announcedIp: undefined } : (listenIp as Info)
  return {
    protocol,
    ip,
    ...(announcedIp === undefined ? {} : { announcedAddress: announcedIp }),
    ...(port === undefined ? {} : { port })
  }
}

const picked = (o: Options, keys: ReadonlyArray<string>): Options =>
  Object.fromEntries(keys.filter((k) => o[k] !== undefined).map((k) => [k, o[k]]))

/** Data channels are not offered on another Node. */
const sctp = (o: Options): Either.Either<void, Unsupported> =>
  o.enableSctp === true ? Either.left({ what: "SCTP (enableSctp)" }) : Either.void

/** `createWebRtcTransport`'s options for another Node's `CreateWebRtcTransport`. */
export const webRtcTransportOptions = (o: Options): Either.Either<Options, Unsupported> =>
  Either.gen(function* () {
    if (o.webRtcServer !== undefined) return yield* Either.left({ what: "a WebRtcServer" })
    yield* sctp(o)
    let listenInfos: ReadonlyArray<Info>
    if (Array.isArray(o.listenInfos)) listenInfos = (o.listenInfos as ReadonlyArray<Info>).map(listenInfoOf)
    else if (Array.isArray(o.listenIps)) {
      // mediasoup's order of protocols for each listen IP (Router.createWebRtcTransport).
      const enableUdp = (o.enableUdp as boolean | undefined) ?? true
      const enableTcp = (o.enableTcp as boolean | undefined) ?? false
      const preferUdp = o.preferUdp === true
      const preferTcp = o.preferTcp === true
      const protocols: Array<"udp" | "tcp"> = []
      if (enableUdp && (preferUdp || !enableTcp || !preferTcp)) {
        protocols.push("udp")
        if (enableTcp) protocols.push("tcp")
      } else if (enableTcp && ((preferTcp && !preferUdp) || !enableUdp)) {
        protocols.push("tcp")
        if (enableUdp) protocols.push("udp")
      }
      listenInfos = (o.listenIps as ReadonlyArray<unknown>).flatMap((ip) =>
        protocols.map((protocol) => fromListenIp(ip, protocol, o.port))
      )
    } else return yield* Either.left({ what: "a WebRtcTransport without listenInfos or listenIps" })
    return {
      listenInfos,
      ...picked(o, [
        "enableUdp",
        "enableTcp",
        "preferUdp",
        "preferTcp",
        "initialAvailableOutgoingBitrate",
        "iceConsentTimeout"
      ])
    }
  })

/** `createPlainTransport`'s options for another Node's `CreatePlainTransport`. */
export const plainTransportOptions = (o: Options): Either.Either<Options, Unsupported> =>
  Either.gen(function* () {
    yield* sctp(o)
    const listenInfo =
      typeof o.listenInfo === "object" && o.listenInfo !== null
        ? listenInfoOf(o.listenInfo as Info)
        : o.listenIp !== undefined
          ? fromListenIp(o.listenIp, "udp", o.port)
          : undefined
    if (listenInfo === undefined)
      return yield* Either.left({ what: "a PlainTransport without listenInfo or listenIp" })
    const rtcp = o.rtcpListenInfo
    return {
      listenInfo,
      ...(typeof rtcp === "object" && rtcp !== null ? { rtcpListenInfo: listenInfoOf(rtcp as Info) } : {}),
      ...picked(o, ["rtcpMux", "comedia", "enableSrtp", "srtpCryptoSuite"])
    }
  })
