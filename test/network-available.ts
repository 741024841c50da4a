/**
 * Whether this machine can run the tests that put etcd members in network namespaces (Linux, root,
 * iproute2, a kernel that lets us make namespaces and veth pairs — probed, not guessed), and a
 * `describe` that acts on the answer: where they can run, they run; in CI (which runs as root) where
 * they cannot, one test per file fails with the one-line reason and the others are skipped; elsewhere
 * they are skipped, saying so on stderr and in the skipped test's name — never a silent pass.
 */
import { describe, test } from 'vitest';
import { netnsUnavailable } from '../src/testing/netns.js';

/** Why network namespaces cannot be made here, or `undefined`. */
export const unavailable = await netnsUnavailable();

let reported = false;

/** `describe(name, { timeout }, body)` when namespaces can be made; see the module comment otherwise. */
export function describeNetwork(name: string, timeout: number, body: () => void): void {
  if (unavailable === undefined) {
    describe(name, { timeout }, body);
    return;
  }
  if (process.env['CI'] !== undefined && !reported) {
    reported = true; // one failure per file says it; the file's other blocks are skipped
    describe(name, () => {
      test('network namespaces can be made (CI runs as root)', () => {
        throw new Error(`Cannot create network namespaces: ${unavailable}`);
      });
    });
    return;
  }
  if (process.env['CI'] === undefined) console.warn(`[network] ${name}: SKIPPED, not passed: ${unavailable}. These tests run in CI (as root).`);
  describe.skip(`${name} (SKIPPED: ${unavailable})`, body);
}
