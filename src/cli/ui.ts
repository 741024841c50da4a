/**
 * `leasehold ui [--prefix P] [--port N] [--host H]`: serves the live page (`leasehold/ui`) until
 * SIGINT, SIGTERM or SIGHUP, then exits 0. Bound to 127.0.0.1 unless `--host` says otherwise: the
 * page is read-only, but it shows every name, key and campaign value under the prefix.
 */
import { createServer } from 'node:http';
import type { Command } from 'commander';
import { createUiHandler } from '../ui/handler.js';
import { parseInteger } from './args.js';
import { connect, type ConnectionFlags } from './connect.js';
import { connectionOptions, parser } from './options.js';
import { stderr } from './output.js';
import { Reporter, type ReportFlags } from './report.js';

/** Flags of `ui`. */
export interface UiFlags extends ConnectionFlags, ReportFlags {
  prefix?: string;
  port: number;
  host: string;
  maxKeys?: number;
}

/** The port and host `leasehold ui` listens on by default. */
export const uiDefaults = { port: 7380, host: '127.0.0.1' } as const;

const endSignals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** `leasehold ui`: serves until an ending signal; resolves with the exit code. */
export async function ui(flags: UiFlags, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const report = new Reporter(flags);
  let close = async (): Promise<void> => undefined;
  try {
    const { client, ns } = connect(flags, env);
    const handler = createUiHandler(ns, { prefix: flags.prefix ?? '', ...(flags.maxKeys === undefined ? {} : { maxKeys: flags.maxKeys }) });
    const server = createServer(handler);
    close = async () => {
      await handler.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      client.close();
    };
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(flags.port, flags.host, () => resolve());
    });
    const { port } = server.address() as { port: number };
    const host = flags.host.includes(':') ? `[${flags.host}]` : flags.host;
    report.info('serving', `live page of prefix ${JSON.stringify(flags.prefix ?? '')} at http://${host}:${port}/ (read-only; Ctrl-C ends it)`, { url: `http://${host}:${port}/`, prefix: flags.prefix ?? '' });
    await new Promise<void>((resolve) => {
      const done = (): void => {
        for (const s of endSignals) process.off(s, done);
        resolve();
      };
      for (const s of endSignals) process.on(s, done);
    });
    return 0;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE' || (error as NodeJS.ErrnoException).code === 'EACCES') {
      stderr.line(`leasehold: cannot listen on ${flags.host}:${flags.port}: ${(error as Error).message}`);
      return 69;
    }
    return report.failure(error, { command: 'ui' });
  } finally {
    await close();
  }
}

/** Adds `ui` to `program`; `exit` receives its exit code. */
export function addUiCommand(program: Command, exit: (code: number) => void): void {
  connectionOptions(program.command('ui').description('serve a live page of every primitive under a prefix: holders, queues, gauges, leaders, handoffs (read-only)'))
    .option('--prefix <prefix>', 'show only keys that start with this (default: every key)')
    .option('--port <n>', `port to listen on; 0 picks a free one (default: ${uiDefaults.port})`, parser((t) => parseInteger(t, '--port', 0, 65535)), uiDefaults.port)
    .option('--host <address>', `address to listen on (default: ${uiDefaults.host}; the page shows every name under the prefix to whoever reaches it)`, uiDefaults.host)
    .option('--max-keys <n>', 'follow at most this many keys (default: 10000)', parser((t) => parseInteger(t, '--max-keys', 1)))
    .addHelpText('after', `
One etcd watch on the prefix feeds the page (server-sent events); it never writes or deletes a key.
Prints the URL on stderr; SIGINT, SIGTERM or SIGHUP end it with exit code 0.

Examples:
  $ leasehold ui --prefix jobs/
  $ leasehold ui --prefix jobs/ --port 0 --json    # {"event":"serving","url":…} on stderr`)
    .action(async (flags: UiFlags) => exit(await ui(flags)));
}
