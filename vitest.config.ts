import { defineConfig } from 'vitest/config';

// The suite runs on PGlite always, and once more on PostgreSQL when FLEETWIRE_TEST_DATABASE_URL names one. Each
// project runs in a time zone far from UTC (one behind, one ahead, neither on a whole hour), so a test that leans on
// the machine's zone fails here rather than on someone else's machine.
const postgresUrl = process.env.FLEETWIRE_TEST_DATABASE_URL;

const shared = {
  include: ['test/**/*.test.ts'],
  testTimeout: 30_000,
  hookTimeout: 60_000,
  pool: 'forks' as const,
};

export default defineConfig({
  test: {
    // Tests spawn bin/fleetwire.js (dist/) and serve the built dashboard: build first when the sources changed.
    globalSetup: ['./scripts/test-build.mjs'],
    maxWorkers: 2,
    projects: [
      { test: { ...shared, name: 'pglite', env: { FLEETWIRE_TEST_BACKEND: 'pglite', TZ: 'America/St_Johns' } } },
      ...(postgresUrl
        ? [{ test: { ...shared, name: 'postgres', env: { FLEETWIRE_TEST_BACKEND: 'postgres', FLEETWIRE_TEST_DATABASE_URL: postgresUrl, TZ: 'Pacific/Chatham' } } }]
        : []),
    ],
  },
});
