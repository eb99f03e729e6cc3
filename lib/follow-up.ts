import { BadInputError } from './errors.js';
import type { TaskStore } from './messaging/index.js';
import { MAIN_DOMAIN, type TaskRecord } from './task.js';

/**
 * Checks a follow-up (`dan send-task --continue <id>`, `follows` in the API) before anything is written: the task
 * exists in this network and has a conversation of its own (a domain task, not a goal), and the follow-up goes to a
 * domain. Returns the task it follows; the caller queues the follow-up after it when it is still open.
 */
export async function checkFollowUp(tasks: TaskStore, network: string, followsId: string, domain: string, flag: string): Promise<TaskRecord> {
  if (domain === MAIN_DOMAIN) throw new BadInputError(`${flag} continues one domain task's conversation: name a domain, not ${MAIN_DOMAIN}`);
  const followed = await tasks.find(followsId);
  if (!followed) throw new BadInputError(`${flag} ${followsId}: no such task in network "${network}" (dan tasks lists them; --network names another)`);
  if (followed.domain === MAIN_DOMAIN || followed.children.length > 0) {
    throw new BadInputError(`${flag} ${followsId}: that is a goal, which has no conversation of its own; continue one of its subtasks (dan status ${followsId} lists them)`);
  }
  return followed;
}
