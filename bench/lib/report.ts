/** The markdown report and the targets of issue 4, computed from the rows of one run. */
import type { Row } from './harness.js';
import type { EtcdInfo, Machine } from './machine.js';
import type { BenchOptions } from './options.js';
import { round } from './stats.js';
import { transportTable, transportTargets } from './transports.js';

const dash = '–';

function num(value: number | null | undefined, unit = ''): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return dash;
  return `${round(value)}${unit}`;
}

function fixed(value: number | null | undefined, digits = 2): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return dash;
  return value.toFixed(digits);
}

/** Rows that sit idle between operations on purpose (the idle floor, leader handovers). */
function hasIdle(r: Row): boolean {
  return r.scenario === 'floor-idle' || r.scenario.endsWith('-resign');
}

/** The main results table: one line per contention / floor / failover row. */
export function resultsTable(rows: readonly Row[]): string {
  const head =
    '| scenario | workers | acquisitions | ops/s | acquire p50 / p99 (ms) | handoff p50 / p99 (ms) | unary req / acq | watch events / acq | keep-alive msgs / acq | watch msgs / acq | writes / acq | CPU ms / acq: clients / etcd |\n' +
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|';
  const lines = rows
    .filter((r) => !r.scenario.startsWith('memory') && r.scenario !== 'waiters')
    .map((r) => {
      if (r.status !== 'ok') {
        return `| ${r.label} | ${r.workers ?? dash} | ${r.status}: ${r.reason ?? ''} | | | | | | | | | |`;
      }
      const e = r.etcd;
      const capped = r.extra?.['capped'] === true ? ' (capped)' : '';
      return [
        '',
        r.label,
        r.workers ?? dash,
        `${r.ops ?? dash}${capped}`,
        num(r.opsPerSec),
        `${num(r.acquire?.p50)} / ${num(r.acquire?.p99)}`,
        `${num(r.handoff?.p50)} / ${num(r.handoff?.p99)}`,
        fixed(e?.unary),
        fixed(e?.watchEvents),
        e ? fixed(e.keepAliveMsgs.received + e.keepAliveMsgs.sent) : dash,
        e ? fixed(e.watchMsgs.received + e.watchMsgs.sent) : dash,
        fixed(e?.proposals),
        // Rows that idle between operations would show etcd's idle background (raft heartbeats) as per-op CPU.
        hasIdle(r) ? dash : `${fixed(r.extra?.['clientCpuMsPerAcq'] as number | undefined)} / ${fixed(e?.cpuMs)}`,
        '',
      ]
        .join(' | ')
        .trim();
    });
  return [head, ...lines].join('\n');
}

/** Unary requests per acquisition by gRPC method, for the lock rows. */
export function methodTable(rows: readonly Row[]): string {
  const withEtcd = rows.filter((r) => r.status === 'ok' && r.etcd && r.workers !== null);
  const methods = [...new Set(withEtcd.flatMap((r) => Object.keys(r.etcd!.unaryByMethod)))].sort();
  if (methods.length === 0) return '';
  const head = `| scenario | workers | ${methods.join(' | ')} | watch streams opened / acq | keep-alive streams opened / acq |\n|---|---:|${methods.map(() => '---:').join('|')}|---:|---:|`;
  const lines = withEtcd.map(
    (r) =>
      `| ${r.label} | ${r.workers} | ${methods.map((m) => fixed(r.etcd!.unaryByMethod[m] ?? 0)).join(' | ')} | ${fixed(r.etcd!.streamsOpened.watch)} | ${fixed(r.etcd!.streamsOpened.keepAlive)} |`,
  );
  return [head, ...lines].join('\n');
}

/** Where a leasehold handoff's time goes: the split at the waiter's wake-up event (see probe.ts). */
export function insideTable(rows: readonly Row[]): string {
  const q = (r: Row, key: string): string => {
    const v = r.extra?.[key] as { p50?: number | null } | undefined;
    return num(v?.p50);
  };
  const lines: string[] = [];
  for (const r of rows) {
    if (r.status !== 'ok') continue;
    if (r.scenario === 'mutex' && (r.workers ?? 0) > 1) {
      lines.push(
        `| ${r.label} ×${r.workers} | ${num(r.release?.p50)} | ${q(r, 'releaseToWakeEvent')} | ${q(r, 'wakeEventToAcquired')} | ${num(r.handoff?.p50)} | ${fixed(r.extra?.['clientCpuMsPerAcq'] as number)} | ${fixed(r.etcd?.cpuMs)} |`,
      );
    }
    if (r.scenario === 'leasehold-resign') {
      lines.push(
        `| ${r.label} | ${num(r.acquire?.p50)} (resign) | ${q(r, 'resignCalledToWakeEvent')} (from the resign() call) | ${q(r, 'wakeEventToElected')} | ${num(r.handoff?.p50)} (from the call) | – | – |`,
      );
    }
  }
  if (lines.length === 0) return '';
  return [
    '| row | release() p50 | release resolved → wake event p50 | wake event → acquired p50 | handoff p50 | client CPU ms / acq | etcd CPU ms / acq |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...lines,
  ].join('\n');
}

