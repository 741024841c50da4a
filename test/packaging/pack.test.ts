// The published package, as a user gets it: `npm pack` (prepack builds dist/), installed into a fresh
// project, then the `leasehold` bin, an ESM import and a CommonJS require of `leasehold` and
// `leasehold/testing`, and a consumer type-checked with moduleResolution nodenext and bundler.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const tsc = join(root, 'node_modules/typescript/bin/tsc');

let work: string;
let consumer: string;
let files: string[];

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'leasehold-pack-'));
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', work], { cwd: root, maxBuffer: 64 * 1024 * 1024 });
  const [packed] = JSON.parse(stdout.slice(stdout.indexOf('['))) as { filename: string; files: { path: string }[] }[];
  files = packed!.files.map((f) => f.path);
  consumer = join(work, 'consumer');
  await run('mkdir', ['-p', consumer]);
  writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', join(work, packed!.filename), '@types/node@^20'], { cwd: consumer, maxBuffer: 64 * 1024 * 1024 });
}, 300_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the packed package', () => {
  test('holds dist/ (with the bin, types and every subpath) and nothing of src/ or test/', () => {
    for (const f of ['dist/index.js', 'dist/index.d.ts', 'dist/cli/main.js', 'dist/testing/index.js', 'dist/prometheus.js', 'dist/opentelemetry.js', 'dist/ui/index.js', 'dist/ui/static/page.html', 'dist/ui/static/page.js', 'dist/ui/static/page.css', 'package.json', 'README.md']) {
      expect(files).toContain(f);
    }
    expect(files.filter((f) => f.startsWith('src/') || f.startsWith('test/') || f.endsWith('.test.js'))).toEqual([]);
  });

  test('`npx leasehold --help` and `--version` run from the installed bin', async () => {
    const help = await run('npx', ['--no-install', 'leasehold', '--help'], { cwd: consumer });
    expect(help.stdout).toContain('Usage: leasehold');
    expect(help.stdout).toContain('lock [options] <name...>');
    const version = await run('npx', ['--no-install', 'leasehold', '--version'], { cwd: consumer });
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  test('ESM import and CommonJS require of leasehold and leasehold/testing', async () => {
    const esm = await run(process.execPath, ['--input-type=module', '-e', "import { Mutex, Session, isLeaseLostError } from 'leasehold'; import { startEtcd } from 'leasehold/testing'; import { createUiHandler } from 'leasehold/ui'; console.log(typeof Mutex, typeof Session, typeof isLeaseLostError, typeof startEtcd, typeof createUiHandler);"], { cwd: consumer });
    expect(esm.stdout.trim()).toBe('function function function function function');
    const cjs = await run(process.execPath, ['--input-type=commonjs', '-e', "const l = require('leasehold'); const t = require('leasehold/testing'); console.log(typeof l.Mutex, typeof l.Election, typeof t.startEtcd);"], { cwd: consumer });
    expect(cjs.stdout.trim()).toBe('function function function');
  });

  test.each([
    ['nodenext', { module: 'nodenext', moduleResolution: 'nodenext' }],
    ['bundler', { module: 'esnext', moduleResolution: 'bundler' }],
  ])('a consumer type-checks with moduleResolution %s', async (label, options) => {
    writeFileSync(
      join(consumer, 'consumer.ts'),
      `import { Etcd3 } from 'etcd3';
import { Mutex, Session, Semaphore, Election, isLeaseLostError, type Contender, type QueueState } from 'leasehold';
import { startEtcd, type EtcdCluster } from 'leasehold/testing';

export async function demo(cluster: EtcdCluster): Promise<bigint> {
  const client: Etcd3 = cluster.client();
  await using session = await Session.create(client, { ttl: 10 });
  await using lock = await new Mutex(session, 'jobs').lock({ signal: AbortSignal.timeout(1000) });
  const queue: QueueState = await Mutex.queue(client, 'jobs');
  const holder: Contender | null = await new Mutex(session, 'jobs').holder();
  const permits = await new Semaphore(session, 'gpu', { permits: 2 }).queue();
  const term: bigint = (await new Election(session, 'e').leader()).term;
  lock.signal.addEventListener('abort', () => isLeaseLostError(lock.signal.reason));
  return queue.revision + (holder?.token ?? 0n) + BigInt(permits.holders.length) + term;
}
export const started = startEtcd;
`,
    );
    const tsconfig = join(consumer, `tsconfig.${label}.json`);
    writeFileSync(tsconfig, JSON.stringify({ compilerOptions: { ...options, target: 'es2022', lib: ['es2022', 'esnext.disposable'], strict: true, noEmit: true, skipLibCheck: false, types: ['node'] }, files: ['consumer.ts'] }));
    const result = await run(process.execPath, [tsc, '-p', tsconfig], { cwd: consumer }).catch((error: { stdout: string }) => ({ stdout: error.stdout, failed: true }));
    expect(result.stdout).toBe('');
  });

  test('`npm run docs`: TypeDoc builds the API reference from the doc comments with no warning', async () => {
    const out = join(work, 'api');
    const typedoc = join(root, 'node_modules/typedoc/bin/typedoc');
    const result = await run(process.execPath, [typedoc, '--out', out], { cwd: root }).catch((error: { stdout: string; stderr: string }) => ({ stdout: `${error.stdout}${error.stderr}` }));
    expect(result.stdout).not.toMatch(/warning|error/i);
    expect(existsSync(join(out, 'classes', 'index.Mutex.html'))).toBe(true);
    expect(readFileSync(join(out, 'classes', 'index.Mutex.html'), 'utf8')).toContain('Reads who holds the lock and who waits');
  }, 120_000);
});
