/** What the fault-test parent and its client processes say to each other. */

export type PrimitiveKind = 'mutex' | 'semaphore' | 'election' | 'read' | 'write' | 'multi';

/** The client's configuration, passed as JSON in argv[2]. */
export interface ClientConfig {
  /** A name for the client in logs and reports, e.g. `c3`. */
  id: string;
  endpoints: string[];
  kind: PrimitiveKind;
  /** The lock (or semaphore, or election) name. */
  lock: string;
  /** The shared counter that effects increment. */
  counter: string;
  /** Lease TTL in seconds. */
  ttl: number;
  requestTimeout?: number;
  safetyMargin?: number;
  /**
   * etcd3's own fault handling: its defaults (a global retry of 3 and a per-host circuit breaker), or
   * none — leasehold retries by itself (see docs/guarantees.md on etcd3's breakers). @default 'default'
   */
  etcd3Faults?: 'default' | 'none';
  /** Semaphore permits. */
  permits?: number;
  /** How many permits each acquisition of a semaphore takes. @default 1 */
  weight?: number;
  /**
   * `loop` runs lock cycles by itself until `cycles` or `stop`; `manual` only obeys commands;
   * `observe` follows an election's leader (`Election.observe`) and logs each state until `stop`;
   * `barrier` runs DoubleBarrier rounds (`enter`, hold `holdMs`, `leave`) on `lock` with `count`;
   * `elector` runs a LeaderElector on `lock` (terms as acquisitions, `elector.leader` as observe lines).
   */
  mode: 'loop' | 'manual' | 'observe' | 'barrier' | 'elector';
  /** DoubleBarrier participants per round (barrier mode). */
  count?: number;
  /** Barrier mode: wait for a `go` command before each `enter` and each `leave`. */
  stepwise?: boolean;
  cycles?: number;
  /** Sleep inside the critical section before each effect. */
  holdMs?: number;
  /** Effects per cycle. @default 1 */
  effects?: number;
  /** Sleep between cycles. */
  thinkMs?: number;
  /** Whether effects are guarded txns. @default true */
  guarded?: boolean;
  /** How often an effect re-reads and retries when the counter moved under it (semaphore holders share it). @default 0 */
  effectRetries?: number;
  /** Give up an acquisition after this long. */
  acquireTimeoutMs?: number;
  /** Loop mode: open the session, then wait for a `go` command before the first cycle. */
  waitStart?: boolean;
  /** After a lost session, open a new one and go on (loop mode). */
  renew?: boolean;
  /** `multi`: the names each acquisition draws its set from (see test/fault/multi-client.ts). */
  locks?: string[];
  /** `multi`: the most names in one set. @default 3 */
  maxNames?: number;
  /** `multi`: the seed of the PRNG that draws the sets. @default 1 */
  seed?: number;
  /**
   * Take every acquisition on a SessionSource (its current Session) instead of one fixed Session: a
   * lost lease is replaced by the source, and loop mode goes on without `renew`. Each session the source
   * grants is logged as an `ok session` line.
   */
  source?: boolean;
  /** `observe` mode: follow with `vacancies: true` (a `null` is logged as an observe line without a key). */
  vacancies?: boolean;
}

/** How one effect behaves (manual mode). */
export interface EffectOptions {
  guarded?: boolean;
  /** Check `handle.held` before the effect and skip it when false. @default true */
  checkHeld?: boolean;
  /** After reading the counter, wait for a `go` command before writing it. */
  wait?: boolean;
  /** After reading the counter, sleep this long before writing it. */
  gapMs?: number;
  /**
   * Write through the handle released last (a stale one: same key name, older token) instead of the
   * current one. @default false
   */
  stale?: boolean;
  /**
   * `txn`: the guarded txn of `handle.txn()` with the counter's mod revision compared too; `commit`:
   * `handle.commit(put)`, which also refuses locally once the handle has ended. @default 'txn'
   */
  via?: 'txn' | 'commit';
}

export type Command =
  | { cmd: 'session' }
  | { cmd: 'acquire'; timeoutMs?: number }
  | { cmd: 'abort' }
  | ({ cmd: 'effect' } & EffectOptions)
  | { cmd: 'go' }
  | { cmd: 'release' }
  | { cmd: 'proclaim'; value: string }
  | { cmd: 'close' }
  | { cmd: 'stop' }
  | { cmd: 'exit' };

/** One line of a client's log (or of the parent's fault log, with `c: 'parent'`). */
export interface LogEvent {
  /** The client id. */
  c: string;
  /** `process.hrtime.bigint()` when the line was written, in ns, as a decimal string. */
  t: string;
  ev: 'invoke' | 'ok' | 'fail' | 'lost' | 'info' | 'fault';
  op: string;
  /** The session's lease in lower-case hex. */
  lease?: string;
  key?: string;
  /** A fencing token (create revision), decimal. */
  token?: string;
  /** An etcd response header revision, decimal. */
  rev?: string;
  /** The session's validity deadline on the hrtime clock, in ns. */
  deadline?: string;
  /** `ok session` only: the lease TTL etcd granted (`session.ttl`), in seconds. */
  ttl?: number;
  /** `ok session` only: the session's `safetyMargin` in ms (the option passed, or its documented default). */
  margin?: number;
  /** `ok acquire` of a semaphore: the permits it took. */
  weight?: number;
  seq?: number;
  /** An effect's id: `client:lease:token:n`. */
  id?: string;
  err?: string;
  [extra: string]: unknown;
}