export function memoryTable(rows: readonly Row[]): string {
  const mem = rows.filter((r) => r.scenario.startsWith('memory'));
  if (mem.length === 0) return '';
  const head =
    '| what | locks held | heap / 1,000 locks (MiB) | external / 1,000 locks (MiB) | RSS / 1,000 locks (MiB) | peak RSS (MiB) | time to acquire all (s) |\n|---|---:|---:|---:|---:|---:|---:|';
  const lines = mem.map((r) => {
    if (r.status !== 'ok') return `| ${r.label} | ${r.status}: ${r.reason ?? ''} | | | | | |`;
    const x = r.extra ?? {};
    const n = (k: string) => fixed(x[k] as number | undefined);
    return `| ${r.label} | ${x['locks'] as number} | ${n('heapPer1000MiB')} | ${n('externalPer1000MiB')} | ${n('rssPer1000MiB')} | ${fixed(x['peakRssMiB'] as number, 1)} | ${n('acquireSeconds')} |`;
  });
  return [head, ...lines].join('\n');
}

export function waitersTable(rows: readonly Row[]): string {
  const w = rows.filter((r) => r.scenario === 'waiters');
  if (w.length === 0) return '';
  const head =
    '| what | waiters | watch streams opened by the client | watchers on them | watch streams open on etcd | heap (MiB) | handoff p50 / p99 (ms) |\n|---|---:|---:|---:|---:|---:|---:|';
  const lines = w.map((r) => {
    if (r.status !== 'ok') return `| ${r.label} | ${r.status}: ${r.reason ?? ''} | | | | | |`;
    const x = r.extra ?? {};
    return `| ${r.label} | ${x['waiters'] as number} | ${x['hubStreamsOpened'] as number} | ${x['hubWatchers'] as number} | ${x['etcdOpenWatchStreams'] as number} | ${fixed(x['heapMiB'] as number, 1)} | ${fixed(r.handoff?.p50)} / ${fixed(r.handoff?.p99)} |`;
  });
  return [head, ...lines].join('\n');
}

/** One target of the issue, evaluated. */
export interface Target {
  target: string;
  measured: string;
  status: 'met' | 'missed' | 'pending';
}

function find(rows: readonly Row[], scenario: string, workers?: number): Row | undefined {
  return rows.find((r) => r.scenario === scenario && (workers === undefined || r.workers === workers) && r.status === 'ok');
}

/** "Flat" from the fewest to the most contended workers: grows by at most 25 % (a herd grows ~N×). */
function flat(a: number, b: number): boolean {
  return b <= a * 1.25 + 0.05;
}

