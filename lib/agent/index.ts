/** The domain agent: one process that takes its domain's tasks and runs Claude Code for each. */
export { DomainAgent, type AgentExit, type DomainAgentOptions } from './domain-agent.js';
export { buildPrompt, type DependencyResult } from './prompt.js';
export { LogWriter } from './log-writer.js';
