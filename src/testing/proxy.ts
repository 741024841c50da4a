import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/** Which way a {@link TcpProxy.blackhole} stops traffic. */
export type ProxyDirection = 'both' | 'toTarget' | 'toClient';

/** Options of {@link startProxy}. */
export interface StartProxyOptions {
  /**
   * The loopback address to listen on; the port is chosen by the OS.
   * @default '127.0.0.1'
   */
  host?: string;
  /** Aborts the start; the listening socket is closed. */
  signal?: AbortSignal;
}

/**
 * A TCP proxy between a test's client and one etcd endpoint (or any TCP server), for network faults
 * without Docker or root: point the client at `url` instead of the member's `clientUrl`, then
 * `blackhole()`, `reset()` and `heal()`. `await using` closes it.
 */
export interface TcpProxy extends AsyncDisposable {
  /** The proxy's URL, such as `http://127.0.0.1:40123`: use it as the client's endpoint. */
  readonly url: string;
  /** The port the proxy listens on. */
  readonly port: number;
  /** Where the proxy forwards to, as `host:port`. */
  readonly target: string;
  /** Which way traffic is stopped now: `'none'` when the proxy forwards everything. */
  readonly blackholed: ProxyDirection | 'none';
  /** How many client connections are open now. */
  readonly connections: number;
  /** How many client connections were accepted since the start. */
  readonly accepted: number;
  /**
   * Stops passing bytes — `'both'` ways by default, or only `'toTarget'` (requests) or `'toClient'`
   * (responses) — while keeping every socket open, like a partition or a stalled network: nothing fails,
   * nothing arrives. New connections are accepted but not connected onward until `heal()`. Bytes sent
   * meanwhile wait in the socket buffers and arrive after `heal()`, as TCP would retransmit them.
   */
  blackhole(direction?: ProxyDirection): void;
  /**
   * Destroys every open connection with a TCP RST on the client side (the client sees ECONNRESET);
   * new connections are accepted as usual (and still blackholed if the proxy is).
   */
  reset(): void;
  /** Ends a blackhole: every open and pending connection forwards again, buffered bytes first. */
  heal(): void;
  /** Stops listening and destroys every connection. Idempotent. */
  close(): Promise<void>;
}

interface Pair {
  client: Socket;
  upstream: Socket | undefined;
  /** The client connected while the proxy blackholed everything: connect onward on heal. */
  deferred: boolean;
}

function parseTarget(target: string | { host: string; port: number }): { host: string; port: number } {
  if (typeof target === 'object' && target !== null) {
    if (typeof target.host !== 'string' || !Number.isInteger(target.port) || target.port <= 0) {
      throw new TypeError(`Expected \`target\` to have a host and a port, got \`${JSON.stringify(target)}\``);
    }
    return target;
  }
  if (typeof target !== 'string') {
    throw new TypeError(`Expected \`target\` to be a URL or host:port, got \`${String(target)}\``);
  }
  const match = /^(?:[a-z]+:\/\/)?([^:/]+|\[[^\]]+\]):(\d+)\/?$/i.exec(target);
  if (!match) throw new TypeError(`Expected \`target\` to be a URL or host:port, got \`${target}\``);
  return { host: match[1]!.replace(/^\[|\]$/g, ''), port: Number(match[2]) };
}

class Proxy implements TcpProxy {
  readonly url: string;
  readonly port: number;
  readonly target: string;
  readonly #server: Server;
  readonly #to: { host: string; port: number };
  readonly #pairs = new Set<Pair>();
  #direction: ProxyDirection | 'none' = 'none';
  #accepted = 0;
  #closing: Promise<void> | undefined;

