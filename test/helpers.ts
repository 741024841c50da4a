// Small helpers shared by the real-etcd tests.
import { setTimeout as delay } from 'node:timers/promises';
import type { Etcd3 } from 'etcd3';

/** Polls `check` every 20 ms until it is true; throws after `timeoutMs`. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs: number, what = 'condition'): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await delay(20);
  }
}

/** The keys under `prefix` (absolute, as strings), in create-revision order. */
export async function keysUnder(client: Etcd3, prefix: string): Promise<string[]> {
  const res = await client.getAll().prefix(prefix).sort('Create', 'Ascend').keys();
  return res;
}

/** Whether `promise` is still pending after `ms`. */
export async function stillPending(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  await delay(ms);
  return !settled;
}

/** A fresh name per test so tests sharing one etcd never see each other's keys. */
let counter = 0;
export function uniqueName(base: string): string {
  return `${base}-${process.pid}-${++counter}`;
}
