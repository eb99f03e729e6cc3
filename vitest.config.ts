import { defineConfig } from 'vitest/config';

// Suites (DESIGN.md, Tests): unit (pure), integration (Redis, the real claude binary, process runtime), docker,
// e2e (compose), chaos, browser (the dashboard in headless Chromium). Two cores on CI: unit and integration first, two files at a time; then the heavy
// suites that start containers and kill processes, one file at a time so they do not starve each other.
// Each file uses its own DAN_NETWORK, so files may run in parallel.
const shared = {
  // Generous: CI machines are slower and busier than a laptop; a test that hangs still fails, later.
  testTimeout: 120_000,
  hookTimeout: 180_000,
  pool: 'forks' as const,
  // A user's `.env` in the repository root must not reach the tests: `dan` children run there and would read it
  // (its REDIS_URL, DAN_NETWORK, images …). Every test process, and every child that inherits its environment,
  // reads no `.env` unless a test names one.
  env: { DAN_ENV_FILE: '' },
};

export default defineConfig({
  test: {
    reporters: ['default'],
    projects: [
      {
        test: {
          ...shared,
          name: 'unit',
          include: ['tests/unit/**/*.test.ts'],
          // Pure logic: no services, so no Redis is provided.
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          ...shared,
          name: 'integration',
          globalSetup: ['tests/setup/global-setup.ts'],
          include: ['tests/integration/**/*.test.ts'],
          maxWorkers: 2,
          sequence: { groupOrder: 1 },
        },
      },
      {
        test: {
          ...shared,
          name: 'system',
          globalSetup: ['tests/setup/global-setup.ts'],
          include: ['tests/docker/**/*.test.ts', 'tests/e2e/**/*.test.ts', 'tests/chaos/**/*.test.ts', 'tests/browser/**/*.test.ts'],
          maxWorkers: 1,
          fileParallelism: false,
          sequence: { groupOrder: 2 },
        },
      },
    ],
  },
});
