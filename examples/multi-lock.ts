// Transfers between accounts: each takes the locks of both accounts at once (in whatever order the
// transfer names them, with no deadlock) and writes both balances in one txn fenced on both locks.
import { Etcd3 } from 'etcd3';
import { MultiLock, Session } from 'leasehold';

const etcd = new Etcd3({ hosts: (process.env['ETCD_ENDPOINTS'] ?? '127.0.0.1:2379').split(',') });
const accounts = ['alice', 'bob', 'carol'];
const balance = async (who: string): Promise<number> => Number((await etcd.get(`examples/balances/${who}`).string()) ?? '100');

/** Moves `amount` from `from` to `to` while holding both accounts' locks. */
async function transfer(session: Session, from: string, to: string, amount: number): Promise<void> {
  const locks = new MultiLock(session, [`examples/accounts/${from}`, `examples/accounts/${to}`]);
  await locks.withLock(async (held) => {
    const [a, b] = [await balance(from), await balance(to)];
    // Applied only while both locks are still ours; NotHeldError otherwise.
    await held.commit(etcd.put(`examples/balances/${from}`).value(String(a - amount)), etcd.put(`examples/balances/${to}`).value(String(b + amount)));
  }, { signal: AbortSignal.timeout(30_000) });
}

try {
  await etcd.delete().prefix('examples/balances/');
  // Two workers, each with its own Session, moving money in opposite directions at the same time.
  const workers = await Promise.all([Session.create(etcd, { ttl: 10 }), Session.create(etcd, { ttl: 10 })]);
  await Promise.all(
    workers.map(async (session, w) => {
      for (let i = 0; i < 10; i++) {
        const [from, to] = w === 0 ? [accounts[i % 3]!, accounts[(i + 1) % 3]!] : [accounts[(i + 1) % 3]!, accounts[i % 3]!];
        await transfer(session, from, to, 5);
      }
    }),
  );
  await Promise.all(workers.map(async (s) => s.close()));
  const balances = await Promise.all(accounts.map(balance));
  const total = balances.reduce((x, y) => x + y, 0);
  console.log(`balances ${accounts.map((a, i) => `${a}=${balances[i]}`).join(', ')}; total ${total} (was 300)`);
  if (total !== 300) throw new Error('money was created or lost: two transfers held the same account at once');
} finally {
  etcd.close();
}
