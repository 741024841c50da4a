/**
 * The options the commands share (connection, output, the run commands' TTL and timeouts), the
 * argument parsers that turn our own usage errors into commander's, and the run commands' help text.
 */
import { Command, InvalidArgumentError } from 'commander';
import { checkName } from '../engine/validate.js';
import { maxTtl } from '../engine/session-options.js';
import { parseDuration, parseInteger } from './args.js';
import { defaultEndpoint } from './connect.js';

/** The defaults of the run commands' options (`--kill-grace` derives from the TTL: timings.ts). */
export const runDefaults = { ttl: 10 } as const;

/** A commander argument parser from one of ours (their UsageError becomes commander's usage error). */
export function parser<T>(parse: (text: string) => T): (text: string) => T {
  return (text) => {
    try {
      return parse(text);
    } catch (error) {
      throw new InvalidArgumentError(error instanceof Error ? error.message : String(error));
    }
  };
}

/** A name as every primitive takes it (checked: non-empty, well-formed, no trailing `/`, …). */
export const name = parser((text) => {
  checkName(text, 'leasehold');
  return text;
});

/** Adds the options every command takes: where etcd is, how to log in, how to print. */
export function connectionOptions(command: Command): Command {
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

/** Adds the options of the commands that run a command: {@link connectionOptions}, TTL, timeout, kill-grace. */
export function runOptions(command: Command): Command {
  return connectionOptions(command)
    .option('--ttl <seconds>', 'lease TTL: how long a crashed holder keeps the name', parser((t) => parseInteger(t, '--ttl', 1, maxTtl)), runDefaults.ttl)
    .option('--timeout <duration>', 'give up when the name is still taken this long after the first try (500ms, 10s, 2m, 1h; 0: one try; default: wait as long as it takes)', parser((t) => parseDuration(t, '--timeout')))
    .option('--kill-grace <duration>', 'after a loss: SIGTERM, then SIGKILL after this long; at most half the TTL (default: a third of the TTL, at most 10s)', parser((t) => parseDuration(t, '--kill-grace')));
}

/** The help text after a run command's options, ending with its `example` lines. */
export const runHelp = (example: string): string => `
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
