import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/cli.js';

// scripts/build-image.sh as a user runs it after editing .env: the image name comes from there, and a rebuild
// leaves no 540 MB untagged image behind. Its own tag, so no user's image is touched.
const tag = `dan-agent:build-test-${randomBytes(3).toString('hex')}`;
const base = process.env.DAN_BASE_IMAGE ?? 'dan-airgap/node:bookworm';
let dir: string | undefined;
const imageId = async (ref: string): Promise<string | undefined> => {
  const r = await execa('docker', ['image', 'inspect', '-f', '{{.Id}}', ref], { reject: false });
  return r.exitCode === 0 ? String(r.stdout).trim() : undefined;
};

afterAll(async () => {
  await execa('docker', ['image', 'rm', '-f', tag], { reject: false });
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('scripts/build-image.sh', () => {
  it('builds the image .env names, and a rebuild removes the image it replaced', { timeout: 900_000 }, async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'dan-build-image-'));
    const envFile = path.join(dir, '.env');
    await writeFile(envFile, `DAN_AGENT_IMAGE=${tag}\nDAN_BASE_IMAGE=${base}\n`);
    const build = (args: string[] = []) =>
      execa(path.join(repoRoot(), 'scripts', 'build-image.sh'), ['--skip-smoke', ...args], {
        cwd: repoRoot(),
        env: { DAN_ENV_FILE: envFile, DAN_AGENT_IMAGE: undefined, DAN_BASE_IMAGE: undefined },
        reject: false,
        timeout: 600_000,
      });
    // Not from the layer cache: a cached build can be the very image another tag (dan-agent:test) already names,
    // which the script rightly never removes.
    const first = await build(['--no-cache']);
    expect(first.exitCode, String(first.stderr)).toBe(0);
    expect(String(first.stdout)).toContain(`built ${tag}`);
    const firstId = await imageId(tag);
    expect(firstId).toBeDefined();

    const second = await build(['--no-cache']);
    expect(second.exitCode, String(second.stderr)).toBe(0);
    const secondId = await imageId(tag);
    expect(secondId).not.toBe(firstId);
    expect(String(second.stdout)).toContain(`removed the previous ${tag}`);
    expect(await imageId(firstId!)).toBeUndefined();
  });
});
