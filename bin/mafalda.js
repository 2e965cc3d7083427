#!/usr/bin/env node
// The `mafalda` command: runs the compiled CLI (npm run build, or the set-up script, makes it).
import { main } from "../dist/cli/main.js"

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
  },
  (error) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error)
    process.exitCode = 1
  }
)
