import { resolveBinary, startBinaryCluster } from './binary.js';
import type { EtcdCluster } from './cluster.js';
import { resolveOptions, type StartEtcdOptions } from './options.js';
import { connectEnv, parseEndpoints, startDocker } from './remote.js';

/** How to get an etcd, for error messages. */
export const INSTALL_HELP = [
  'Install etcd, or point the tests at one:',
  '  Debian/Ubuntu:  sudo apt-get install -y etcd-server',
  '  macOS:          brew install etcd',
  '  an existing cluster:  export ETCD_ENDPOINTS=http://127.0.0.1:2379',
  '  Docker:         start the Docker daemon; testcontainers runs gcr.io/etcd-development/etcd',
].join('\n');

/**
 * Starts a throwaway etcd for a test and resolves once it serves (and, with 3 members, has a leader).
 *
 * Provisioning order, unless `options.provider` forces one: `ETCD_ENDPOINTS` (only for a single member;
 * `stop()` then only closes clients), an `etcd` binary on `PATH` (fresh data dirs in `/dev/shm`, free
 * loopback ports, fast raft timings, `--unsafe-no-fsync`), Docker via `testcontainers`. Aborting
 * `options.signal` kills whatever was started and rejects with the signal's reason. Nothing started
 * outlives the Node process, even one killed with SIGKILL.
 * @throws {TypeError} For an invalid option, naming the value.
 * @throws {Error} When no provider can supply etcd; the message says how to install it.
 * @example
 * await using etcd = await startEtcd();
 * const client = etcd.client();
 * await client.put('k').value('v');
 */
export async function startEtcd(options?: StartEtcdOptions): Promise<EtcdCluster> {
  const resolved = resolveOptions(options);
  resolved.signal?.throwIfAborted();
  const { provider, members } = resolved;
  const fromEnv = process.env['ETCD_ENDPOINTS']?.trim() ?? '';
  const secured = resolved.tls || resolved.auth !== undefined || resolved.network !== undefined;
  if (secured && provider !== 'auto' && provider !== 'binary') {
    throw new TypeError(`Options \`tls\`, \`auth\` and \`network\` need the binary provider (leasehold starts and configures etcd itself), got \`provider: '${provider}'\``);
  }

  if (provider === 'env' || (provider === 'auto' && fromEnv !== '' && members === 1 && !secured)) {
    if (fromEnv === '') throw new Error(`\`provider: 'env'\` needs ETCD_ENDPOINTS to be set.\n${INSTALL_HELP}`);
    if (members !== 1) {
      throw new Error(`ETCD_ENDPOINTS provides an existing cluster; leasehold cannot start ${members} members in it`);
    }
    return connectEnv(parseEndpoints(fromEnv), resolved);
  }

  if (provider === 'binary' || provider === 'auto') {
    const binary = resolveBinary(resolved.binary);
    if (binary !== undefined) return startBinaryCluster(binary, resolved);
    if (provider === 'binary') {
      throw new Error(`No executable \`${resolved.binary}\` found${resolved.binary.includes('/') ? '' : ' on PATH'}.\n${INSTALL_HELP}`);
    }
  }

  if (members !== 1 || secured) {
    throw new Error(
      `${secured ? 'A TLS, auth-enabled or networked' : `A ${members}-member`} etcd cluster needs the etcd binary (Docker provides a plain single member only).\n${INSTALL_HELP}`,
    );
  }
  try {
    return await startDocker(resolved);
  } catch (error) {
    if (provider === 'docker' || resolved.signal?.aborted) throw error;
    throw new Error(
      `No etcd found: ETCD_ENDPOINTS is not set, \`${resolved.binary}\` is not on PATH, and Docker failed ` +
        `(${(error as Error).message.split('\n')[0]}).\n${INSTALL_HELP}`,
      { cause: error },
    );
  }
}
