/**
 * Parses Prometheus text exposition format into a map from series (`name` or `name{label="v",…}`, exactly
 * as the exporter wrote it) to value.
 *
 * Comments and blank lines are skipped, timestamps dropped, `+Inf`/`-Inf`/`NaN` kept as numbers.
 * @throws {SyntaxError} On a sample line it cannot read.
 * @example
 * parsePrometheusText('# TYPE up gauge\nup{job="etcd"} 1\n').get('up{job="etcd"}'); // 1
 */
export function parsePrometheusText(text: string): Map<string, number> {
  const result = new Map<string, number>();
  for (const rawLine of text.split('\n')) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) continue;
    let end = 0;
    while (end < line.length && !/[\s{]/.test(line.charAt(end))) end++;
    if (line.charAt(end) === '{') {
      end = endOfLabels(line, end);
    }
    const series = line.slice(0, end);
    const [valueText] = line.slice(end).trim().split(/\s+/);
    const value = parseSampleValue(valueText);
    if (series === '' || value === undefined) {
      throw new SyntaxError(`Cannot parse Prometheus sample line \`${rawLine}\``);
    }
    result.set(series, value);
  }
  return result;
}

/**
 * Sums every series of metric `name` whose labels include all of `labels` — e.g. all
 * `grpc_server_handled_total` samples, or only those with `{grpc_method: 'Range'}`.
 * @example
 * sumMetric(await etcd.metrics(), 'grpc_server_handled_total', { grpc_service: 'etcdserverpb.KV' });
 */
export function sumMetric(
  metrics: ReadonlyMap<string, number>,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): number {
  let sum = 0;
  for (const [series, value] of metrics) {
    const brace = series.indexOf('{');
    const seriesName = brace === -1 ? series : series.slice(0, brace);
    if (seriesName !== name) continue;
    const seriesLabels = brace === -1 ? new Map<string, string>() : parseLabels(series.slice(brace));
    if (Object.entries(labels).every(([key, wanted]) => seriesLabels.get(key) === wanted)) sum += value;
  }
  return sum;
}

/** Returns the index just past the `}` closing the label set that opens at `start`, honouring quoted values. */
function endOfLabels(line: string, start: number): number {
  let inQuotes = false;
  for (let i = start + 1; i < line.length; i++) {
    const char = line.charAt(i);
    if (inQuotes) {
      if (char === '\\') i++;
      else if (char === '"') inQuotes = false;
    } else if (char === '"') {
      inQuotes = true;
    } else if (char === '}') {
      return i + 1;
    }
  }
  throw new SyntaxError(`Unterminated label set in Prometheus sample line \`${line}\``);
}

/** Parses `{a="x",b="y\"z"}` into its labels, unescaping values. */
function parseLabels(labelSet: string): Map<string, string> {
  const labels = new Map<string, string>();
  const pattern = /\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?/gy;
  pattern.lastIndex = 1;
  for (let match = pattern.exec(labelSet); match !== null; match = pattern.exec(labelSet)) {
    const [, key = '', value = ''] = match;
    labels.set(
      key,
      value.replace(/\\(.)/g, (_, escaped: string) => (escaped === 'n' ? '\n' : escaped)),
    );
  }
  return labels;
}

function parseSampleValue(text: string | undefined): number | undefined {
  switch (text) {
    case undefined:
    case '':
      return undefined;
    case '+Inf':
    case 'Inf':
      return Number.POSITIVE_INFINITY;
    case '-Inf':
      return Number.NEGATIVE_INFINITY;
    case 'NaN':
      return Number.NaN;
    default: {
      const value = Number(text);
      return Number.isNaN(value) ? undefined : value;
    }
  }
}
