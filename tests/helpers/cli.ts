import path from 'node:path';
import { execa, type Result } from 'execa';

const ROOT = path.resolve(import.meta.dirname, '../..');
/** tsx resolved from here, so children started in another directory (agents run in the workspace) find it. */
const TSX = import.meta.resolve('tsx');

/**
 * Runs the real `dan` CLI (from source through tsx) with an environment of the test's choosing; a `.env` in the
 * repository (its working directory, unless `cwd` says otherwise) is read only when `env` names DAN_ENV_FILE.
 */
export async function runDan(args: string[], env: Record<string, string | undefined>, options: { timeoutMs?: number; cwd?: string } = {}): Promise<Result> {
  return execa(process.execPath, ['--import', TSX, path.join(ROOT, 'bin/dan.ts'), ...args], {
    cwd: options.cwd ?? ROOT,
    env: { NO_COLOR: '1', DAN_ENV_FILE: '', ...env },
    reject: false,
    timeout: options.timeoutMs ?? 60_000,
  });
}

export const danEntry = (): string[] => [process.execPath, '--import', TSX, path.join(ROOT, 'bin/dan.ts')];
export const repoRoot = (): string => ROOT;
