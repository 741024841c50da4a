// parsePrometheusText and sumMetric: every branch of the exposition format the parser claims to read,
// and every way it refuses a line.
import { describe, expect, test } from 'vitest';
import { parsePrometheusText, sumMetric } from './index.js';

describe('parsePrometheusText', () => {
  test('skips blank, whitespace-only and comment lines; trims each line', () => {
    const metrics = parsePrometheusText('\n   \n# HELP up is it up\n  # indented comment\n\tup 1  \n');
    expect([...metrics]).toEqual([['up', 1]]);
  });

  test('reads every value form: integers, decimals, exponents, signs, ±Inf, Inf, NaN; drops a timestamp', () => {
    const metrics = parsePrometheusText(
      ['a 3', 'b -2.5', 'c 1.5e3', 'd +Inf', 'e Inf', 'f -Inf', 'g NaN', 'h 7 1700000000000', 'i\t4'].join('\n'),
    );
    expect([...metrics.entries()]).toEqual([
      ['a', 3],
      ['b', -2.5],
      ['c', 1500],
      ['d', Number.POSITIVE_INFINITY],
      ['e', Number.POSITIVE_INFINITY],
      ['f', Number.NEGATIVE_INFINITY],
      ['g', Number.NaN],
      ['h', 7],
      ['i', 4],
    ]);
  });

  test('keeps a label set exactly as written, even with } , and escaped quotes inside values', () => {
    const series = 'm{path="a}b,c",quote="x\\"y",slash="z\\\\"}';
    const metrics = parsePrometheusText(`${series} 2\nm{} 3\nn{a="1"}4`);
    expect([...metrics.keys()]).toEqual([series, 'm{}', 'n{a="1"}']);
    expect(metrics.get(series)).toBe(2);
    expect(metrics.get('n{a="1"}')).toBe(4);
  });

  test.each([
    ['up abc', 'Cannot parse Prometheus sample line `up abc`'],
    ['up', 'Cannot parse Prometheus sample line `up`'],
    ['  up  ', 'Cannot parse Prometheus sample line `  up  `'],
    ['m{a="1" 2', 'Unterminated label set in Prometheus sample line `m{a="1" 2`'],
    ['m{a="1}" 2', 'Unterminated label set in Prometheus sample line `m{a="1}" 2`'],
    ['m{a="x\\"} 2', 'Unterminated label set in Prometheus sample line `m{a="x\\"} 2`'],
  ])('refuses %j with a SyntaxError naming the line', (text, message) => {
    expect(() => parsePrometheusText(text)).toThrow(SyntaxError);
    expect(() => parsePrometheusText(text)).toThrow(message);
  });
});

describe('sumMetric', () => {
  // Parsed inside each test, never while the file is collected: a parser that throws must fail tests,
  // not the loading of the file (which StrykerJS's vitest runner would not count as a failure).
  const metrics = () => parsePrometheusText(
    [
      'req{code="OK",method="Range"} 5',
      'req{code="OK",method="Put"} 3',
      'req{ code = "Err" , method="Put" } 1',
      'req 100',
      'req_total{code="OK"} 1000',
      'esc{v="a\\"b",nl="x\\ny",bs="c\\\\d"} 7',
    ].join('\n'),
  );

  test('sums every series of the name, unlabelled ones included; never a longer name', () => {
    expect(sumMetric(metrics(), 'req')).toBe(109);
    expect(sumMetric(metrics(), 'req_total')).toBe(1000);
    expect(sumMetric(metrics(), 're')).toBe(0);
  });

  test('labels narrow the sum: all must match; a series without labels matches none; spaces in a label set are fine', () => {
    expect(sumMetric(metrics(), 'req', { code: 'OK' })).toBe(8);
    expect(sumMetric(metrics(), 'req', { method: 'Put' })).toBe(4);
    expect(sumMetric(metrics(), 'req', { code: 'Err', method: 'Put' })).toBe(1);
    expect(sumMetric(metrics(), 'req', { code: 'OK', method: 'Nope' })).toBe(0);
    expect(sumMetric(metrics(), 'req', { missing: '' })).toBe(0);
  });

  test('label values are unescaped before they are compared: \\" \\n \\\\', () => {
    expect(sumMetric(metrics(), 'esc', { v: 'a"b' })).toBe(7);
    expect(sumMetric(metrics(), 'esc', { nl: 'x\ny' })).toBe(7);
    expect(sumMetric(metrics(), 'esc', { bs: 'c\\d' })).toBe(7);
    expect(sumMetric(metrics(), 'esc', { v: 'a\\"b' })).toBe(0);
    expect(sumMetric(metrics(), 'esc', { nl: 'xny' })).toBe(0);
  });
});
