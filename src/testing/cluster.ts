import { Etcd3, type IOptions } from 'etcd3';
import { getText } from './http.js';
import { parsePrometheusText } from './metrics.js';
import type { EtcdNetwork } from './network.js';
import type { EtcdProvider } from './options.js';
import type { TestCertificates } from './tls.js';

/**
 * A running etcd for tests, from `startEtcd()`: endpoints, tracked clients, metrics and — when leasehold
 * started the members itself — fault injection. `await using` stops it.
 */
export interface EtcdCluster extends AsyncDisposable {
  /** Where this etcd came from. */
  readonly provider: EtcdProvider;
  /** Client URLs, one per member, such as `http://127.0.0.1:23791`. */
  readonly endpoints: readonly string[];
  /**
   * The smallest lease TTL in seconds this cluster grants: etcd raises shorter TTLs to
   * `ceil(1.5 × electionTimeout)`, so 1 with the default 250 ms election timeout and 2 with etcd's stock
   * 1 s. Measured with a lease grant for `ETCD_ENDPOINTS`.
   */
  readonly minTtl: number;
  /**
   * The members leasehold started and can inject faults into; empty for `ETCD_ENDPOINTS` and Docker,
   * whose processes are not ours to kill.
   */
  readonly members: readonly EtcdMember[];
  /**
   * The throwaway PKI of a cluster started with `tls: true` — the CA, the members' certificate, and a
   * client certificate signed by the CA, as files and (the client's) as PEM — or `undefined`.
   */
  readonly tls: TestCertificates | undefined;
  /**
   * The network of a cluster started with `network` (every member in a network namespace, links that
   * can be cut): see {@link EtcdNetwork}; `undefined` otherwise.
   */
  readonly network: EtcdNetwork | undefined;
  /** For a cluster started with `auth`: the `root` password (other users are yours); else `undefined`. */
  readonly auth:
    | {
        /** The password of the `root` user: {@link EtcdAuthOptions.rootPassword}, or the random one made. */
        readonly rootPassword: string;
      }
    | undefined;
  /**
   * The `etcd3` options that reach this cluster: its endpoints, the client certificate of a TLS
   * cluster, and `root`'s credentials of an auth-enabled one — with `overrides` on top (pass
   * `auth: { username, password }` to be another user, `auth: undefined` to be nobody).
   */
  clientOptions(overrides?: Partial<IOptions>): IOptions;
  /**
   * Creates an `etcd3` client with {@link clientOptions}`(options)`; `stop()` closes it.
   * @throws {Error} If the cluster is stopped.
   */
  client(options?: Partial<IOptions>): Etcd3;
  /**
   * Resolves with the member that is the raft leader now, polling through an election until one exists;
   * a killed or paused member is never returned. Aborting `signal` rejects with its reason.
   * @throws {Error} If there are no members (ETCD_ENDPOINTS, Docker) or no leader emerges in `startTimeoutMs`.
   */
  leader(options?: { signal?: AbortSignal }): Promise<EtcdMember>;
  /**
   * Reads etcd's Prometheus `/metrics` into a map from series, e.g.
   * `grpc_server_handled_total{grpc_code="OK",…}`, to value: `member`'s own, or without one, each series
   * summed over every running, unpaused member (cluster-wide request and watch counts; a gauge such as
   * `etcd_server_is_leader` then counts members). A restarted member's counters start again from zero.
   * Add up the series of one metric with `sumMetric()`.
   */
  metrics(member?: EtcdMember): Promise<Map<string, number>>;
  /**
   * Stops everything leasehold started, idempotently: closes every client from `client()`, SIGKILLs every
   * member (resuming paused ones), removes the data dirs, stops the container. For `ETCD_ENDPOINTS` it
   * only closes the clients.
   */
  stop(): Promise<void>;
}

