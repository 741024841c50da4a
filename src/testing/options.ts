import { randomBytes } from 'node:crypto';
import { resolveNetwork, type NetworkOptions } from './network.js';
/** Where the etcd behind an {@link EtcdCluster} came from. */
export type EtcdProvider = 'env' | 'binary' | 'docker';

/** Options for `startEtcd()`. */
export interface StartEtcdOptions {
  /**
   * Which provisioner to use. `'auto'` tries, in order: `ETCD_ENDPOINTS` (only when `members` is 1, since
   * an external cluster's members cannot be controlled), an `etcd` binary, Docker via `testcontainers`.
   * @default 'auto'
   */
  provider?: 'auto' | EtcdProvider;
  /**
   * How many members to start: 1, or 3 for fault tests (kill or pause one and keep a quorum). Three
   * members need the `etcd` binary.
   * @default 1
   */
  members?: number;
  /**
   * Raft heartbeat interval in milliseconds (`--heartbeat-interval`).
   * @default 25
   */
  heartbeatInterval?: number;
  /**
   * Raft election timeout in milliseconds (`--election-timeout`); at least 5 × `heartbeatInterval`, as
   * etcd requires. It also sets the minimum lease TTL: see {@link EtcdCluster.minTtl}.
   * @default 250
   */
  electionTimeout?: number;
  /**
   * Whether etcd fsyncs its WAL. `false` passes `--unsafe-no-fsync`: much faster, and only safe because
   * the data dir is thrown away — never use it outside tests.
   * @default false
   */
  fsync?: boolean;
  /**
   * Extra command-line flags for every etcd member, appended after leasehold's own (so a repeated flag
   * overrides the default). Ignored for `ETCD_ENDPOINTS`.
   * @default []
   */
  extraArgs?: readonly string[];
  /**
   * How long to wait for etcd to serve (and, with 3 members, to elect a leader) before failing, in
   * milliseconds. Also bounds `member.restart()` and `cluster.leader()`.
   * @default 20_000
   */
  startTimeoutMs?: number;
  /**
   * The etcd executable: a name looked up on `PATH`, or a path.
   * @default 'etcd'
   */
  binary?: string;
  /**
   * The container image for the Docker provider.
   * @default 'gcr.io/etcd-development/etcd:v3.5.17'
   */
  image?: string;
  /**
   * Serve clients over TLS with a throwaway CA (made with `openssl`) and require a client certificate
   * signed by it (mutual TLS); with 3 members, peers talk TLS too. `cluster.client()` then presents
   * the client certificate, and `cluster.tls` holds the files for clients of your own. Binary provider
   * only.
   * @default false
   */
  tls?: boolean;
  /**
   * Enable etcd's authentication, with a `root` user (and `root` role) and the roles and users given.
   * `cluster.client()` then signs in as `root` unless it is given its own `auth`. Binary provider only.
   * @default false
   */
  auth?: boolean | EtcdAuthOptions;
  /**
   * Run every member in a Linux network namespace of its own, linked through a bridge, so that links
   * can be cut (`cluster.network`: `partition()`, `isolate()`, `cut()` both ways or one way, `heal()`)
   * and clients can run in sides of their own. Needs Linux, root and iproute2; the start fails with a
   * one-line reason otherwise. Binary provider only; not with `tls`. See docs/testing.md.
   * @default false
   */
  network?: boolean | NetworkOptions;
  /** Aborts the start: processes already spawned are killed and their data dirs removed. */
  signal?: AbortSignal;
}

/** Users and roles of an auth-enabled test cluster (see {@link StartEtcdOptions.auth}). */
export interface EtcdAuthOptions {
  /** The password of `root`. @default a random one, in `cluster.auth.rootPassword` */
  rootPassword?: string;
  /** Roles to create, each with the key prefixes it may read, write, or both. */
  roles?: Record<
    string,
    {
      /** Key prefixes the role may read and write. */
      readwrite?: string[];
      /** Key prefixes the role may only read. */
      read?: string[];
      /** Key prefixes the role may only write. */
      write?: string[];
    }
  >;
  /** Users to create, each with its password and roles. */
  users?: Record<
    string,
    {
      /** The user's password. */
      password: string;
      /** The names of the roles granted to the user (from {@link EtcdAuthOptions.roles}, or `root`). */
      roles?: string[];
    }
  >;
  /** How long an auth token lives, in seconds (`--auth-token-ttl`). @default etcd's 300 */
  tokenTtl?: number;
}

