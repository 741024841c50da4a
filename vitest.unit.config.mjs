// The unit tests only — pure functions, no etcd: what `npm run mutation` (StrykerJS) runs against each
// mutant of the modules listed in stryker.config.json.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: [
      'src/engine/keys.test.ts',
      'src/engine/inspect.test.ts',
      'src/engine/local-queue*.test.ts',
      'src/engine/validate.test.ts',
      'src/engine/session-options.test.ts',
      'src/engine/permit-record.test.ts',
      'src/transport/retry.test.ts',
      'src/testing/metrics*.test.ts',
      'test/fault/checker.test.ts',
      'test/fault/checker-liveness.test.ts',
      'src/cli/*.test.ts',
    ],
    pool: 'forks',
    dangerouslyIgnoreUnhandledErrors: false,
  },
});