export function evaluateTargets(rows: readonly Row[], workers: readonly number[], failoverTtl: number): Target[] {
  const out: Target[] = [];
  const contended = workers.filter((w) => w >= 10);
  const floor = find(rows, 'floor')?.handoff?.p50 ?? null;
  const pending = (target: string, why: string): Target => ({ target, measured: why, status: 'pending' });
  const check = (target: string, ok: boolean, measured: string): Target => ({
    target,
    measured,
    status: ok ? 'met' : 'missed',
  });

  for (const w of contended) {
    const m = find(rows, 'mutex', w);
    for (const [scenario, what] of [
      ['etcd3-lock', 'polled etcd3 Lock'],
      ['etcd3-election', 'etcd3 Election lock'],
    ] as const) {
      const b = find(rows, scenario, w);
      const target = `${w} workers: Mutex ops/s ≥ 3× ${what}`;
      if (!m?.opsPerSec || !b?.opsPerSec) out.push(pending(target, 'row missing'));
      else {
        const ratio = m.opsPerSec / b.opsPerSec;
        out.push(check(target, ratio >= 3, `${num(m.opsPerSec)} vs ${num(b.opsPerSec)} ops/s = ${ratio.toFixed(1)}×`));
      }
    }
    const target = `${w} workers: Mutex handoff p50 ≤ 1.5× floor`;
    if (m?.handoff?.p50 == null || floor === null) out.push(pending(target, 'row missing'));
    else {
      const ratio = m.handoff.p50 / floor;
      out.push(check(target, ratio <= 1.5, `${num(m.handoff.p50)} ms vs floor ${num(floor)} ms = ${ratio.toFixed(2)}×`));
    }
    if (!m?.etcd) {
      out.push(pending(`${w} workers: Mutex ≤ 4 unary requests / acquisition`, 'row missing'));
      out.push(pending(`${w} workers: Mutex ≤ 1.5 watch events / acquisition`, 'row missing'));
    } else {
      out.push(check(`${w} workers: Mutex ≤ 4 unary requests / acquisition`, m.etcd.unary <= 4, fixed(m.etcd.unary)));
      out.push(
        check(`${w} workers: Mutex ≤ 1.5 watch events / acquisition`, m.etcd.watchEvents <= 1.5, fixed(m.etcd.watchEvents)),
      );
    }
  }
  if (contended.length >= 2) {
    const lo = contended[0]!;
    const hi = contended.at(-1)!;
    for (const [scenario, what] of [
      ['mutex', 'Mutex'],
      ['semaphore', 'Semaphore'],
    ] as const) {
      const a = find(rows, scenario, lo);
      const b = find(rows, scenario, hi);
      const metrics: [string, (r: Row) => number][] =
        scenario === 'mutex'
          ? [
              ['unary requests', (r) => r.etcd!.unary],
              ['watch events', (r) => r.etcd!.watchEvents],
            ]
          : [['watch events', (r) => r.etcd!.watchEvents]];
      for (const [label, get] of metrics) {
        const target = `${what}: ${label} / acquisition flat from ${lo} to ${hi} workers`;
        if (!a?.etcd || !b?.etcd) out.push(pending(target, 'row missing'));
        else out.push(check(target, flat(get(a), get(b)), `${fixed(get(a))} → ${fixed(get(b))}`));
      }
    }
  }
  if (workers.includes(1)) {
    const m = find(rows, 'mutex', 1);
    const b = find(rows, 'etcd3-lock', 1);
    if (!m?.etcd) out.push(pending('1 worker: Mutex ≤ 2 unary requests per lock+release', 'row missing'));
    else out.push(check('1 worker: Mutex ≤ 2 unary requests per lock+release', m.etcd.unary <= 2, fixed(m.etcd.unary)));
    const target = '1 worker: Mutex ops/s ≥ polled etcd3 Lock';
    if (!m?.opsPerSec || !b?.opsPerSec) out.push(pending(target, 'row missing'));
    else {
      out.push(
        check(
          target,
          m.opsPerSec >= b.opsPerSec,
          `${num(m.opsPerSec)} vs ${num(b.opsPerSec)} ops/s = ${(m.opsPerSec / b.opsPerSec).toFixed(2)}×`,
        ),
      );
    }
  }
  const resign = find(rows, 'leasehold-resign');
  const idleFloor = find(rows, 'floor-idle')?.handoff?.p50 ?? null;
  const resignTarget = 'Election: graceful handover (resign) p50 ≤ 3× floor';
  if (resign?.handoff?.p50 == null || (idleFloor ?? floor) === null) {
    out.push(pending(resignTarget, resign ? 'floor missing' : 'leasehold Election row missing'));
  } else {
    // A handover starts from a quiet system (the leader led 150 ms): compare with the floor measured
    // after the same quiet; the ratio to the back-to-back floor is shown too.
    const base = idleFloor ?? floor!;
    const ratio = resign.handoff.p50 / base;
    const vsHot = floor === null ? '' : `; vs the back-to-back floor ${num(floor)} ms: ${(resign.handoff.p50 / floor).toFixed(2)}×`;
    out.push(
      check(
        resignTarget,
        ratio <= 3,
        `${num(resign.handoff.p50)} ms vs ${idleFloor === null ? 'floor' : 'idle floor'} ${num(base)} ms = ${ratio.toFixed(2)}×${vsHot}`,
      ),
    );
  }
  const kill = find(rows, 'leasehold-kill');
  const limit = failoverTtl * 1000 + 1000;
  if (!kill?.extra) out.push(pending(`Election: failover after kill ≤ TTL + 1 s (${limit} ms)`, 'leasehold Election row missing'));
  else {
    const all = kill.extra['failoverMs'] as number[];
    const worst = Math.max(...all);
    out.push(
      check(
        `Election: failover after kill ≤ TTL + 1 s (${limit} ms)`,
        worst <= limit,
        `worst of ${all.length}: ${num(worst)} ms (p50 ${num(kill.handoff?.p50)} ms)`,
      ),
    );
  }
  return out;
}

