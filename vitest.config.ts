import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // A lock library must not swallow a rejected promise: fail the run on any.
    dangerouslyIgnoreUnhandledErrors: false,
    // `npm test -- --coverage`: what the tests execute of src/ (in the test processes; the fault
    // suite's client processes are not measured).
    coverage: {
      provider: 'v8',
      include: ['src/**/*.ts'],
      exclude: ['src/**/*.test.ts'],
      reporter: ['text', 'text-summary', 'json-summary', 'json'],
      reportOnFailure: true,
    },
  },
});
