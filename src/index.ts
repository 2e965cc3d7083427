/**
 * mafalda: scale mediasoup past one CPU core and one machine.
 */
export * as Core from "./core/index.js"
