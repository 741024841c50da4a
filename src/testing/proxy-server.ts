/**
 * The TCP proxy of `startProxy` (see `TcpProxy` for what each fault does): every accepted client
 * connection is paired with one to the target, and each direction of the pair is a {@link Lane} that
 * passes, holds or delays its bytes as the proxy's faults say.
 */
import { createConnection, type AddressInfo, type Server, type Socket } from 'node:net';
import { drawDelay, isNoDelay, Lane, noDelay, resolveDelay, type Delay, type LanePolicy } from './proxy-lane.js';
import type { ProxyDelayOptions, ProxyDirection, TcpProxy } from './proxy.js';

interface Pair {
  client: Socket;
  upstream: Socket | undefined;
  /** Requests, from the client to the target. */
  up: Lane;
  /** Answers, from the target to the client. */
  down: Lane;
}

function checkDirection(direction: unknown): asserts direction is ProxyDirection {
  if (!['both', 'toTarget', 'toClient'].includes(direction as string)) {
    throw new TypeError(`Expected \`direction\` to be 'both', 'toTarget' or 'toClient', got \`${String(direction)}\``);
  }
}

/** The proxy behind {@link startProxy}: its connections, and the faults it applies to them. */
export class Proxy implements TcpProxy {
  readonly url: string;
  readonly port: number;
  readonly target: string;
  readonly #server: Server;
  readonly #to: { host: string; port: number };
  readonly #pairs = new Set<Pair>();
  readonly #stranded = new Set<Pair>();
  readonly #delay: { toTarget: Delay; toClient: Delay } = { toTarget: noDelay, toClient: noDelay };
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

  get delayed(): { toTarget: number; toClient: number } {
    return { toTarget: this.#delay.toTarget.ms, toClient: this.#delay.toClient.ms };
  }

  get connections(): number {
    return this.#pairs.size;
  }

  get accepted(): number {
    return this.#accepted;
  }

  blackhole(direction: ProxyDirection = 'both'): void {
    checkDirection(direction);
    this.#direction = direction;
    this.#flow();
  }

  heal(): void {
    this.#direction = 'none';
    this.#flow();
  }

  delay(ms: number, direction: ProxyDirection = 'both', options?: ProxyDelayOptions): void {
    const delay = resolveDelay(ms, options);
    checkDirection(direction);
    for (const lane of ['toTarget', 'toClient'] as const) {
      if (direction !== 'both' && direction !== lane) continue;
      this.#delay[lane] = delay;
      if (isNoDelay(delay)) for (const pair of this.#pairs) (lane === 'toTarget' ? pair.up : pair.down).expedite();
    }
  }

  reset(): void {
    for (const pair of [...this.#pairs]) this.#destroy(pair, true);
  }

  strand(): number {
    let count = 0;
    for (const pair of [...this.#pairs]) {
      this.#pairs.delete(pair);
      pair.client.resetAndDestroy();
      pair.down.clear();
      // The target's answers now go nowhere.
      pair.upstream?.removeAllListeners('data').on('data', () => undefined);
      if (pair.up.queued === 0) {
        pair.up.clear();
        pair.upstream?.destroy();
        continue;
      }
      pair.up.sink = undefined; // nothing goes until delivered
      this.#stranded.add(pair);
      count++;
    }
    return count;
  }

  async deliverStranded(options: { lingerMs?: number } = {}): Promise<number> {
    const pairs = [...this.#stranded];
    this.#stranded.clear();
    let bytes = 0;
    for (const pair of pairs) {
      bytes += pair.up.queued;
      pair.up.sink = pair.upstream ?? this.#dial(pair);
      pair.up.expedite();
    }
    await new Promise((resolve) => setTimeout(resolve, options.lingerMs ?? 1000));
    for (const pair of pairs) {
      pair.up.clear();
      pair.upstream?.destroy();
    }
    return bytes;
  }

  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.reset();
      for (const pair of this.#stranded) {
        pair.up.clear();
        pair.upstream?.destroy();
      }
      this.#stranded.clear();
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
    const pair: Pair = {
      client,
      upstream: undefined,
      up: new Lane(this.#policy('toTarget')),
      down: new Lane(this.#policy('toClient'), client),
    };
    this.#pairs.add(pair);
    client.on('data', (chunk: Buffer) => pair.up.push(chunk));
    client.on('error', () => this.#destroy(pair, false));
    client.on('close', () => this.#destroy(pair, false));
    // During a full blackhole, like a SYN lost in a partition: the connection exists, nothing goes
    // anywhere until heal().
    if (this.#direction !== 'both') this.#connect(pair);
  }

  #policy(lane: 'toTarget' | 'toClient'): LanePolicy {
    return {
      stopped: () => this.#direction === 'both' || this.#direction === lane,
      delayMs: () => drawDelay(this.#delay[lane]),
    };
  }

  /** Opens the connection to the target for `pair`; its answers go down `pair.down`. */
  #dial(pair: Pair): Socket {
    const upstream = createConnection(this.#to);
    upstream.setNoDelay(true);
    pair.upstream = upstream;
    upstream.on('data', (chunk: Buffer) => pair.down.push(chunk));
    upstream.on('error', () => this.#destroy(pair, false));
    upstream.on('close', () => this.#destroy(pair, false));
    return upstream;
  }

  #connect(pair: Pair): void {
    pair.up.sink = this.#dial(pair);
    pair.up.drain();
  }

  /** Connects what waited for a heal, and lets every lane write what it may now. */
  #flow(): void {
    for (const pair of this.#pairs) {
      if (!pair.upstream && this.#direction !== 'both') this.#connect(pair);
      pair.up.drain();
      pair.down.drain();
    }
  }

  #destroy(pair: Pair, rst: boolean): void {
    if (!this.#pairs.delete(pair)) return;
    pair.up.clear();
    pair.down.clear();
    if (rst) pair.client.resetAndDestroy();
    else pair.client.destroy();
    pair.upstream?.destroy();
  }
}

