// What the example service listens on and reads from its environment: one place, shared by the
// service, its manifests' test and the README, so the three cannot drift apart.

/** The HTTP port (probes and /metrics). */
export const defaultPort = 8080;

/** The HTTP paths the service answers. */
export const paths = {
  liveness: '/livez',
  readiness: '/readyz',
  metrics: '/metrics',
  leader: '/leader',
} as const;

/** The environment variables the service reads, with their defaults. */
export const env = {
  /** Comma-separated etcd client URLs. */
  endpoints: 'ETCD_ENDPOINTS',
  /** This pod's name: the elector's identity (the Downward API sets it). */
  podName: 'POD_NAME',
  /** The HTTP port. */
  port: 'PORT',
  /** Lease TTL of the elector's and the workers' sessions, in seconds. */
  ttl: 'LEASE_TTL',
  /** How long stop() waits for the leader's work to return, in ms (keep it below the grace period). */
  stopTimeout: 'STOP_TIMEOUT_MS',
  /** `1` enables POST /debug/block?ms=…, which blocks the event loop (for the rolling-update test only). */
  debug: 'DEBUG_ENDPOINTS',
} as const;

/** The names the service coordinates on. */
export const names = {
  election: 'example/scheduler',
  workers: 'example/workers',
  jobs: 'example/jobs/',
} as const;

/** Permits of the worker pool across all replicas. */
export const workerPermits = 2;
