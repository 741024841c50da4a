/**
 * From the command line to an `etcd3` client: endpoints, TLS files and credentials, each checked
 * where it enters, with a message that names the flag. A password never comes from the command line
 * (other users can read it in `ps`): it is read from `ETCD_PASSWORD` or from `--password-file`.
 */
import { readFileSync } from 'node:fs';
import { Etcd3, type IOptions, type Namespace } from 'etcd3';
import { TlsFileError, UsageError } from './exit-codes.js';

/** The connection flags every command takes. */
export interface ConnectionFlags {
  endpoints?: string;
  cacert?: string;
  cert?: string;
  key?: string;
  user?: string;
  passwordFile?: string;
  namespace?: string;
}

/** The endpoint used when neither `--endpoints` nor `ETCD_ENDPOINTS` names one. */
export const defaultEndpoint = '127.0.0.1:2379';

function readFlagFile(path: string, flag: string, tls: boolean): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    const message = `cannot read ${flag} ${JSON.stringify(path)} (${reason})`;
    throw tls ? new TlsFileError(message) : new UsageError(message);
  }
}

/** The endpoints as `etcd3` hosts: comma-separated, each `host:port` or a URL; a scheme is added when missing. */
export function parseEndpoints(text: string, tls: boolean): string[] {
  const urls = text.split(',').map((endpoint) => {
    const host = endpoint.trim();
    const scheme = /^([a-z]+):\/\//i.exec(host)?.[1];
    const bare = scheme === undefined ? host : host.slice(scheme.length + 3);
    const port = /^(?:\[[0-9a-f:.]+\]|[^\s:/[\]]+):([0-9]{1,5})\/?$/i.exec(bare)?.[1];
    if (port === undefined || Number(port) > 65535) {
      throw new UsageError(`--endpoints: ${JSON.stringify(host)} is not host:port (e.g. 127.0.0.1:2379 or https://etcd-0.etcd:2379)`);
    }
    if (scheme !== undefined && !/^https?$/i.test(scheme)) {
      throw new UsageError(`--endpoints: ${JSON.stringify(host)} has a scheme other than http:// or https://`);
    }
    return scheme === undefined ? `${tls ? 'https' : 'http'}://${host}` : host;
  });
  if (new Set(urls.map((u) => /^https:/i.test(u))).size > 1) {
    throw new UsageError(`--endpoints: mixes http:// and https:// (${urls.join(', ')}); a client talks TLS to every member or to none`);
  }
  return urls;
}

/** The `etcd3` options for `flags`, with `env` for `ETCD_ENDPOINTS` and `ETCD_PASSWORD`. */
export function clientOptions(flags: ConnectionFlags, env: NodeJS.ProcessEnv): IOptions {
  if ((flags.cert === undefined) !== (flags.key === undefined)) {
    throw new UsageError(`--cert and --key go together (a client certificate and its private key); got only ${flags.cert === undefined ? '--key' : '--cert'}`);
  }
  const tls = flags.cacert !== undefined || flags.cert !== undefined;
  const source = flags.endpoints ?? env['ETCD_ENDPOINTS'] ?? defaultEndpoint;
  const options: IOptions = { hosts: parseEndpoints(source, tls) };
  if (tls) {
    options.credentials = {
      rootCertificate: flags.cacert === undefined ? (undefined as unknown as Buffer) : readFlagFile(flags.cacert, '--cacert', true),
      ...(flags.cert === undefined ? {} : { certChain: readFlagFile(flags.cert, '--cert', true), privateKey: readFlagFile(flags.key!, '--key', true) }),
    };
  }
  if (flags.user !== undefined) {
    if (flags.user === '' || flags.user.includes(':')) {
      throw new UsageError(`--user: expected a user name (the password comes from ETCD_PASSWORD or --password-file), got ${JSON.stringify(flags.user)}`);
    }
    const password = flags.passwordFile !== undefined ? readFlagFile(flags.passwordFile, '--password-file', false).toString().replace(/\r?\n$/, '') : env['ETCD_PASSWORD'];
    if (password === undefined || password === '') {
      throw new UsageError(`--user ${flags.user} needs a password: set ETCD_PASSWORD or pass --password-file FILE`);
    }
    options.auth = { username: flags.user, password };
  } else if (flags.passwordFile !== undefined) {
    throw new UsageError('--password-file needs --user NAME');
  }
  return options;
}

/**
 * The client for `flags`, the namespace (`--namespace`) the command works in, and the endpoints as
 * messages name them (`host:port`).
 */
export function connect(flags: ConnectionFlags, env: NodeJS.ProcessEnv): { client: Etcd3; ns: Namespace; endpoints: string[] } {
  const options = clientOptions(flags, env);
  const client = new Etcd3(options);
  const endpoints = (options.hosts as string[]).map((h) => new URL(h).host);
  return { client, ns: flags.namespace === undefined || flags.namespace === '' ? client : client.namespace(flags.namespace), endpoints };
}
