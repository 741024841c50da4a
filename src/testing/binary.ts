import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, delimiter, join } from 'node:path';
import { Etcd3, Range } from 'etcd3';
import { ClusterBase, type EtcdMember } from './cluster.js';
import { freePorts, memberStatus, pollUntil, postJson, type ClientTls, type StatusResponse } from './http.js';
import { fastFlags, minLeaseTtl, type ResolvedOptions } from './options.js';
import { Reaper } from './reaper.js';
import { makeCertificates, type TestCertificates } from './tls.js';
import { Network } from './network.js';
import { BinaryMember, tail, type MemberSpec } from './binary-member.js';

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
