import { defineConfig } from 'vitest/config';

// Suites: unit (pure), integration (Redis, the real claude binary, process runtime), docker, e2e, chaos.
// Two cores on CI: bounded parallelism across files; each file uses its own DAN_NETWORK.
export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    globalSetup: ['tests/setup/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
    fileParallelism: true,
    reporters: ['default'],
  },
});
