import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';

/** Fetches `url` with a per-request timeout, combined with `signal`. */
async function fetchWithTimeout(url: string, init: RequestInit, timeoutMs: number, signal?: AbortSignal) {
  const timeout = AbortSignal.timeout(timeoutMs);
  return fetch(url, { ...init, signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
}

/** GETs `url` as text; throws on a non-2xx status. */
export async function getText(url: string, timeoutMs: number, signal?: AbortSignal): Promise<string> {
  const response = await fetchWithTimeout(url, {}, timeoutMs, signal);
  const body = await response.text();
  if (!response.ok) throw new Error(`GET ${url} answered ${response.status}: ${body}`);
  return body;
}

/** A client certificate and the CA to trust, for the gateway of a TLS cluster. */
export interface ClientTls {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

/** POSTs JSON over https with a client certificate (fetch cannot present one). */
async function postHttps(url: string, body: string, tls: ClientTls, timeoutMs: number, signal?: AbortSignal): Promise<{ ok: boolean; status: number; text: string }> {
  const timeout = AbortSignal.timeout(timeoutMs);
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        ca: tls.ca,
        cert: tls.cert,
        key: tls.key,
        servername: 'localhost',
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ ok: (res.statusCode ?? 0) < 300, status: res.statusCode ?? 0, text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** POSTs JSON to etcd's gRPC gateway (`/v3/...` on a client URL) and returns the decoded answer. */
export async function postJson<T>(url: string, body: unknown, timeoutMs: number, signal?: AbortSignal, tls?: ClientTls): Promise<T> {
  if (tls !== undefined && url.startsWith('https:')) {
    const answer = await postHttps(url, JSON.stringify(body), tls, timeoutMs, signal);
    if (!answer.ok) throw new Error(`POST ${url} answered ${answer.status}: ${answer.text}`);
    return JSON.parse(answer.text) as T;
  }
  const response = await fetchWithTimeout(
    url,
    { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } },
    timeoutMs,
    signal,
  );
  const text = await response.text();
  if (!response.ok) throw new Error(`POST ${url} answered ${response.status}: ${text}`);
  return JSON.parse(text) as T;
}

/** The parts of etcd's `/v3/maintenance/status` answer used here; 64-bit numbers arrive as strings. */
export interface StatusResponse {
  header: { member_id: string; raft_term?: string };
  leader?: string;
  raftTerm?: string;
}

/** Asks the member at `clientUrl` for its own raft status (a local, non-quorum request). */
export async function memberStatus(clientUrl: string, timeoutMs: number, signal?: AbortSignal, tls?: ClientTls) {
  return postJson<StatusResponse>(`${clientUrl}/v3/maintenance/status`, {}, timeoutMs, signal, tls);
}

/**
 * Whether etcd's `/health` says the member has a leader and can serve a quorum read. Never throws for a
 * member that is down, paused or unhealthy: that is `false`.
 */
export async function isHealthy(baseUrl: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
  try {
    const body = await getText(`${baseUrl}/health`, timeoutMs, signal);
    return (JSON.parse(body) as { health?: unknown }).health === 'true';
  } catch (error) {
    signal?.throwIfAborted();
    void error;
    return false;
  }
}

/** Whether anything answers HTTP at `url`, whatever the status. */
export async function answersHttp(url: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
  try {
    const response = await fetchWithTimeout(url, {}, timeoutMs, signal);
    await response.body?.cancel();
    return true;
  } catch {
    signal?.throwIfAborted();
    return false;
  }
}

/**
 * Measures the smallest lease TTL the cluster grants by asking for a 1 s lease and reading the TTL etcd
 * actually granted (it raises short TTLs to its minimum), then revoking it.
 */
export async function probeMinTtl(clientUrl: string, timeoutMs: number, signal?: AbortSignal): Promise<number> {
  const granted = await postJson<{ ID: string; TTL: string }>(
    `${clientUrl}/v3/lease/grant`,
    { TTL: 1 },
    timeoutMs,
    signal,
  );
  await postJson(`${clientUrl}/v3/lease/revoke`, { ID: granted.ID }, timeoutMs, signal);
  return Number(granted.TTL);
}

/** Polls `check` every `intervalMs` until it returns a value other than `undefined`, or `timeoutMs` passes. */
export async function pollUntil<T>(
  check: () => Promise<T | undefined>,
  options: { timeoutMs: number; intervalMs?: number; signal?: AbortSignal | undefined; what: string },
): Promise<T> {
  const deadline = performance.now() + options.timeoutMs;
  // A referenced timer for the whole wait: the processes waited on are unreferenced, and a check in
  // flight does not always keep the event loop alive (a fetch through a network gateway was seen to
  // leave Node with nothing to wait on, and exit with code 13).
  const hold = setInterval(() => undefined, 60_000);
  try {
    for (;;) {
      options.signal?.throwIfAborted();
      const value = await check();
      if (value !== undefined) return value;
      if (performance.now() >= deadline) {
        throw new Error(`Timed out after ${options.timeoutMs} ms waiting for ${options.what}`);
      }
      try {
        await delay(options.intervalMs ?? 25, undefined, { signal: options.signal });
      } catch (error) {
        options.signal?.throwIfAborted(); // Reject with the signal's own reason, not the timer's AbortError.
        throw error;
      }
    }
  } finally {
    clearInterval(hold);
  }
}

/**
 * Finds `count` distinct free TCP ports on 127.0.0.1 by binding port 0 that many times, then releasing
 * them. Another process may take one before etcd binds it; the caller retries on "address already in use".
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      async () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const server = createServer();
          server.once('error', reject);
          server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((server) => {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('Expected a TCP address');
    return address.port;
  });
  await Promise.all(servers.map(async (server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}
