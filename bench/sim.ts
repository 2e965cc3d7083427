/**
 * Runs `mafalda simulate` from the sources: node --import tsx bench/sim.ts --scenario scale --policy mafalda
 */
import { runSimulateCommand } from "../src/cli/simulate.js"

process.exitCode = await runSimulateCommand(process.argv.slice(2))
