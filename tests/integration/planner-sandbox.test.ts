import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { taskSpecSchema } from '../../lib/task.js';
import { isPlanningRequest, writeFileScenario } from '../fixtures/model-server.js';
import { probeOutputs, probingPlanner, templatesWithPlannerBash } from '../fixtures/planner-probe.js';
import { RedisServer } from '../helpers/redis-server.js';
import { World, itWith, type ModelScript } from '../helpers/world.js';

// Issue 16, item 1, process runtime: the planner runs as its own process with a clean environment. Even with a
// permission file that lets the model run Bash (test-only), an injected instruction finds no Redis credential
// and none of the orchestrator's own environment (what `.env` filled in) in the run or the process above it.

const REDIS_PASSWORD = 'planner-sandbox-redis-pass-7f3a';
const DOTENV_SECRET = 'dotenv-secret-only-the-orchestrator-has-91c2';

let redis: RedisServer;
let dir: string;
let templates: string;

class ProbeWorld extends World {
  planner: ModelScript = probingPlanner();
  worker: ModelScript = writeFileScenario();
  override script: ModelScript = (req) => (isPlanningRequest(req) ? this.planner(req) : this.worker(req));
}

const it = itWith(() =>
  ProbeWorld.create({
    label: 'psand',
    settings: {
      REDIS_URL: redis.url(),
      DAN_TEMPLATES: templates,
      DAN_HEARTBEAT_MS: '200',
      DAN_HEARTBEAT_TTL_MS: '2000',
      DAN_REAPER_MS: '250',
      DAN_IDLE_TIMEOUT_MS: '5000',
      DAN_SHUTDOWN_GRACE_MS: '300',
    },
    waitTimeoutMs: 150_000,
  }),
);

beforeAll(async () => {
  redis = await RedisServer.start({ password: REDIS_PASSWORD });
  dir = await mkdtemp(path.join(os.tmpdir(), 'dan-psand-'));
  templates = await templatesWithPlannerBash(dir);
  // What `.env` would have put into the orchestrator's own environment (this process is the orchestrator's).
  process.env.DAN_TEST_DOTENV_SECRET = DOTENV_SECRET;
});

afterAll(async () => {
  delete process.env.DAN_TEST_DOTENV_SECRET;
  await redis?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the planner run on the process runtime', { timeout: 240_000 }, () => {
  it('runs in its own process: the injected probe finds no Redis credential and none of the orchestrator environment; the plan still comes back', async ({ w }) => {
    await w.startOrchestrator('orch-1', { env: { ...w.modelEnv, DAN_TEST_DOTENV_SECRET: DOTENV_SECRET } });
    const goal = await w.bus.submit(taskSpecSchema.parse({ domain: 'main', description: 'Create user registration with an API endpoint and a form component', timeoutS: 90, maxAttempts: 3 }));

    const done = await w.waitForEnd(goal.id);
    expect(done.status, await w.describe(goal.id)).toBe('completed');
    expect(JSON.parse(done.plan!)).toMatchObject({ source: 'model' });

    const [probe, ...more] = probeOutputs(w.server.requests);
    expect(more).toEqual([]);
    expect(probe, 'the probe ran (Bash was allowed by the test permission file)').toMatch(/^== done$/m);
    // The run's own environment and its ancestors' up to the planner process: only what the CLI needs.
    expect(probe).toMatch(/^== environ of \d+: .*dan\.[jt]s planner $/m);
    expect(probe).not.toContain(REDIS_PASSWORD);
    expect(probe).not.toContain('REDIS_URL');
    expect(probe).not.toContain(DOTENV_SECRET);
    expect(probe).not.toMatch(/^DOCKER_HOST=/m);
    expect(probe).toContain('AGENT_ROLE=planner');
    // The planner process is not the orchestrator's: the process it runs under is `dan planner`.
    expect(probe).not.toMatch(/environ of \d+: .*vitest/);
    // Its events reached the goal's log as before.
    expect((await w.entries(goal.id)).some((e) => e.type === 'tool_use' || e.text.includes('Bash'))).toBe(true);
    await expect(stat(path.join(w.workspace, 'planner-was-here'))).resolves.toBeDefined(); // the process runtime is no filesystem sandbox
  });
});