/** Why a missed target is missed: the structural part, true of the protocols whatever the run. */
const why: [RegExp, string][] = [
  [
    /ops\/s ≥ 3× polled etcd3 Lock/,
    'Under contention a leasehold acquisition waits for one write (the holder\'s delete), one watch event and one ' +
      'read (the waiter\'s check); the polled Lock keeps attempts in flight, so its handoff is about one write after the ' +
      'revoke. What the polled Lock pays instead is load — see unary requests and keep-alive messages per acquisition, ' +
      'which grow with the workers — and that only caps its throughput once etcd and the clients run out of CPU.',
  ],
  [
    /ops\/s ≥ 3× etcd3 Election lock/,
    'etcd3\'s Election queues as leasehold does (each campaigner watches its predecessor), so its handoff is also one ' +
      'write, one event and one read. It loses time when a waiter\'s watch is younger than etcd\'s 100 ms sync of ' +
      'unsynced watchers (short queues) and to its extra requests (a lease grant, a revoke and three ranges per ' +
      'campaign); in a deep queue the waiting watches are old enough to be synced, so only the extra requests remain.',
  ],
  [
    /handoff p50 ≤ 1\.5× floor/,
    'The floor is one write plus one event; a leasehold handoff is the event plus the waiter\'s verifying read (see ' +
      '"Inside a leasehold handoff"). Under contention that read competes with the previous holder re-joining the queue ' +
      '(a write) and with every client for CPU.',
  ],
  [
    /graceful handover/,
    'A leasehold handover is the resign delete, the event, the follower\'s verifying read and its campaign-value txn, ' +
      'which is a raft write even when the value already matches.',
  ],
];

function missedNotes(targets: readonly Target[]): string {
  const notes = new Set<string>();
  for (const t of targets) {
    if (t.status !== 'missed') continue;
    for (const [pattern, text] of why) if (pattern.test(t.target)) notes.add(text);
  }
  return notes.size === 0 ? '' : `Why the missed ones are missed:\n\n${[...notes].map((n) => `- ${n}`).join('\n')}`;
}

export function targetsTable(targets: readonly Target[]): string {
  return [
    '| target | measured | |',
    '|---|---|---|',
    ...targets.map((t) => `| ${t.target} | ${t.measured} | ${t.status === 'met' ? '✅ met' : t.status === 'missed' ? '❌ missed' : '⏳ pending'} |`),
  ].join('\n');
}

export interface ReportInput {
  rows: readonly Row[];
  targets: readonly Target[];
  machine: Machine;
  etcd: { info: EtcdInfo };
  options: BenchOptions;
  command: string;
  startedAt: Date;
  seconds: number;
  /** The leasehold commit measured. */
  source: string;
}

