/**
 * A fault-test client: one child process that uses leasehold's public API the way a service would and
 * logs every step as a JSON line on stdout, stamped with `process.hrtime.bigint()` (CLOCK_MONOTONIC,
 * shared by every process on the host, so the parent can order events of all clients and its own
 * faults on one clock). Stdout writes to a pipe are synchronous on Linux, so a line is in the pipe
 * before the next statement runs — even a `kill -9` right after loses nothing that was logged.
 *
 * Usage: `node --import tsx test/fault/client.ts '<ClientConfig as JSON>'`. Commands arrive as JSON
 * lines on stdin (see {@link Command}); in `loop` mode the client also runs lock cycles by itself.
 */
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { noop } from 'cockatiel';
import { Etcd3, type IKeyValue, type IOperation, type IRangeResponse, type ITxnResponse } from 'etcd3';
import { DoubleBarrier, Election, isLeaseholdError, isLeaseLostError, LeaderElector, Mutex, ReadWriteLock, Semaphore, Session, SessionSource, type Leadership } from '../../src/index.js';
import type { ComparatorBuilder } from 'etcd3';
import { multiPrimitive } from './multi-client.js';
import type { ClientConfig, Command, EffectOptions, LogEvent, PrimitiveKind } from './protocol.js';

const config = JSON.parse(process.argv[2] ?? '{}') as ClientConfig;

const hrBase = process.hrtime.bigint();
const perfBase = performance.now();
const now = (): string => process.hrtime.bigint().toString();
/** A `performance.now()` instant (a Session deadline) on the hrtime clock, in ns. */
const toHr = (perf: number): string => (hrBase + BigInt(Math.round((perf - perfBase) * 1e6))).toString();

