import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { domainTemplateDir, listDomains } from './domains.js';
import { BadInputError } from './errors.js';
import { MAIN_DOMAIN, domainNameSchema } from './task.js';

/**
 * The tool permissions of a new domain (`.claude/settings.json`): read and edit the workspace, delegate to its
 * workers, read-only git and the usual toolchains; never secrets, the environment, the network, git writes,
 * publishing or dev servers (agents/README.md, settings.json). Without such a file every write is refused: the
 * CLI runs headless and nobody can grant it.
 */
export const NEW_DOMAIN_SETTINGS = {
  permissions: {
    allow: [
      'Read', 'Write', 'Edit', 'Glob', 'Grep', 'Agent',
      'Bash(git status)', 'Bash(git status *)', 'Bash(git diff)', 'Bash(git diff *)', 'Bash(git log *)', 'Bash(git show *)', 'Bash(git ls-files *)',
      'Bash(ls)', 'Bash(ls *)', 'Bash(pwd)', 'Bash(cd *)', 'Bash(mkdir *)', 'Bash(mv *)', 'Bash(rm *)', 'Bash(wc *)', 'Bash(find *)', 'Bash(grep *)',
      'Bash(npm test)', 'Bash(npm test *)', 'Bash(npm run *)', 'Bash(npm ci *)', 'Bash(npm install *)', 'Bash(npx tsc *)', 'Bash(npx vitest *)',
      'Bash(node *)', 'Bash(python3 *)', 'Bash(pytest *)', 'Bash(make test *)', 'Bash(make build *)',
    ],
    deny: [
      'WebFetch', 'WebSearch',
      'Read(//**/.env)', 'Read(//**/.env.local)', 'Read(//**/.env.*.local)', 'Read(//**/.env.production)', 'Read(//**/secrets/**)',
      'Read(//**/*.pem)', 'Read(//**/*.key)', 'Read(//**/id_rsa*)', 'Read(//**/id_ed25519*)', 'Read(~/.ssh/**)', 'Read(~/.aws/**)', 'Read(~/.npmrc)',
      'Edit(//**/.env)', 'Edit(//**/.env.local)', 'Edit(//**/.env.*.local)', 'Edit(//**/.env.production)', 'Edit(//**/secrets/**)', 'Edit(//**/*.pem)', 'Edit(//**/*.key)',
      'Bash(env)', 'Bash(env *)', 'Bash(printenv)', 'Bash(printenv *)', 'Bash(cat *.env*)', 'Bash(sudo *)', 'Bash(su *)',
      'Bash(rm -r *)', 'Bash(rm -R *)', 'Bash(rm -rf *)', 'Bash(rm -fr *)', 'Bash(rm --recursive *)', 'Bash(chmod -R *)', 'Bash(chown *)',
      'Bash(curl *)', 'Bash(wget *)', 'Bash(nc *)', 'Bash(ssh *)', 'Bash(scp *)',
      'Bash(git push *)', 'Bash(git commit *)', 'Bash(git reset *)', 'Bash(git checkout *)', 'Bash(git switch *)', 'Bash(git restore *)',
      'Bash(git clean *)', 'Bash(git stash *)', 'Bash(git rebase *)', 'Bash(git config *)',
      'Bash(npm publish *)', 'Bash(npm login *)', 'Bash(npm token *)', 'Bash(npm config *)',
      'Bash(npm run dev *)', 'Bash(npm run start *)', 'Bash(npm run watch *)', 'Bash(npm start *)',
      'Bash(docker *)', 'Bash(kubectl *)', 'Bash(terraform *)',
    ],
  },
} as const;

