import { defineConfig } from 'vitest/config';

// Two groups, one after the other: first the unit, integration and packaging tests, two files at a
// time (they mostly wait on etcd and timers); then the fault-injection suite, one file at a time,
// since its scenarios time losses and handovers against the TTL and must not share the 2 cores.
const shared = {
  pool: 'forks' as const,
  testTimeout: 60_000,
  hookTimeout: 60_000,
};

export default defineConfig({
  test: {
    // A lock library must not swallow a rejected promise: fail the run on any.
    dangerouslyIgnoreUnhandledErrors: false,
    // `npm test -- --coverage`: what the tests execute of src/ (in the test processes; the fault
    // suite's client processes are not measured). src/cli/ is left out: the command line runs only in
    // the child processes that test/integration/cli.test.ts starts, which coverage cannot see; its
    // tests judge it by behaviour (exit codes, signals, what etcd holds).
    coverage: {
      provider: 'v8',
      include: ['src/**/*.ts'],
      exclude: ['src/**/*.test.ts', 'src/cli/**'],
      reporter: ['text', 'text-summary', 'json-summary', 'json'],
      reportOnFailure: true,
    },
    projects: [
      {
        test: {
          ...shared,
          name: 'main',
          include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
          exclude: ['test/fault/**', 'test/.doc-examples/**', '**/node_modules/**'],
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          ...shared,
          name: 'fault',
          include: ['test/fault/**/*.test.ts'],
          maxWorkers: 1,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
