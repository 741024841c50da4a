/**
 * `startProxy`: a TCP proxy for network faults in tests — partitions (blackhole), slow networks
 * (delay), connection resets, and requests delivered long after their client gave up (strand).
 */
import { createServer } from 'node:net';
import { Proxy } from './proxy-server.js';

/** Which way a {@link TcpProxy.blackhole} stops traffic (or a {@link TcpProxy.delay} slows it). */
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

/** How a {@link TcpProxy.delay} varies from chunk to chunk, and how it loses chunks. */
export interface ProxyDelayOptions {
  /** Each chunk waits `ms` ± up to this much, drawn uniformly (never less than 0). @default 0 */
  jitterMs?: number;
  /**
   * The share of chunks lost, from 0 to below 1. A lost chunk arrives `lossStallMs` later, as a
   * segment TCP retransmits; the chunks behind it wait for it. @default 0
   */
  loss?: number;
  /**
   * How much later a lost chunk arrives, in ms.
   * @default max(200, 2 × ms): Linux's smallest retransmission timeout, or a round trip of this delay
   */
  lossStallMs?: number;
  /** Random numbers in [0, 1) for jitter and loss: pass a seeded one to replay a run. @default Math.random */
  random?: () => number;
}

/**
 * A TCP proxy between a test's client and one etcd endpoint (or any TCP server), for network faults
 * without Docker or root: point the client at `url` instead of the member's `clientUrl`, then
 * `blackhole()`, `delay()`, `reset()`, `strand()` and `heal()`. `await using` closes it.
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
  /** How long each chunk is held before it is passed on, per direction, in ms (0: not delayed). */
  readonly delayed: {
    /** The delay of requests (client → target), in ms. */
    toTarget: number;
    /** The delay of answers (target → client), in ms. */
    toClient: number;
  };
  /** How many client connections are open now. */
  readonly connections: number;
  /** How many client connections were accepted since the start. */
  readonly accepted: number;
  /**
   * Stops passing bytes — `'both'` ways by default, or only `'toTarget'` (requests) or `'toClient'`
   * (responses) — while keeping every socket open, like a partition or a stalled network: nothing fails,
   * nothing arrives. New connections are accepted but not connected onward until `heal()` (with
   * `'both'`). Bytes sent meanwhile wait in the proxy, in order, and arrive after `heal()`, as TCP
   * would retransmit them.
   */
  blackhole(direction?: ProxyDirection): void;
  /**
   * Holds every chunk that passes in `direction` (`'both'` by default) for `ms` before passing it on,
   * in order: a slow network, in which every request or answer arrives late but arrives. With
   * `options`, each chunk's delay varies (`jitterMs`) and some are lost (`loss`) — emulated, since a
   * proxy sees a TCP stream, not packets: a lost chunk arrives one retransmission later, as TCP would
   * deliver it, holding up those behind it. A later call replaces the delay of the directions it
   * names; `delay(0)` ends it, and what was waiting goes at once.
   * @throws {TypeError} For a negative or non-finite `ms` or `jitterMs`, a `loss` outside [0, 1).
   */
  delay(ms: number, direction?: ProxyDirection, options?: ProxyDelayOptions): void;
  /**
   * Destroys every open connection with a TCP RST on the client side (the client sees ECONNRESET);
   * new connections are accepted as usual (and still blackholed if the proxy is).
   */
  reset(): void;
  /**
   * As `reset()` for the clients — each sees ECONNRESET and, if it retries, does so on a new
   * connection — but the requests the proxy still holds (sent during a `blackhole('toTarget')` or a
   * delay) are kept, with each connection to the target, until {@link deliverStranded}: then they
   * arrive, complete and in order, long after their client gave up on them — a delayed duplicate, as
   * a network that held packets can deliver them. Resolves nothing; returns how many connections
   * were stranded with bytes to deliver.
   */
  strand(): number;
  /**
   * Sends every stranded connection's held requests to the target, waits `lingerMs` (default 1000) so
   * that the server can act on them (its answers are dropped), then closes those connections.
   * Resolves with the number of bytes delivered.
   */
  deliverStranded(options?: { lingerMs?: number }): Promise<number>;
  /** Ends a blackhole: every open and pending connection forwards again, held bytes first. */
  heal(): void;
  /** Stops listening and destroys every connection, stranded ones too. Idempotent. */
  close(): Promise<void>;
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
