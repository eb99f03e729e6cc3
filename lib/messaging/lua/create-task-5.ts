import { addChildren, hsetTable, writeTask } from './includes.js';

/**
 * Creates a task record, indexes it, appends its first log entry, links it to its parent, and publishes
 * its creation, atomically. The new task enters the open set (it has not ended).
 *
 * KEYS[1] task hash, KEYS[2] tasks index (zset), KEYS[3] task log stream, KEYS[4] parent hash (or KEYS[1]),
 * KEYS[5] open tasks (set)
 * ARGV[1] id, ARGV[2] fields (JSON object of strings), ARGV[3] score (created ms), ARGV[4] first entry JSON,
 * ARGV[5] events channel, ARGV[6] event JSON, ARGV[7] log maxlen
 * Returns 1, or 0 when the id exists.
 */
export const createTask = `${hsetTable}${writeTask}${addChildren}
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
writeTask(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[7])
redis.call('SADD', KEYS[5], ARGV[1])
if KEYS[4] ~= KEYS[1] and redis.call('EXISTS', KEYS[4]) == 1 then addChildren(KEYS[4], { ARGV[1] }) end
redis.call('PUBLISH', ARGV[5], ARGV[6])
return 1
`;
