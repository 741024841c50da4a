import { describe, expect, test } from 'vitest';
import { LeaseLostError } from '../errors.js';
import { UsageError } from './exit-codes.js';
import { Reporter, toJson } from './report.js';

function reporter(flags: { json?: boolean; quiet?: boolean }): { report: Reporter; lines: string[] } {
  const lines: string[] = [];
  return { report: new Reporter(flags, (line) => lines.push(line)), lines };
}

describe('Reporter', () => {
  test('text: one line per event, prefixed; --quiet keeps errors only', () => {
    const text = reporter({});
    text.report.info('acquired', 'lock "a" acquired', { key: 'a/1' });
    text.report.error('lost', 'lock "a" lost');
    expect(text.lines).toEqual(['leasehold: lock "a" acquired', 'leasehold: lock "a" lost']);
    const quiet = reporter({ quiet: true });
    quiet.report.info('acquired', 'x');
    quiet.report.error('timeout', 'y');
    expect(quiet.lines).toEqual(['leasehold: y']);
  });

  test('--json: an object per line with the event, the fields and the message; bigints as strings', () => {
    const json = reporter({ json: true });
    json.report.info('acquired', 'held', { token: 12345678901234567890n, name: 'a' });
    expect(json.lines.map((l) => JSON.parse(l) as unknown)).toEqual([{ event: 'acquired', token: '12345678901234567890', name: 'a', message: 'held' }]);
    const quiet = reporter({ json: true, quiet: true });
    quiet.report.info('released', 'x');
    expect(quiet.lines).toEqual([]);
  });

  test('failure reports an error with its exit code, and returns the code', () => {
    const r = reporter({ json: true, quiet: true });
    expect(r.report.failure(new UsageError('bad'), { name: 'a' })).toBe(64);
    expect(r.report.failure(new LeaseLostError('gone', { leaseId: '1' }), {})).toBe(79);
    expect(r.report.failure('odd', {})).toBe(70);
    expect(r.lines.map((l) => JSON.parse(l) as unknown)).toEqual([
      { event: 'error', name: 'a', code: 64, message: 'bad' },
      { event: 'error', code: 79, message: 'gone' },
      { event: 'error', code: 70, message: 'odd' },
    ]);
  });
});

test('toJson writes bigints as decimal strings and leaves the rest to JSON', () => {
  expect(toJson({ a: 1n, b: [2n, 'c'], d: null })).toBe('{"a":"1","b":["2","c"],"d":null}');
});
