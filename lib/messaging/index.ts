/** The bus: task records, queues, log streams, events and control channels in Redis. */
export { Bus, type CancelOutcome, type BusOptions } from './bus.js';
export { EventBus } from './event-bus.js';
export { Keys } from './keys.js';
export { installationId } from './installation.js';
export { LogStream, compareStreamIds, type StoredLogEntry } from './log-stream.js';
export { isConnectionError } from './redis-errors.js';
export { connectRedis, createRedis, type Redis, type RedisConnectionOptions } from './redis-connection.js';
export { Scripts } from './scripts.js';
export { TaskQueues, type QueueCounts, type TaskJobData } from './task-queues.js';
export { TaskStore, type ListFilter, type TransitionOptions, type TransitionOutcome, type TransitionResult } from './task-store.js';
export { followTask, type FollowTaskOptions } from './follow-task.js';
export { MergeLock, type MergeLease, type MergeLockOptions } from './merge-lock.js';
export { clientRoleUrl, ensureRoleUsers, isAuthError, roleRules, rolePassword, roleUrl, roleUser, urlPassword, whoAmI, REDIS_ROLES, type RedisRole, type RoleSetup } from './redis-acl.js';
export { RunGate, pauseScopes, utcDay, nextUtcDay, type Admission, type NetworkLimits, type Pause, type PauseKind, type RunGateOptions } from './run-gate.js';
