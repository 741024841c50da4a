/**
 * etcd3's request ops (what its builders' `op()` give, or what a user writes by hand, in etcd3's
 * snake_case with enums by name or number and int64s as strings or numbers) as the port's
 * {@link RequestOp}s. This is how a guarded commit built with etcd3's builders —
 * `lock.commit(etcd.put('k').value('v'))` — travels through any adapter of the port: the public API
 * keeps taking etcd3's `IOperation | IRequestOp`, and this module is the one place that reads them.
 * Keys are taken as they are: the builder already applied its client's namespace.
 */
import type { ICompare, IDeleteRangeRequest, IOperation, IPutRequest, IRangeRequest, IRequestOp, ITxnRequest } from 'etcd3';
import type { Compare, CompareResult, CompareTarget, RangeRequest, RequestOp, TxnRequest } from '../messages.js';

/** An enum value by name (etcd3's spelling, any case) or by number, among `names` in proto order. */
function enumOf<T extends string>(value: unknown, names: readonly T[], etcd3Names: readonly string[], field: string): T | undefined {
  if (value === undefined || value === null) return undefined;
  const index = typeof value === 'number' ? value : etcd3Names.findIndex((n) => n.toLowerCase() === String(value).toLowerCase());
  const name = names[index];
  if (name === undefined) throw new TypeError(`Expected \`${field}\` to be one of ${etcd3Names.join(', ')}, got ${JSON.stringify(value)}`);
  return name;
}

function int64(value: string | number | undefined, field: string): bigint | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  try {
    return BigInt(value);
  } catch {
    throw new TypeError(`Expected \`${field}\` to be an integer, got ${JSON.stringify(value)}`);
  }
}

function bytes(value: Buffer | string | undefined): Buffer {
  return value === undefined ? Buffer.alloc(0) : Buffer.from(value);
}

function range(r: IRangeRequest): RangeRequest {
  const out: RangeRequest = { key: bytes(r.key) };
  if (r.range_end !== undefined) out.rangeEnd = bytes(r.range_end);
  if (r.limit !== undefined) out.limit = Number(r.limit);
  const revisions = { revision: r.revision, minModRevision: r.min_mod_revision, maxModRevision: r.max_mod_revision, minCreateRevision: r.min_create_revision, maxCreateRevision: r.max_create_revision };
  for (const [name, value] of Object.entries(revisions)) {
    const v = int64(value, name);
    if (v !== undefined) out[name as 'revision'] = v;
  }
  const sortOrder = enumOf(r.sort_order, ['none', 'ascend', 'descend'] as const, ['None', 'Ascend', 'Descend'], 'sort_order');
  const sortTarget = enumOf(r.sort_target, ['key', 'version', 'create', 'mod', 'value'] as const, ['Key', 'Version', 'Create', 'Mod', 'Value'], 'sort_target');
  if (sortOrder) out.sortOrder = sortOrder;
  if (sortTarget) out.sortTarget = sortTarget;
  if (r.serializable) out.serializable = true;
  if (r.keys_only) out.keysOnly = true;
  if (r.count_only) out.countOnly = true;
  return out;
}

function put(p: IPutRequest): NonNullable<RequestOp['put']> {
  const lease = int64(p.lease, 'lease');
  return {
    key: bytes(p.key),
    value: bytes(p.value),
    ...(lease === undefined ? {} : { lease: lease.toString() }),
    ...(p.prev_kv ? { prevKv: true } : {}),
    ...(p.ignore_value ? { ignoreValue: true } : {}),
    ...(p.ignore_lease ? { ignoreLease: true } : {}),
  };
}

function deleteRange(d: IDeleteRangeRequest): NonNullable<RequestOp['deleteRange']> {
  return { key: bytes(d.key), ...(d.range_end === undefined ? {} : { rangeEnd: bytes(d.range_end) }), ...(d.prev_kv ? { prevKv: true } : {}) };
}

const targets = ['version', 'create', 'mod', 'value', 'lease'] as const;
const results = ['equal', 'greater', 'less', 'notEqual'] as const;

/** etcd3's compare as the port's. */
export function toCompare(c: ICompare): Compare {
  const target: CompareTarget = enumOf(c.target, targets, ['Version', 'Create', 'Mod', 'Value', 'Lease'], 'target') ?? 'version';
  const result: CompareResult = enumOf(c.result, results, ['Equal', 'Greater', 'Less', 'NotEqual'], 'result') ?? 'equal';
  const base = { key: bytes(c.key), result, ...(c.range_end === undefined ? {} : { rangeEnd: bytes(c.range_end) }) };
  switch (target) {
    case 'version':
      return { ...base, target, version: int64(c.version, 'version') ?? 0n };
    case 'create':
      return { ...base, target, createRevision: int64(c.create_revision, 'create_revision') ?? 0n };
    case 'mod':
      return { ...base, target, modRevision: int64(c.mod_revision, 'mod_revision') ?? 0n };
    case 'value':
      return { ...base, target, value: bytes(c.value) };
    case 'lease':
      return { ...base, target, lease: (int64(c.lease, 'lease') ?? 0n).toString() };
  }
}

function txn(t: ITxnRequest): TxnRequest {
  return { compare: (t.compare ?? []).map(toCompare), success: (t.success ?? []).map(toRequestOp), failure: (t.failure ?? []).map(toRequestOp) };
}

/** One etcd3 request op as the port's; throws a TypeError naming what is wrong with it. */
export function toRequestOp(op: IRequestOp): RequestOp {
  if (op.request_range) return { range: range(op.request_range) };
  if (op.request_put) return { put: put(op.request_put) };
  if (op.request_delete_range) return { deleteRange: deleteRange(op.request_delete_range) };
  if (op.request_txn) return { txn: txn(op.request_txn) };
  throw new TypeError(`Expected an etcd3 request op (request_range, request_put, request_delete_range or request_txn), got ${JSON.stringify(Object.keys(op))}`);
}

/** What `commit(...ops)` takes — etcd3 builders (`IOperation`) or raw request ops — as the port's ops. */
export async function toRequestOps(ops: readonly (IRequestOp | IOperation)[]): Promise<RequestOp[]> {
  return Promise.all(ops.map(async (op) => toRequestOp('op' in op && typeof op.op === 'function' ? await op.op() : (op as IRequestOp))));
}