  constructor(server: Server, host: string, to: { host: string; port: number }) {
    this.#server = server;
    this.#to = to;
    this.port = (server.address() as AddressInfo).port;
    this.url = `http://${host.includes(':') ? `[${host}]` : host}:${this.port}`;
    this.target = `${to.host}:${to.port}`;
    server.on('connection', (socket) => this.#accept(socket));
  }

  get blackholed(): ProxyDirection | 'none' {
    return this.#direction;
  }

  get connections(): number {
    return this.#pairs.size;
  }

  get accepted(): number {
    return this.#accepted;
  }

  blackhole(direction: ProxyDirection = 'both'): void {
    if (!['both', 'toTarget', 'toClient'].includes(direction)) {
      throw new TypeError(`Expected \`direction\` to be 'both', 'toTarget' or 'toClient', got \`${String(direction)}\``);
    }
    this.#direction = direction;
    for (const pair of this.#pairs) {
      if (pair.deferred && direction !== 'both') this.#connect(pair);
      else this.#apply(pair);
    }
  }

  heal(): void {
    this.#direction = 'none';
    for (const pair of this.#pairs) {
      if (pair.deferred) this.#connect(pair);
      else this.#apply(pair);
    }
  }

  reset(): void {
    for (const pair of [...this.#pairs]) this.#destroy(pair, true);
  }

  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.reset();
    });
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #accept(client: Socket): void {
    if (this.#closing) {
      client.destroy();
      return;
    }
    this.#accepted++;
    client.setNoDelay(true);
    const pair: Pair = { client, upstream: undefined, deferred: false };
    this.#pairs.add(pair);
    client.on('error', () => this.#destroy(pair, false));
    client.on('close', () => this.#destroy(pair, false));
    if (this.#direction === 'both') {
      // Like a SYN lost in a partition: the connection exists, nothing goes anywhere until heal().
      pair.deferred = true;
      client.pause();
      return;
    }
    this.#connect(pair);
  }

  #connect(pair: Pair): void {
    pair.deferred = false;
    const upstream = createConnection(this.#to);
    upstream.setNoDelay(true);
    pair.upstream = upstream;
    upstream.on('error', () => this.#destroy(pair, false));
    upstream.on('close', () => this.#destroy(pair, false));
    this.#apply(pair);
  }

  /** Pipes or unpipes each direction of `pair` according to the current blackhole. */
  #apply(pair: Pair): void {
    const { client, upstream } = pair;
    if (!upstream) return;
    const toTarget = this.#direction !== 'both' && this.#direction !== 'toTarget';
    const toClient = this.#direction !== 'both' && this.#direction !== 'toClient';
    flow(client, upstream, toTarget);
    flow(upstream, client, toClient);
  }

  #destroy(pair: Pair, rst: boolean): void {
    if (!this.#pairs.delete(pair)) return;
    if (rst) pair.client.resetAndDestroy();
    else pair.client.destroy();
    pair.upstream?.destroy();
  }
}

const piped = new WeakMap<Socket, boolean>();

/** Makes `from` flow into `to`, or stop: unpiped and paused, its bytes kept in the buffers. */
function flow(from: Socket, to: Socket, on: boolean): void {
  if (piped.get(from) === on) return;
  piped.set(from, on);
  if (on) {
    from.pipe(to);
  } else {
    from.unpipe(to);
    from.pause();
  }
}

/**
 * Starts a TCP proxy on a free loopback port that forwards every connection to `target` (a URL such
 * as a member's `clientUrl`, `host:port`, or `{host, port}`), and resolves once it listens.
 * Aborting `options.signal` rejects with its reason.
 *
 * @example
 * ```ts
 * await using proxy = await startProxy(etcd.members[0].clientUrl);
 * const client = etcd.client({ hosts: [proxy.url] });
 * proxy.blackhole(); // keep-alives stop arriving; the session is lost within its TTL
 * proxy.heal();
 * ```
 */
export async function startProxy(
  target: string | { host: string; port: number },
  options: StartProxyOptions = {},
): Promise<TcpProxy> {
  const to = parseTarget(target);
  const host = options.host ?? '127.0.0.1';
  options.signal?.throwIfAborted();
  const server = createServer({ noDelay: true, pauseOnConnect: false });
  await new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      server.close();
      reject(options.signal?.reason as unknown);
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    server.once('error', (error) => {
      options.signal?.removeEventListener('abort', onAbort);
      reject(error);
    });
    server.listen(0, host, () => {
      options.signal?.removeEventListener('abort', onAbort);
      resolve();
    });
  });
  return new Proxy(server, host, to);
}
