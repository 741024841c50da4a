/**
 * leasehold: mutexes, read/write locks, semaphores and leader election for Node.js services, on etcd
 * leases. Every export is named here; see README.md and docs/ for the guarantees.
 */
export { Session, sessionDefaults, type SessionOptions } from './session.js';
export {
  SessionSource,
  sessionSourceDefaults,
  type SessionSourceOptions,
  type SessionSourceEvents,
  type SessionSourceHealth,
  type SessionSourceState,
} from './session-source.js';
export type { WithOptions } from './sessions.js';
export {
  channels,
  type AcquireContext,
  type AcquireOutcome,
  type PrimitiveKind,
  type ReleaseMessage,
  type SessionLostMessage,
  type SessionClosedMessage,
  type SessionRegrantedMessage,
  type KeepAliveMessage,
  type LeaderMessage,
} from './diagnostics.js';
export { liveState, type LiveState, type LiveHolding, type LiveSession, type LiveSource } from './live-state.js';
export type { AcquireOptions } from './engine/acquire.js';
export { Mutex, type LockOptions, type WithLockOptions } from './mutex.js';
export { LockHandle, type Held, type ReleaseOutcome } from './handle.js';
export { MultiLock, MultiLockHandle, maxMultiLockNames, type MultiQueueState, type NamedQueueState } from './multi-lock.js';
export {
  Semaphore,
  PermitHandle,
  permitDefaults,
  type SemaphoreOptions,
  type PermitOptions,
  type TryPermitOptions,
  type WithPermitOptions,
} from './semaphore.js';
export { ReadWriteLock, type RwLockOptions, type WithRwLockOptions } from './rw-lock.js';
export {
  Election,
  type CampaignOptions,
  type ElectionCallOptions,
  type ObserveOptions,
  type StaticObserveOptions,
  type LeaderState,
} from './election.js';
export { Leadership } from './leadership.js';
export type {
  Contender,
  RwContender,
  PermitContender,
  QueueState,
  InspectOptions,
  StaticInspectOptions,
} from './engine/inspect.js';
export {
  listPrimitives,
  listDefaults,
  type ListOptions,
  type Listing,
  type ListedPrimitive,
  type ListedContender,
  type ListedKind,
  type ForeignKey,
  type OpenRound,
  type PermitsUsed,
} from './list.js';
export { Barrier, type BarrierWaitOptions } from './barrier.js';
export { DoubleBarrier, type DoubleBarrierOptions, type DoubleBarrierCallOptions } from './double-barrier.js';
export { LeaderElector } from './leader-elector.js';
export {
  leaderElectorDefaults,
  type LeaderElectorOptions,
  type LeaderElectorEvents,
  type LeaderContext,
  type LeaderElectorRunOptions,
  type LeaderHealth,
} from './leader-elector-options.js';
export {
  LeaseholdError,
  LeaseLostError,
  NotHeldError,
  NotLeaderError,
  NoLeaderError,
  PermitsMismatchError,
  SessionClosedError,
  EtcdCallError,
  EtcdUnavailableError,
  EtcdRequestError,
  PermissionDeniedError,
  AuthenticationError,
  TlsError,
  ForeignKeyError,
  isLeaseholdError,
  isLeaseLostError,
  isNotHeldError,
  isNotLeaderError,
  isNoLeaderError,
  isPermitsMismatchError,
  isSessionClosedError,
  isEtcdUnavailableError,
  isEtcdRequestError,
  isPermissionDeniedError,
  isAuthenticationError,
  isTlsError,
  isForeignKeyError,
  type LeaseholdErrorOptions,
  type LeaseErrorOptions,
  type KeyErrorOptions,
  type NoLeaderErrorOptions,
  type PermitsMismatchErrorOptions,
  type EtcdErrorOptions,
  type PermissionDeniedErrorOptions,
} from './errors.js';
