/**
 * The `leasehold` command line (commander): run a command under a lock, a permit or a leadership,
 * and see who holds what. docs/cli.md documents every command, option, variable and exit code.
 */
import { hostname } from 'node:os';
import { createRequire } from 'node:module';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { Election } from '../election.js';
import { checkName } from '../engine/validate.js';
import { checkValue } from '../leadership.js';
import { Mutex } from '../mutex.js';
import { ReadWriteLock } from '../rw-lock.js';
import { Semaphore } from '../semaphore.js';
import { maxTtl } from '../engine/session-options.js';
import { parseDuration, parseInteger } from './args.js';
import { defaultEndpoint } from './connect.js';
import { exitCodes, UsageError } from './exit-codes.js';
import { kinds, observe, status, type Kind } from './inspect.js';
import { flushOutput, stderr, stdout } from './output.js';
import { runUnder, type RunFlags, type RunSpec } from './run.js';

/** The defaults of the run commands' options (`--kill-grace` derives from the TTL: timings.ts). */
export const cliDefaults = { ttl: 10, kind: 'mutex' as Kind } as const;

/** A commander argument parser from one of ours (their UsageError becomes commander's usage error). */
function parser<T>(parse: (text: string) => T): (text: string) => T {
  return (text) => {
    try {
      return parse(text);
    } catch (error) {
      throw new InvalidArgumentError(error instanceof Error ? error.message : String(error));
    }
  };
}

const name = parser((text) => {
  checkName(text, 'leasehold');
  return text;
});

function connectionOptions(command: Command): Command {
  return command
    .option('--endpoints <list>', `etcd endpoints, comma-separated (default: $ETCD_ENDPOINTS, then ${defaultEndpoint})`)
    .option('--cacert <file>', 'CA bundle to verify the etcd members (PEM); turns TLS on')
    .option('--cert <file>', 'client certificate for mutual TLS (PEM); needs --key')
    .option('--key <file>', 'private key of --cert (PEM)')
    .option('--user <name>', 'etcd user; the password comes from $ETCD_PASSWORD or --password-file, never from the command line')
    .option('--password-file <file>', 'file holding the password of --user (one trailing newline is ignored)')
    .option('--namespace <prefix>', 'key prefix the names live under (as etcd3 client.namespace(prefix))')
    .option('--json', 'machine-readable output: JSON objects, one a line')
    .option('-q, --quiet', 'print nothing but errors on stderr');
}

function runOptions(command: Command): Command {
  return connectionOptions(command)
    .option('--ttl <seconds>', 'lease TTL: how long a crashed holder keeps the name', parser((t) => parseInteger(t, '--ttl', 1, maxTtl)), cliDefaults.ttl)
    .option('--timeout <duration>', 'give up when the name is still taken this long after the first try (500ms, 10s, 2m, 1h; 0: one try; default: wait as long as it takes)', parser((t) => parseDuration(t, '--timeout')))
    .option('--kill-grace <duration>', 'after a loss: SIGTERM, then SIGKILL after this long; at most half the TTL (default: a third of the TTL, at most 10s)', parser((t) => parseDuration(t, '--kill-grace')));
}

const runHelp = (example: string): string => `
The command runs without a shell, in its own process group, with these variables set:
  LEASEHOLD_KIND, LEASEHOLD_NAME, LEASEHOLD_KEY, LEASEHOLD_TOKEN (fencing token or term),
  LEASEHOLD_LEASE_ID (decimal), LEASEHOLD_LEASE_HEX
Signals are forwarded to it; Ctrl-Z stops it with leasehold. When the holding is lost, its group
gets SIGTERM, then SIGKILL after --kill-grace, all before etcd could give the name to anyone else.
Exit code: the command's own (128+N if signal N killed it); 75 --timeout passed; 79 lost (the
command was stopped); 64 bad arguments; 69 etcd unreachable; 77 denied; 78 TLS; 70 leasehold failed.
See docs/cli.md for all of them, and for what each signal does.

Examples:
${example}`;

