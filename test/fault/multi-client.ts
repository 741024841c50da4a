/**
 * The fault client's MultiLock (`kind: 'multi'`). Each acquisition takes a random set of one to
 * `maxNames` names out of `locks`, in a random order, drawn from a PRNG seeded by `seed`. Each effect
 * increments the counter of every held name (`${name}-counter`) in one txn, guarded by the handle (on
 * every key) and by each counter's mod revision. The record written to each counter names the key of
 * that counter's name, so the checker can judge every name as a lock of its own
 * (test/fault/multi-check.ts).
 */
import type { Etcd3, IKeyValue, ITxnResponse } from 'etcd3';
import { MultiLock, type MultiLockHandle, type Session, type SessionSource } from '../../src/index.js';
import { prng } from '../prng.js';
import type { ClientConfig, LogEvent } from './protocol.js';

/** The counter that effects under the name `name` increment. */
export const counterOf = (name: string): string => `${name}-counter`;

/** What the multi client borrows from client.ts. */
export interface MultiContext {
  client: Etcd3;
  config: ClientConfig;
  log: (event: Pick<LogEvent, 'ev' | 'op'> & Partial<LogEvent>) => void;
  errName: (error: unknown) => string;
  callOptions: () => { deadline: number };
}

let random: (() => number) | undefined;

/** A random set of the configured names, in a random order. */
function pickNames(config: ClientConfig): string[] {
  random ??= prng(config.seed ?? 1);
  const pool = [...(config.locks ?? [])];
  const size = 1 + Math.floor(random() * Math.min(config.maxNames ?? 3, pool.length));
  const names: string[] = [];
  while (names.length < size) names.push(...pool.splice(Math.floor(random() * pool.length), 1));
  return names;
}

/** The counter's value as the effects wrote it, and its mod revision. */
function counterState(kv: IKeyValue | undefined): { n: number; id: string | undefined; mod: string } {
  const value = kv ? (JSON.parse(kv.value.toString()) as { n: number; id: string }) : undefined;
  return { n: value?.n ?? 0, id: value?.id, mod: kv?.mod_revision ?? '0' };
}

/** One effect: every held name's counter + 1, in one txn guarded by every key and every counter. */
async function multiEffect(ctx: MultiContext, h: MultiLockHandle, id: string): Promise<void> {
  const { client, config, log, callOptions } = ctx;
  const counters = h.names.map(counterOf);
  try {
    const before = await Promise.all(counters.map(async (c) => counterState((await client.kv.range({ key: Buffer.from(c) }, callOptions())).kvs[0])));
    const record = (i: number): string =>
      JSON.stringify({ n: before[i]!.n + 1, id, c: config.id, lease: h.session.leaseHex, key: h.keys[i], token: h.token.toString(), g: true });
    let txn = h.txn();
    for (const [i, c] of counters.entries()) txn = txn.and(c, 'Mod', '==', before[i]!.mod);
    const res: ITxnResponse = await txn
      .then(...counters.map((c, i) => client.put(c).value(record(i))))
      .else(client.get(counters[0]!), ...h.keys.map((k) => client.get(k)))
      .options(callOptions())
      .commit();
    if (res.succeeded) {
      log({ ev: 'ok', op: 'effect', id, rev: res.header.revision, n: before[0]!.n + 1 });
      return;
    }
    const [current, ...own] = res.responses.map((r) => r.response_range.kvs[0]);
    if (counterState(current).id === id) {
      log({ ev: 'ok', op: 'effect', id, rev: res.header.revision, retried: true });
    } else if (own.some((kv) => kv?.create_revision !== h.token.toString())) {
      log({ ev: 'fail', op: 'effect', id, rev: res.header.revision, err: 'not held (guard failed)', fenced: true });
    } else {
      log({ ev: 'fail', op: 'effect', id, rev: res.header.revision, err: 'conflict: a counter changed while held' });
    }
  } catch (error) {
    // Ambiguous: the txn may or may not have applied; the checker resolves it from etcd's history.
    log({ ev: 'fail', op: 'effect', id, err: ctx.errName(error), ambiguous: true });
  }
}

/** The client's primitive for `kind: 'multi'`: a MultiLock on a fresh random set per acquisition. */
export function multiPrimitive(session: Session | SessionSource, ctx: MultiContext) {
  return {
    acquire: async (signal: AbortSignal) => {
      const h = await new MultiLock(session, pickNames(ctx.config)).lock({ signal });
      return Object.assign(h, { effect: (id: string) => multiEffect(ctx, h, id) });
    },
  };
}
