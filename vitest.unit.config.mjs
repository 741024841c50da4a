// The unit tests only — pure functions, scripted ports and the in-memory fake of the port, no etcd:
// what `npm run mutation` (StrykerJS) runs against each mutant of the modules in stryker.config.json.
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
      'src/transport/watch-hub*.test.ts',
      'src/transport/member-choice.test.ts',
      'src/transport/keep-alive*.test.ts',
      'src/transport/h2/deadlines.test.ts',
      'src/transport/h2/status.test.ts',
      'src/transport/h2/framing.test.ts',
      'src/transport/codec/*.test.ts',
      'src/testing/metrics*.test.ts',
      'test/fault/checker.test.ts',
      'test/fault/checker-liveness.test.ts',
      'src/cli/*.test.ts',
      // The engine's decisions on the in-memory fake of the port; the fake's own check needs etcd.
      'test/unit/*.test.ts',
    ],
    exclude: ['test/unit/fake-transport.test.ts', '**/node_modules/**'],
    pool: 'forks',
    dangerouslyIgnoreUnhandledErrors: false,
  },
});
