/** Agent registry, heartbeats, the orchestrator's leader lease, and the reaper's core. */
export { AgentRegistry, agentRecordSchema, type AgentRecord, type AgentStatus, type RegisterInput } from './agent-registry.js';
export { Heartbeat } from './heartbeat.js';
export { LeaderLease } from './leader-lease.js';
export { Reaper, type ReapHandler } from './reaper.js';
