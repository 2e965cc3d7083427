/**
 * A transport's options as another Node's API takes them (`src/cluster/remoteTransportOptions.ts`):
 * mediasoup 3.14's deprecated forms turned into the current ones as mediasoup's Router does,
 * and what another Node does not offer named instead of silently dropped.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import {
  listenInfoOf,
  plainTransportOptions,
  webRtcTransportOptions
} from "../../src/cluster/remoteTransportOptions.js"

describe("remote transport options", () => {
  it("a listen info's announcedIp becomes its announcedAddress (which wins when both are given)", () => {
    expect(listenInfoOf({ protocol: "udp", ip: "0.0.0.0", announcedIp: "203.0.113.7" })).toEqual({
      protocol: "udp",
      ip: "0.0.0.0",
      announcedAddress: "203.0.113.7"
    })
    expect(
      listenInfoOf({
        protocol: "udp",
        ip: "0.0.0.0",
        announcedIp: "203.0.113.7",
        announcedAddress: "a.example"
      })
    ).toEqual({ protocol: "udp", ip: "0.0.0.0", announcedAddress: "a.example" })
    expect(listenInfoOf({ protocol: "tcp", ip: "127.0.0.1", port: 4443 })).toEqual({
      protocol: "tcp",
      ip: "127.0.0.1",
      port: 4443
    })
  })

  it("WebRTC: listenInfos kept (normalized), with the flags another Node takes", () => {
    expect(
      webRtcTransportOptions({
        listenInfos: [{ protocol: "udp", ip: "0.0.0.0", announcedIp: "203.0.113.7" }],
        enableTcp: true,
        preferUdp: true,
        iceConsentTimeout: 20,
        appData: { x: 1 }
      })
    ).toEqual(
      Either.right({
        listenInfos: [{ protocol: "udp", ip: "0.0.0.0", announcedAddress: "203.0.113.7" }],
        enableTcp: true,
        preferUdp: true,
        iceConsentTimeout: 20
      })
    )
  })

  it("WebRTC: listenIps become listenInfos in mediasoup's order of protocols, with the port", () => {
    expect(
      webRtcTransportOptions({ listenIps: ["127.0.0.1", { ip: "0.0.0.0", announcedIp: "203.0.113.7" }] })
    ).toEqual(
      Either.right({
        listenInfos: [
          { protocol: "udp", ip: "127.0.0.1" },
          { protocol: "udp", ip: "0.0.0.0", announcedAddress: "203.0.113.7" }
        ]
      })
    )
    const both = webRtcTransportOptions({
      listenIps: ["127.0.0.1"],
      enableTcp: true,
      preferTcp: true,
      port: 4443
    })
    expect(Either.map(both, (o) => o.listenInfos)).toEqual(
      Either.right([
        { protocol: "tcp", ip: "127.0.0.1", port: 4443 },
        { protocol: "udp", ip: "127.0.0.1", port: 4443 }
      ])
    )
  })

  it("Plain: listenIp and port become a UDP listenInfo; rtcpListenInfo passes, normalized", () => {
    expect(
      plainTransportOptions({ listenIp: { ip: "0.0.0.0", announcedIp: "203.0.113.7" }, port: 40000 })
    ).toEqual(
      Either.right({
        listenInfo: { protocol: "udp", ip: "0.0.0.0", announcedAddress: "203.0.113.7", port: 40000 }
      })
    )
    expect(
      plainTransportOptions({
        listenInfo: { protocol: "udp", ip: "127.0.0.1" },
        rtcpListenInfo: { protocol: "udp", ip: "127.0.0.1", announcedIp: "203.0.113.7" },
        comedia: true
      })
    ).toEqual(
      Either.right({
        listenInfo: { protocol: "udp", ip: "127.0.0.1" },
        rtcpListenInfo: { protocol: "udp", ip: "127.0.0.1", announcedAddress: "203.0.113.7" },
        comedia: true
      })
    )
  })

  it("names what another Node does not offer: SCTP, a WebRtcServer", () => {
    expect(
      webRtcTransportOptions({ listenInfos: [{ protocol: "udp", ip: "127.0.0.1" }], enableSctp: true })
    ).toEqual(Either.left({ what: "SCTP (enableSctp)" }))
    expect(plainTransportOptions({ listenIp: "127.0.0.1", enableSctp: true })).toEqual(
      Either.left({ what: "SCTP (enableSctp)" })
    )
    expect(webRtcTransportOptions({ webRtcServer: {} })).toEqual(Either.left({ what: "a WebRtcServer" }))
    // enableSctp: false is what mediasoup does by default: nothing to refuse.
    expect(Either.isRight(plainTransportOptions({ listenIp: "127.0.0.1", enableSctp: false }))).toBe(true)
  })
})
