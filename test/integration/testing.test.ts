// leasehold/testing against real etcd processes: start/stop, faults on a 3-member cluster, no orphans.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { resolveBinary } from '../../src/testing/binary.js';
import { startEtcd, startEtcdDefaults, sumMetric, type EtcdCluster, type EtcdMember } from '../../src/testing/index.js';

// Members, faults and orphans need leasehold to start etcd itself. Without the etcd binary (only
// ETCD_ENDPOINTS or Docker) they are skipped on a developer's machine (and reported as skipped) — but
// never in CI (`CI` set, as .ci/run does), where the binary is installed and every one of them must
// run: there a missing binary fails the run instead.
const inCi = Boolean(process.env['CI']);
const skipMembers = !inCi && resolveBinary('etcd') === undefined;

const testingEntry = fileURLToPath(new URL('../../src/testing/index.ts', import.meta.url));

/** `R`, `S`, `T`, `Z`… from /proc; `undefined` once the process is gone. */
function processState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.charAt(stat.lastIndexOf(')') + 2);
  } catch {
    return undefined;
  }
}

/** Whether `pid` is dead: gone, or a zombie waiting for a parent (PID 1 in a container) to reap it. */
const isDead = (pid: number) => {
  const state = processState(pid);
  return state === undefined || state === 'Z';
};

async function eventually(check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`Condition not met within ${timeoutMs} ms`);
    await delay(20);
  }
}

/** The root temp dir of a binary cluster: the parent of every member's dir. */
const clusterRoot = (member: EtcdMember) => dirname(dirname(member.dataDir));

describe.runIf(inCi)('in CI', () => {
  test('the etcd binary is on PATH, so none of the tests below is skipped', () => {
    expect(resolveBinary('etcd'), 'CI must install etcd (.ci/run does)').toBeTypeOf('string');
  });
});

describe.skipIf(skipMembers)('startEtcd with one member', () => {
  test('serves put/get, grants leases of minTtl, and stop() removes the process and the data dir', async () => {
    const etcd = await startEtcd({ provider: 'binary' });
    const [member] = etcd.members;
    expect(etcd.provider).toBe('binary');
    expect(etcd.members).toHaveLength(1);
    expect(etcd.endpoints).toEqual([member?.clientUrl]);
    expect(etcd.endpoints[0]).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const pid = member?.pid;
    expect(pid).toBeTypeOf('number');
    expect(existsSync(member?.dataDir ?? '')).toBe(true);

    const client = etcd.client();
    await client.put('leasehold/testing/k').value('v1');
    expect(await client.get('leasehold/testing/k').string()).toBe('v1');

    // etcd raises a TTL below its minimum; with the default 250 ms election timeout that minimum is 1 s.
    expect(etcd.minTtl).toBe(1);
    // What startEtcdDefaults promises: one member, and timings that make that minimum.
    expect(etcd.members).toHaveLength(startEtcdDefaults.members);
    expect(etcd.minTtl).toBe(Math.ceil((1.5 * startEtcdDefaults.electionTimeout) / 1000));
    const granted = await client.leaseClient.leaseGrant({ TTL: 1 });
    expect(Number(granted.TTL)).toBe(etcd.minTtl);

    const root = clusterRoot(member!);
    await etcd.stop();
    expect(isDead(pid!)).toBe(true);
    expect(existsSync(root)).toBe(false);
    expect(member?.running).toBe(false);
    expect(member?.pid).toBeUndefined();
    await etcd.stop(); // Idempotent.
    expect(() => etcd.client()).toThrow(/stopped/);
    await expect(member!.restart()).rejects.toThrow(/stopped cluster/);
  });

  test('`await using` stops the cluster at the end of the block', async () => {
    let pid: number | undefined;
    let root = '';
    {
      await using etcd = await startEtcd({ provider: 'binary' });
      pid = etcd.members[0]?.pid;
      root = clusterRoot(etcd.members[0]!);
      await etcd.client().put('k').value('v');
    }
    expect(isDead(pid!)).toBe(true);
    expect(existsSync(root)).toBe(false);
  });

  test('a slower election timeout raises minTtl as etcd does: ceil(1.5 × 1000 ms) = 2 s', async () => {
    await using etcd = await startEtcd({ provider: 'binary', heartbeatInterval: 100, electionTimeout: 1000 });
    expect(etcd.minTtl).toBe(2);
    const granted = await etcd.client().leaseClient.leaseGrant({ TTL: 1 });
    expect(Number(granted.TTL)).toBe(2);
  });

  test('ETCD_ENDPOINTS: uses that cluster, has no members, and stop() only closes clients', async () => {
    await using backing = await startEtcd({ provider: 'binary' });
    vi.stubEnv('ETCD_ENDPOINTS', backing.endpoints.map((url) => url.replace('http://', '')).join(','));
    try {
      const etcd = await startEtcd();
      expect(etcd.provider).toBe('env');
      expect(etcd.endpoints).toEqual(backing.endpoints);
      expect(etcd.members).toEqual([]);
      expect(etcd.minTtl).toBe(1);
      await etcd.client().put('from-env').value('yes');
      expect(sumMetric(await etcd.metrics(), 'etcd_server_has_leader')).toBe(1);
      await expect(etcd.leader()).rejects.toThrow(/ETCD_ENDPOINTS.*provider: 'binary'/);
      await etcd.stop();
      expect(backing.members[0]?.running).toBe(true);
      expect(await backing.client().get('from-env').string()).toBe('yes');
    } finally {
      vi.unstubAllEnvs();
    }
  });
});

