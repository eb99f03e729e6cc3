import type { Logger } from '../log.js';
import type { GitWorkspace } from './git-workspace.js';

/** The merge lock as this needs it (lib/messaging/merge-lock.ts). */
export interface Lock {
  acquire(holder: string): Promise<{ release(): Promise<void> }>;
}

/**
 * Makes the workspace a git repository when it is not one, under the merge lock so that processes starting
 * together do not race to `git init` it. Says so once, when it did.
 */
export async function ensureWorkspace(workspace: GitWorkspace, lock: Lock, holder: string, log: Logger): Promise<void> {
  await workspace.open?.();
  const lease = await lock.acquire(holder);
  try {
    const state = await workspace.ensure();
    if (state.created) log.info({ workspace: workspace.root, integration: state.integration }, 'made the workspace a git repository; its files are the base commit');
  } finally {
    await lease.release();
  }
}
