/**
 * A port whose every call throws "not used", for unit tests that script only the part they exercise
 * (a watch stream, a keep-alive stream): spread the parts you script over it.
 */
import type { EtcdTransport } from '../../src/transport/port.js';

export function unusedPort(endpoints: readonly string[]): EtcdTransport {
  const unused = (): never => {
    throw new Error('not used');
  };
  return {
    endpoints,
    user: undefined,
    range: unused,
    txn: unused,
    leaseGrant: unused,
    leaseRevoke: unused,
    leaseTimeToLive: unused,
    leaseKeepAlive: unused,
    watch: unused,
    markSilent: unused,
    markAnswered: unused,
    onSilent: () => () => undefined,
    close: () => undefined,
  };
}
