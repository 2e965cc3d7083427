/**
 * Whether the tests run under CI: `CI` set to anything but empty, `0` or `false` (the
 * convention of CI services, and the one `.ci/run` and `scripts/setup.sh` follow). Under CI
 * nothing may be skipped: a test that cannot run for want of a tool fails instead.
 */
export const isCI = (env: NodeJS.ProcessEnv = process.env): boolean => {
  const ci = env.CI?.trim().toLowerCase()
  return ci !== undefined && ci !== "" && ci !== "0" && ci !== "false"
}
