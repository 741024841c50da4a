// A process that takes one primitive and then waits to be killed: the "earlier process" whose lease a
// test adopts. Usage: node --import tsx test/processes/hold.ts '{"endpoints":[…],"kind":"mutex","name":"x","ttl":30}'
// Prints one JSON line — { leaseId, key, token } — once it holds.
import { Etcd3 } from 'etcd3';
import { Election, Mutex, ReadWriteLock, Semaphore, Session } from '../../src/index.js';

interface Config {
  endpoints: string[];
  kind: 'mutex' | 'read' | 'write' | 'semaphore' | 'election';
  name: string;
  ttl: number;
  weight?: number;
  permits?: number;
}

const config = JSON.parse(process.argv[2] ?? '{}') as Config;
const session = await Session.create(new Etcd3({ hosts: config.endpoints }), { ttl: config.ttl });
let held: { key: string; token: bigint };
switch (config.kind) {
  case 'mutex':
    held = await new Mutex(session, config.name).lock();
    break;
  case 'read':
    held = await new ReadWriteLock(session, config.name).readLock();
    break;
  case 'write':
    held = await new ReadWriteLock(session, config.name).writeLock();
    break;
  case 'semaphore':
    held = await new Semaphore(session, config.name, { permits: config.permits ?? 2 }).acquire({ weight: config.weight ?? 1 });
    break;
  case 'election': {
    const leadership = await new Election(session, config.name).campaign('earlier process');
    held = { key: leadership.key, token: leadership.term };
    break;
  }
}
process.stdout.write(`${JSON.stringify({ leaseId: session.leaseId, key: held.key, token: held.token.toString() })}\n`);
setInterval(() => undefined, 60_000); // hold until killed
