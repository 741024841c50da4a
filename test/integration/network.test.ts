// startEtcd({ network }) against the real kernel: members in network namespaces, cuts both ways and one
// way, partitions and heal, and nothing left behind — not even after the test process is SIGKILLed.
// Needs root (as CI runs): elsewhere these tests are skipped, saying so; in CI they must run.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { noop } from 'cockatiel';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { describeNetwork } from '../network-available.js';
import { isHealthy } from '../../src/testing/http.js';
import { startEtcd, type EtcdCluster } from '../../src/testing/index.js';


const testingEntry = fileURLToPath(new URL('../../src/testing/index.ts', import.meta.url));
const namespaces = (prefix: string): string[] =>
  execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter((name) => name.startsWith(prefix));

/** Resolves with what `promise` resolved to, 'failed' when it rejected, or 'timeout' after `ms`. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | 'timeout' | 'failed'> {
  return Promise.race([promise.catch(() => 'failed' as const), delay(ms).then(() => 'timeout' as const)]);
}

describeNetwork('startEtcd({ network })', 60_000, () => {
  let etcd: EtcdCluster;
  let prefix = '';
  const clients: Etcd3[] = [];
  /** A client of side `side` that talks to member `i` only, with etcd3's retries and breakers off. */
  const via = async (side: string, i: number): Promise<Etcd3> => {
    const client = new Etcd3({ hosts: [(await etcd.network!.endpoints(side))[i]!], faultHandling: { host: () => noop, global: noop } });
    clients.push(client);
    return client;
  };
  const put = (client: Etcd3, key: string) => client.put(key).value('x').options({ deadline: Date.now() + 1500 }).exec();

  beforeAll(async () => {
    etcd = await startEtcd({ members: 3, network: { sides: ['a', 'b'] } });
    prefix = namespacesOf(etcd);
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await etcd?.stop();
    if (prefix !== '') expect(namespaces(prefix), 'namespaces left after stop()').toEqual([]);
  });

  test('members listen on link-local addresses inside the network; this process reaches them through the admin side', async () => {
    expect(etcd.network!.sides).toEqual(['a', 'b']);
    expect(etcd.members.map((m) => etcd.network!.url(m))).toEqual(['http://169.254.100.10:2379', 'http://169.254.100.11:2379', 'http://169.254.100.12:2379']);
    const admin = etcd.client();
    await admin.put('net/k').value('v');
    expect(await (await via('a', 2)).get('net/k').string()).toBe('v');
    // Nothing of the host changed: no interface with our addresses outside the namespaces.
    expect(execFileSync('ip', ['-o', 'addr'], { encoding: 'utf8' })).not.toContain('169.254.100.');
  });

  test('cut both ways: side a loses member m0, side b keeps it; heal restores it', async () => {
    const [a0, b0] = [await via('a', 0), await via('b', 0)];
    await etcd.network!.cut('a', 'm0');
    expect(etcd.network!.cuts).toEqual([['a', 'm0'], ['m0', 'a']]);
    expect(await within(put(a0, 'net/cut'), 3000)).toBe('failed');
    await put(b0, 'net/cut');
    await etcd.network!.heal();
    expect(etcd.network!.cuts).toEqual([]);
    await (await via('a', 0)).put('net/healed').value('x');
  });

  test('one way: on a connection made before, requests from a reach m1 and are applied, answers do not come back — and the reverse', async () => {
    // (No new TCP connection gets through a one-way cut: the handshake needs both ways.)
    const admin = etcd.client();
    const a1 = await via('a', 1);
    await put(a1, 'net/warm');
    await etcd.network!.cut('m1', 'a', { oneWay: true });
    expect(await within(put(a1, 'net/answers-lost'), 3000)).toBe('failed');
    expect(await admin.get('net/answers-lost').string(), 'the request arrived and was applied').toBe('x');
    await etcd.network!.heal();
    await put(a1, 'net/warm');
    await etcd.network!.cut('a', 'm1', { oneWay: true });
    expect(await within(put(a1, 'net/requests-lost'), 3000)).toBe('failed');
    expect(await admin.get('net/requests-lost').string(), 'the request never arrived').toBeNull();
    await etcd.network!.heal();
  });

  test('partition 2 | 1: the lone member loses its leader, the majority keeps serving; heal: it rejoins', async () => {
    const lone = etcd.members[2]!;
    await etcd.network!.partition(['m0', 'm1'], ['m2']);
    await expectEventually(async () => !(await isHealthy(lone.metricsUrl, 500)), 5000);
    const leader = await etcd.leader();
    expect(leader.name).not.toBe('m2');
    await etcd.client().put('net/majority').value('x');
    await etcd.network!.heal();
    await expectEventually(async () => isHealthy(lone.metricsUrl, 500), 20_000);
  });

  test('a node that is not in the network is a TypeError naming it', async () => {
    await expect(etcd.network!.cut('a', 'm7')).rejects.toThrow(/got `m7`/);
    expect(() => etcd.network!.command('m0')).toThrow(/side of this network .* got `m0`/);
    await expect(etcd.network!.isolate('admin')).rejects.toThrow(/got `admin`/);
  });

  test('a program started with command(side) runs inside that side', () => {
    const out = execFileSync(etcd.network!.command('b')[0]!, [...etcd.network!.command('b').slice(1), 'ip', '-o', '-4', 'addr', 'show', 'eth0'], { encoding: 'utf8' });
    expect(out).toContain(etcd.network!.address('b'));
  });
});

