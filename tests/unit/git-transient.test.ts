import { describe, expect, it } from 'vitest';
import { GitError } from '../../lib/errors.js';
import { isLockError } from '../../lib/workspace/index.js';

// What git printed, word for word, when two agents' git commands met (seen in the git throughput bench).
describe('a git error another git process caused, which a retry gets past', () => {
  it.each([
    ['a lock held', "fatal: Unable to create '/w/.git/index.lock': File exists."],
    ['a worktree being added by another agent', 'fatal: failed to read .git/worktrees/01M8VG2YRRN1X72SSMBVHYDS9Q/commondir: Success'],
  ])('%s', (_, stderr) => {
    expect(isLockError(new GitError(['worktree', 'add'], 128, stderr))).toBe(true);
  });

  it.each([
    ['a branch that exists', "fatal: a branch named 'dan/T1' already exists"],
    ['a missing commit', 'fatal: invalid reference: nope'],
  ])('but not %s', (_, stderr) => {
    expect(isLockError(new GitError(['worktree', 'add'], 128, stderr))).toBe(false);
  });
});
