import { defineConfig } from 'vitest/config';

// Unit and integration tests run in Node; browser end-to-end tests drive real
// browsers from inside these tests rather than through a vitest browser mode.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