describe.skipIf(skipMembers)('startEtcd with three members', () => {
  let etcd: EtcdCluster;
  beforeAll(async () => {
    etcd = await startEtcd({ provider: 'binary', members: 3 });
  });
  afterAll(async () => {
    const roots = etcd.members.map(clusterRoot);
    const pids = etcd.members.flatMap((member) => (member.pid === undefined ? [] : [member.pid]));
    await etcd.stop();
    for (const pid of pids) expect(isDead(pid)).toBe(true);
    for (const root of roots) expect(existsSync(root)).toBe(false);
  });

  test('has exactly one leader, which the metrics agree on', async () => {
    expect(etcd.members.map((member) => member.name)).toEqual(['m0', 'm1', 'm2']);
    expect(new Set(etcd.members.map((member) => member.clientUrl)).size).toBe(3);
    // Read as one snapshot, again if a re-election (250 ms election timeout, a loaded machine) fell between the reads.
    const snapshot = async () => {
      const leader = await etcd.leader();
      const isLeader = await Promise.all(
        etcd.members.map(async (member) => sumMetric(await etcd.metrics(member), 'etcd_server_is_leader')),
      );
      // Without a member, series are summed over the members: every member sees the leader.
      const metrics = await etcd.metrics();
      return {
        metricsAgree: isLeader.join() === etcd.members.map((member) => (member === leader ? 1 : 0)).join(),
        hasLeader: sumMetric(metrics, 'etcd_server_has_leader'),
        isLeader: sumMetric(metrics, 'etcd_server_is_leader'),
        watchStreams: metrics.has('etcd_debugging_mvcc_watch_stream_total'),
      };
    };
    await expect.poll(snapshot, { timeout: 10_000 }).toEqual({ metricsAgree: true, hasLeader: 3, isLeader: 1, watchStreams: true });
  });

  test('killing the leader: the other two elect a new one and keep serving writes', async () => {
    const client = etcd.client();
    await client.put('before-kill').value('1');
    const leader = await etcd.leader();
    const pid = leader.pid!;
    await leader.kill();
    expect(leader.running).toBe(false);
    expect(isDead(pid)).toBe(true);

    const next = await etcd.leader();
    expect(next).not.toBe(leader);
    const survivors = etcd.client({ hosts: etcd.members.filter((m) => m.running).map((m) => m.clientUrl) });
    await survivors.put('while-down').value('2');
    expect(await survivors.get('before-kill').string()).toBe('1');

    // restart() brings it back on the same data dir; it catches up on what it missed.
    await leader.restart();
    expect(leader.running).toBe(true);
    expect(leader.pid).not.toBe(pid);
    const direct = etcd.client({ hosts: [leader.clientUrl] });
    expect(await direct.get('while-down').string()).toBe('2');
    expect(sumMetric(await etcd.metrics(leader), 'etcd_server_has_leader')).toBe(1);
  });

  test('pause() freezes a member (state T) while the others serve; resume() thaws it', async () => {
    const leader = await etcd.leader();
    const pid = leader.pid!;
    await leader.pause();
    expect(leader.paused).toBe(true);
    expect(processState(pid)).toBe('T');

    const others = etcd.members.filter((member) => member !== leader);
    const next = await etcd.leader();
    expect(others).toContain(next);
    const survivors = etcd.client({ hosts: others.map((member) => member.clientUrl) });
    await survivors.put('while-paused').value('3');

    await leader.resume();
    expect(leader.paused).toBe(false);
    expect(processState(pid)).not.toBe('T');
    const direct = etcd.client({ hosts: [leader.clientUrl] });
    expect(await direct.get('while-paused').string()).toBe('3');
  });

  test('stop() on a member is graceful and restart() starts it again', async () => {
    const member = etcd.members[0]!;
    await member.stop();
    expect(member.running).toBe(false);
    await member.restart();
    expect(member.running).toBe(true);
    await etcd.client().put('after-stop').value('4');
  });
});

