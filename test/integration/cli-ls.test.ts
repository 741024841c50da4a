// `leasehold ls` against a real etcd: the scene of every kind (leasehold's keys, Go's layouts,
// etcdctl's, hostile keys) as JSON — the library's listing plus TTLs — and as text, with every key
// from etcd escaped; nothing written.
import { describe, expect, test } from 'vitest';
import { listPrimitives } from '../../src/index.js';
import { etcdctl, eventually, exited, uniqueName } from '../helpers.js';
import { cliSuite, run, start } from './cli-helpers.js';
import { buildScene } from './inventory-scene.js';

const t = cliSuite('cli-ls');

describe('leasehold ls', () => {
  test('--json is the listing with TTLs; the text names every primitive, escapes hostile keys; etcd’s revision is unchanged', async () => {
    const prefix = `${uniqueName('ls')}/`;
    const scene = await buildScene(() => t.etcd.client(), t.admin, prefix);
    const ctl = etcdctl(t.etcd.endpoints, ['lock', `${prefix}ctl-job`]);
    try {
      await eventually(async () => {
        const l = await listPrimitives(t.admin, { prefix });
        return l.primitives.length === 11 && l.primitives.find((p) => p.name === `${prefix}mutex`)?.waiters.length === 3;
      }, 20_000, 'the scene in place');
      const revision = async (): Promise<string> => (await t.admin.get('x').exec()).header.revision;
      const before = await revision();
      const json = await run(['ls', '--prefix', prefix, '--json'], t.etcd.endpoints);
      expect(json.code).toBe(0);
      const got = JSON.parse(json.stdout) as { revision: string; primitives: { name: string; holders: { ttl: number | null; leaseId: string }[] }[]; foreign: unknown[] };
      const lib = JSON.parse(JSON.stringify(await listPrimitives(t.admin, { prefix }), (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))) as typeof got;
      const noTtl = (x: unknown): unknown => JSON.parse(JSON.stringify(x, (k, v: unknown) => (k === 'ttl' ? undefined : v)));
      expect(noTtl(got)).toEqual(lib);
      const leased = got.primitives.flatMap((p) => p.holders).filter((h) => h.leaseId !== '0');
      expect(leased.length).toBeGreaterThan(5);
      for (const h of leased) expect(h.ttl).toBeGreaterThan(0);

      const text = await run(['ls', '--prefix', prefix], t.etcd.endpoints);
      expect(text.code).toBe(0);
      const out = text.stdout;
      expect(out).toContain(`mutex "${prefix}mutex": held, 3 waiting`);
      expect(out).toContain(`mutex "${prefix}ctl-job": held, 0 waiting`);
      expect(out).toContain(`election "${prefix}election": leader "leader-1", term`);
      expect(out).toContain(`semaphore "${prefix}sem": 3 of 4 permits used, 1 waiting`);
      expect(out).toContain(`rwlock "${prefix}rw": 2 reading, 1 waiting`);
      expect(out).toContain(`double-barrier "${prefix}phase": round of 1 open, 1 in, 0 waiting`);
      expect(out).toMatch(new RegExp(`multi-lock "${prefix}multi/b", "${prefix}mutex"`));
      expect(out).toContain(`"${prefix}<script>alert(1)</script>/1"`);
      expect(out).toContain(`${prefix}bytes/\\\\xff\\\\xfeA`);
      expect(out).toContain('PROBLEM: no primitive');
      expect(await revision()).toBe(before);
    } finally {
      ctl.kill('SIGKILL');
      await exited(ctl);
      await scene.close();
    }
  });

  test('a key with terminal escapes and a right-to-left override is printed escaped; bad --max-keys is refused (64)', async () => {
    const prefix = `${uniqueName('esc')}/`;
    await t.admin.put(`${prefix}\u001b[2J\u202eevil`).value('x').exec();
    const r = await run(['ls', '--prefix', prefix], t.etcd.endpoints);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(/[\u001b\u202e]/);
    expect(r.stdout).toContain('\\u001b[2J\\u202eevil');
    const bad = await run(['ls', '--max-keys', '0'], t.etcd.endpoints);
    expect([bad.code, bad.stderr]).toEqual([64, expect.stringContaining('--max-keys: expected a whole number of at least 1, got "0"')]);
  });
});

describe('leasehold ui', () => {
  test('serves the page on 127.0.0.1 (--port 0: a free one), prints the URL, answers state.json, refuses writes, moves no revision; SIGINT ends it with 0', async () => {
    const prefix = `${uniqueName('ui')}/`;
    await t.admin.put(`${prefix}gate`).value('').exec();
    const revision = async (): Promise<string> => (await t.admin.get('x').exec()).header.revision;
    const before = await revision();
    const served = start(['ui', '--prefix', prefix, '--port', '0', '--json'], t.etcd.endpoints);
    await eventually(() => served.stderr().includes('"event":"serving"'), 20_000, 'serving');
    const { url } = JSON.parse(served.stderr().trim().split('\n')[0]!) as { url: string };
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    let state: { live: boolean; view?: { primitives: { kind: string; name: string }[] } } = { live: false };
    await eventually(async () => {
      state = (await (await fetch(`${url}state.json`)).json()) as typeof state;
      return state.live;
    }, 15_000, 'live');
    expect(state.view?.primitives).toEqual([expect.objectContaining({ kind: 'barrier', name: `${prefix}gate` })]);
    const page = await fetch(url);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(await page.text()).toContain('<main');
    expect((await fetch(`${url}state.json`, { method: 'DELETE' })).status).toBe(405);
    expect(await revision()).toBe(before);
    served.child.kill('SIGINT');
    expect(await served.exit).toBe(0);
  });
});
