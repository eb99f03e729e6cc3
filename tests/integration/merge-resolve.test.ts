import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, realpath, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect } from 'vitest';
import { DomainAgent } from '../../lib/agent/index.js';
import { createLogger } from '../../lib/log.js';
import { taskSpecSchema, type TaskRecord } from '../../lib/task.js';
import { ModelServer, primaryWorkingDirectory, writeFileScenario, type RecordedRequest, type Turn } from '../fixtures/model-server.js';
import { repoRoot, runDan } from '../helpers/cli.js';
import { LogCapture } from '../helpers/log-capture.js';
import { openNetwork, testConfig, type TestNetwork } from '../helpers/network.js';
import { waitForTask } from '../helpers/wait-for-task.js';
import { itWith } from '../helpers/world.js';

const CLAUDE_BIN = path.join(repoRoot(), 'node_modules', '.bin', 'claude');
const SETTINGS = { DAN_CLAUDE_BIN: CLAUDE_BIN, DAN_HEARTBEAT_MS: '200', DAN_HEARTBEAT_TTL_MS: '2000', DAN_REAPER_MS: '200', DAN_MERGE_ATTEMPTS: '0' };
const RESOLVED = "Written by dan's scripted model.\nTask: Write the file same.txt for A\nTask: Write the file same.txt for B\n";

/**
 * A scripted model that writes files as asked, the first turns of the first two tasks held until both arrived
 * (so both start from the same base and write the same file), and that answers a conflict-resolution prompt
 * with both sides kept.
 */
function resolvingModel(seen: RecordedRequest[]): (req: RecordedRequest) => Turn | Promise<Turn> {
  const write = writeFileScenario();
  let arrived = 0;
  let release: () => void = () => {};
  const both = new Promise<void>((resolve) => (release = resolve));
  return async (req) => {
    if (!/conflict marker/.test(req.prompt)) {
      if (!req.hasToolResult && ++arrived <= 2) {
        if (arrived === 2) release();
        await both;
      }
      return write(req);
    }
    seen.push(req);
    // As Claude Code requires: read the conflicted file before writing it.
    const file = path.join(primaryWorkingDirectory(req)!, 'same.txt');
    const turns = ((req.body as { messages?: Array<{ role: string }> }).messages ?? []).filter((m) => m.role === 'assistant').length;
    if (turns === 0) return { text: 'Reading the conflict.', tools: [{ name: 'Read', input: { file_path: file } }] };
    if (turns === 1) return { text: 'Resolving.', tools: [{ name: 'Write', input: { file_path: file, content: RESOLVED } }] };
    return { text: 'Resolved same.txt keeping both tasks.' };
  };
}

class MergeWorld {
  readonly logs = new LogCapture();
  agent: DomainAgent | undefined;

  private constructor(
    readonly net: TestNetwork,
    readonly server: ModelServer,
    readonly workspace: string,
    readonly seen: RecordedRequest[],
  ) {}

  static async create(): Promise<MergeWorld> {
    const workspace = await realpath(await mkdtemp(path.join(os.tmpdir(), 'dan-merge-ws-')));
    const net = await openNetwork({ DAN_WORKSPACE: workspace, ...SETTINGS }, 'merge');
      const seen: RecordedRequest[] = [];
    const model = resolvingModel(seen);
    const server = await ModelServer.start({ script: model });
    return new MergeWorld(net, server, workspace, seen);
  }

  async startAgent(): Promise<void> {
    // Two tasks at once, so that both start from the same base.
    const config = testConfig(this.net.network, { DAN_WORKSPACE: this.workspace, DAN_AGENT_CONCURRENCY: '2', ...SETTINGS });
    const env = { ANTHROPIC_BASE_URL: this.server.url, ANTHROPIC_API_KEY: 'sk-ant-api03-merge-test-000000000000', PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? os.homedir() };
    this.agent = await DomainAgent.start({ config, domain: 'backend', agentId: 'backend-merge', env, logger: createLogger({ level: 'info', destination: this.logs }) });
  }

