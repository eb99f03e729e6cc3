import type { TaskRecord } from '../task.js';

/** What a dependency contributes to a subtask's prompt. */
export interface DependencyResult {
  key?: string;
  domain: string;
  description: string;
  result: string;
}

/** The most of one dependency's result a prompt carries. */
const MAX_DEPENDENCY_RESULT = 16 * 1024;

/**
 * The prompt an agent hands the CLI: the task, its context, and for a subtask the parent goal and the
 * results of the tasks it depends on. Pure.
 */
export function buildPrompt(task: TaskRecord, parent?: Pick<TaskRecord, 'description' | 'id'>, dependencies: DependencyResult[] = []): string {
  const parts = [task.description.trim()];
  if (Object.keys(task.context).length > 0) {
    parts.push(`## Context\n\n\`\`\`json\n${JSON.stringify(task.context, null, 2)}\n\`\`\``);
  }
  if (parent) {
    parts.push(
      `## The larger goal\n\nThis task${task.key ? ` ("${task.key}")` : ''} is one part of this goal, split across domains ` +
        `by the main orchestrator. Do only your part; other agents do the rest in the same workspace.\n\n${quote(parent.description)}`,
    );
  }
  if (dependencies.length > 0) {
    const blocks = dependencies.map((d) => {
      const result = d.result.length > MAX_DEPENDENCY_RESULT ? `${d.result.slice(0, MAX_DEPENDENCY_RESULT)}\n[… truncated]` : d.result;
      return `### ${d.key ?? d.domain} (${d.domain}): ${firstLine(d.description)}\n\n${result.trim()}`;
    });
    parts.push(`## Results of the tasks this one depends on\n\nThey have completed; build on what they did.\n\n${blocks.join('\n\n')}`);
  }
  return parts.join('\n\n');
}

const quote = (text: string): string =>
  text
    .trim()
    .split('\n')
    .map((l) => `> ${l}`)
    .join('\n');

const firstLine = (text: string): string => {
  const line = text.trim().split('\n')[0] ?? '';
  return line.length > 120 ? `${line.slice(0, 119)}…` : line;
};
