import { describePause } from '../executor/limits.js';
import { pauseScopes, type Admission } from '../messaging/index.js';
import type { AgentContext } from './task-run.js';

/**
 * Before the claim: whether this agent may start a CLI for a task now (issue 12). Not while its subscription
 * token or the network is paused after a limit, nor once today's spend reached DAN_DAILY_BUDGET_USD, nor when
 * DAN_MAX_RUNNING CLIs run already; otherwise a running slot is taken for the task (the caller frees it when the
 * task's run ends). Nothing is claimed, so a task put off here uses no attempt.
 */
export function admitRun(ctx: AgentContext, taskId: string): Promise<Admission> {
  return ctx.bus.gate.admit(ctx.agentId, taskId, pauseScopes(ctx.config.tokenIndex));
}

/** Why a run was not admitted, in a line for the log. */
export function admissionText(admission: Exclude<Admission, { admitted: true }>): string {
  switch (admission.why) {
    case 'paused':
      return `${admission.pause.scope === 'network' ? 'the network is' : `subscription token #${admission.pause.scope.slice('token:'.length)} is`} ${describePause(admission.untilMs, admission.pause.kind)}`;
    case 'budget':
      return `today's spend $${admission.spentUsd.toFixed(2)} reached the daily budget $${admission.capUsd.toFixed(2)} (DAN_DAILY_BUDGET_USD)`;
    case 'full':
      return `${admission.running} CLIs run already, the most DAN_MAX_RUNNING (${admission.cap}) allows`;
  }
}
