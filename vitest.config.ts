import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Tests that start real mediasoup Workers share 2 CPUs: run files one at a time.
    fileParallelism: false,
    reporters: ["default"]
  }
})
