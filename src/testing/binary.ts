import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, closeSync, constants, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, delimiter, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Etcd3, Range } from 'etcd3';
import { ClusterBase, type EtcdMember } from './cluster.js';
import { answersHttp, freePorts, isHealthy, memberStatus, pollUntil, postJson, type ClientTls, type StatusResponse } from './http.js';
import { fastFlags, minLeaseTtl, type ResolvedOptions } from './options.js';
import { Reaper } from './reaper.js';
import { makeCertificates, type TestCertificates } from './tls.js';
import { Network } from './network.js';

const MAX_START_ATTEMPTS = 3;

/** Resolves `binary` (a name to look up on PATH, or a path) to an executable file, or `undefined`. */
export function resolveBinary(binary: string): string | undefined {
  const candidates = binary.includes('/')
    ? [binary]
    : (process.env['PATH'] ?? '')
        .split(delimiter)
        .filter((dir) => dir !== '')
        .map((dir) => join(dir, binary));
  return candidates.find((candidate) => {
    try {
      accessSync(candidate, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** `/dev/shm` when it is a writable tmpfs, so data dirs live in memory; else the OS temp dir. */
function tempBase(): string {
  try {
    accessSync('/dev/shm', constants.W_OK);
    return '/dev/shm';
  } catch {
    return tmpdir();
  }
}

/** The one-letter process state from `/proc/<pid>/stat` (`R`, `S`, `T`, `Z`, …), or `undefined` off Linux. */
export function processState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.charAt(stat.lastIndexOf(')') + 2) || undefined;
  } catch {
    return undefined;
  }
}

function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

const STOP_LIKE = new Set<string>(['SIGSTOP', 'SIGCONT', 'SIGTSTP', 'SIGTTIN', 'SIGTTOU']);

interface MemberSpec {
  name: string;
  /** The URLs etcd listens on (and advertises). */
  listen: { client: string; peer: string; metrics: string };
  /** How this process reaches it: the listen URLs on loopback, the admin gateway's in a network. */
  reach: { client: string; metrics: string };
  /** A prefix that runs etcd elsewhere (`ip netns exec <name>`); empty to run it as is. */
  command: readonly string[];
}

class BinaryMember implements EtcdMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly metricsUrl: string;
  readonly dataDir: string;
  readonly logFile: string;
  readonly #command: readonly string[];
  readonly #args: readonly string[];
  readonly #reaper: Reaper;
  readonly #timeoutMs: number;
  readonly #quorumWouldRun: () => boolean;
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #paused = false;
  /** The raft member ID, a decimal string as etcd's JSON gateway writes it; set once the cluster is up. */
  id = '';

  constructor(init: {
    spec: MemberSpec;
    dir: string;
    binary: string;
    flags: readonly string[];
    reaper: Reaper;
    timeoutMs: number;
    quorumWouldRun: () => boolean;
  }) {
    const { spec, dir } = init;
    this.name = spec.name;
    this.clientUrl = spec.reach.client;
    this.peerUrl = spec.listen.peer;
    this.metricsUrl = spec.reach.metrics;
    this.dataDir = join(dir, 'data');
    this.logFile = join(dir, 'etcd.log');
    this.#command = [...spec.command, init.binary];
    this.#reaper = init.reaper;
    this.#timeoutMs = init.timeoutMs;
    this.#quorumWouldRun = init.quorumWouldRun;
    this.#args = [
      `--name=${spec.name}`,
      `--data-dir=${this.dataDir}`,
      `--listen-client-urls=${spec.listen.client}`,
      `--advertise-client-urls=${spec.listen.client}`,
      `--listen-peer-urls=${spec.listen.peer}`,
      `--initial-advertise-peer-urls=${spec.listen.peer}`,
      `--listen-metrics-urls=${spec.listen.metrics}`,
      ...init.flags,
    ];
    mkdirSync(dir, { recursive: true });
  }

  get pid(): number | undefined {
    return this.running ? this.#child?.pid : undefined;
  }

  get running(): boolean {
    const child = this.#child;
    return child !== undefined && child.pid !== undefined && child.exitCode === null && child.signalCode === null;
  }

  get paused(): boolean {
    return this.#paused && this.running;
  }

  /** Spawns the etcd process; it is tracked by the reaper until it exits. */
  spawn(): void {
    if (this.#reaper.disposed) throw new Error(`etcd member ${this.name} belongs to a stopped cluster`);
    const log = openSync(this.logFile, 'a');
    let child: ChildProcess;
    try {
      const [program, ...prefix] = this.#command;
      child = spawn(program!, [...prefix, ...this.#args], { stdio: ['ignore', 'ignore', log] });
    } finally {
      closeSync(log);
    }
    // A test that forgets stop() must not hang: the exit hook and the watchdog clean up instead.
    child.unref();
    this.#child = child;
    this.#paused = false;
    const { pid } = child;
    if (pid !== undefined) this.#reaper.track(pid);
    this.#exited = new Promise((resolve) => {
      const done = () => {
        if (pid !== undefined) this.#reaper.untrack(pid);
        resolve();
      };
      child.once('exit', done);
      child.once('error', done);
    });
  }

  /**
   * Resolves once the member serves — `'health'`: `/health` is true (it has a leader and a quorum read
   * succeeds); `'listening'`: its metrics port answers, so its peer port serves too — or rejects with its log when it exits or
   * `timeoutMs` passes.
   */
  async waitServing(options: { until: 'health' | 'listening'; timeoutMs: number; signal?: AbortSignal | undefined }) {
    const child = this.#child;
    await pollUntil(
      async () => {
        if (!this.running || this.#child !== child) {
          throw new MemberExitedError(this, tail(this.logFile));
        }
        // The metrics listener serves from the start (503 without a leader); the client listener only
        // once the member has joined, which needs a quorum.
        const ok =
          options.until === 'health'
            ? await isHealthy(this.metricsUrl, 500, options.signal)
            : await answersHttp(`${this.metricsUrl}/health`, 500, options.signal);
        return ok || undefined;
      },
      {
        timeoutMs: options.timeoutMs,
        intervalMs: options.until === 'health' ? 25 : 5,
        signal: options.signal,
        what: `etcd member ${this.name} to serve`,
      },
    ).catch((error: unknown) => {
      if (error instanceof MemberExitedError || options.signal?.aborted) throw error;
      throw new Error(`${(error as Error).message}; its log (${this.logFile}):\n${tail(this.logFile)}`, {
        cause: error,
      });
    });
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (STOP_LIKE.has(signal)) {
      throw new TypeError(`Expected \`signal\` to end the process, got \`${signal}\`; use pause() or resume()`);
    }
    const child = this.#child;
    if (!this.running || child === undefined) return;
    child.kill(signal);
    if (this.#paused && signal !== 'SIGKILL') child.kill('SIGCONT');
    this.#paused = false;
    await this.#waitExit(this.#timeoutMs, `etcd member ${this.name} to exit after ${signal}`);
  }

  async pause(): Promise<void> {
    const pid = this.pid;
    if (pid === undefined) throw new Error(`etcd member ${this.name} is not running`);
    process.kill(pid, 'SIGSTOP');
    this.#paused = true;
    if (processState(pid) === undefined) return;
    await pollUntil(async () => (processState(pid) === 'T' ? true : undefined), {
      timeoutMs: 5_000,
      intervalMs: 5,
      what: `etcd member ${this.name} to stop`,
    });
  }

  async resume(): Promise<void> {
    const pid = this.pid;
    if (pid === undefined || !this.#paused) return;
    process.kill(pid, 'SIGCONT');
    this.#paused = false;
  }

  async restart(options: { signal?: AbortSignal } = {}): Promise<void> {
    options.signal?.throwIfAborted();
    await this.kill('SIGKILL');
    this.spawn();
    await this.waitServing({
      until: this.#quorumWouldRun() ? 'health' : 'listening',
      timeoutMs: this.#timeoutMs,
      signal: options.signal,
    });
  }

  async stop(): Promise<void> {
    const child = this.#child;
    if (!this.running || child === undefined) return;
    child.kill('SIGTERM');
    if (this.#paused) child.kill('SIGCONT');
    this.#paused = false;
    try {
      await this.#waitExit(2_000, `etcd member ${this.name} to exit after SIGTERM`);
    } catch {
      await this.kill('SIGKILL');
    }
  }

  /** SIGKILLs the process (if any) and waits for it; for cluster shutdown and failed starts. */
  async destroy(): Promise<void> {
    await this.kill('SIGKILL');
  }

  async #waitExit(timeoutMs: number, what: string): Promise<void> {
    // The timer is referenced: the child is not, so without it Node could exit while we wait.
    const controller = new AbortController();
    try {
      await Promise.race([
        this.#exited,
        delay(timeoutMs, undefined, { signal: controller.signal }).then(() => {
          throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
        }),
      ]);
    } finally {
      controller.abort();
    }
  }
}

class MemberExitedError extends Error {
  constructor(member: BinaryMember, log: string) {
    super(`etcd member ${member.name} exited while starting; its log (${member.logFile}):\n${log}`);
    this.name = 'MemberExitedError';
  }
}

/** A cluster of etcd processes started from the binary, in a temp dir that the reaper guards. */
class BinaryCluster extends ClusterBase {
  readonly provider = 'binary';
  readonly endpoints: readonly string[];
  readonly minTtl: number;
  readonly members: readonly BinaryMember[];
  override readonly tls: TestCertificates | undefined;
  override readonly auth: { readonly rootPassword: string } | undefined;
  override readonly network: Network | undefined;
  readonly #reaper: Reaper;
  readonly #timeoutMs: number;

  constructor(members: readonly BinaryMember[], reaper: Reaper, options: ResolvedOptions, tls: TestCertificates | undefined, network: Network | undefined) {
    super();
    this.tls = tls;
    this.network = network;
    this.auth = options.auth === undefined ? undefined : { rootPassword: options.auth.rootPassword };
    this.members = members;
    this.endpoints = members.map((member) => member.clientUrl);
    this.minTtl = minLeaseTtl(options.heartbeatInterval, options.electionTimeout);
    this.#reaper = reaper;
    this.#timeoutMs = options.startTimeoutMs;
  }

  async leader(options: { signal?: AbortSignal } = {}): Promise<EtcdMember> {
    return pollUntil(async () => this.#currentLeader(options.signal), {
      timeoutMs: this.#timeoutMs,
      signal: options.signal,
      what: 'an etcd leader',
    });
  }

  protected metricsBaseUrls(member?: EtcdMember): string[] {
    if (member !== undefined) {
      if (!this.members.includes(member as BinaryMember)) {
        throw new TypeError(`Expected \`member\` to be a member of this cluster, got \`${member.name}\``);
      }
      return [member.metricsUrl];
    }
    const serving = this.members.filter((candidate) => candidate.running && !candidate.paused);
    if (serving.length === 0) throw new Error('No etcd member is running and unpaused');
    return serving.map((candidate) => candidate.metricsUrl);
  }

  protected async shutdown(): Promise<void> {
    try {
      await Promise.all(this.members.map(async (member) => member.destroy()));
    } finally {
      this.#reaper.dispose();
    }
  }

  /** The member that answers as leader with the highest term, if it is running and unpaused. */
  async #currentLeader(signal?: AbortSignal): Promise<BinaryMember | undefined> {
    const candidates = this.members.filter((member) => member.running && !member.paused);
    const statuses = await Promise.all(
      candidates.map(async (member) =>
        memberStatus(member.clientUrl, 500, signal, clientTls(this.tls)).then(
          (status) => ({ member, status }),
          () => undefined,
        ),
      ),
    );
    signal?.throwIfAborted();
    let best: { member: BinaryMember; status: StatusResponse } | undefined;
    for (const answer of statuses) {
      if (answer === undefined) continue;
      if (best === undefined || BigInt(answer.status.raftTerm ?? 0) > BigInt(best.status.raftTerm ?? 0)) best = answer;
    }
    const leaderId = best?.status.leader;
    if (leaderId === undefined || leaderId === '0') return undefined;
    const leader = statuses.find((answer) => answer?.member.id === leaderId);
    // Only a leader that itself answers, and agrees it leads, counts.
    return leader?.status.leader === leaderId ? leader.member : undefined;
  }
}

/** The client certificate for the JSON gateway of a TLS cluster. */
function clientTls(tls: TestCertificates | undefined): ClientTls | undefined {
  return tls === undefined ? undefined : { ca: tls.ca, cert: tls.clientCert, key: tls.clientKey };
}

/**
 * Creates the roles and users of `options.auth` (and `root`), then enables authentication: through an
 * `etcd3` client of the cluster's own, before anyone needs a password.
 */
async function enableAuth(cluster: BinaryCluster, auth: NonNullable<ResolvedOptions['auth']>): Promise<void> {
  const client = new Etcd3(cluster.clientOptions({ auth: undefined }));
  try {
    await client.role('root').create();
    await client.user('root').create(auth.rootPassword);
    await client.user('root').addRole('root');
    for (const [name, permissions] of Object.entries(auth.roles)) {
      const role = await client.role(name).create();
      const kinds = [['Readwrite', permissions.readwrite], ['Read', permissions.read], ['Write', permissions.write]] as const;
      for (const [permission, prefixes] of kinds) {
        for (const prefix of prefixes ?? []) await role.grant({ permission, range: Range.prefix(prefix) });
      }
    }
    for (const [name, user] of Object.entries(auth.users)) {
      await client.user(name).create(user.password);
      for (const role of user.roles ?? []) await client.user(name).addRole(role);
    }
    await client.auth.authEnable({});
  } finally {
    client.close();
  }
}

/** Starts `options.members` etcd processes from `binary` and resolves once every member is healthy. */
export async function startBinaryCluster(binary: string, options: ResolvedOptions): Promise<BinaryCluster> {
  const root = mkdtempSync(join(tempBase(), 'leasehold-etcd-'));
  const reaper = new Reaper(root);
  let members: BinaryMember[] = [];
  try {
    const tls = options.tls ? makeCertificates(join(root, 'pki')) : undefined;
    const network = options.network === undefined ? undefined : await Network.create(['m0', 'm1', 'm2'].slice(0, options.members), options.network, reaper);
    for (let attempt = 1; ; attempt++) {
      const deadline = performance.now() + options.startTimeoutMs;
      const remaining = () => Math.max(1, Math.round(deadline - performance.now()));
      members = await createMembers(binary, root, reaper, options, tls, network);
      try {
        // One at a time: a new member first asks each peer whether it is already bootstrapped, and a peer
        // whose port is bound but not yet served makes that request hang for etcd's fixed 1 s bootstrap
        // timeout. Started together, three members often took 1–2 s longer; in sequence, ~60 ms each.
        for (const member of members) {
          member.spawn();
          await member.waitServing({ until: 'listening', timeoutMs: remaining(), signal: options.signal });
        }
        await Promise.all(
          members.map(async (member) =>
            member.waitServing({ until: 'health', timeoutMs: remaining(), signal: options.signal }),
          ),
        );
        break;
      } catch (error) {
        await Promise.all(members.map(async (member) => member.destroy()));
        const portRace = members.some((member) => tail(member.logFile, 50).includes('address already in use'));
        if (!portRace || attempt >= MAX_START_ATTEMPTS) throw error;
        for (const member of members) rmSync(join(root, member.name), { recursive: true, force: true });
      }
    }
    const list = await postJson<{ members: { ID: string; name: string }[] }>(
      `${members[0]?.clientUrl}/v3/cluster/member/list`,
      {},
      5_000,
      options.signal,
      clientTls(tls),
    );
    for (const member of members) {
      member.id = list.members.find((entry) => entry.name === member.name)?.ID ?? '';
    }
    const cluster = new BinaryCluster(members, reaper, options, tls, network);
    if (options.auth !== undefined) await enableAuth(cluster, options.auth);
    return cluster;
  } catch (error) {
    await Promise.all(members.map(async (member) => member.destroy())).catch(() => {});
    reaper.dispose();
    throw error;
  }
}

/** Where each member listens: free loopback ports, or its own namespace in `network`. */
async function memberSpecs(count: number, tls: TestCertificates | undefined, network: Network | undefined): Promise<MemberSpec[]> {
  const names = Array.from({ length: count }, (_, i) => `m${i}`);
  if (network !== undefined) return names.map((name) => ({ name, ...network.memberSpec(name) }));
  const scheme = tls === undefined ? 'http' : 'https';
  const ports = await freePorts(3 * count);
  return names.map((name, i) => {
    const [client, peer, metrics] = [0, 1, 2].map((k) => `127.0.0.1:${ports[3 * i + k] ?? 0}`);
    const listen = { client: `${scheme}://${client}`, peer: `${scheme}://${peer}`, metrics: `http://${metrics}` };
    return { name, listen, reach: { client: listen.client, metrics: listen.metrics }, command: [] };
  });
}

async function createMembers(
  binary: string,
  root: string,
  reaper: Reaper,
  options: ResolvedOptions,
  tls: TestCertificates | undefined,
  network: Network | undefined,
): Promise<BinaryMember[]> {
  const specs = await memberSpecs(options.members, tls, network);
  const initialCluster = specs.map((spec) => `${spec.name}=${spec.listen.peer}`).join(',');
  const flags = [
    `--initial-cluster=${initialCluster}`,
    '--initial-cluster-state=new',
    // Unique per cluster, so a member can never join another test's cluster on a recycled port.
    `--initial-cluster-token=${basename(root)}`,
    ...fastFlags(options),
    ...(tls === undefined
      ? []
      : [
          `--cert-file=${tls.serverCertFile}`,
          `--key-file=${tls.serverKeyFile}`,
          '--client-cert-auth',
          `--trusted-ca-file=${tls.caFile}`,
          `--peer-cert-file=${tls.serverCertFile}`,
          `--peer-key-file=${tls.serverKeyFile}`,
          '--peer-client-cert-auth',
          `--peer-trusted-ca-file=${tls.caFile}`,
        ]),
    ...(options.auth === undefined ? [] : [`--auth-token-ttl=${options.auth.tokenTtl}`]),
    ...options.extraArgs,
  ];
  const members: BinaryMember[] = [];
  const quorumWouldRun = () => members.filter((member) => member.running).length + 1 > members.length / 2;
  for (const spec of specs) {
    members.push(
      new BinaryMember({
        spec,
        dir: join(root, spec.name),
        binary,
        flags,
        reaper,
        timeoutMs: options.startTimeoutMs,
        quorumWouldRun,
      }),
    );
  }
  return members;
}