describe.skipIf(skipMembers)('the examples in docs/testing.md', () => {
  // docs:start basic
  test('a put is visible to a second client', async () => {
    await using etcd = await startEtcd();
    const writer = etcd.client();
    const reader = etcd.client();
    await writer.put('greeting').value('hello');
    expect(await reader.get('greeting').string()).toBe('hello');
  });
  // docs:end

  test('fault injection', async () => {
    // docs:start faults
    await using etcd = await startEtcd({ members: 3 });
    const leader = await etcd.leader();
    await leader.kill();
    await etcd.leader();                                   // the other two elect one within ~0.3 s
    const survivors = etcd.client({ hosts: etcd.members.filter((m) => m.running).map((m) => m.clientUrl) });
    await survivors.put('k').value('v');                   // the other two still have a quorum
    await leader.restart();                                // rejoins and catches up

    const metrics = await etcd.metrics();
    sumMetric(metrics, 'grpc_server_handled_total', { grpc_service: 'etcdserverpb.KV' }); // KV requests served
    // docs:end
    expect(sumMetric(metrics, 'grpc_server_handled_total', { grpc_service: 'etcdserverpb.KV' })).toBeGreaterThan(0);
  });

  test('appear verbatim in docs/testing.md', () => {
    const source = readFileSync(fileURLToPath(import.meta.url), 'utf8');
    const docs = readFileSync(fileURLToPath(new URL('../../docs/testing.md', import.meta.url)), 'utf8');
    const blocks = [...source.matchAll(/\/\/ docs:start (\w+)\n([\s\S]*?)\n\s*\/\/ docs:end/g)];
    expect(blocks.map((block) => block[1])).toEqual(['basic', 'faults']);
    for (const [, , body = ''] of blocks) {
      const lines = body.split('\n');
      const indent = Math.min(...lines.filter((l) => l.trim() !== '').map((l) => /^ */.exec(l)?.[0].length ?? 0));
      expect(docs).toContain(lines.map((line) => line.slice(indent)).join('\n'));
    }
  });
});

describe.skipIf(skipMembers)('no orphans', () => {
  /**
   * Runs `body` in a child Node process that starts a cluster and prints its pids and root dir, then
   * hands the child to `finish`.
   */
  async function inChild(body: string): Promise<{ pids: number[]; root: string; exited: Promise<void>; kill(): void }> {
    const dir = mkdtempSync(join(tmpdir(), 'leasehold-orphan-'));
    const script = join(dir, 'child.mts');
    writeFileSync(
      script,
      `import { startEtcd } from ${JSON.stringify(testingEntry)};
const etcd = await startEtcd({ provider: 'binary', members: 3 });
await etcd.members[1].pause();
const pids = etcd.members.map((member) => member.pid);
const root = etcd.members[0].dataDir.split('/').slice(0, -2).join('/');
console.log(JSON.stringify({ pids, root }));
${body}
`,
    );
    const child = spawn(process.execPath, ['--import', 'tsx', script], {
      cwd: fileURLToPath(new URL('../..', import.meta.url)),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    void exited.then(() => rmSync(dir, { recursive: true, force: true }));
    let output = '';
    const line = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        const newline = output.indexOf('\n');
        if (newline !== -1) resolve(output.slice(0, newline));
      });
      child.once('exit', (code) => reject(new Error(`child exited with ${code} before starting etcd`)));
    });
    const { pids, root } = JSON.parse(line) as { pids: number[]; root: string };
    return { pids, root, exited, kill: () => child.kill('SIGKILL') };
  }

  test('SIGKILL of the Node process kills its etcd members (even a paused one) and removes the data dirs', async () => {
    const child = await inChild('setInterval(() => {}, 1000);');
    expect(child.pids).toHaveLength(3);
    for (const pid of child.pids) expect(isDead(pid)).toBe(false);
    expect(existsSync(child.root)).toBe(true);

    child.kill();
    await child.exited;
    await eventually(() => child.pids.every(isDead) && !existsSync(child.root), 5_000);
  });

  test('a Node process that exits without stop() leaves nothing behind', async () => {
    const child = await inChild('process.exit(0);');
    await child.exited;
    await eventually(() => child.pids.every(isDead) && !existsSync(child.root), 5_000);
  });
});

describe('options are validated', () => {
  test.each([
    [{ members: 2 }, /Expected `members` to be 1 or 3, got `2`/],
    [{ members: 0 }, /Expected `members` to be 1 or 3, got `0`/],
    [{ electionTimeout: 0 }, /Expected `electionTimeout` to be an integer >= 1, got `0`/],
    [{ electionTimeout: -250 }, /Expected `electionTimeout` to be an integer >= 1, got `-250`/],
    [{ heartbeatInterval: 100, electionTimeout: 300 }, /at least 5 × `heartbeatInterval` \(500\), got `300`/],
    [{ provider: 'podman' as 'docker' }, /Expected `provider` .* got `"podman"`/],
  ])('%o → TypeError', async (options, message) => {
    const attempt = startEtcd(options);
    await expect(attempt).rejects.toThrow(TypeError);
    await expect(attempt).rejects.toThrow(message);
  });

  test('a forced provider that is missing says how to install etcd', async () => {
    const attempt = startEtcd({ provider: 'binary', binary: '/nonexistent/etcd' });
    await expect(attempt).rejects.toThrow(/apt-get install -y etcd-server[\s\S]*brew install etcd[\s\S]*ETCD_ENDPOINTS/);
  });

  test('an aborted signal rejects with its reason', async () => {
    const reason = new Error('test over');
    await expect(startEtcd({ provider: 'binary', signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
  });
});