const instructions = (name: string, worker: string): string => `# ${name} domain agent

You are the **${name}** agent of a dan network, running headless (\`claude -p\`) in a shared workspace. One run
is one task. You can ask the user with the tool \`ask_user\` (dan's MCP server), but only when a wrong guess would
be costly (an irreversible or expensive choice, a requirement you cannot infer): then call it once and end your turn.
Otherwise decide: pick the most conventional option, state it under "Assumptions" in your report, and carry on.

<!-- Say here what this domain is for, what is not (other domains edit the same workspace right now), and the
conventions and commands of its part of the workspace. -->
Your area: everything the task says about ${name}. Other domain agents may be editing the same workspace now:
touch only the files your task needs, never revert or reformat changes you did not make.

## How to work
1. Read the task (and, for a subtask, the goal and the results of the tasks it depends on).
2. Look at the workspace first: \`git status\`, the manifest, how things are laid out and tested.
3. Small change: do it yourself. Larger or specialised work: delegate with the \`Agent\` tool to a worker:
   | worker | give it |
   | --- | --- |
   | \`${worker}\` | a self-contained piece of ${name} work, with the files it may touch and how to check it |
   A worker sees only the brief you write: put the goal, the conventions, the files and the checks in it.
4. Check the result (read the diff, run the tests), then report.

## Rules
- Never read \`.env\` files or print the environment; no network calls; no \`git commit\`, \`push\`, \`checkout\`.
- A denied tool or command means the settings forbid it: choose another way, or report it.

## Final report (your last message is the task's result)
\`\`\`
## Result: done | partial | blocked
### Changes
- path — what changed
### Verify
- the command you ran → its result
### Assumptions / Open issues
\`\`\`
`;

const workerFile = (name: string, worker: string): string => `---
name: ${worker}
description: ${name} specialist. Use for a self-contained piece of ${name} work given with its files and checks.
tools: Read, Write, Edit, Glob, Grep, Bash
---

You do one piece of ${name} work, as your brief says. Other agents edit the same workspace concurrently: touch
only the files your brief allows, never revert changes you did not make.

1. Read the files around the change first and follow their conventions.
2. Make the change; write or update the tests that prove it; run them.
3. Report back, concisely: the files you changed, the commands you ran with their results, and anything left open.
`;

/** What `dan domain new` wrote. */
export interface ScaffoldedDomain {
  name: string;
  dir: string;
  worker: string;
  /** Paths relative to `dir`. */
  files: string[];
}

/**
 * Writes a working domain folder `<templates>/domain-templates/<name>/`: CLAUDE.md, one worker subagent and a
 * settings.json that lets it read and write the workspace. Bad input (an invalid or taken name) is a
 * BadInputError and writes nothing.
 */
export async function scaffoldDomain(templatesDir: string, name: string, options: { worker?: string } = {}): Promise<ScaffoldedDomain> {
  const parsed = domainNameSchema.safeParse(name);
  if (!parsed.success) throw new BadInputError(`domain name "${name}" ${parsed.error.issues[0]?.message ?? 'is invalid'} (at most 63)`);
  if (name === MAIN_DOMAIN) throw new BadInputError('domain name "main" is reserved for goals the orchestrator plans');
  if (listDomains(templatesDir).includes(name)) {
    throw new BadInputError(`domain "${name}" exists already: ${domainTemplateDir(templatesDir, name)}`);
  }
  const worker = options.worker ?? `${name}-worker`;
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(worker)) throw new BadInputError(`worker name "${worker}" must be lowercase letters, digits and "-"`);
  const dir = domainTemplateDir(templatesDir, name);
  const files: Record<string, string> = {
    'CLAUDE.md': instructions(name, worker),
    [path.join('.claude', 'agents', `${worker}.md`)]: workerFile(name, worker),
    [path.join('.claude', 'settings.json')]: `${JSON.stringify(NEW_DOMAIN_SETTINGS, null, 2)}\n`,
  };
  await mkdir(path.join(dir, '.claude', 'agents'), { recursive: true });
  // 'wx': a folder made meanwhile by someone else is never overwritten.
  for (const [file, text] of Object.entries(files)) await writeFile(path.join(dir, file), text, { flag: 'wx' });
  return { name, dir, worker, files: Object.keys(files) };
}
