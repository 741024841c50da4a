// The TCP proxy of leasehold/testing against a plain echo server: forward, blackhole, heal, reset.
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startProxy } from '../../src/testing/proxy.js';

let echo: Server;
let port = 0;
const received: string[] = [];

beforeAll(async () => {
  echo = createServer((socket) => {
    socket.on('data', (chunk) => {
      received.push(chunk.toString());
      socket.write(chunk);
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  port = (echo.address() as { port: number }).port;
});
afterAll(async () => {
  await new Promise<void>((resolve) => echo.close(() => resolve()));
});

/** A connected client socket and everything it has read so far. */
async function connect(proxyPort: number): Promise<{ socket: Socket; text: () => string; events: string[] }> {
  const socket = createConnection({ host: '127.0.0.1', port: proxyPort });
  let data = '';
  const events: string[] = [];
  socket.on('data', (chunk) => {
    data += chunk.toString();
  });
  socket.on('error', (error: NodeJS.ErrnoException) => events.push(error.code ?? error.message));
  socket.on('close', () => events.push('close'));
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  return { socket, text: () => data, events };
}

async function until(check: () => boolean, ms = 2000): Promise<void> {
  const end = performance.now() + ms;
  while (!check()) {
    if (performance.now() > end) throw new Error('condition not met');
    await delay(10);
  }
}

describe('startProxy', () => {
  test('forwards both ways, and reports its url, target and connections', async () => {
    await using proxy = await startProxy(`http://127.0.0.1:${port}`);
    expect(proxy.url).toBe(`http://127.0.0.1:${proxy.port}`);
    expect(proxy.target).toBe(`127.0.0.1:${port}`);
    const c = await connect(proxy.port);
    c.socket.write('hello');
    await until(() => c.text() === 'hello');
    expect(proxy.connections).toBe(1);
    expect(proxy.accepted).toBe(1);
    c.socket.destroy();
    await until(() => proxy.connections === 0);
  });

  test('blackhole passes nothing but keeps the socket open; heal delivers what waited', async () => {
    await using proxy = await startProxy({ host: '127.0.0.1', port });
    const c = await connect(proxy.port);
    proxy.blackhole();
    expect(proxy.blackholed).toBe('both');
    const before = received.length;
    c.socket.write('stalled');
    await delay(200);
    expect(received.length).toBe(before);
    expect(c.text()).toBe('');
    expect(c.events).toEqual([]);
    proxy.heal();
    expect(proxy.blackholed).toBe('none');
    await until(() => c.text() === 'stalled');
    c.socket.destroy();
  });

  test("blackhole('toClient') lets requests through and holds the answers", async () => {
    await using proxy = await startProxy(`127.0.0.1:${port}`);
    const c = await connect(proxy.port);
    proxy.blackhole('toClient');
    c.socket.write('one-way');
    await until(() => received.includes('one-way'));
    await delay(100);
    expect(c.text()).toBe('');
    proxy.heal();
    await until(() => c.text() === 'one-way');
    c.socket.destroy();
  });

  test('a connection made during a blackhole goes nowhere until heal', async () => {
    await using proxy = await startProxy(`127.0.0.1:${port}`);
    proxy.blackhole();
    const c = await connect(proxy.port);
    c.socket.write('late');
    await delay(150);
    expect(c.text()).toBe('');
    proxy.heal();
    await until(() => c.text() === 'late');
    c.socket.destroy();
  });

  test('reset destroys open connections with ECONNRESET; new ones work', async () => {
    await using proxy = await startProxy(`127.0.0.1:${port}`);
    const c = await connect(proxy.port);
    c.socket.write('x');
    await until(() => c.text() === 'x');
    proxy.reset();
    await until(() => c.events.includes('close'));
    expect(c.events).toContain('ECONNRESET');
    expect(proxy.connections).toBe(0);
    const d = await connect(proxy.port);
    d.socket.write('again');
    await until(() => d.text() === 'again');
    d.socket.destroy();
  });

  test('rejects a bad target or direction, naming the value; close is idempotent', async () => {
    await expect(startProxy('nonsense')).rejects.toThrow(/`target`.*nonsense/);
    const proxy = await startProxy(`127.0.0.1:${port}`);
    expect(() => proxy.blackhole('sideways' as never)).toThrow(/`direction`.*sideways/);
    await proxy.close();
    await proxy.close();
  });
});
