/**
 * The `leasehold` command line (commander): run a command under a lock, a permit or a leadership,
 * and see who holds what. docs/cli.md documents every command, option, variable and exit code.
 */
import { hostname } from 'node:os';
import { createRequire } from 'node:module';
import { Command, CommanderError, Option } from 'commander';
import { Election } from '../election.js';
import { checkValue } from '../leadership.js';
import { ReadWriteLock } from '../rw-lock.js';
import { Semaphore } from '../semaphore.js';
import { parseInteger } from './args.js';
import { exitCodes, UsageError } from './exit-codes.js';
import { kinds, observe, status, type Kind } from './inspect.js';
import { lockSpec, splitOperands } from './lock.js';
import { addLsCommand } from './ls.js';
import { addUiCommand } from './ui.js';
import { connectionOptions, name, parser, runDefaults, runHelp, runOptions } from './options.js';
import { flushOutput, stderr, stdout } from './output.js';
import { runUnder, type RunFlags, type RunSpec } from './run.js';

/** The defaults of the run commands' options (`--kill-grace` derives from the TTL: timings.ts). */
export const cliDefaults = { ...runDefaults, kind: 'mutex' as Kind } as const;

type Flags = RunFlags & { kind?: Kind; value?: string; permits?: number; weight?: number };

/**
 * Builds the program; `exit` receives the exit code of the command that ran. `argv` is the command
 * line it will parse: `lock` reads where its `--` was (commander drops it) to tell names from the command.
 */
export function buildProgram(exit: (code: number) => void, argv: readonly string[] = []): Command {
  const dashes = argv.indexOf('--');
  const afterDashes = dashes === -1 ? undefined : argv.slice(dashes + 1);
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
  $ leasehold observe scheduler --kind election
  $ leasehold ls --prefix jobs/
  $ leasehold ui --prefix jobs/`,
  );

  const run = async (spec: RunSpec, command: string[], flags: Flags): Promise<void> => exit(await runUnder(spec, command, flags));

  runOptions(program.command('lock').description('run a command while holding a Mutex, or several at once (each excludes `etcdctl lock` and Go’s concurrency.Mutex on its name)'))
    .usage('[options] <name>... -- <command...>')
    .argument('<name...>', 'the lock’s name; several names are taken all at once (a MultiLock), then the command after --')
    .addHelpText('after', runHelp(`  $ leasehold lock migrations --timeout 5m -- npm run migrate
  $ leasehold lock jobs/nightly --ttl 60 --kill-grace 30s -- ./nightly.sh
  $ leasehold lock accounts/alice accounts/bob -- ./transfer.sh   # both, or wait
Several names: LEASEHOLD_KIND=multilock, LEASEHOLD_COUNT, LEASEHOLD_NAME_1…, LEASEHOLD_KEY_1…
(no LEASEHOLD_NAME or LEASEHOLD_KEY), one LEASEHOLD_TOKEN for every key.`))
    .action((operands: string[], flags: Flags) => {
      const { names, command } = splitOperands(operands, afterDashes);
      return run(lockSpec(names), command, flags);
    });

  rwLockCommands(program, run);

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

  inspectCommands(program, exit);
  addLsCommand(program, exit);
  addUiCommand(program, exit);
  return program;
}

/** `read-lock` and `write-lock`. */
function rwLockCommands(program: Command, run: (spec: RunSpec, command: string[], flags: Flags) => Promise<void>): void {
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
}

/** `status` and `observe`: the commands that look without taking a lease. */
function inspectCommands(program: Command, exit: (code: number) => void): void {
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
  const program = buildProgram((c) => (code = c), argv);
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
