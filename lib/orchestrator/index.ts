/** The main orchestrator: leader lease, scaler, reaper (and, later, the planner of `main` tasks). */
export { Orchestrator, stopAgents, type OrchestratorExit, type OrchestratorOptions } from './orchestrator.js';
export { agentEnv } from './agent-env.js';
export { decideScaling, type DomainLoad, type ScalingDecision, type ScalingLimits } from './scaling.js';
export { releaseAgentTasks } from './release-tasks.js';