/** Default values of {@link StartEtcdOptions}. */
export const startEtcdDefaults = Object.freeze({
  /** {@link StartEtcdOptions.provider}: `ETCD_ENDPOINTS`, else an `etcd` binary, else Docker. */
  provider: 'auto',
  /** {@link StartEtcdOptions.members}: a single member. */
  members: 1,
  /** {@link StartEtcdOptions.heartbeatInterval}: the raft heartbeat interval, in milliseconds. */
  heartbeatInterval: 25,
  /** {@link StartEtcdOptions.electionTimeout}: the raft election timeout, in milliseconds. */
  electionTimeout: 250,
  /** {@link StartEtcdOptions.fsync}: no fsync of the WAL (`--unsafe-no-fsync`). */
  fsync: false,
  /** {@link StartEtcdOptions.extraArgs}: no extra etcd flags. */
  extraArgs: Object.freeze([] as string[]),
  /** {@link StartEtcdOptions.startTimeoutMs}: how long to wait for etcd to serve, in milliseconds. */
  startTimeoutMs: 20_000,
  /** {@link StartEtcdOptions.binary}: `etcd`, looked up on `PATH`. */
  binary: 'etcd',
  /** {@link StartEtcdOptions.image}: the container image of the Docker provider. */
  image: 'gcr.io/etcd-development/etcd:v3.5.17',
  /** {@link StartEtcdOptions.tls}: clients are served in plain text. */
  tls: false,
  /** {@link StartEtcdOptions.auth}: authentication is off. */
  auth: false,
  /** {@link StartEtcdOptions.network}: members on the host's loopback, no namespaces. */
  network: false,
} as const satisfies Required<Omit<StartEtcdOptions, 'signal'>>);

/** Options after defaults are merged and every value is checked. */
export interface ResolvedOptions {
  provider: 'auto' | EtcdProvider;
  members: 1 | 3;
  heartbeatInterval: number;
  electionTimeout: number;
  fsync: boolean;
  extraArgs: readonly string[];
  startTimeoutMs: number;
  binary: string;
  image: string;
  tls: boolean;
  auth: Required<EtcdAuthOptions> | undefined;
  /** The sides of a cluster in network namespaces, or `undefined` for one on loopback. */
  network: string[] | undefined;
  signal: AbortSignal | undefined;
}

const show = (value: unknown): string => {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (Array.isArray(value)) return `[${value.map(show).join(', ')}]`;
  return String(value);
};

const isPositiveInteger = (value: unknown): value is number =>
  typeof value === 'number' && Number.isSafeInteger(value) && value >= 1;

