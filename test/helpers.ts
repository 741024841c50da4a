// Small helpers shared by the real-etcd tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';
import type { Etcd3 } from 'etcd3';
import type { Registry } from 'prom-client';
import { sumMetric, type EtcdCluster, type EtcdMember } from '../src/testing/index.js';

/** How many streams of a gRPC method (`Watch`, `LeaseKeepAlive`) `member` has open: etcd's own count, started minus handled. */
export async function openStreams(etcd: EtcdCluster, member: EtcdMember, method: string): Promise<number> {
  const metrics = await etcd.metrics(member);
  const labels = { grpc_method: method };
  return sumMetric(metrics, 'grpc_server_started_total', labels) - sumMetric(metrics, 'grpc_server_handled_total', labels);
}

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

/**
 * A shell loop that runs until the file `release` appears in `dir`: a child holds a lock for exactly as
 * long as the test wants (the test writes the file), with no sleep to race against.
 */
export function untilReleased(dir: string): string {
  return `while [ ! -e ${dir}/release ]; do sleep 0.02; done`;
}

/** The value of one series in a prom-client registry's text exposition, `undefined` when absent. */
export async function scraped(registry: Registry, series: string): Promise<number | undefined> {
  const text = await registry.metrics();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** A fresh name per test so tests sharing one etcd never see each other's keys. */
let counter = 0;
export function uniqueName(base: string): string {
  return `${base}-${process.pid}-${++counter}`;
}

/** Runs a TypeScript file as a user would (`leasehold` resolving to src/), with extra env. */
export async function runTs(
  file: string,
  env: Record<string, string>,
  timeoutMs = 60_000,
): Promise<{ code: number | null; output: string }> {
  const { spawn } = await import('node:child_process');
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--conditions=leasehold-source', '--import', 'tsx', file], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** `etcdctl` (v3 API) against `endpoints`, with its stdout and stderr collected for `output()`. */
export function etcdctl(endpoints: readonly string[], args: readonly string[]): ChildProcess & { output: () => string } {
  const child = spawn('etcdctl', [`--endpoints=${endpoints.join(',')}`, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ETCDCTL_API: '3' },
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return Object.assign(child, { output: () => out });
}

/** Resolves once `child` has exited (at once if it has). */
export function exited(child: ChildProcess): Promise<void> {
  return new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
}
