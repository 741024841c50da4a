import { ClusterBase, type EtcdMember } from './cluster.js';
import { isHealthy, pollUntil, probeMinTtl } from './http.js';
import { fastFlags, minLeaseTtl, type EtcdProvider, type ResolvedOptions } from './options.js';

/** An etcd whose processes leasehold cannot touch: from `ETCD_ENDPOINTS`, or inside a Docker container. */
class RemoteCluster extends ClusterBase {
  readonly provider: EtcdProvider;
  readonly endpoints: readonly string[];
  readonly minTtl: number;
  readonly members: readonly EtcdMember[] = [];
  readonly #metricsUrl: string;
  readonly #release: () => Promise<void>;

  constructor(init: {
    provider: EtcdProvider;
    endpoints: readonly string[];
    minTtl: number;
    metricsUrl: string;
    release: () => Promise<void>;
  }) {
    super();
    this.provider = init.provider;
    this.endpoints = init.endpoints;
    this.minTtl = init.minTtl;
    this.#metricsUrl = init.metricsUrl;
    this.#release = init.release;
  }

  async leader(): Promise<EtcdMember> {
    throw new Error(this.#noFaults());
  }

  protected metricsBaseUrls(member?: EtcdMember): string[] {
    if (member !== undefined) throw new Error(this.#noFaults());
    return [this.#metricsUrl];
  }

  protected async shutdown(): Promise<void> {
    await this.#release();
  }

  #noFaults(): string {
    const source = this.provider === 'env' ? 'ETCD_ENDPOINTS' : 'Docker';
    return (
      `This etcd comes from ${source}, so it has no members leasehold can inspect or inject faults into. ` +
      "Fault tests need the etcd binary: startEtcd({ provider: 'binary' })."
    );
  }
}

/** Splits `ETCD_ENDPOINTS` (comma-separated URLs or host:port) into `http://` URLs. */
export function parseEndpoints(value: string): string[] {
  const endpoints = value
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '')
    .map((entry) => (/^[a-z]+:\/\//i.test(entry) ? entry : `http://${entry}`).replace(/\/+$/, ''));
  if (endpoints.length === 0) {
    throw new TypeError(`Expected ETCD_ENDPOINTS to list etcd URLs or host:port pairs, got \`${JSON.stringify(value)}\``);
  }
  for (const endpoint of endpoints) {
    try {
      new URL(endpoint);
    } catch (error) {
      throw new TypeError(`Expected ETCD_ENDPOINTS entries to be URLs or host:port, got \`${endpoint}\``, {
        cause: error,
      });
    }
  }
  return endpoints;
}

/** Uses an existing cluster: waits until one endpoint is healthy and measures its minimum lease TTL. */
export async function connectEnv(endpoints: string[], options: ResolvedOptions): Promise<RemoteCluster> {
  const healthy = await pollUntil(
    async () => {
      for (const endpoint of endpoints) {
        if (await isHealthy(endpoint, 1_000, options.signal)) return endpoint;
      }
      return undefined;
    },
    {
      timeoutMs: options.startTimeoutMs,
      intervalMs: 100,
      signal: options.signal,
      what: `a healthy etcd at ETCD_ENDPOINTS (${endpoints.join(', ')})`,
    },
  );
  const minTtl = await probeMinTtl(healthy, 5_000, options.signal);
  return new RemoteCluster({
    provider: 'env',
    endpoints,
    minTtl,
    metricsUrl: healthy,
    release: async () => {},
  });
}

/**
 * Starts one etcd member in a container with testcontainers (an optional dependency, imported only here).
 * Its data dir is a tmpfs; testcontainers' Ryuk sidecar removes the container if Node dies.
 */
export async function startDocker(options: ResolvedOptions): Promise<RemoteCluster> {
  let testcontainers: typeof import('testcontainers');
  try {
    testcontainers = await import('testcontainers');
  } catch (error) {
    throw new Error('The Docker provider needs the `testcontainers` package: npm install --save-dev testcontainers', {
      cause: error,
    });
  }
  const { GenericContainer, Wait } = testcontainers;
  const container = await new GenericContainer(options.image)
    .withCommand([
      '/usr/local/bin/etcd',
      '--name=m0',
      '--data-dir=/var/lib/etcd',
      '--listen-client-urls=http://0.0.0.0:2379',
      '--advertise-client-urls=http://127.0.0.1:2379',
      '--listen-peer-urls=http://127.0.0.1:2380',
      '--initial-advertise-peer-urls=http://127.0.0.1:2380',
      '--initial-cluster=m0=http://127.0.0.1:2380',
      '--listen-metrics-urls=http://0.0.0.0:2381',
      ...fastFlags(options),
      ...options.extraArgs,
    ])
    .withExposedPorts(2379, 2381)
    .withTmpFs({ '/var/lib/etcd': 'rw' })
    .withWaitStrategy(
      Wait.forHttp('/health', 2379).forResponsePredicate((body) => body.replace(/\s/g, '').includes('"health":"true"')),
    )
    .withStartupTimeout(options.startTimeoutMs)
    .start();
  const host = container.getHost();
  const release = async () => {
    await container.stop({ remove: true, removeVolumes: true });
  };
  if (options.signal?.aborted) {
    await release();
    options.signal.throwIfAborted();
  }
  return new RemoteCluster({
    provider: 'docker',
    endpoints: [`http://${host}:${container.getMappedPort(2379)}`],
    minTtl: minLeaseTtl(options.heartbeatInterval, options.electionTimeout),
    metricsUrl: `http://${host}:${container.getMappedPort(2381)}`,
    release,
  });
}