type Flags = RunFlags & { kind?: Kind; value?: string; permits?: number; weight?: number };

/** Builds the program; `exit` receives the exit code of the command that ran. */
export function buildProgram(exit: (code: number) => void): Command {
  const program = new Command('leasehold')
    .description('Run a command under an etcd lock, permit or leadership — and see who holds what.')
    .version(version(), '-V, --version')
    .showHelpAfterError('(add --help for usage and examples)')
    .configureOutput({ writeOut: (s) => stdout.write(s), writeErr: (s) => stderr.write(s) })
    .exitOverride();
  program.addHelpText(
    'after',
    `
Examples:
  $ leasehold lock nightly-report -- ./report.sh --full
  $ leasehold elect scheduler --value "$HOSTNAME" -- node scheduler.js
  $ leasehold acquire ffmpeg --permits 4 -- ffmpeg -i in.mp4 out.webm
  $ leasehold status nightly-report
  $ leasehold observe scheduler --kind election`,
  );

  const run = async (spec: RunSpec, command: string[], flags: Flags): Promise<void> => exit(await runUnder(spec, command, flags));

  runOptions(program.command('lock').description('run a command while holding a Mutex (excludes `etcdctl lock` and Go’s concurrency.Mutex on the same name)'))
    .argument('<name>', 'the lock’s name', name)
    .argument('<command...>', 'the command and its arguments, after --')
    .addHelpText('after', runHelp('  $ leasehold lock migrations --timeout 5m -- npm run migrate\n  $ leasehold lock jobs/nightly --ttl 60 --kill-grace 30s -- ./nightly.sh'))
    .action((n: string, command: string[], flags: Flags) =>
      run({
        kind: 'mutex',
        name: n,
        waitingFor: `lock ${JSON.stringify(n)}`,
        acquire: async (session, signal) => ({ handle: await new Mutex(session, n).lock({ signal }) }),
      }, command, flags),
    );

  for (const mode of ['read', 'write'] as const) {
    runOptions(program.command(`${mode}-lock`).description(`run a command while holding the ${mode} side of a ReadWriteLock${mode === 'read' ? ' (shared with other readers)' : ' (exclusive)'}`))
      .argument('<name>', 'the lock’s name', name)
      .argument('<command...>', 'the command and its arguments, after --')
      .addHelpText('after', runHelp(`  $ leasehold ${mode}-lock config -- ${mode === 'read' ? './render-config.sh' : './rotate-config.sh'}`))
      .action((n: string, command: string[], flags: Flags) =>
        run({
          kind: 'rwlock',
          name: n,
          waitingFor: `${mode} lock ${JSON.stringify(n)}`,
          acquire: async (session, signal) => {
            const rw = new ReadWriteLock(session, n);
            const handle = mode === 'read' ? await rw.readLock({ signal }) : await rw.writeLock({ signal });
            return { handle, env: { LEASEHOLD_MODE: mode } };
          },
        }, command, flags),
      );
  }

  runOptions(program.command('acquire').description('run a command while holding permits of a counting Semaphore'))
    .argument('<name>', 'the semaphore’s name', name)
    .argument('<command...>', 'the command and its arguments, after --')
    .requiredOption('--permits <n>', 'how many permits the semaphore has (every participant must agree)', parser((t) => parseInteger(t, '--permits', 1)))
    .option('--weight <n>', 'how many of them this command takes', parser((t) => parseInteger(t, '--weight', 1)), 1)
    .addHelpText('after', runHelp('  $ leasehold acquire transcoders --permits 4 -- ffmpeg -i in.mp4 out.webm\n  $ leasehold acquire gpu --permits 8 --weight 2 -- python train.py'))
    .action((n: string, command: string[], flags: Flags) => {
      const permits = flags.permits!;
      const weight = flags.weight ?? 1;
      if (weight > permits) throw new UsageError(`--weight ${weight} is more than --permits ${permits}`);
      return run({
        kind: 'semaphore',
        name: n,
        waitingFor: `${weight} of ${permits} permits of ${JSON.stringify(n)}`,
        acquire: async (session, signal) => ({
          handle: await new Semaphore(session, n, { permits }).acquire({ weight, signal }),
          env: { LEASEHOLD_WEIGHT: String(weight), LEASEHOLD_PERMITS: String(permits) },
        }),
      }, command, flags);
    });

  runOptions(program.command('elect').description('campaign for leadership and run a command while leading (interoperates with `etcdctl elect` and Go’s concurrency.Election)'))
    .argument('<name>', 'the election’s name', name)
    .argument('<command...>', 'the command and its arguments, after --')
    .option('--value <value>', 'the value to campaign with (default: the host name)', parser((t) => checkValue(t, 'leasehold elect')))
    .addHelpText('after', runHelp('  $ leasehold elect scheduler --value "$POD_NAME" -- node scheduler.js'))
    .action((n: string, command: string[], flags: Flags) => {
      const value = flags.value ?? hostname();
      return run({
        kind: 'election',
        name: n,
        waitingFor: `leadership of ${JSON.stringify(n)}`,
        acquire: async (session, signal) => ({
          handle: await new Election(session, n).campaign(value, { signal }),
          env: { LEASEHOLD_VALUE: value },
        }),
      }, command, flags);
    });

  const kindOption = (): Option => new Option('--kind <kind>', 'what the name is').choices(kinds).default(cliDefaults.kind);

  connectionOptions(program.command('status').description('show who holds a name and who waits, in order (no lease is taken)'))
    .argument('<name>', 'the name', name)
    .addOption(kindOption())
    .addHelpText('after', `
Prints the holder(s) — the leader for an election — and the waiters in the order they will be
served, each with its key, token (term), lease and the seconds its lease has left. Exit code 0
whether or not anyone holds it; 69 etcd unreachable or silent for 10 s (the message names it);
77 denied.

Examples:
  $ leasehold status nightly-report
  $ leasehold status scheduler --kind election --json | jq .holders[0].value`)
    .action(async (n: string, flags: Flags) => exit(await status(flags.kind ?? cliDefaults.kind, n, flags)));

  connectionOptions(program.command('observe').description('print the holders (or leader) now and at every change, one JSON object a line, until Ctrl-C'))
    .argument('<name>', 'the name', name)
    .addOption(kindOption())
    .addHelpText('after', `
Each line: {"time","kind","name","holders":[{"key","token","leaseId","leaseHex",…}]}; an empty
"holders" means free (no leader). Ends with exit code 0 on SIGINT, SIGTERM or SIGHUP, or when
nothing reads its output any more (… | head -1); 69 when the first state does not come within 10 s.

Examples:
  $ leasehold observe scheduler --kind election
  $ leasehold observe ffmpeg --kind semaphore | jq -c '[.holders[].weight] | add'`)
    .action(async (n: string, flags: Flags) => exit(await observe(flags.kind ?? cliDefaults.kind, n, flags)));

  return program;
}

function version(): string {
  return (createRequire(import.meta.url)('../../package.json') as { version: string }).version;
}

/**
 * Runs the command line `argv` (as `process.argv`) and resolves with the exit code, once what it wrote
 * is out (or after 2 s: a terminal stopped with Ctrl-S does not keep it from exiting).
 */
export async function main(argv: readonly string[]): Promise<number> {
  const code = await parse(argv);
  await flushOutput();
  return code;
}

async function parse(argv: readonly string[]): Promise<number> {
  let code: number | undefined;
  const program = buildProgram((c) => (code = c));
  try {
    await program.parseAsync([...argv]);
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help' ? 0 : exitCodes.usage;
    }
    if (error instanceof UsageError) {
      stderr.line(`leasehold: ${error.message}`);
      return exitCodes.usage;
    }
    stderr.line(`leasehold: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    return exitCodes.internal;
  }
  return code ?? 0;
}