function log(event: Pick<LogEvent, 'ev' | 'op'> & Partial<LogEvent>): void {
  const line: LogEvent = { ...event, c: config.id, t: now() };
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

function errName(error: unknown): string {
  if (error instanceof Error) return `${error.name === 'Error' ? error.constructor.name : error.name}: ${error.message}`.slice(0, 300);
  return String(error);
}

const client = new Etcd3({
  hosts: config.endpoints,
  ...(config.etcd3Faults === 'none' ? { faultHandling: { host: () => noop, global: noop } } : {}),
});
const callOptions = () => ({ deadline: Date.now() + (config.requestTimeout ?? 5000) });

/** What this client holds — a lock, permits or a leadership — behind one interface. */
interface Held {
  /** The key whose create revision fences (lock key, holder key, campaign key). */
  key: string;
  /** Its create revision: the token, or the term. */
  token: bigint;
  session: Session;
  readonly held: boolean;
  /** A txn guarded by `createRevision(key) == token`. */
  txn(): ComparatorBuilder;
  /** `handle.commit(...)`: applies the writes only while held (refuses locally once ended). */
  commit(...ops: IOperation[]): Promise<unknown>;
  release(): Promise<unknown>;
  /** An election leader's `proclaim`. */
  proclaim?(value: string): Promise<void>;
  /** A MultiLock's keys (one per name; `key` is the first), logged with the acquisition. */
  keys?: readonly string[];
  /** An effect of its own (a MultiLock's, on a counter per name): replaces the one below. */
  effect?(id: string): Promise<void>;
}

/** A leadership as what this client holds. */
function held(leadership: Leadership): Held {
  return {
    key: leadership.key,
    token: leadership.term,
    session: leadership.session,
    get held() {
      return leadership.isLeader;
    },
    txn: () => leadership.txn(),
    commit: (...ops) => leadership.commit(...ops),
    release: () => leadership.resign(),
    proclaim: (value) => leadership.proclaim(value),
  };
}

/** The primitive this client exercises, behind one interface. */
interface Primitive {
  acquire(signal: AbortSignal): Promise<Held>;
}

function makePrimitive(kind: PrimitiveKind, session: Session | SessionSource): Primitive {
  switch (kind) {
    case 'mutex': {
      const mutex = new Mutex(session, config.lock);
      return { acquire: (signal) => mutex.lock({ signal }) };
    }
    case 'semaphore': {
      const semaphore = new Semaphore(session, config.lock, { permits: config.permits ?? 1 });
      return { acquire: (signal) => semaphore.acquire({ signal, weight: config.weight ?? 1 }) };
    }
    case 'read': {
      const rw = new ReadWriteLock(session, config.lock);
      return { acquire: (signal) => rw.readLock({ signal }) };
    }
    case 'write': {
      const rw = new ReadWriteLock(session, config.lock);
      return { acquire: (signal) => rw.writeLock({ signal }) };
    }
    case 'multi':
      return multiPrimitive(session, { client, config, log, errName, callOptions });
    case 'election': {
      const election = new Election(session, config.lock);
      return {
        acquire: async (signal) => {
          return held(await election.campaign(config.id, { signal }));
        },
      };
    }
  }
}

let session: Session | undefined;
/** With `config.source`: the SessionSource every acquisition is taken on (`session` is its latest). */
let sessions: SessionSource | undefined;
let primitive: Primitive | undefined;
let handle: Held | undefined;
/** The handle released last: a stale one to write through (effect option `stale`). */
let released: Held | undefined;
let acquiring: AbortController | undefined;
let cycle = 0;
let effectSeq = 0;
let stopping = false;
let goWaiter: (() => void) | undefined;

async function openSession(): Promise<Session> {
  log({ ev: 'invoke', op: 'session' });
  const options = {
    ttl: config.ttl,
    ...(config.requestTimeout === undefined ? {} : { requestTimeout: config.requestTimeout }),
    ...(config.safetyMargin === undefined ? {} : { safetyMargin: config.safetyMargin }),
  };
  if (config.source) {
    sessions = new SessionSource(client, options);
    sessions.on('session', (s) => watchSession(s)); // logged before any acquisition can use it
    primitive = makePrimitive(config.kind, sessions);
    return sessions.current();
  }
  const s = await Session.create(client, options);
  watchSession(s);
  primitive = makePrimitive(config.kind, s);
  return s;
}

/** Logs `s` as a client's session: opened, every move of its deadline, its end. */
function watchSession(s: Session): void {
  session = s;
  // The margin is what we passed, or the documented default (a tenth of the TTL asked for): the
  // checker bounds every deadline we report by the instant we observed it + TTL − margin.
  log({
    ev: 'ok',
    op: 'session',
    lease: s.leaseHex,
    deadline: toHr(s.deadline),
    ttl: s.ttl,
    margin: config.safetyMargin ?? config.ttl * 100,
  });
  s.signal.addEventListener(
    'abort',
    () =>
      log({
        ev: isLeaseLostError(s.signal.reason) ? 'lost' : 'info',
        op: 'session',
        lease: s.leaseHex,
        deadline: toHr(s.deadline),
        err: errName(s.signal.reason),
        cause: (s.signal.reason as { cause?: unknown } | undefined)?.cause === undefined ? undefined : errName((s.signal.reason as { cause?: unknown }).cause),
      }),
    { once: true },
  );
  // The session's validity deadline only moves forward; log each move so the checker knows, for a
  // process that is later killed or paused, the last instant at which it could have believed it held.
  let last = s.deadline;
  const poll = setInterval(() => {
    if (s.signal.aborted) {
      clearInterval(poll);
      return;
    }
    if (s.deadline !== last) {
      last = s.deadline;
      log({ ev: 'info', op: 'deadline', lease: s.leaseHex, deadline: toHr(last) });
    }
  }, 10);
  poll.unref();
}

async function acquire(timeoutMs?: number): Promise<Held | undefined> {
  let s: Session;
  try {
    s = session ?? (await openSession());
  } catch (error) {
    // No session to be had now (etcd out of reach): a loop client tries again on its next cycle.
    log({ ev: 'fail', op: 'session', err: errName(error) });
    return undefined;
  }
  if (!primitive) throw new Error('no primitive');
  const controller = new AbortController();
  acquiring = controller;
  const signal = timeoutMs === undefined ? controller.signal : AbortSignal.any([controller.signal, AbortSignal.timeout(timeoutMs)]);
  log({ ev: 'invoke', op: 'acquire', lease: s.leaseHex, seq: cycle });
  try {
    const h = await primitive.acquire(signal);
    handle = h;
    log({
      ev: 'ok',
      op: 'acquire',
      lease: h.session.leaseHex,
      key: h.key,
      token: h.token.toString(),
      seq: cycle,
      deadline: toHr(h.session.deadline),
      ...(config.kind === 'semaphore' ? { weight: config.weight ?? 1 } : {}),
      ...(h.keys ? { keys: h.keys } : {}),
    });
    return h;
  } catch (error) {
    log({ ev: 'fail', op: 'acquire', lease: s.leaseHex, seq: cycle, err: errName(error), leasehold: isLeaseholdError(error) || error === signal.reason });
    return undefined;
  } finally {
    if (acquiring === controller) acquiring = undefined;
  }
}

function decodeCounter(kv: IKeyValue | undefined): { n: number; id: string | undefined; mod: string } {
  if (!kv) return { n: 0, id: undefined, mod: '0' };
  const value = JSON.parse(kv.value.toString()) as { n: number; id: string };
  return { n: value.n, id: value.id, mod: kv.mod_revision };
}

/**
 * One effect under the lock: read the shared counter, then write `n + 1` with a record of who wrote it.
 * Guarded: a txn that compares `createRevision(lockKey) == token` (the lock) and the counter's mod
 * revision (so a retried txn that already applied is recognised, not applied twice). Unguarded (the
 * negative control): a plain put, as code that checks `held` and then writes would do.
 */
async function effect(options: EffectOptions = {}): Promise<void> {
  const h = options.stale ? released : handle;
  const s = h?.session; // the session of the handle written under (a SessionSource may have a newer one)
  if (!h || !s) {
    log({ ev: 'fail', op: 'effect', id: `${config.id}:none:${effectSeq++}`, err: 'no handle' });
    return;
  }
  const guarded = options.guarded ?? config.guarded ?? true;
  const id = `${config.id}:${h.session.leaseHex}:${h.token}:${effectSeq++}`;
  log({ ev: 'invoke', op: 'effect', id, lease: s.leaseHex, key: h.key, token: h.token.toString(), guarded, deadline: toHr(s.deadline) });
  if ((options.checkHeld ?? true) && !h.held) {
    log({ ev: 'fail', op: 'effect', id, err: 'not held (checked before the effect)', skipped: true });
    return;
  }
  if (h.effect) {
    await h.effect(id);
    return;
  }
  try {
    for (let attempt = 0; ; attempt++) {
      const read: IRangeResponse = await client.kv.range({ key: Buffer.from(config.counter) }, callOptions());
      const before = decodeCounter(read.kvs[0]);
      log({ ev: 'info', op: 'effect', id, phase: 'read', rev: read.header.revision, n: before.n });
      if (options.wait) {
        await new Promise<void>((resolve) => {
          goWaiter = resolve;
        });
        log({ ev: 'info', op: 'effect', id, phase: 'go', held: h.held });
      } else if (options.gapMs) {
        await sleep(options.gapMs);
      }
      const value = JSON.stringify({
        n: before.n + 1,
        id,
        c: config.id,
        lease: h.session.leaseHex,
        key: h.key,
        token: h.token.toString(),
        g: guarded,
      });
      if (!guarded) {
        const res = await client.put(config.counter).value(value).options(callOptions()).exec();
        log({ ev: 'ok', op: 'effect', id, rev: res.header.revision, n: before.n + 1 });
        return;
      }
      if (options.via === 'commit') {
        await commitEffect(h, id, value, before.n + 1);
        return;
      }
      const res: ITxnResponse = await h
        .txn()
        .and(config.counter, 'Mod', '==', before.mod)
        .then(client.put(config.counter).value(value))
        .else(client.get(config.counter), client.get(h.key))
        .options(callOptions())
        .commit();
      if (res.succeeded) {
        log({ ev: 'ok', op: 'effect', id, rev: res.header.revision, n: before.n + 1 });
        return;
      }
      const current = decodeCounter(res.responses[0]?.response_range.kvs[0]);
      const own = res.responses[1]?.response_range.kvs[0];
      if (current.id === id) {
        // An earlier attempt of this very txn applied (etcd3 retries after a lost response).
        log({ ev: 'ok', op: 'effect', id, rev: res.header.revision, n: current.n, retried: true });
        return;
      }
      if (!own || own.create_revision !== h.token.toString()) {
        log({ ev: 'fail', op: 'effect', id, rev: res.header.revision, err: 'not held (guard failed)', fenced: true });
        return;
      }
      // The counter moved: under a mutex that means someone else wrote it (the checker will say who);
      // holders of a semaphore share it and simply try again.
      if (attempt >= (config.effectRetries ?? 0)) {
        log({ ev: 'fail', op: 'effect', id, rev: res.header.revision, err: 'conflict: the counter changed while held' });
        return;
      }
    }
  } catch (error) {
    // Ambiguous: the txn may or may not have applied; the checker resolves it from etcd's history.
    log({ ev: 'fail', op: 'effect', id, err: errName(error), ambiguous: true });
  }
}

/** An effect through `handle.commit()`: applied only while held, or refused (locally or by etcd). */
async function commitEffect(h: Held, id: string, value: string, n: number): Promise<void> {
  try {
    const res = (await h.commit(client.put(config.counter).value(value))) as ITxnResponse;
    log({ ev: 'ok', op: 'effect', id, rev: res.header.revision, n });
  } catch (error) {
    const refused = error instanceof Error && /^Not(Held|Leader)Error$/.test(error.name);
    log({ ev: 'fail', op: 'effect', id, err: errName(error), ...(refused ? { fenced: true } : { ambiguous: true }) });
  }
}

async function proclaim(value: string): Promise<void> {
  const h = handle;
  log({ ev: 'invoke', op: 'proclaim', key: h?.key, token: h?.token.toString(), value });
  try {
    if (!h?.proclaim) throw new Error('no leadership to proclaim with');
    await h.proclaim(value);
    log({ ev: 'ok', op: 'proclaim', key: h.key, token: h.token.toString() });
  } catch (error) {
    log({ ev: 'fail', op: 'proclaim', key: h?.key, token: h?.token.toString(), err: errName(error) });
  }
}

async function release(): Promise<void> {
  const h = handle;
  if (!h) return;
  handle = undefined;
  released = h;
  log({ ev: 'invoke', op: 'release', lease: h.session.leaseHex, key: h.key, token: h.token.toString() });
  try {
    await h.release();
    log({ ev: 'ok', op: 'release', key: h.key, token: h.token.toString() });
  } catch (error) {
    log({ ev: 'fail', op: 'release', key: h.key, token: h.token.toString(), err: errName(error), leasehold: isLeaseholdError(error) });
  }
}

async function closeSession(): Promise<void> {
  const s = session;
  if (!s) return;
  session = undefined;
  primitive = undefined;
  log({ ev: 'invoke', op: 'close', lease: s.leaseHex });
  await (sessions ?? s).close();
  log({ ev: 'ok', op: 'close', lease: s.leaseHex });
}

async function loop(): Promise<void> {
  const cycles = config.cycles ?? Number.POSITIVE_INFINITY;
  for (; cycle < cycles && !stopping; cycle++) {
    if (session && !session.alive && !config.source) {
      if (!config.renew) break;
      session = undefined;
    }
    const h = await acquire(config.acquireTimeoutMs);
    if (h) {
      for (let e = 0; e < (config.effects ?? 1); e++) {
        if (config.holdMs) await sleep(config.holdMs);
        await effect();
      }
      // A holder with no effects (a reader) still holds for `holdMs`.
      if (config.effects === 0 && config.holdMs) await sleep(config.holdMs);
      await release();
    } else if (session && !session.alive && !config.renew && !config.source) {
      break;
    } else {
      await sleep(50);
    }
    if (config.thinkMs) await sleep(config.thinkMs);
  }
}

async function run(command: Command): Promise<void> {
  switch (command.cmd) {
    case 'session':
      await openSession();
      return;
    case 'acquire':
      await acquire(command.timeoutMs);
      return;
    case 'abort':
      acquiring?.abort(new Error('aborted by the test'));
      return;
    case 'effect':
      await effect(command);
      return;
    case 'go':
      goWaiter?.();
      goWaiter = undefined;
      return;
    case 'release':
      await release();
      return;
    case 'proclaim':
      await proclaim(command.value);
      return;
    case 'close':
      await closeSession();
      return;
    case 'stop':
      stopping = true;
      return;
    case 'exit':
      log({ ev: 'info', op: 'exit' });
      process.exit(0);
  }
}

let pending = Promise.resolve();
const lines = createInterface({ input: process.stdin });
// The parent is gone (or let go of us): end at once, like a crash, so no client outlives a test run.
lines.on('close', () => process.exit(0));
lines.on('line', (line) => {
  const command = JSON.parse(line) as Command;
  // `go`, `abort` and `stop` act at once; everything else runs in order.
  if (command.cmd === 'go' || command.cmd === 'abort' || command.cmd === 'stop') {
    void run(command);
    return;
  }
  pending = pending.then(() => run(command)).catch((error: unknown) => log({ ev: 'info', op: 'error', err: errName(error) }));
});

async function observe(): Promise<void> {
  const s = await openSession();
  const election = new Election(s, config.lock);
  const controller = new AbortController();
  const check = setInterval(() => {
    if (stopping) controller.abort();
  }, 20);
  try {
    // With `vacancies`, a `null` (nobody leads, or nobody can be confirmed) is logged without a key.
    const states = config.vacancies ? election.observe({ signal: controller.signal, vacancies: true }) : election.observe({ signal: controller.signal });
    for await (const state of states) {
      log({ ev: 'info', op: 'observe', key: state?.key, token: state?.term.toString(), value: state?.value });
    }
  } finally {
    clearInterval(check);
  }
}

log({ ev: 'info', op: 'start', pid: process.pid });
/** Runs a mode to its end, closes the session, logs the exit and ends the process (a failure is logged). */
async function runMode(body: () => Promise<void>): Promise<never> {
  try {
    await body();
    await closeSession();
  } catch (error) {
    log({ ev: 'info', op: 'error', err: errName(error) });
  }
  log({ ev: 'info', op: 'exit' });
  client.close();
  process.exit(0);
}

if (config.mode === 'observe') await runMode(observe);
/**
 * Barrier mode: DoubleBarrier rounds until `stop`. Each step is logged with the revision of a read made
 * right after it (and the round: `ready`'s create revision), so the parent can check it against etcd's
 * history (test/fault/rounds.ts). An `enter` given up (the `abort` command, or `acquireTimeoutMs`) is
 * logged and the next round tried; with `stepwise`, each `enter` and each `leave` waits for a `go`.
 */
async function barrierRounds(): Promise<void> {
  const s = await openSession();
  const barrier = new DoubleBarrier(s, config.lock, { count: config.count ?? 2 });
  const ready = `${config.lock}/ready`;
  const revision = async (): Promise<{ rev: string; round: string | undefined }> => {
    const res = await client.kv.range({ key: Buffer.from(ready) }, callOptions());
    return { rev: res.header.revision, round: res.kvs[0]?.create_revision };
  };
  const go = async (): Promise<void> => {
    if (config.stepwise) await new Promise<void>((resolve) => (goWaiter = resolve));
  };
  /** One logged step of a round: invoke, then ok (with the revision read after it) or fail. */
  const step = async (op: 'enter' | 'leave'): Promise<'ok' | 'gave up' | 'failed'> => {
    await go();
    if (stopping && op === 'enter') return 'failed';
    const controller = new AbortController();
    if (op === 'enter') acquiring = controller;
    const limit = AbortSignal.timeout(op === 'enter' ? (config.acquireTimeoutMs ?? 30_000) : 30_000);
    log({ ev: 'invoke', op, lease: s.leaseHex, seq: cycle });
    try {
      await barrier[op]({ signal: AbortSignal.any([controller.signal, limit]) });
    } catch (error) {
      const gaveUp = op === 'enter' && (controller.signal.aborted || limit.aborted) && s.alive;
      log({ ev: 'fail', op, lease: s.leaseHex, seq: cycle, err: errName(error), leasehold: isLeaseholdError(error), gaveUp });
      return gaveUp ? 'gave up' : 'failed';
    } finally {
      if (acquiring === controller) acquiring = undefined;
    }
    log({ ev: 'ok', op, lease: s.leaseHex, seq: cycle, ...(await revision()) });
    return 'ok';
  };
  for (; !stopping; cycle++) {
    const entered = await step('enter');
    if (entered === 'gave up') continue; // try the next round
    if (entered === 'failed') return;
    if (config.holdMs) await sleep(config.holdMs);
    if ((await step('leave')) !== 'ok') return;
    if (config.thinkMs) await sleep(config.thinkMs);
  }
}

if (config.mode === 'barrier') await runMode(barrierRounds);
/**
 * Elector mode: a LeaderElector on `lock` until `stop`. Each term is logged as an acquisition (its
 * session as opened, the first time it is seen) with guarded effects every `holdMs` while it lasts,
 * and a release when it ends for another reason than a lost lease (which `watchSession` logs); every change
 * of `elector.leader` is logged as an `observe` line (no key: nobody, as far as it knows).
 */
async function electorTerms(): Promise<void> {
  const elector = new LeaderElector(client, config.lock, {
    identity: config.id,
    ttl: config.ttl,
    recampaignDelay: 100,
    session: {
      ...(config.requestTimeout === undefined ? {} : { requestTimeout: config.requestTimeout }),
      ...(config.safetyMargin === undefined ? {} : { safetyMargin: config.safetyMargin }),
    },
  });
  elector.on('leaderChanged', (state) => log({ ev: 'info', op: 'observe', key: state?.key, token: state?.term.toString(), value: state?.value }));
  const seen = new WeakSet<Session>();
  const stopper = setInterval(() => stopping && void elector.stop(), 20);
  try {
    await elector.run(async ({ signal, term, leadership, session: s }) => {
      if (!seen.has(s)) watchSession(s);
      seen.add(s);
      log({ ev: 'ok', op: 'acquire', lease: s.leaseHex, key: leadership.key, token: term.toString(), seq: cycle++, deadline: toHr(s.deadline) });
      handle = held(leadership);
      while (!signal.aborted) {
        await sleep(config.holdMs ?? 100);
        if (!signal.aborted) await effect();
      }
      handle = undefined;
      if (!isLeaseLostError(signal.reason)) log({ ev: 'invoke', op: 'release', lease: s.leaseHex, key: leadership.key, token: term.toString(), err: errName(signal.reason) });
    });
  } finally {
    clearInterval(stopper);
  }
}

if (config.mode === 'elector') await runMode(electorTerms);
if (config.mode === 'loop') {
  await runMode(async () => {
    await openSession();
    if (config.waitStart) {
      await new Promise<void>((resolve) => {
        goWaiter = resolve;
      });
    }
    await loop();
    await release();
  });
}