/** One etcd process that leasehold started, with methods to inject faults into it. */
export interface EtcdMember {
  /** The member name, `m0`, `m1`, … (`--name`). */
  readonly name: string;
  /** Its client URL, such as `http://127.0.0.1:23791`. */
  readonly clientUrl: string;
  /** Its raft peer URL. */
  readonly peerUrl: string;
  /** The URL serving its `/metrics` and `/health` on a port of their own. */
  readonly metricsUrl: string;
  /** Its data directory (in `/dev/shm` when available); kept across `restart()`, removed by `stop()`. */
  readonly dataDir: string;
  /** The file receiving its stderr (etcd's error log); read it when a test fails. */
  readonly logFile: string;
  /** The pid of the etcd process itself, or `undefined` while it is not running. */
  readonly pid: number | undefined;
  /** Whether its process is alive (a paused process is running). */
  readonly running: boolean;
  /** Whether it is stopped by `pause()`. */
  readonly paused: boolean;
  /**
   * Sends `signal` to the etcd process and resolves once it has exited; does nothing if it is not running.
   * A paused member is resumed after a catchable signal so it can act on it.
   * @param signal - The signal to send. @default 'SIGKILL'
   * @throws {TypeError} For SIGSTOP/SIGCONT-like signals: use `pause()`/`resume()`.
   */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /**
   * Freezes the process with SIGSTOP, like a long GC pause or a stalled VM: it holds its ports and lease
   * state but answers nothing. Resolves once the kernel reports it stopped.
   * @throws {Error} If it is not running.
   */
  pause(): Promise<void>;
  /** Continues a paused process with SIGCONT; does nothing if it is not paused. */
  resume(): Promise<void>;
  /**
   * Starts the member again with the same data dir, ports and flags (SIGKILLing it first if it is
   * running), and resolves once it serves: `/health` is true when a quorum of members is running,
   * otherwise once it answers a status request. Aborting `signal` rejects with its reason.
   */
  restart(options?: { signal?: AbortSignal }): Promise<void>;
  /** Stops the member gracefully: SIGTERM, then SIGKILL after 2 s. Its data dir is kept for `restart()`. */
  stop(): Promise<void>;
}

/** What every provider shares: tracked clients, `/metrics`, idempotent stop, `await using`. */
export abstract class ClusterBase implements EtcdCluster {
  abstract readonly provider: EtcdProvider;
  abstract readonly endpoints: readonly string[];
  abstract readonly minTtl: number;
  abstract readonly members: readonly EtcdMember[];
  readonly #clients = new Set<Etcd3>();
  #stopping: Promise<void> | undefined;

  readonly tls: TestCertificates | undefined = undefined;
  readonly network: EtcdNetwork | undefined = undefined;
  readonly auth: { readonly rootPassword: string } | undefined = undefined;

  clientOptions(overrides: Partial<IOptions> = {}): IOptions {
    const tls = this.tls;
    return {
      hosts: [...this.endpoints],
      ...(tls === undefined
        ? {}
        : {
            credentials: { rootCertificate: tls.ca, certChain: tls.clientCert, privateKey: tls.clientKey },
            // The certificate names 127.0.0.1 and localhost; gRPC would send the IP as the TLS server name.
            grpcOptions: { 'grpc.ssl_target_name_override': 'localhost', 'grpc.default_authority': 'localhost' },
          }),
      ...(this.auth === undefined ? {} : { auth: { username: 'root', password: this.auth.rootPassword } }),
      ...overrides,
    };
  }

  client(options: Partial<IOptions> = {}): Etcd3 {
    if (this.#stopping !== undefined) throw new Error('This etcd cluster is stopped; start a new one');
    const client = new Etcd3(this.clientOptions(options));
    this.#clients.add(client);
    return client;
  }

  abstract leader(options?: { signal?: AbortSignal }): Promise<EtcdMember>;

  async metrics(member?: EtcdMember): Promise<Map<string, number>> {
    const texts = await Promise.all(
      this.metricsBaseUrls(member).map(async (url) => getText(`${url}/metrics`, 5_000)),
    );
    const total = new Map<string, number>();
    for (const text of texts) {
      for (const [series, value] of parsePrometheusText(text)) total.set(series, (total.get(series) ?? 0) + value);
    }
    return total;
  }

  async stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  /** The base URLs whose `/metrics` describe `member`, or the whole cluster. */
  protected abstract metricsBaseUrls(member?: EtcdMember): string[];

  /** Releases what the provider started, after the clients are closed. */
  protected abstract shutdown(): Promise<void>;

  async #stop(): Promise<void> {
    for (const client of this.#clients) {
      try {
        client.close();
      } catch {
        // Closed already by the test.
      }
    }
    this.#clients.clear();
    await this.shutdown();
  }
}