const meanings = `## What each figure means

- **workers**: contenders, each with its own \`etcd3\` client (own gRPC connections) and, for leasehold, its
  own Session — as separate services would be. They all run in the bench process, so one monotonic
  clock (\`performance.now()\`) times every release and every acquisition.
- **acquisitions / ops/s**: each worker loops acquire → release on one name, holding for 0 ms, until the pass
  has its acquisitions; acquisitions already waiting then finish too, and count (so 50 workers add up to 49 per
  pass). ops/s = acquisitions ÷ wall time of the two passes. A pass stops starting acquisitions after half of
  \`--max-seconds\` (the row is then marked *capped*).
- **acquire p50 / p99**: \`lock()\` (or campaign, or the polling loop) called → resolved, waiting included.
- **handoff p50 / p99**: the previous holder's \`release()\` resolved → the next holder's acquire resolved,
  counted only when the next holder was already waiting at that moment (so never with 1 worker). For the
  semaphore and read/write lock, "previous" is the last release of anyone before the acquisition.
- **floor**: one client deletes a key another client watches; *handoff* is the delete sent → the event
  received, *acquire* is the delete's round trip. No lock can hand over faster than one delete and one event.
  *floor after 150 ms idle* is the same with the system quiet for 150 ms before each delete, as before a
  leader's resignation: on this VM the first request after a few ms of quiet pays for waking processes up
  (see the two floor rows), so the resign target is checked against it.
- **unary req / acq**: etcd's \`grpc_server_handled_total{grpc_type="unary"}\` (every method, every status code)
  after − before, ÷ acquisitions. Includes everything the clients did meanwhile (keep-alives are streams,
  not unary).
- **watch events / acq**: \`etcd_debugging_mvcc_events_total\` after − before, ÷ acquisitions: events etcd sent
  to watchers, one per event per watcher (a herd would show as ~N per acquisition).
- **keep-alive msgs / acq**, **watch msgs / acq**: \`grpc_server_msg_received_total\` + \`grpc_server_msg_sent_total\`
  for \`LeaseKeepAlive\` and \`Watch\` streams, ÷ acquisitions. Watch messages are create/cancel requests and
  created/event/cancel responses.
- **watch streams opened / acq**: \`grpc_server_started_total{grpc_method="Watch"}\` after − before, ÷ acquisitions.
  leasehold multiplexes every wait of a client on one watch stream, closed after 1 s without a watcher; each
  worker is its own client, created anew for each pass, so the figure's floor is workers × passes ÷
  acquisitions (50 workers: 100 ÷ 498 = 0.20; with \`--ops 1000\`, 0.09). etcd3's Election opens one per
  contended acquisition.
- **writes / acq**: \`etcd_server_proposals_committed_total\` ÷ acquisitions: raft proposals (puts, deletes,
  write txns, lease grants/revokes), each a WAL append and, with fsync, a disk flush. A txn that contains a
  put or delete is a proposal even when its compare fails.
- **CPU ms / acq**: CPU time per acquisition of the bench process (all workers' clients together,
  \`process.cpuUsage()\`) and of etcd (\`process_cpu_seconds_total\`). On a 2-core machine shared with other
  work, ops/s is bounded by this CPU as much as by round trips. Absolute CPU and latency figures on a
  shared VM move by up to 2× between runs minutes apart (unchanged code measured 6.5 and 12.5 ms of client
  CPU per acquisition), so compare rows of one run, or interleave runs of two commits.
- **memory**: a fresh child process (\`--expose-gc\`) takes 1,000 locks with distinct names (50 at a time) and
  holds them for 1 s; heap / external / RSS are \`process.memoryUsage()\` after GC minus before the first
  lock, scaled to 1,000 locks; peak RSS is \`process.resourceUsage().maxRSS\` of that process.
- **failover**: *resign*: two candidates; the leader leads 150 ms (so the follower's watch is in place, as in
  real use), then \`resign()\`; handoff = \`resign()\` called → the follower's campaign resolved. *kill*: the
  leader is a separate process, SIGKILLed; handoff = the kill → the follower's campaign resolved (the lease
  TTL must run out first).
- Targets compare rows of this same run (ratios), as the issue asks.`;

/** The per-transport section (issue 21), or nothing when the `transports` scenario did not run. */
function perTransportSection(rows: readonly Row[], workers: readonly number[]): string[] {
  const table = transportTable(rows, workers);
  if (!table) return [];
  return [
    '## Per transport (issue 21)',
    '',
    'leasehold\'s Mutex on each of its two transports — the `etcd3` client\'s gRPC connections and the lean HTTP/2',
    'transport (`h2`) — as rows of their own (`leasehold Mutex on …` above), measured as a group after an unmeasured',
    'warm-up of both: in the first pass etcd3 then h2 at each worker count, in the second the reverse, so each pair is',
    'measured around the same moments. Client CPU is the bench process\'s CPU time ÷ acquisitions (every worker\'s client',
    'and Session; user + system). The memory rows are the memory scenario\'s child process on each transport.',
    '',
    table,
    '',
    targetsTable(transportTargets(rows, workers)),
    '',
  ];
}

