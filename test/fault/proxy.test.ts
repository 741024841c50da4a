// The TCP proxy of leasehold/testing against a plain echo server: forward, blackhole, heal, delay
// (with jitter and loss), reset, strand.
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

  test('delay holds every chunk for its time, in order, per direction; delay(0) lets what waits go at once', async () => {
    await using proxy = await startProxy(`127.0.0.1:${port}`);
    const c = await connect(proxy.port);
    proxy.delay(800, 'toClient');
    expect(proxy.delayed).toEqual({ toTarget: 0, toClient: 800 });
    const sent = performance.now();
    c.socket.write('slow');
    await until(() => received.includes('slow'));
    expect(performance.now() - sent, 'requests are not delayed').toBeLessThan(700);
    await until(() => c.text() === 'slow', 5000);
    expect(performance.now() - sent).toBeGreaterThanOrEqual(795);
    // Both ways: the round trip takes both delays; chunks keep their order.
    proxy.delay(200);
    const again = performance.now();
    c.socket.write('a');
    await delay(20);
    c.socket.write('b');
    await until(() => c.text() === 'slowab', 5000);
    expect(performance.now() - again).toBeGreaterThanOrEqual(395);
    // Ending the delay delivers what was held at once.
    c.socket.write('c');
    await until(() => received.at(-1) === 'c', 5000);
    proxy.delay(0);
    await until(() => c.text() === 'slowabc', 100);
    expect(proxy.delayed).toEqual({ toTarget: 0, toClient: 0 });
    c.socket.destroy();
  });

  test('delay with jitter and loss: each chunk waits ms ± jitter, a lost one a retransmission more, in order', async () => {
    await using proxy = await startProxy(`127.0.0.1:${port}`);
    const c = await connect(proxy.port);
    // Draws: jitter −1…+1 from 2r − 1, then lost when r < loss.
    const draws = [0, 0.9, 1 - 1e-9, 0.1];
    proxy.delay(100, 'toClient', { jitterMs: 50, loss: 0.5, lossStallMs: 400, random: () => draws.shift() ?? 0.5 });
    const timed = async (text: string, expected: string): Promise<number> => {
      const sent = performance.now();
      c.socket.write(text);
      await until(() => c.text() === expected, 5000);
      return performance.now() - sent;
    };
    const first = await timed('x', 'x'); // 100 − 50, not lost
    expect(first).toBeGreaterThanOrEqual(45);
    expect(first).toBeLessThan(500);
    const second = await timed('y', 'xy'); // 100 + 50, lost: + 400
    expect(second).toBeGreaterThanOrEqual(545);
    // Order holds: a chunk behind a lost one waits for it.
    draws.push(0.5, 0.1, 0.5, 0.9);
    c.socket.write('1');
    await delay(20);
    c.socket.write('2');
    await until(() => c.text().length === 4, 5000);
    expect(c.text()).toBe('xy12');
    c.socket.destroy();
  });

  test('strand resets the client but keeps its held requests for the target; deliverStranded sends them, late', async () => {
    await using proxy = await startProxy(`127.0.0.1:${port}`);
    const c = await connect(proxy.port);
    c.socket.write('before');
    await until(() => c.text() === 'before');
    proxy.blackhole('toTarget');
    c.socket.write('held-request');
    await delay(100);
    expect(received).not.toContain('held-request');
    expect(proxy.strand()).toBe(1);
    await until(() => c.events.includes('close'));
    expect(c.events).toContain('ECONNRESET');
    expect(proxy.connections).toBe(0);
    // The client retries on a new connection, which works once the proxy heals.
    proxy.heal();
    const d = await connect(proxy.port);
    d.socket.write('retry');
    await until(() => d.text() === 'retry');
    expect(received).not.toContain('held-request');
    // Later, the held request arrives after all, on its old connection.
    expect(await proxy.deliverStranded({ lingerMs: 100 })).toBe('held-request'.length);
    expect(received).toContain('held-request');
    expect(await proxy.deliverStranded()).toBe(0);
    // A connection with nothing held is not stranded.
    proxy.blackhole('toTarget');
    expect(proxy.strand()).toBe(0);
    proxy.heal();
  });

  test('rejects a bad target, direction or delay, naming the value; close is idempotent', async () => {
    await expect(startProxy('nonsense')).rejects.toThrow(/`target`.*nonsense/);
    const proxy = await startProxy(`127.0.0.1:${port}`);
    expect(() => proxy.blackhole('sideways' as never)).toThrow(/`direction`.*sideways/);
    expect(() => proxy.delay(-1)).toThrow(/`ms`.*-1/);
    expect(() => proxy.delay(10, 'up' as never)).toThrow(/`direction`.*up/);
    expect(() => proxy.delay(10, 'both', { jitterMs: -5 })).toThrow(/`jitterMs`.*-5/);
    expect(() => proxy.delay(10, 'both', { loss: 1 })).toThrow(/`loss`.*1/);
    await proxy.close();
    await proxy.close();
  });
});
