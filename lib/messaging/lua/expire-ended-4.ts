/**
 * Retention: removes tasks that ended before a cutoff, each with its log stream, its saved session, its follow-up list, its index entries and, for a
 * goal, its subtasks (their records, logs and index entries), atomically per call. Takes at most ARGV[3] ended
 * tasks per call, oldest first; the caller calls again while it gets a full batch.
 *
 * A subtask's keys are built from the prefix and the ids in its goal's `children` field: they cannot be declared
 * up front (BullMQ's scripts do the same for a job's dependencies). dan runs on one Redis, never a cluster.
 *
 * KEYS[1] ended tasks (zset), KEYS[2] tasks index (zset), KEYS[3] open tasks (set), KEYS[4] open graphs (set)
 * ARGV[1] cutoff (ms: ended at or before it), ARGV[2] key prefix (`<network>:`), ARGV[3] batch size
 * Returns { ended tasks looked at, records removed (subtasks included) }.
 */
export const expireEnded = `
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local removed = 0
local function drop(id, depth)
  local key = ARGV[2] .. 'task:' .. id
  local children = redis.call('HGET', key, 'children')
  if depth < 8 and children and children ~= '' and children ~= '[]' then
    local ok, list = pcall(cjson.decode, children)
    if ok and type(list) == 'table' then
      for _, child in ipairs(list) do
        if type(child) == 'string' and child ~= id then drop(child, depth + 1) end
      end
    end
  end
  removed = removed + redis.call('DEL', key)
  redis.call('DEL', key .. ':log', key .. ':session', key .. ':followers')
  redis.call('ZREM', KEYS[2], id)
  redis.call('SREM', KEYS[3], id)
  redis.call('SREM', KEYS[4], id)
end
for _, id in ipairs(ids) do
  drop(id, 0)
  redis.call('ZREM', KEYS[1], id)
end
return { #ids, removed }
`;