export function markdown(input: ReportInput): string {
  const { rows, targets, machine: m, etcd, options, command, startedAt, seconds, source } = input;
  const info = etcd.info;
  const fsyncNote = !options.fsync
    ? '`--unsafe-no-fsync` (the `--no-fsync` flag): the WAL is never flushed.'
    : info.dataDirFs === 'tmpfs'
      ? 'real fsync, but the data dir is on tmpfs, so a flush costs nothing.'
      : `real fsync, data dir on ${info.dataDirFs ?? 'an unknown filesystem'}.`;
  const pendingRows = rows.filter((r) => r.status === 'pending');
  const failedRows = rows.filter((r) => r.status === 'failed');
  const capped = rows.filter((r) => r.extra?.['capped'] === true);
  const parts = [
    '# Benchmarks',
    '',
    `Generated by \`${command}\` (\`bench/run.ts\`) on ${startedAt.toISOString().slice(0, 10)} ` +
      `(${startedAt.toISOString()}); the run took ${Math.round(seconds)} s. Do not edit by hand: run the script again.`,
    '',
    '## Machine and etcd',
    '',
    `- leasehold at commit ${source}.`,
    `- CPU: ${m.cores} cores, ${m.cpuModel}; ${m.memoryGiB} GiB RAM; Linux ${m.kernel}; Node ${m.node}.`,
    `- 1-minute load average ${m.load.start} when the run started, ${m.load.end} when it ended (${m.cores} cores): ` +
      (Math.max(m.load.start, m.load.end) > m.cores / 2
        ? 'other work was running on the machine, so absolute numbers are noisy; the targets are ratios between rows of this one run.'
        : 'the machine was otherwise quiet; the targets are ratios between rows of this one run.'),
    `- etcd ${info.version} (${info.provider}), one member, ${fsyncNote}`,
    info.flags.length > 0 ? `- etcd flags: \`${info.flags.filter((f) => !/^--(name|initial-cluster-token)=/.test(f)).join(' ')}\`` : '',
    `- Bench settings: workers ${options.workers.join(', ')}; ${options.ops} acquisitions per row; lock/session TTL ${options.ttl} s; ` +
      `failover TTL ${options.failoverTtl} s; rows capped at ${options.maxSeconds} s.`,
    '- Each compared row is measured in two passes of half its acquisitions, the second pass in reverse order, and the ' +
      'halves are merged: rows compared with each other are measured around the same moments on average.',
    '',
    '## Results',
    '',
    resultsTable(rows),
    '',
    capped.length > 0
      ? `Capped rows (too slow to reach ${options.ops} acquisitions in ${options.maxSeconds} s; their figures are over the acquisitions made): ${capped.map((r) => `${r.label} ×${r.workers}`).join(', ')}.`
      : '',
    pendingRows.length > 0 ? `Pending: ${pendingRows.map((r) => `${r.label} (${r.reason ?? ''})`).join('; ')}.` : '',
    failedRows.length > 0 ? `Failed: ${failedRows.map((r) => `${r.label} ×${r.workers} (${r.reason ?? ''})`).join('; ')}.` : '',
    '',
    '## Targets (issue 4)',
    '',
    targetsTable(targets),
    '',
    missedNotes(targets),
    '',
    ...perTransportSection(rows, options.workers),
    '## Inside a leasehold handoff (p50, ms)',
    '',
    'The waiter\'s client is probed (its raw watch streams are wrapped to note when an event arrives; leasehold',
    'itself is untouched), which splits a handoff at the wake-up: etcd sending the delete event, then what the',
    'waiter does after waking — for a Mutex one read that checks that it is first and that its key is still',
    'there; for an Election the same read (its key, created by the campaign, already holds the campaign value).',
    'CPU is per acquisition: the bench process (every client together) and etcd (`process_cpu_seconds_total`).',
    '',
    insideTable(rows) || 'Not run.',
    '',
    '## Unary requests per acquisition, by method',
    '',
    methodTable(rows),
    '',
    '## Memory per 1,000 held locks',
    '',
    memoryTable(rows) || 'Not run.',
    '',
    '## 1,000 waiters on one client',
    '',
    'One client, 1,000 Sessions, each with a Mutex waiter queued behind one holder (a fresh child process). Every wait shares the',
    'client\'s one watch stream; etcd\'s count is its `grpc_server_started_total` minus `grpc_server_handled_total` for `Watch`.',
    'Heap is for the 1,000 Sessions and their waits together, after GC. Handoff: release resolved → the next holder\'s `lock()` resolved.',
    '',
    waitersTable(rows) || 'Not run.',
    '',
    meanings,
    '',
  ];
  return parts.filter((p, i, a) => !(p === '' && a[i - 1] === '')).join('\n');
}
