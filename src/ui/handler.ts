/**
 * The live page as a request handler: `createUiHandler(client, { prefix })` returns a
 * `(req, res) => void` for `node:http` that a service can mount on its admin port, and that
 * `leasehold ui` serves on its own. Read-only by design: it answers GET and HEAD only (405 for
 * anything else), and its etcd traffic is one watch and range reads — it never writes or deletes a
 * key, takes no lease, and runs no command.
 *
 * It serves, relative to where it is mounted (every path is matched by its last segment, so it works
 * under any prefix, as long as the page's URL ends with `/`):
 * `./` the page, `./app.js` and `./app.css` its script and style, `./events` the state as
 * server-sent events (one `state` event now and after every change), `./state.json` the state once.
 * Every value from etcd reaches the page as JSON and is put into the page with `textContent`, never
 * as markup; the page's Content-Security-Policy allows no inline script and no other origin.
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Namespace } from 'etcd3';
import { listOptions, type ListOptions } from '../list.js';
import { checkInteger } from '../engine/validate.js';
import { PrefixFeed, type FeedState } from './feed.js';

/** Options of {@link createUiHandler}: what to list (as {@link ListOptions}) and how much history to keep. */
export interface UiOptions extends Omit<ListOptions, 'signal'> {
  /**
   * How many handoffs the timeline keeps.
   * @default 100
   */
  timeline?: number;
  /**
   * How often the watch is checked against etcd, in ms: a watch on a member that is paused or cut off
   * stays open and silent, so one txn of two count-only reads asks etcd whether anything under the
   * prefix changed that the watch did not deliver. When it did, or etcd does not answer within
   * `requestTimeout`, the page says it is not live and the feed reads again.
   * @default 5000
   */
  checkMs?: number;
  /**
   * How often an idle event stream gets a comment line, in ms (keeps proxies from closing it).
   * @default 15000
   */
  heartbeatMs?: number;
}

/** A request handler for the live page; `close()` ends its watch and its event streams. */
export interface UiHandler {
  (req: IncomingMessage, res: ServerResponse): void;
  /** Ends the watch and every open event stream. */
  close(): Promise<void>;
  /** The state the page shows now (what `./state.json` answers). */
  readonly state: FeedState;
}

const asset = (name: string): Buffer => readFileSync(new URL(`./static/${name}`, import.meta.url));
const assets: Record<string, { type: string; body: () => Buffer }> = {
  '': { type: 'text/html; charset=utf-8', body: () => asset('page.html') },
  'index.html': { type: 'text/html; charset=utf-8', body: () => asset('page.html') },
  'app.js': { type: 'text/javascript; charset=utf-8', body: () => asset('page.js') },
  'app.css': { type: 'text/css; charset=utf-8', body: () => asset('page.css') },
};

const securityHeaders = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

/** JSON for the page: bigints as decimal strings. */
function json(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

/** The state as the page gets it: with the server's clock, so it can show times without trusting its own. */
function message(state: FeedState): string {
  return json({ ...state, now: Date.now() });
}

/**
 * The live page for every primitive under `options.prefix` on `client` (see the file comment). It
 * starts its watch at once, so held-for and waited-for times count from then; `close()` ends it.
 * @throws TypeError/RangeError naming the value when `client` or an option is invalid.
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * import { createUiHandler } from 'leasehold/ui';
 *
 * const ui = createUiHandler(etcd, { prefix: 'jobs/' });
 * const admin = createServer((req, res) => (req.url?.startsWith('/leasehold/') ? ui(req, res) : res.writeHead(404).end()));
 * admin.listen(9464, '127.0.0.1'); // open http://127.0.0.1:9464/leasehold/
 * admin.close();
 * await ui.close();
 * ```
 */
export function createUiHandler(client: Namespace, options?: UiOptions): UiHandler {
  const { timeline, heartbeatMs, checkMs, ...list } = options ?? {};
  const checked = listOptions(client, list, 'createUiHandler');
  const feed = new PrefixFeed(checked.ops, {
    prefix: checked.prefix,
    pageSize: checked.pageSize,
    maxKeys: checked.maxKeys,
    timeline: checkInteger('timeline', timeline ?? 100, 0, 10_000),
    checkMs: checkInteger('checkMs', checkMs ?? 5000, 100),
  });
  const beat = checkInteger('heartbeatMs', heartbeatMs ?? 15_000, 100);
  const streams = new Set<ServerResponse>();
  feed.start();

  const events = (req: IncomingMessage, res: ServerResponse): void => {
    res.writeHead(200, { ...securityHeaders, 'content-type': 'text/event-stream; charset=utf-8', connection: 'keep-alive' });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const send = (state: FeedState): void => {
      res.write(`event: state\ndata: ${message(state)}\n\n`);
    };
    send(feed.state);
    const unsubscribe = feed.subscribe(send);
    const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), beat);
    streams.add(res);
    res.once('close', () => {
      clearInterval(heartbeat);
      unsubscribe();
      streams.delete(res);
    });
  };

  const handler = ((req: IncomingMessage, res: ServerResponse): void => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { ...securityHeaders, allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('read-only: GET and HEAD only\n');
      return;
    }
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const last = path.slice(path.lastIndexOf('/') + 1);
    if (last === 'events') return events(req, res);
    const found = last === 'state.json' ? { type: 'application/json; charset=utf-8', body: () => Buffer.from(message(feed.state)) } : assets[last];
    if (found === undefined) {
      res.writeHead(404, { ...securityHeaders, 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
      return;
    }
    const body = found.body();
    res.writeHead(200, { ...securityHeaders, 'content-type': found.type, 'content-length': body.length });
    res.end(req.method === 'HEAD' ? undefined : body);
  }) as UiHandler;
  Object.defineProperty(handler, 'state', { get: () => feed.state });
  handler.close = async () => {
    for (const res of streams) res.end();
    await feed.close();
  };
  return handler;
}
