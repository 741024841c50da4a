/**
 * How a process on the host reaches etcd members that live in network namespaces: a small Node
 * process runs *inside* one namespace and accepts connections on listening sockets that this process
 * opened on the host's loopback and handed over (a socket keeps the namespace it was created in), then
 * connects onward from inside the namespace. So `http://127.0.0.1:<port>` on the host leads, through
 * that namespace's link, to one member: no interface, address or route is added to the host.
 *
 * It is a user-space hop: a connection to the gateway is accepted at once even when the namespace
 * cannot reach the member (the onward connection then hangs, as the real one would; its failure closes
 * the accepted one).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import type { Reaper } from './reaper.js';

/** The gateway process: forwards each socket handed to it to the host and port that came with it. */
const GATEWAY_SCRIPT = `
const net = require('node:net');
process.on('disconnect', () => process.exit(0));
process.on('message', (target, server) => {
  if (!server) return;
  server.on('connection', (client) => {
    const upstream = net.connect(target.port, target.host);
    const end = () => { client.destroy(); upstream.destroy(); };
    for (const socket of [client, upstream]) { socket.on('error', end); socket.on('close', end); }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  process.send({ ready: target.id });
});
`;

/** A host and port inside the network. */
export interface Target {
  host: string;
  port: number;
}

/** A gateway process in one namespace, and the host URL that leads to each of its targets. */
export class Gateway {
  readonly #child: ChildProcess;
  readonly #urls = new Map<string, string>();
  readonly #reaper: Reaper;

  private constructor(child: ChildProcess, reaper: Reaper) {
    this.#child = child;
    this.#reaper = reaper;
  }

  /**
   * Starts a gateway with `command` (the prefix that runs a program in the namespace) and a host port
   * for each target; resolves once every port is served from inside the namespace.
   */
  static async start(command: readonly string[], targets: readonly Target[], reaper: Reaper): Promise<Gateway> {
    const [program, ...args] = command;
    const child = spawn(program!, [...args, process.execPath, '-e', GATEWAY_SCRIPT], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    const gateway = new Gateway(child, reaper);
    if (child.pid !== undefined) reaper.track(child.pid);
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<never>((_, reject) => {
      child.once('exit', (code, signal) => reject(new Error(`The network gateway exited (${code ?? signal}): ${stderr.trim()}`)));
      child.once('error', reject);
    });
    exited.catch(() => undefined);
    try {
      for (const [id, target] of targets.entries()) {
        await Promise.race([gateway.#serve(id, target), exited]);
      }
    } catch (error) {
      gateway.stop();
      throw error;
    }
    // From now on neither the process nor its channel keeps this process's event loop alive.
    child.unref();
    (child.channel as { unref?: () => void } | undefined)?.unref?.();
    child.stderr?.destroy();
    return gateway;
  }

  /** The host URL (`http://127.0.0.1:<port>`) that leads to `target`. */
  url(target: Target): string {
    const url = this.#urls.get(`${target.host}:${target.port}`);
    if (url === undefined) throw new TypeError(`The gateway does not lead to ${target.host}:${target.port}`);
    return url;
  }

  /** Kills the gateway process; every connection through it ends. Idempotent. */
  stop(): void {
    const pid = this.#child.pid;
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill('SIGKILL');
    if (pid !== undefined) this.#reaper.untrack(pid);
  }

  /** Opens a host port for `target`, hands it to the gateway, and waits until it is served there. */
  async #serve(id: number, target: Target): Promise<void> {
    const server: Server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, resolve);
    });
    const port = (server.address() as { port: number }).port;
    try {
      await new Promise<void>((resolve, reject) => {
        const onMessage = (message: { ready?: number }): void => {
          if (message.ready !== id) return;
          this.#child.off('message', onMessage);
          resolve();
        };
        this.#child.on('message', onMessage);
        this.#child.send({ ...target, id }, server, (error) => error && reject(error));
      });
    } finally {
      // The gateway holds its own copy of the socket; ours would only compete for connections.
      server.close();
    }
    this.#urls.set(`${target.host}:${target.port}`, `http://127.0.0.1:${port}`);
  }
}
