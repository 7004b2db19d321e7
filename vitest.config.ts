import { defineConfig } from 'vitest/config';

// The suite runs on PGlite always, and once more on PostgreSQL when FLEETWIRE_TEST_DATABASE_URL names one.
const postgresUrl = process.env.FLEETWIRE_TEST_DATABASE_URL;

const shared = {
  include: ['test/**/*.test.ts'],
  testTimeout: 30_000,
  hookTimeout: 60_000,
  pool: 'forks' as const,
};

export default defineConfig({
  test: {
    maxWorkers: 2,
    projects: [
      { test: { ...shared, name: 'pglite', env: { FLEETWIRE_TEST_BACKEND: 'pglite' } } },
      ...(postgresUrl
        ? [{ test: { ...shared, name: 'postgres', env: { FLEETWIRE_TEST_BACKEND: 'postgres', FLEETWIRE_TEST_DATABASE_URL: postgresUrl } } }]
        : []),
    ],
  },
});
