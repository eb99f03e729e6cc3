import { addChildren, hsetTable, writeTask } from './includes.js';

/**
 * Commits a goal's plan: creates its subtasks (each as create-task-4 would: record, index, first log entry,
 * event), links them to the goal, records the plan and opens the graph, atomically and fenced: only while the
 * goal is still active under the orchestrator and attempt that planned it, and has no plan yet. A planner that
 * was reaped (its goal handed to another orchestrator) can no longer add a second set of subtasks.
 *
 * KEYS[1] goal hash, KEYS[2] tasks index (zset), KEYS[3] open graphs (set), KEYS[4] open tasks (set),
 *   then per subtask: KEYS[2i+3] its hash, KEYS[2i+4] its log stream (i = 1..n)
 * ARGV[1] fencing: the goal's agent, ARGV[2] fencing: the goal's attempts, ARGV[3] plan JSON, ARGV[4] now (ms),
 * ARGV[5] events channel, ARGV[6] log maxlen, ARGV[7] the goal's id,
 *   then per subtask: ARGV[4i+4] id, ARGV[4i+5] fields (JSON object of strings), ARGV[4i+6] first log entry JSON,
 *   ARGV[4i+7] event JSON
 * Returns 'ok', 'fenced' (the goal is not this planner's any more), 'planned' (it has a plan already), or
 * 'exists' (a subtask id is taken; nothing written).
 */
export const commitPlan = `${hsetTable}${writeTask}${addChildren}
local goal = redis.call('HMGET', KEYS[1], 'status', 'agent', 'attempts', 'plan')
if goal[1] ~= 'active' or goal[2] ~= ARGV[1] or goal[3] ~= ARGV[2] then return 'fenced' end
if goal[4] then return 'planned' end
local n = (#KEYS - 4) / 2
for i = 1, n do
  if redis.call('EXISTS', KEYS[2 * i + 3]) == 1 then return 'exists' end
end
local ids = {}
for i = 1, n do
  ids[i] = ARGV[4 * i + 4]
  writeTask(KEYS[2 * i + 3], KEYS[2], KEYS[2 * i + 4], ids[i], ARGV[4 * i + 5], ARGV[4], ARGV[4 * i + 6], ARGV[6])
  redis.call('SADD', KEYS[4], ids[i])
end
addChildren(KEYS[1], ids)
redis.call('HSET', KEYS[1], 'plan', ARGV[3], 'updatedAt', ARGV[4])
redis.call('SADD', KEYS[3], ARGV[7])
for i = 1, n do redis.call('PUBLISH', ARGV[5], ARGV[4 * i + 7]) end
return 'ok'
`;
