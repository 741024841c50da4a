// One real etcd per test file, the way every integration test file wants it.
import type { Etcd3 } from 'etcd3';
import { afterAll, beforeAll } from 'vitest';
import { Session } from '../src/index.js';
import { startEtcd, type EtcdCluster } from '../src/testing/index.js';

export interface EtcdFixture {
  /** The cluster (available inside tests and hooks, not at file load). */
  readonly etcd: EtcdCluster;
  /** An independent client for checks: never used by a participant. */
  readonly admin: Etcd3;
  /** A Session on its own client, as a separate service would have; closed after the file. */
  session(ttl?: number): Promise<Session>;
}

/**
 * Starts an etcd before the file's tests and stops it after them, closing every Session made through
 * `session()` first.
 */
export function etcdForFile(defaultTtl = 5): EtcdFixture {
  let cluster: EtcdCluster | undefined;
  let admin: Etcd3 | undefined;
  const sessions: Session[] = [];
  beforeAll(async () => {
    cluster = await startEtcd();
    admin = cluster.client();
  });
  afterAll(async () => {
    await Promise.allSettled(sessions.map((s) => s.close()));
    await cluster?.stop();
  });
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('etcdForFile(): use the fixture inside tests and hooks');
    return value;
  };
  return {
    get etcd() {
      return started(cluster);
    },
    get admin() {
      return started(admin);
    },
    async session(ttl = defaultTtl) {
      const s = await Session.create(started(cluster).client(), { ttl });
      sessions.push(s);
      return s;
    },
  };
}
