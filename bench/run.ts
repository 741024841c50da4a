/**
 * `npm run bench`: leasehold against what Node users have today (etcd3's polled Lock and its
 * Election), measured by latency and by etcd's own counters, in one run against one etcd.
 * See `--help` and docs/benchmarks.md (which `--markdown docs/benchmarks.md` regenerates).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { startEtcd, type EtcdCluster } from '../src/testing/index.js';
import { describeError, rowFromParts, type BenchContext, type Part, type Row, type Task } from './lib/harness.js';
import { etcdInfo, load1, machine, sourceVersion } from './lib/machine.js';
import { allScenarios, parseOptions, usage, type BenchOptions, type ScenarioName } from './lib/options.js';
import { evaluateTargets, markdown, resultsTable, targetsTable } from './lib/report.js';
import { etcd3Election, killRow, leadMs, leaseholdElection, resignTask } from './scenarios/failover.js';
import { floorTask } from './scenarios/floor.js';
import { etcd3ElectionTask, etcd3LockTask, mutexOnTask, mutexTask } from './scenarios/locks.js';
import { comparedTransports, transportTable, transportTargets } from './lib/transports.js';
import { memoryRow } from './scenarios/memory.js';
import { recoveryKinds, recoveryRow } from './scenarios/recovery.js';
import { waitersRow } from './scenarios/waiters.js';
import { rwlockTask, semaphoreTask } from './scenarios/shared.js';
import { multiLockTask } from './scenarios/multi-lock.js';

const startedAt = new Date();
const t0 = performance.now();
const loadAtStart = load1();
const source = sourceVersion();

function log(message: string): void {
  process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${message}\n`);
}

function summary(row: Row): string {
  if (row.status !== 'ok') return `${row.label} ×${row.workers ?? '-'}: ${row.status} (${row.reason ?? ''})`;
  const ops = row.opsPerSec ? `, ${Math.round(row.opsPerSec)} ops/s` : '';
  const h = row.handoff?.p50 != null ? `, handoff p50 ${row.handoff.p50.toFixed(2)} ms` : '';
  const u = row.etcd ? `, ${row.etcd.unary.toFixed(2)} unary/acq, ${row.etcd.watchEvents.toFixed(2)} events/acq` : '';
  return `${row.label} ×${row.workers ?? '-'}: ${row.ops ?? ''} in ${(row.seconds ?? 0).toFixed(1)} s${ops}${h}${u}`;
}

async function start(options: BenchOptions): Promise<{ etcd: EtcdCluster; cleanup: () => void }> {
  const fromEnv = (process.env['ETCD_ENDPOINTS'] ?? '').trim() !== '';
  if (fromEnv || !options.fsync) {
    return { etcd: await startEtcd({ fsync: options.fsync }), cleanup: () => undefined };
  }
  // leasehold/testing keeps data dirs in /dev/shm, where fsync is free; real fsync needs a disk.
  mkdirSync(options.dataDir, { recursive: true });
  const dir = mkdtempSync(join(options.dataDir, 'leasehold-bench-'));
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  try {
    return { etcd: await startEtcd({ fsync: true, extraArgs: [`--data-dir=${join(dir, 'data')}`] }), cleanup };
  } catch (error) {
    cleanup();
    throw error;
  }
}

async function main(): Promise<number> {
  let options: BenchOptions;
  try {
    const parsed = parseOptions(process.argv.slice(2));
    if (parsed === 'help') {
      console.log(usage);
      return 0;
    }
    options = parsed;
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${usage}`);
    return 2;
  }

  const { etcd, cleanup } = await start(options);
  const onSignal = (): void => {
    void etcd.stop().finally(() => {
      cleanup();
      process.exit(130);
    });
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let rowCounter = 0;
  const ctx: BenchContext = {
    etcd,
    ttl: options.ttl,
    failoverTtl: options.failoverTtl,
    client: () => etcd.client({ grpcOptions: { 'grpc.use_local_subchannel_pool': 1 } }),
    log,
    unique: (base) => `${base}-${process.pid}-${++rowCounter}`,
  };
  const rows: Row[] = [];
  const emit = (row: Row): void => {
    rows.push(row);
    process.stdout.write(`${JSON.stringify(row)}\n`);
    log(summary(row));
  };
  try {
    const info = await etcdInfo(etcd);
    log(`etcd ${info.version} (${info.provider}), data dir on ${info.dataDirFs ?? '?'}, fsync ${options.fsync ? 'on' : 'off'}`);
    const { workers, ops, maxSeconds } = options;
    const want = new Set(options.scenarios);
    // The rows that are compared with each other, in their report order.
    const tasks: Task[] = [];
    if (want.has('floor')) tasks.push(floorTask(ctx));
    for (const w of workers) {
      if (want.has('mutex')) tasks.push(mutexTask(ctx, w));
      if (want.has('etcd3-lock')) tasks.push(etcd3LockTask(ctx, w));
      if (want.has('etcd3-election')) tasks.push(etcd3ElectionTask(ctx, w));
    }
    for (const w of workers) if (want.has('semaphore')) tasks.push(semaphoreTask(ctx, w));
    for (const w of workers) if (want.has('rwlock')) tasks.push(rwlockTask(ctx, w));
    for (const w of workers) if (want.has('multilock')) tasks.push(multiLockTask(ctx, w, 'multilock'), multiLockTask(ctx, w, 'mutexes'));
    const handovers: Task[] = want.has('failover')
      ? [floorTask(ctx, leadMs), resignTask(ctx, leaseholdElection), resignTask(ctx, etcd3Election)]
      : [];
    const measured = new Map<Task, Part[]>();
    const failed = new Map<Task, string>();
    // Two passes, the second in reverse order, each with half of the acquisitions: rows compared with
    // each other are measured around the same moments on average, whatever the machine's load did.
    const runPasses = async (group: Task[], units: number): Promise<void> => {
      const first = Math.ceil(units / 2);
      for (const [pass, order, n] of [
        [1, group, first],
        [2, [...group].reverse(), units - first],
      ] as const) {
        for (const task of order) {
          if (n === 0 || failed.has(task)) continue;
          try {
            const part = await task.run(n, maxSeconds / 2);
            measured.set(task, [...(measured.get(task) ?? []), part]);
            log(`pass ${pass}: ${task.label}${task.workers === null ? '' : ` ×${task.workers}`}: ${part.n} in ${part.seconds.toFixed(1)} s`);
          } catch (error) {
            failed.set(task, describeError(error));
            log(`pass ${pass}: ${task.label} ×${task.workers ?? '-'} failed: ${describeError(error)}`);
          }
        }
      }
    };
    await runPasses(tasks, ops);
    // The cost of a diagnostics subscriber: the uncontended Mutex row without and with a subscriber on
    // every channel, measured as a pair of their own (after the JIT has warmed up on the rows above).
    const diagnosticsPair = want.has('diagnostics') ? [mutexTask(ctx, 1, 'unsubscribed'), mutexTask(ctx, 1, 'subscribed')] : [];
    await runPasses(diagnosticsPair, ops);
    // The per-transport comparison (issue 21): the Mutex rows on each transport, pairs side by side in
    // each pass, after an unmeasured warm-up of both (JIT) — see bench/lib/transports.ts.
    const transportRows = want.has('transports') ? workers.flatMap((w) => comparedTransports.map((t) => mutexOnTask(ctx, w, t))) : [];
    for (const task of transportRows.filter((t) => t.workers === Math.max(...workers))) await task.run(Math.min(ops, 100), maxSeconds / 4).catch(() => undefined);
    await runPasses(transportRows, ops);
    await runPasses(handovers, options.failoverReps);
    const rank = (t: Task): number => allScenarios.indexOf(t.scenario as ScenarioName) >>> 0;
    const reportOrder = [...tasks].sort((a, b) => rank(a) - rank(b) || (a.workers ?? 0) - (b.workers ?? 0)).concat(diagnosticsPair, transportRows);
    for (const task of [...reportOrder, ...handovers]) {
      const reason = failed.get(task);
      const target = handovers.includes(task) ? options.failoverReps : ops;
      emit(
        reason === undefined
          ? rowFromParts(task, measured.get(task) ?? [], target)
          : { scenario: task.scenario, label: task.label, workers: task.workers, status: 'failed', reason },
      );
    }
    if (want.has('failover')) {
      emit(await killRow(ctx, leaseholdElection, options.killReps));
      emit(await killRow(ctx, etcd3Election, options.killReps));
    }
    if (want.has('memory')) {
      emit(await memoryRow(ctx, 'leasehold', options.memoryLocks));
      emit(await memoryRow(ctx, 'etcd3', options.memoryLocks));
    }
    if (want.has('transports')) for (const t of comparedTransports) emit(await memoryRow(ctx, 'leasehold', options.memoryLocks, t));
    if (want.has('waiters')) emit(await waitersRow(ctx, 1000));
    if (want.has('recovery')) for (const kind of recoveryKinds) emit(await recoveryRow(ctx, kind, options.recoveryReps));
    const targets = evaluateTargets(rows, workers, options.failoverTtl);
    const seconds = (performance.now() - t0) / 1000;
    if (!options.json) {
      process.stdout.write(`\n${resultsTable(rows)}\n\n${targetsTable(targets)}\n`);
      const perTransport = transportTable(rows, workers);
      if (perTransport) process.stdout.write(`\n${perTransport}\n\n${targetsTable(transportTargets(rows, workers))}\n`);
    }
    const sourceAtEnd = sourceVersion();
    if (sourceAtEnd !== source) log(`warning: src/ changed during the run (${source} → ${sourceAtEnd})`);
    if (options.markdown) {
      const file = resolve(options.markdown);
      const command = `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim().replace(/ --$/, '');
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(
        file,
        markdown({
          rows,
          targets,
          machine: machine(loadAtStart),
          etcd: { info },
          options,
          command,
          startedAt,
          seconds,
          source: sourceAtEnd === source ? source : `${source} when the run started, ${sourceAtEnd} when it ended (src/ changed during the run: the rows run in child processes — leader kill, memory — may have loaded the newer code)`,
        }),
      );
      log(`wrote ${file}`);
    }
    log(`done in ${seconds.toFixed(0)} s`);
    return rows.some((r) => r.status === 'failed') ? 1 : 0;
  } finally {
    await etcd.stop();
    cleanup();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
