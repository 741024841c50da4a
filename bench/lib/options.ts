/** Command-line options of `npm run bench`. */
import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';

export const allScenarios = [
  'floor',
  'mutex',
  'etcd3-lock',
  'etcd3-election',
  'semaphore',
  'rwlock',
  'failover',
  'memory',
  'waiters',
  'diagnostics',
  'recovery',
  'multilock',
  'transports',
] as const;
export type ScenarioName = (typeof allScenarios)[number];

export interface BenchOptions {
  workers: number[];
  ops: number;
  scenarios: ScenarioName[];
  fsync: boolean;
  dataDir: string;
  markdown: string | undefined;
  json: boolean;
  ttl: number;
  failoverTtl: number;
  maxSeconds: number;
  memoryLocks: number;
  failoverReps: number;
  killReps: number;
  recoveryReps: number;
}

export const usage = `Usage: npm run bench -- [options]

  --workers 1,10,50      contenders per row for the lock scenarios (default 1,10,50)
  --ops 400              acquisitions per row (default 400)
  --scenarios a,b        any of: ${allScenarios.join(', ')} (default all)
  --no-fsync             start etcd with --unsafe-no-fsync (data in /dev/shm); default is real fsync
  --data-dir DIR         where etcd's data dir goes when fsyncing (default ${tmpdir()})
  --markdown FILE        also write the report (table, machine, etcd flags, meanings) to FILE
  --json                 print only the JSON lines (no markdown table) on stdout
  --ttl 10               Session / lock lease TTL in seconds for the lock scenarios
  --failover-ttl 2       lease TTL in seconds for the crash-failover scenario
  --max-seconds 20       stop starting acquisitions in a row after this long (row marked capped)
  --memory-locks 1000    locks held for the memory figures
  --failover-reps 30     graceful handovers per election implementation
  --kill-reps 3          leader processes killed per election implementation
  --recovery-reps 8      etcd freezes of 2 × failover TTL per primitive on a SessionSource

Starts its own etcd with leasehold/testing, or uses ETCD_ENDPOINTS when set.`;

function positiveInt(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new TypeError(`Expected --${name} to be an integer >= 1, got \`${text}\``);
  return n;
}

export function parseOptions(argv: string[]): BenchOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      workers: { type: 'string', default: '1,10,50' },
      ops: { type: 'string', default: '400' },
      scenarios: { type: 'string', default: allScenarios.join(',') },
      'no-fsync': { type: 'boolean', default: false },
      'data-dir': { type: 'string', default: tmpdir() },
      markdown: { type: 'string' },
      json: { type: 'boolean', default: false },
      ttl: { type: 'string', default: '10' },
      'failover-ttl': { type: 'string', default: '2' },
      'max-seconds': { type: 'string', default: '20' },
      'memory-locks': { type: 'string', default: '1000' },
      'failover-reps': { type: 'string', default: '30' },
      'kill-reps': { type: 'string', default: '3' },
      'recovery-reps': { type: 'string', default: '8' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return 'help';
  const workers = values.workers.split(',').map((w) => positiveInt('workers', w.trim()));
  const scenarios = values.scenarios
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const s of scenarios) {
    if (!(allScenarios as readonly string[]).includes(s)) {
      throw new TypeError(`Unknown scenario \`${s}\`; expected some of ${allScenarios.join(', ')}`);
    }
  }
  return {
    workers: [...new Set(workers)].sort((a, b) => a - b),
    ops: positiveInt('ops', values.ops),
    scenarios: scenarios as ScenarioName[],
    fsync: !values['no-fsync'],
    dataDir: values['data-dir'],
    markdown: values.markdown,
    json: values.json,
    ttl: positiveInt('ttl', values.ttl),
    failoverTtl: positiveInt('failover-ttl', values['failover-ttl']),
    maxSeconds: positiveInt('max-seconds', values['max-seconds']),
    memoryLocks: positiveInt('memory-locks', values['memory-locks']),
    failoverReps: positiveInt('failover-reps', values['failover-reps']),
    killReps: positiveInt('kill-reps', values['kill-reps']),
    recoveryReps: positiveInt('recovery-reps', values['recovery-reps']),
  };
}
