// Every ```ts block in README.md and docs/*.md, and every program in examples/, compiles and runs
// against a real etcd — so no example drifts from the code. A block whose info string says `no-run`
// is only compiled.
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
  blocks = extract();
  etcd = await startEtcd();
});
afterAll(async () => {
  await etcd?.stop();
  rmSync(outDir, { recursive: true, force: true });
});

describe('documentation examples', () => {
  test('README.md and docs/ have examples, and they all type-check', async () => {
    expect(blocks.length).toBeGreaterThan(3);
    writeFileSync(
      join(outDir, 'tsconfig.json'),
      JSON.stringify({ extends: '../../tsconfig.json', include: ['*.ts'] }),
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
      expect({ block: block.id, code, output }).toMatchObject({ code: 0 });
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
