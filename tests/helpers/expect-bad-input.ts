import type { ExpectStatic } from 'vitest';
import { runDan } from './cli.js';
import { snapshot } from './network-keys.js';
import type { TestNetwork } from './network.js';

/**
 * Runs `dan <args>` on `net` and checks what bad input to any command must do: exit 2 with one line on stderr,
 * `dan: ` and a message matching `message`, nothing on stdout, and not one key of the network changed.
 */
export async function expectBadInput(
  expect: ExpectStatic,
  net: TestNetwork,
  args: string[],
  env: Record<string, string>,
  message: RegExp,
  options: { timeoutMs?: number } = {},
): Promise<void> {
  const before = await snapshot(net.redis, net.config.prefix);
  const result = await runDan(args, env, options);
  const stderr = String(result.stderr)
    .split('\n')
    .filter((l) => l.length > 0);
  expect(stderr, String(result.stderr)).toHaveLength(1);
  expect(stderr[0]).toMatch(/^dan: /);
  expect(stderr[0]).toMatch(message);
  expect(result.stdout).toBe('');
  expect(result.exitCode).toBe(2);
  expect(await snapshot(net.redis, net.config.prefix)).toEqual(before);
}