/** Merges `startEtcdDefaults` into `options` and validates the result, throwing a `TypeError` naming the bad value. */
export function resolveOptions(options: StartEtcdOptions = {}): ResolvedOptions {
  // `undefined` means "the default", so drop undefined entries before the spread.
  const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  const merged = { ...startEtcdDefaults, ...given } as Required<StartEtcdOptions>;

  const { provider, members, heartbeatInterval, electionTimeout, fsync, extraArgs, startTimeoutMs, binary, image } =
    merged;
  if (!['auto', 'env', 'binary', 'docker'].includes(provider)) {
    throw new TypeError(`Expected \`provider\` to be 'auto', 'env', 'binary' or 'docker', got \`${show(provider)}\``);
  }
  if (members !== 1 && members !== 3) {
    throw new TypeError(`Expected \`members\` to be 1 or 3, got \`${show(members)}\``);
  }
  if (!isPositiveInteger(heartbeatInterval)) {
    throw new TypeError(`Expected \`heartbeatInterval\` to be an integer >= 1, got \`${show(heartbeatInterval)}\``);
  }
  if (!isPositiveInteger(electionTimeout)) {
    throw new TypeError(`Expected \`electionTimeout\` to be an integer >= 1, got \`${show(electionTimeout)}\``);
  }
  if (electionTimeout < 5 * heartbeatInterval) {
    throw new TypeError(
      `Expected \`electionTimeout\` to be at least 5 × \`heartbeatInterval\` (${5 * heartbeatInterval}), got \`${electionTimeout}\``,
    );
  }
  if (electionTimeout > 50_000) {
    throw new TypeError(`Expected \`electionTimeout\` to be at most 50000, got \`${electionTimeout}\``);
  }
  if (typeof fsync !== 'boolean') {
    throw new TypeError(`Expected \`fsync\` to be a boolean, got \`${show(fsync)}\``);
  }
  if (!Array.isArray(extraArgs) || !extraArgs.every((arg) => typeof arg === 'string')) {
    throw new TypeError(`Expected \`extraArgs\` to be an array of strings, got \`${show(extraArgs)}\``);
  }
  if (!isPositiveInteger(startTimeoutMs)) {
    throw new TypeError(`Expected \`startTimeoutMs\` to be an integer >= 1, got \`${show(startTimeoutMs)}\``);
  }
  if (typeof binary !== 'string' || binary === '') {
    throw new TypeError(`Expected \`binary\` to be a non-empty string, got \`${show(binary)}\``);
  }
  if (typeof image !== 'string' || image === '') {
    throw new TypeError(`Expected \`image\` to be a non-empty string, got \`${show(image)}\``);
  }
  const tls = options.tls ?? false;
  if (typeof tls !== 'boolean') throw new TypeError(`Expected \`tls\` to be a boolean, got \`${show(tls)}\``);
  const auth = resolveAuth(options.auth);
  const network = resolveNetwork(options.network, show);
  if (network !== undefined && tls) throw new TypeError('Options `network` and `tls` cannot be combined: the test certificates name 127.0.0.1, not the addresses inside the network');
  const signal = options.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError(`Expected \`signal\` to be an AbortSignal, got \`${show(signal)}\``);
  }
  return {
    provider,
    members,
    heartbeatInterval,
    electionTimeout,
    fsync,
    extraArgs: [...extraArgs],
    startTimeoutMs,
    binary,
    image,
    tls,
    auth,
    network,
    signal,
  };
}

function resolveAuth(auth: StartEtcdOptions['auth']): Required<EtcdAuthOptions> | undefined {
  if (auth === undefined || auth === false) return undefined;
  if (auth !== true && (typeof auth !== 'object' || auth === null)) {
    throw new TypeError(`Expected \`auth\` to be a boolean or an object of users and roles, got \`${show(auth)}\``);
  }
  const given: EtcdAuthOptions = auth === true ? {} : auth;
  const tokenTtl = given.tokenTtl ?? 300;
  if (!isPositiveInteger(tokenTtl)) throw new TypeError(`Expected \`auth.tokenTtl\` to be an integer >= 1, got \`${show(tokenTtl)}\``);
  return {
    rootPassword: given.rootPassword ?? randomBytes(12).toString('base64url'),
    roles: given.roles ?? {},
    users: given.users ?? {},
    tokenTtl,
  };
}

/**
 * The minimum lease TTL in seconds that etcd grants with these raft timings; a shorter requested TTL is
 * raised to it. Mirrors etcd's `ceil(⌊3 × electionTicks / 2⌋ × heartbeat)`, where
 * `electionTicks = ⌊electionTimeout / heartbeatInterval⌋`.
 */
export function minLeaseTtl(heartbeatInterval: number, electionTimeout: number): number {
  const electionTicks = Math.floor(electionTimeout / heartbeatInterval);
  return Math.max(1, Math.ceil((Math.floor((3 * electionTicks) / 2) * heartbeatInterval) / 1000));
}

/** The etcd flags that make a throwaway test cluster fast; shared by the binary and Docker provisioners. */
export function fastFlags(options: ResolvedOptions): string[] {
  return [
    `--heartbeat-interval=${options.heartbeatInterval}`,
    `--election-timeout=${options.electionTimeout}`,
    ...(options.fsync ? [] : ['--unsafe-no-fsync']),
    '--auto-compaction-retention=0',
    '--snapshot-count=100000',
    '--logger=zap',
    '--log-level=error',
    '--log-outputs=stderr',
  ];
}
