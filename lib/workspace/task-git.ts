import { z } from 'zod';

/** What became of a task's change (DESIGN.md, Workspaces). */
export const MERGE_STATES = ['merged', 'conflict', 'blocked', 'skipped', 'nothing to commit'] as const;
export const mergeStateSchema = z.enum(MERGE_STATES);
export type MergeState = z.infer<typeof mergeStateSchema>;

/** One file of a change: lines added and removed (`null` for a binary file). */
export const fileStatSchema = z.object({
  path: z.string(),
  added: z.number().int().min(0).nullable(),
  removed: z.number().int().min(0).nullable(),
});
export type FileStat = z.infer<typeof fileStatSchema>;

/**
 * The record's `git` field: where a task's change lives and what became of it. Written by the agent (JSON in
 * the task hash) and read back with this schema.
 */
export const taskGitSchema = z.object({
  /** The branch of the task's change, `dan/<task id>`. */
  branch: z.string(),
  /** The integration branch it was made from and merges into. */
  integration: z.string(),
  /** The integration branch's head when the attempt started. */
  base: z.string(),
  /** The branch's head after dan committed the change. */
  commit: z.string().optional(),
  /** The merge commit on the integration branch. */
  mergeCommit: z.string().optional(),
  files: z.array(fileStatSchema).default([]),
  merge: mergeStateSchema.optional(),
  /** Why the merge state is what it is (the conflicting or blocking files, a refusal of git's). */
  mergeReason: z.string().optional(),
  /** How many times the agent resolved a conflict before the merge went through (or gave up). */
  resolutions: z.number().int().min(0).optional(),
  /** Branches of dead attempts, kept for forensics and never merged. */
  keptAttempts: z.array(z.string()).default([]),
});
export type TaskGit = z.infer<typeof taskGitSchema>;

/** The branch of a task's change. */
export const taskBranch = (taskId: string): string => `dan/${taskId}`;

/**
 * The branch a dead attempt's change is kept on. Not `dan/<id>/attempt-<n>` (DESIGN.md's spelling): git cannot
 * hold a branch `dan/<id>` and a branch below it at once (refs are files and folders), and the next attempt
 * needs `dan/<id>` again.
 */
export const attemptBranch = (taskId: string, attempt: number): string => `dan/${taskId}-attempt-${attempt}`;

/** `3 files, +40 -2` */
export function describeStat(files: readonly FileStat[]): string {
  const added = files.reduce((n, f) => n + (f.added ?? 0), 0);
  const removed = files.reduce((n, f) => n + (f.removed ?? 0), 0);
  return `${files.length} file${files.length === 1 ? '' : 's'}, +${added} -${removed}`;
}
