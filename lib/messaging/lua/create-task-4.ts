import { hsetTable } from './includes.js';

/**
 * Creates a task record, indexes it, appends its first log entry, links it to its parent, and publishes
 * its creation, atomically.
 *
 * KEYS[1] task hash, KEYS[2] tasks index (zset), KEYS[3] task log stream, KEYS[4] parent hash (or KEYS[1])
 * ARGV[1] id, ARGV[2] fields (JSON object of strings), ARGV[3] score (created ms), ARGV[4] first entry JSON,
 * ARGV[5] events channel, ARGV[6] event JSON, ARGV[7] log maxlen
 * Returns 1, or 0 when the id exists.
 */
export const createTask = `${hsetTable}
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
hsetTable(KEYS[1], cjson.decode(ARGV[2]))
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[7], '*', 'e', ARGV[4])
if KEYS[4] ~= KEYS[1] and redis.call('EXISTS', KEYS[4]) == 1 then
  local children = redis.call('HGET', KEYS[4], 'children')
  if not children or children == '[]' or children == '' then
    children = '["' .. ARGV[1] .. '"]'
  else
    children = string.sub(children, 1, -2) .. ',"' .. ARGV[1] .. '"]'
  end
  redis.call('HSET', KEYS[4], 'children', children)
end
redis.call('PUBLISH', ARGV[5], ARGV[6])
return 1
`;