/** The prefix of the cluster's namespaces (every name before its last `-`), read from `ip netns pids` of a member. */
function namespacesOf(etcd: EtcdCluster): string {
  const pid = etcd.members[0]!.pid!;
  const ns = execFileSync('ip', ['netns', 'identify', String(pid)], { encoding: 'utf8' }).trim();
  return ns.slice(0, ns.lastIndexOf('-') + 1);
}

async function expectEventually(check: () => Promise<boolean>, ms: number): Promise<void> {
  const until = performance.now() + ms;
  while (!(await check())) {
    if (performance.now() > until) throw new Error(`condition not met within ${ms} ms`);
    await delay(100);
  }
}

describeNetwork('docs/testing.md', 60_000, () => {
  test('the network example runs', async () => {
    // docs:start network
    await using etcd = await startEtcd({ members: 3, network: { sides: ['app'] } });
    const net = etcd.network!;
    const app = etcd.client({ hosts: await net.endpoints('app') }); // this process, reaching etcd as side `app` does
    await app.put('k').value('before');

    await net.partition(['m0', 'm1'], ['m2', 'app']); // 2 | 1: `app` reaches only m2, which has no leader
    await net.heal();
    await net.isolate('m0');                          // m0 cut off from every member and side
    await net.heal();
    await net.cut('m1', 'app', { oneWay: true });     // m1's answers to `app` are dropped; its requests arrive
    await net.heal();
    // docs:end
    expect(await etcd.client().get('k').string()).toBe('before');
  });

  test('appears verbatim in docs/testing.md', () => {
    const source = readFileSync(fileURLToPath(import.meta.url), 'utf8');
    const docs = readFileSync(fileURLToPath(new URL('../../docs/testing.md', import.meta.url)), 'utf8');
    const body = /\/\/ docs:start network\n([\s\S]*?)\n\s*\/\/ docs:end/.exec(source)?.[1] ?? '';
    expect(body).not.toBe('');
    expect(docs).toContain(body.split('\n').map((line) => line.slice(4)).join('\n'));
  });
});

describeNetwork('no namespaces left behind', 60_000, () => {
  test('SIGKILL of the Node process deletes its namespaces and kills what runs inside them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'leasehold-netns-'));
    const script = join(dir, 'child.mts');
    writeFileSync(
      script,
      `import { execFileSync } from 'node:child_process';
import { startEtcd } from ${JSON.stringify(testingEntry)};
const etcd = await startEtcd({ members: 3, network: true });
const ns = execFileSync('ip', ['netns', 'identify', String(etcd.members[0].pid)], { encoding: 'utf8' }).trim();
console.log(JSON.stringify({ prefix: ns.slice(0, ns.lastIndexOf('-') + 1), pids: etcd.members.map((m) => m.pid) }));
setInterval(() => {}, 1000);
`,
    );
    const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: fileURLToPath(new URL('../..', import.meta.url)), stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          if (out.includes('\n')) resolve(out.slice(0, out.indexOf('\n')));
        });
        child.once('exit', (code) => reject(new Error(`child exited with ${code}`)));
      });
      const { prefix, pids } = JSON.parse(line) as { prefix: string; pids: number[] };
      expect(namespaces(prefix).length).toBe(6); // bridge, m0–m2, admin, client
      child.kill('SIGKILL');
      await expectEventually(async () => namespaces(prefix).length === 0 && pids.every((pid) => !alive(pid)), 10_000);
    } finally {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

function alive(pid: number): boolean {
  try {
    const state = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return state.charAt(state.lastIndexOf(')') + 2) !== 'Z';
  } catch {
    return false;
  }
}

describe('the network option is validated', () => {
  test.each([
    [{ network: 'yes' as never }, /Expected `network` to be a boolean or \{ sides \}, got `"yes"`/],
    [{ network: { sides: [] } }, /non-empty array/],
    [{ network: { sides: ['m0'] } }, /got `"m0"`/],
    [{ network: { sides: ['admin'] } }, /got `"admin"`/],
    [{ network: { sides: ['Bad Name'] } }, /got `"Bad Name"`/],
    [{ network: { sides: ['a', 'a'] } }, /no duplicates/],
    [{ network: true, tls: true }, /`network` and `tls` cannot be combined/],
    [{ network: true, provider: 'docker' as const }, /need the binary provider/],
  ])('%o → TypeError', async (options, message) => {
    await expect(startEtcd(options)).rejects.toThrow(message);
  });
});