  danEnv(): Record<string, string> {
    return { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', REDIS_URL: this.net.config.redisUrl, DAN_NETWORK: this.net.network, DAN_WORKSPACE: this.workspace, DAN_ENV_FILE: '' };
  }

  async send(description: string): Promise<TaskRecord> {
    return this.net.bus.submit(taskSpecSchema.parse({ domain: 'backend', description, timeoutS: 300, maxAttempts: 2 }));
  }

  ended(id: string): Promise<TaskRecord> {
    return waitForTask(this.net.bus, id, (r) => r.status === 'completed' || r.status === 'failed', { what: `task ${id} to end`, timeoutMs: 240_000, context: async () => this.logs.lines.slice(-20).join('\n') });
  }

  async close(): Promise<void> {
    await this.agent?.stop('stopped', { graceMs: 0 }).catch(() => {});
    await this.server.close();
    await this.net.cleanup();
    await rm(this.workspace, { recursive: true, force: true });
    await rm(path.join(os.tmpdir(), 'dan', this.net.network), { recursive: true, force: true });
  }
}

const it = itWith(() => MergeWorld.create());

describe('dan merge --resolve', () => {
  it("hands a conflicted branch to an agent of its domain, which resolves it keeping both sides and merges it; both records say merged", async ({ w }) => {
    await w.startAgent();
    const sentA = await w.send('Write the file same.txt for A');
    const sentB = await w.send('Write the file same.txt for B');
    const ended = [await w.ended(sentA.id), await w.ended(sentB.id)];
    // Whichever merged first, the other conflicted: same file, same base, different content.
    const first = ended.find((r) => r.git?.merge === 'merged')!;
    const second = ended.find((r) => r !== first)!;
    expect(first).toBeDefined();
    expect(second.status, `${second.error ?? ''} ${JSON.stringify(second.git)}`).toBe('completed');
    expect(second.git).toMatchObject({ merge: 'conflict', resolutions: 0 });
    expect(second.git?.mergeReason).toMatch(/conflicts in same\.txt after 0 resolutions: dan merge .* --resolve/);

    const sent = await runDan(['merge', second.id, '--resolve'], w.danEnv());
    expect(sent.exitCode, String(sent.stderr)).toBe(0);
    const mergeId = String(sent.stdout).trim();
    const merge = await w.ended(mergeId);
    expect(merge).toMatchObject({ status: 'completed', mergeOf: second.id, domain: 'backend' });
    expect(merge.git).toMatchObject({ branch: `dan/${second.id}`, merge: 'merged', resolutions: 1 });

    // The resolution run saw the conflict: the files, the other side's commit, and the task's description.
    const prompt = w.seen[0]!.prompt;
    expect(prompt).toContain('- same.txt');
    expect(prompt).toContain(second.description);
    expect(prompt).toContain(first.description);

    expect(await readFile(path.join(w.workspace, 'same.txt'), 'utf8')).toBe(RESOLVED);
    const after = await w.net.bus.tasks.get(second.id);
    expect(after.git).toMatchObject({ merge: 'merged', mergeCommit: merge.git?.mergeCommit });
    const history = (await w.net.bus.logs.history(second.id)).map((e) => e.entry.text).join('\n');
    expect(history).toContain(`merged by task ${mergeId}`);
    expect(execFileSync('git', ['-C', w.workspace, 'status', '--porcelain'], { encoding: 'utf8', env: { ...process.env, GIT_CONFIG_GLOBAL: '/dev/null' } })).toBe('');

    const again = await runDan(['merge', second.id, '--resolve'], w.danEnv());
    expect(again).toMatchObject({ exitCode: 0 });
    expect(again.stdout).toMatch(/is merged already/);
  }, 300_000);

  it('refuses a task with no branch, in one line with exit 2, writing nothing', async ({ w }) => {
    const record = await w.net.bus.submit(taskSpecSchema.parse({ domain: 'backend', description: 'never run', timeoutS: 60, maxAttempts: 1 }));
    const before = await w.net.bus.tasks.recentIds(10);
    const result = await runDan(['merge', record.id, '--resolve'], w.danEnv());
    expect(result.exitCode).toBe(2);
    expect(String(result.stderr).trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/has no branch/);
    expect(await w.net.bus.tasks.recentIds(10)).toEqual(before);
  });
});
