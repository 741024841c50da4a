// Every ```ts block in README.md and docs/*.md, every `@example` in the doc comments of src/, and every
// program in examples/, compiles and runs against a real etcd — so no example drifts from the code. A
// block whose info string says `no-run` is only compiled.
import { execFile } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startEtcd, type EtcdCluster } from '../../src/testing/index.js';
import { runTs } from '../helpers.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const outDir = join(root, 'test', '.doc-examples');

interface Block {
  id: string;
  file: string;
  run: boolean;
  /** A block that imports vitest is a test file: it runs under vitest, not as a script. */
  vitest: boolean;
}

/**
 * What a doc comment's `@example` may take for granted: an `etcd` client, a `session`, a `mutex`, and
 * the user's own work as stand-ins. `schedule` plays the kubelet and emits SIGTERM, so an elector
 * example wired to it stops.
 */
const prelude = `import { Etcd3 } from 'etcd3';
import { Barrier, DoubleBarrier, Election, LeaderElector, Mutex, ReadWriteLock, Semaphore, Session, isLeaseLostError } from 'leasehold';
export const etcd = new Etcd3({ hosts: (process.env['ETCD_ENDPOINTS'] ?? '127.0.0.1:2379').split(',') });
export const session = await Session.create(etcd, { ttl: 10 });
export const mutex = new Mutex(session, 'examples/doc-comments');
export const file = 'input.mp4';
export async function migrate(_work: { signal: AbortSignal; token: bigint }): Promise<void> {}
export async function transcode(_file: string, _work: { signal: AbortSignal }): Promise<void> {}
export async function reindexMyShard(): Promise<void> {}
export async function schedule(_work: { signal: AbortSignal; term?: bigint; fencingToken?: bigint }): Promise<void> {
  process.emit('SIGTERM');
}
export { Barrier, DoubleBarrier, Election, LeaderElector, ReadWriteLock, Semaphore, isLeaseLostError };
`;
const epilogue = `await session.close();
etcd.close();
`;

/** The `@example` blocks of the doc comments in src/, each made a program with the prelude. */
function extractDocComments(): Block[] {
  const blocks: Block[] = [];
  for (const file of readdirSync(join(root, 'src')).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))) {
    const text = readFileSync(join(root, 'src', file), 'utf8');
    let n = 0;
    for (const m of text.matchAll(/@example\s*\n\s*\*\s*```ts\n([\s\S]*?)\n\s*\*\s*```/g)) {
      n++;
      const lines = m[1]!.split('\n').map((line) => line.replace(/^\s*\* ?/, ''));
      // An example's own imports go to the top of the program; the rest runs in a block of its own.
      const imports = lines.filter((line) => line.startsWith('import ')).join('\n');
      const code = lines.filter((line) => !line.startsWith('import ')).join('\n');
      const id = `src_${file.replace(/[/.]/g, '_')}_${n}`;
      const out = join(outDir, `${id}.ts`);
      writeFileSync(out, `// @example ${n} of src/${file}\n${imports}\n${prelude}{\n${code}\n}\n${epilogue}`);
      blocks.push({ id: `src/${file} @example ${n}`, file: out, run: true, vitest: false });
    }
  }
  return blocks;
}

function extract(): Block[] {
  const docs = ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
  const blocks: Block[] = [];
  for (const doc of docs) {
    const text = readFileSync(join(root, doc), 'utf8');
    const fence = /^```(ts|typescript)([^\n]*)\n([\s\S]*?)^```/gm;
    let n = 0;
    for (const m of text.matchAll(fence)) {
      n++;
      const id = `${doc.replace(/[/.]/g, '_')}_${n}`;
      const vitest = /from 'vitest'/.test(m[3]!);
      const file = join(outDir, `${id}${vitest ? '.test' : ''}.ts`);
      writeFileSync(file, `// extracted from ${doc}, block ${n}\n${m[3]}\nexport {};\n`);
      blocks.push({ id: `${doc} #${n}`, file, run: !m[2]!.includes('no-run'), vitest });
    }
  }
  return blocks;
}

let etcd: EtcdCluster;
let blocks: Block[];
beforeAll(async () => {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  blocks = [...extract(), ...extractDocComments()];
  etcd = await startEtcd();
});
afterAll(async () => {
  await etcd?.stop();
  if (!process.env["KEEP_DOC_EXAMPLES"]) rmSync(outDir, { recursive: true, force: true });
});

describe('documentation examples', () => {
  test('README.md, docs/ and the doc comments in src/ have examples, and they all type-check', async () => {
    expect(blocks.length).toBeGreaterThan(3);
    expect(blocks.filter((b) => b.id.startsWith('src/')).length).toBeGreaterThanOrEqual(6);
    writeFileSync(
      join(outDir, 'tsconfig.json'),
      // `await using x = …` only for its scope is idiomatic in an example: unused locals are fine here.
      JSON.stringify({ extends: '../../tsconfig.json', compilerOptions: { noUnusedLocals: false }, include: ['*.ts'] }),
    );
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    const result = await promisify(execFile)(process.execPath, [tsc, '--noEmit', '-p', join(outDir, 'tsconfig.json')]).then(
      () => '',
      (e: { stdout?: string; message: string }) => e.stdout || e.message,
    );
    expect(result).toBe('');
  }, 120_000);

  test('every runnable block runs to completion against a real etcd', async () => {
    const env = { ETCD_ENDPOINTS: etcd.endpoints.join(',') };
    for (const block of blocks.filter((b) => b.run && !b.vitest)) {
      const { code, output } = await runTs(block.file, env, 30_000);
      expect(code, `${block.id} exited with ${code}:\n${output}`).toBe(0);
    }
    const tests = blocks.filter((b) => b.run && b.vitest);
    if (tests.length > 0) {
      writeFileSync(
        join(outDir, 'vitest.config.ts'),
        `export default { resolve: { conditions: ['leasehold-source', 'node', 'import', 'default'] }, ssr: { resolve: { conditions: ['leasehold-source', 'node', 'import', 'default'] } }, test: { include: ['*.test.ts'], testTimeout: 60000 } };\n`,
      );
      const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs');
      const result = await promisify(execFile)(process.execPath, [vitest, 'run', '--root', outDir], { env: { ...process.env, ...env } }).then(
        (r) => ({ code: 0, output: r.stdout }),
        (e: { stdout?: string; stderr?: string; message: string }) => ({ code: 1, output: `${e.stdout ?? ''}${e.stderr ?? e.message}` }),
      );
      expect({ blocks: tests.map((b) => b.id), ...result }).toMatchObject({ code: 0 });
      expect(result.output).toMatch(new RegExp(`Tests\\s+.*${tests.length} passed`));
    }
  }, 300_000);
});

describe('examples/', () => {
  const examples = readdirSync(join(root, 'examples')).filter((f) => f.endsWith('.ts'));
  test.each(examples)('examples/%s runs to completion', async (file) => {
    const { code, output } = await runTs(join(root, 'examples', file), { ETCD_ENDPOINTS: etcd.endpoints.join(',') }, 90_000);
    expect({ file, code, output }).toMatchObject({ code: 0 });
    if (file === 'demo.ts') expect(output).toMatch(/\nOK\n?$/);
  }, 120_000);
});
