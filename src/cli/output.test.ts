import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { eventually } from '../../test/helpers.js';
import { Output } from './output.js';

const dir = mkdtempSync(join(tmpdir(), 'leasehold-output-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A named pipe's two ends, both non-blocking: a full pipe answers EAGAIN, a reader-less one EPIPE. */
function fifo(name: string): { reader: number; writer: number } {
  const path = join(dir, name);
  execFileSync('mkfifo', [path]);
  const reader = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const writer = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
  return { reader, writer };
}

function fill(fd: number): void {
  try {
    for (;;) writeSync(fd, Buffer.alloc(4096, 'f'));
  } catch (error) {
    expect((error as NodeJS.ErrnoException).code).toBe('EAGAIN');
  }
}

function drain(fd: number): string {
  const buf = Buffer.alloc(1 << 16);
  let out = '';
  for (;;) {
    try {
      const n = readSync(fd, buf);
      if (n === 0) return out;
      out += buf.toString('latin1', 0, n);
    } catch {
      return out; // EAGAIN: empty for now
    }
  }
}

describe('Output', () => {
  test('writes everything, in order, with line() adding the newline; an empty write is nothing', async () => {
    const path = join(dir, 'ordered');
    const fd = openSync(path, 'w');
    const out = new Output(fd);
    const expected: string[] = [];
    for (let i = 0; i < 200; i++) {
      out.line(`line ${i} ${'x'.repeat(i * 10)}`);
      expected.push(`line ${i} ${'x'.repeat(i * 10)}`);
    }
    out.write('');
    out.write('tail');
    await out.flush(10_000);
    closeSync(fd);
    expect(readFileSync(path, 'utf8')).toBe(`${expected.join('\n')}\ntail`);
    expect(out.closed).toBe(false);
  });

  test('a failed write is dropped, never thrown: the stream counts as closed, its listeners hear it once, later writes are dropped', async () => {
    const fd = openSync(join(dir, 'read-only'), 'w+');
    closeSync(fd);
    const ro = openSync(join(dir, 'read-only'), 'r'); // writing to it: EBADF
    const out = new Output(ro);
    let heard = 0;
    const unsubscribe = out.onClosed(() => heard++);
    const other = out.onClosed(() => heard++);
    other(); // unsubscribed: not called
    out.line('lost');
    out.line('also lost');
    await out.flush(5000);
    expect(out.closed).toBe(true);
    expect(heard).toBe(1);
    unsubscribe();
    let late = 0;
    out.onClosed(() => late++)(); // already closed: called at once
    expect(late).toBe(1);
    expect(() => out.line('after')).not.toThrow();
    await out.flush(5000);
    closeSync(ro);
    expect(readFileSync(join(dir, 'read-only'), 'utf8')).toBe('');
  });

  test('EPIPE (the reader went away) closes the stream without an error', async () => {
    const { reader, writer } = fifo('epipe');
    closeSync(reader);
    const out = new Output(writer);
    const closed = new Promise<void>((resolve) => out.onClosed(resolve));
    out.line('nobody reads this');
    await closed;
    expect(out.closed).toBe(true);
    closeSync(writer);
  });

  test('a full non-blocking pipe (EAGAIN) is waited for, not dropped, also a line longer than the pipe; flush() is bounded meanwhile', async () => {
    const { reader, writer } = fifo('full');
    fill(writer);
    const out = new Output(writer);
    const long = 'L'.repeat(300_000); // several partial writes
    out.line(long);
    out.line('after the backlog');
    const started = performance.now();
    await out.flush(100);
    expect(performance.now() - started).toBeLessThan(5000); // bounded although the write is still pending
    let read = '';
    await eventually(() => (read += drain(reader)).endsWith('after the backlog\n'), 10_000, 'the lines written once drained');
    expect(read.slice(-long.length - 19)).toBe(`${long}\nafter the backlog\n`);
    expect(out.closed).toBe(false);
    closeSync(reader);
    closeSync(writer);
  });

  test('a pipe that stays full: after the retries (waiting 1, 2, … × backoffMs) the line is dropped, the stream stays open for the next; the shared description stays blocking', async () => {
    const { reader, writer: filler } = fifo('stuck');
    fill(filler);
    const writer = openSync(join(dir, 'stuck'), constants.O_WRONLY); // blocking, as the command has it
    const out = new Output(writer, { retries: 3, backoffMs: 20 });
    out.line('dropped');
    const started = performance.now();
    await out.flush(10_000);
    expect(performance.now() - started).toBeGreaterThanOrEqual(110); // 20 + 40 + 60 ms of waits
    expect(out.closed).toBe(false);
    drain(reader);
    out.line('next');
    await out.flush(10_000);
    expect(drain(reader)).toBe('next\n');
    const flags = Number.parseInt(/flags:\s+(\d+)/.exec(readFileSync(`/proc/self/fdinfo/${writer}`, 'utf8'))![1]!, 8);
    expect(flags & constants.O_NONBLOCK).toBe(0);
    closeSync(reader);
    closeSync(writer);
    closeSync(filler);
  });

  test('nothing else in the command line writes to process.stdout or process.stderr', () => {
    const cli = new URL('.', import.meta.url);
    const offenders = readdirSync(cli)
      .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && f !== 'output.ts')
      .filter((f) => /process\.(stdout|stderr)/.test(readFileSync(new URL(f, cli), 'utf8')));
    expect(offenders).toEqual([]);
  });
});
