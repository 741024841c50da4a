/**
 * `leasehold ls [--prefix P] [--json]`: every primitive under a prefix (`listPrimitives`), with the
 * seconds each holder's and waiter's lease has left, as text or one JSON object. Takes no lease and
 * writes nothing. Every key, name and value from etcd is printed escaped: a key with a terminal escape
 * sequence or a right-to-left override in it is shown, never obeyed.
 */
import type { Command } from 'commander';
import type { Namespace } from 'etcd3';
import { listDefaults, listPrimitives, type ForeignKey, type ListedContender, type ListedPrimitive, type Listing } from '../list.js';
import type { ConnectionFlags } from './connect.js';
import { answerTimeoutMs, connected, silent, ttls } from './inspect.js';
import { parseInteger } from './args.js';
import { connectionOptions, parser } from './options.js';
import { stdout } from './output.js';
import { toJson, type ReportFlags } from './report.js';

/** At most this many distinct leases get a `LeaseTimeToLive` (one request each): the rest show `ttl ?`. */
export const maxTtlLookups = 256;

/** Flags of `ls`. */
export interface LsFlags extends ConnectionFlags, ReportFlags {
  prefix?: string;
  maxKeys?: number;
}

/** Text from etcd, safe for a terminal: JSON-quoted, with C1 controls and bidirectional overrides escaped too. */
export function quoted(text: string): string {
  return JSON.stringify(text).replace(/[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A key as a word when it is plain, else {@link quoted}. */
function word(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : quoted(text);
}

function ttlText(leaseId: string, left: Map<string, number | null>): string {
  if (leaseId === '0') return 'no lease (never expires)';
  const ttl = left.get(leaseId);
  return ttl === undefined || ttl === null ? 'ttl ?' : ttl < 0 ? 'expired' : `ttl ${ttl}s`;
}

function contenderLine(p: ListedPrimitive, label: string, c: ListedContender, left: Map<string, number | null>): string {
  const parts = [`  ${label.padEnd(9)}`, word(c.key), `token ${c.token}`, c.leaseId === '0' ? '' : `lease ${c.leaseHex}`, ttlText(c.leaseId, left)];
  if (c.mode !== undefined) parts.push(c.mode);
  if (c.weight !== undefined) parts.push(`weight ${c.weight}/${c.permits}`);
  if (p.kind === 'election') parts.push(`value ${quoted(c.value.length > 200 ? `${c.value.slice(0, 200)}…` : c.value)}`);
  if (c.multiLock !== undefined) parts.push(`multi-lock ${c.multiLock.map(quoted).join(', ')}`);
  if (c.problem !== undefined) parts.push(`PROBLEM: ${c.problem}`);
  return parts.filter((x) => x !== '').join('  ');
}

/** The heading of one primitive: its kind, name and state in a few words. */
function heading(p: ListedPrimitive): string {
  const waiting = `${p.waiters.length} waiting`;
  const head = `${p.kind} ${quoted(p.name)}`;
  const leader = p.holders[0];
  switch (p.kind) {
    case 'mutex':
      return `${head}: ${p.holders.length > 0 ? 'held' : 'free'}, ${waiting}`;
    case 'election':
      return `${head}: ${leader ? `leader ${quoted(leader.value)}, term ${leader.token}` : 'no leader'}, ${waiting}`;
    case 'rwlock':
      return `${head}: ${p.holders[0]?.mode === 'write' ? 'written' : `${p.holders.length} reading`}, ${waiting}`;
    case 'semaphore':
      return `${head}: ${p.permits!.used} of ${p.permits!.total ?? '? (participants disagree)'} permits used, ${waiting}`;
    case 'barrier':
      return `${head}: raised`;
    case 'double-barrier':
      return `${head}: ${p.round ? `round of ${p.round.count ?? '?'} open, ${p.holders.length} in` : 'no round open'}, ${waiting}`;
  }
}

function foreignLine(f: ForeignKey, left: Map<string, number | null>): string {
  return `  ${word(f.key)}  token ${f.token}  ${f.leaseId === '0' ? 'no lease' : `lease ${f.leaseHex}  ${ttlText(f.leaseId, left)}`}  value ${f.valueBytes} bytes: ${f.reason}`;
}

/** The listing as text, one line per primitive and per key. */
export function listingText(l: Listing, left: Map<string, number | null>): string {
  const count = (n: number, what: string): string => `${n} ${what}${n === 1 ? '' : 's'}`;
  const out = [`at revision ${l.revision}, prefix ${quoted(l.prefix)}: ${count(l.primitives.length, 'primitive')}, ${count(l.foreign.length, 'foreign key')} (${count(l.keys, 'key')} read)`];
  for (const p of l.primitives) {
    out.push(heading(p));
    const label = p.kind === 'election' ? 'leader' : p.kind === 'double-barrier' ? 'in' : p.kind === 'barrier' ? 'raised by' : 'holder';
    for (const h of p.holders) out.push(contenderLine(p, label, h, left));
    p.waiters.forEach((w, i) => out.push(contenderLine(p, `waiter ${i + 1}`, w, left)));
    if (p.round?.problem !== undefined) out.push(`  round record ${word(p.round.key)}: PROBLEM: ${p.round.problem}`);
  }
  if (l.foreign.length > 0) out.push("foreign keys (no primitive's layout, or an invalid record; never counted as holders):");
  for (const f of l.foreign) out.push(foreignLine(f, left));
  if (l.truncated) out.push(`(stopped after ${l.keys} keys, --max-keys: narrow --prefix to see the rest)`);
  return out.join('\n');
}

/** Every lease of the listing, holders and waiters first. */
function leasesOf(l: Listing): string[] {
  return [...new Set([...l.primitives.flatMap((p) => [...p.holders, ...p.waiters].map((c) => c.leaseId)), ...l.foreign.map((f) => f.leaseId)])];
}

/** `leasehold ls`: prints the listing and resolves with the exit code. */
export async function ls(flags: LsFlags, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return connected({ command: 'ls', prefix: flags.prefix ?? '' }, flags, env, async (ns: Namespace, endpoints) => {
    const signal = AbortSignal.timeout(answerTimeoutMs);
    const listing = await listPrimitives(ns, { prefix: flags.prefix ?? '', signal, ...(flags.maxKeys === undefined ? {} : { maxKeys: flags.maxKeys }) }).catch((error: unknown) => {
      throw signal.aborted ? silent(endpoints, error) : error;
    });
    const left = await ttls(ns, leasesOf(listing).slice(0, maxTtlLookups), signal);
    if (!flags.json) {
      stdout.line(listingText(listing, left));
      return 0;
    }
    const withTtl = (c: { leaseId: string }) => ({ ...c, ttl: c.leaseId === '0' ? null : (left.get(c.leaseId) ?? null) });
    const primitives = listing.primitives.map((p) => ({ ...p, holders: p.holders.map(withTtl), waiters: p.waiters.map(withTtl) }));
    stdout.line(toJson({ ...listing, primitives, foreign: listing.foreign.map(withTtl) }));
    return 0;
  });
}

/** Adds `ls` to `program`; `exit` receives its exit code. */
export function addLsCommand(program: Command, exit: (code: number) => void): void {
  connectionOptions(program.command('ls').description('list every lock, semaphore, election and barrier under a prefix, with holders and waiters (no lease is taken)'))
    .option('--prefix <prefix>', 'list only keys that start with this (default: every key)')
    .option('--max-keys <n>', `read at most this many keys (default: ${listDefaults.maxKeys})`, parser((t) => parseInteger(t, '--max-keys', 1)))
    .addHelpText('after', `
Recognises leasehold's keys and those of Go's concurrency/recipe packages and etcdctl lock/elect;
keys that fit no layout, or carry an invalid record, are listed as foreign (never as holders).
Exit code 0; 69 etcd unreachable or silent for 10 s; 77 denied.

Examples:
  $ leasehold ls --prefix jobs/
  $ leasehold ls --json | jq '.primitives[] | select(.waiters | length > 0) | .name'`)
    .action(async (flags: LsFlags) => exit(await ls(flags)));
}
