/**
 * The built-in scenarios, as scenario JSON (what `--scenario-file` takes), decoded with
 * the same schema.
 */
import { Either } from "effect"
import { decodeScenario, type Scenario, type ScenarioInput } from "./Scenario.js"

export const builtinScenarioInputs = {
  broadcast: {
    name: "broadcast",
    description: "One video producer, 100,000 viewers joining at 200/s, on 40 Nodes of 16 CPUs.",
    durationSeconds: 600,
    nodes: { count: 40, cpus: 16 },
    reportIntervalSeconds: 2,
    rooms: [
      {
        name: "broadcast",
        rooms: 1,
        size: { min: 100_001, max: 100_001 },
        publishers: 1,
        produces: ["video"],
        joinsPerSecond: 200
      }
    ]
  },
  meetings: {
    name: "meetings",
    description:
      "60 meetings of 5 to 50 people, everyone sending audio and video; people stay 20 min on average.",
    durationSeconds: 600,
    nodes: { count: 40, cpus: 16 },
    rooms: [
      {
        name: "meeting",
        rooms: 60,
        size: { min: 5, max: 50 },
        // The app says each room's size when it opens it (`expectedParticipants`).
        hint: "size",
        publishers: "all",
        joinsPerSecond: 10,
        meanStaySeconds: 1200
      }
    ]
  },
  webinar: {
    name: "webinar",
    description:
      "20 webinars (3 speakers, 300 to 1,500 viewers) next to 100 small meetings, on 40 Nodes of 8 CPUs.",
    durationSeconds: 900,
    nodes: { count: 40, cpus: 8 },
    rooms: [
      {
        name: "webinar",
        rooms: 10,
        size: { min: 303, max: 1003 },
        hint: "size",
        publishers: 3,
        joinsPerSecond: 40,
        meanStaySeconds: 2400
      },
      {
        name: "meeting",
        rooms: 100,
        size: { min: 4, max: 12 },
        hint: "size",
        publishers: "all",
        joinsPerSecond: 4,
        meanStaySeconds: 1200
      }
    ]
  },
  burst: {
    name: "burst",
    description:
      "1,000 joins in 10 s while load reports are 10 s apart and 5 s late, video costing 1.5x the cost model's estimate.",
    durationSeconds: 180,
    nodes: { count: 8, cpus: 8 },
    reportIntervalSeconds: 10,
    reportDelaySeconds: 5,
    bitratesKbps: { audio: 50, video: 1500 },
    referenceBitrateKbps: 1000,
    rooms: [
      {
        name: "class",
        rooms: 60,
        size: { min: 20, max: 40 },
        publishers: 2,
        joinsPerSecond: 2,
        bursts: [{ atSeconds: 60, joins: 1000, withinSeconds: 10 }]
      }
    ]
  },
  "node-failure": {
    name: "node-failure",
    description:
      "40 rooms of 1 speaker and 100 to 300 viewers; the busiest Node fails at 300 s and its clients reconnect.",
    durationSeconds: 600,
    nodes: { count: 12, cpus: 8 },
    nodeEvents: [{ atSeconds: 300, action: "fail" }],
    workerFailures: [{ atSeconds: 450, target: "busiest" }],
    rooms: [
      {
        name: "talk",
        rooms: 40,
        size: { min: 101, max: 301 },
        publishers: 1,
        joinsPerSecond: 50
      }
    ]
  },
  mixed: {
    name: "mixed",
    description:
      "Many-to-many rooms of very different sizes (2-4, 8-15, 30-60; audio+video or audio only) filling at the same time, on 12 Nodes of 8 CPUs.",
    durationSeconds: 300,
    nodes: { count: 12, cpus: 8 },
    // Each group's join rate is its expected seats over ~150 s, and joins go to a random room
    // with a free seat: joins to rooms of every size interleave, and all fill together.
    rooms: [
      {
        name: "pair",
        rooms: 40,
        size: { min: 2, max: 4 },
        hint: "size",
        publishers: "all",
        joinsPerSecond: 0.8
      },
      {
        name: "team",
        rooms: 16,
        size: { min: 8, max: 15 },
        hint: "size",
        publishers: "all",
        joinsPerSecond: 1.2
      },
      {
        name: "standup",
        rooms: 10,
        size: { min: 8, max: 15 },
        // The same rooms as `team`, audio only and opened without a size hint.
        hint: "none",
        publishers: "all",
        produces: ["audio"],
        joinsPerSecond: 0.77
      },
      {
        name: "all-hands",
        rooms: 3,
        size: { min: 30, max: 60 },
        hint: "size",
        publishers: "all",
        produces: ["audio"],
        joinsPerSecond: 0.9
      },
      {
        name: "workshop",
        rooms: 2,
        size: { min: 30, max: 60 },
        hint: "size",
        publishers: "all",
        joinsPerSecond: 0.6
      }
    ]
  },
  churn: {
    name: "churn",
    description:
      "A compressed day (15 min) of 150 meetings of 2 to 8: people stay 90 s on average and others take their seats, joins rising, peaking and falling; Workers must follow the demand down.",
    durationSeconds: 900,
    nodes: { count: 8, cpus: 8 },
    reportIntervalSeconds: 5,
    rooms: [
      {
        name: "meeting",
        rooms: 150,
        size: { min: 2, max: 8 },
        hint: "size",
        publishers: "all",
        joinsPerSecond: 4,
        meanStaySeconds: 90,
        rateProfile: [
          [0, 0.05],
          [240, 1],
          [450, 1],
          [750, 0.05],
          [900, 0]
        ]
      }
    ]
  },
  daily: {
    name: "daily",
    description:
      "Small meetings over a compressed day: joins rise, peak and fall; idle Workers must be closed.",
    durationSeconds: 7200,
    nodes: { count: 20, cpus: 8 },
    reportIntervalSeconds: 5,
    rooms: [
      {
        name: "meeting",
        rooms: 3000,
        size: { min: 3, max: 12 },
        publishers: "all",
        joinsPerSecond: 8,
        meanStaySeconds: 600,
        rateProfile: [
          [0, 0.05],
          [1800, 1],
          [3600, 1],
          [5400, 0.1],
          [7200, 0]
        ]
      }
    ]
  },
  scale: {
    name: "scale",
    description:
      "1,000 Nodes of 16 CPUs; 10,000 rooms of 1 speaker and 50 viewers: 1,000,000 consumer joins.",
    durationSeconds: 600,
    // The speed and memory check of the library's own policy; name others with --policy.
    policies: ["mafalda"],
    nodes: { count: 1000, cpus: 16 },
    reportIntervalSeconds: 5,
    scaleDownIntervalSeconds: 30,
    rooms: [
      {
        name: "room",
        rooms: 10_000,
        size: { min: 51, max: 51 },
        publishers: 1,
        joinsPerSecond: 1000,
        fill: "inOrder"
      }
    ]
  }
} satisfies Record<string, ScenarioInput>

export type BuiltinScenarioName = keyof typeof builtinScenarioInputs
export const builtinScenarioNames = Object.keys(builtinScenarioInputs) as ReadonlyArray<BuiltinScenarioName>

export const builtinScenario = (name: BuiltinScenarioName): Scenario =>
  Either.getOrThrow(decodeScenario(builtinScenarioInputs[name]))
