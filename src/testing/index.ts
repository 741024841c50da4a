// leasehold/testing: a real etcd for tests. Every export is named here; no `export *`.
export { startEtcd } from './start-etcd.js';
export { startEtcdDefaults } from './options.js';
export type { StartEtcdOptions, EtcdProvider, EtcdAuthOptions } from './options.js';
export type { TestCertificates } from './tls.js';
export type { EtcdCluster, EtcdMember } from './cluster.js';
export type { EtcdNetwork, NetworkNode, NetworkOptions } from './network.js';
export { parsePrometheusText, sumMetric } from './metrics.js';
export { startProxy } from './proxy.js';
export type { TcpProxy, StartProxyOptions, ProxyDirection, ProxyDelayOptions } from './proxy.js';
