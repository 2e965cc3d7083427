#!/usr/bin/env node
// The `mafalda` command: runs the compiled CLI (npm run build, or the set-up script, makes it).
import "../dist/cli/bin.js"
