import { TERMINAL_STATUSES } from '../../task.js';

/**
 * Lua functions shared by dan's scripts, prepended to a script's text where it uses them (Redis has no
 * includes of its own; BullMQ does the same at build time).
 */

/** `hsetTable(key, fields)`: HSET of every field of a Lua table of strings. */
export const hsetTable = `
local function hsetTable(key, fields)
  local flat = {}
  for k, v in pairs(fields) do
    flat[#flat + 1] = k
    flat[#flat + 1] = v
  end
  redis.call('HSET', key, unpack(flat))
end
`;

/**
 * `writeTask(hashKey, indexKey, logKey, id, fieldsJson, score, entryJson, maxlen)`: a new task's record, its
 * place in the index and its first log entry (needs {@link hsetTable}).
 */
export const writeTask = `
local function writeTask(hashKey, indexKey, logKey, id, fieldsJson, score, entryJson, maxlen)
  hsetTable(hashKey, cjson.decode(fieldsJson))
  redis.call('ZADD', indexKey, score, id)
  redis.call('XADD', logKey, 'MAXLEN', '~', maxlen, '*', 'e', entryJson)
end
`;

/** `addChildren(parentKey, ids)`: appends task ids to a parent's `children` field, a JSON array. */
export const addChildren = `
local function addChildren(parentKey, ids)
  local children = redis.call('HGET', parentKey, 'children')
  local all = (children and children ~= '' and children ~= '[]') and cjson.decode(children) or {}
  for _, id in ipairs(ids) do all[#all + 1] = id end
  if #all > 0 then redis.call('HSET', parentKey, 'children', cjson.encode(all)) end
end
`;

/** The terminal statuses as a Lua set, from the state machine in lib/task.ts. */
const terminalSet = `{ ${[...TERMINAL_STATUSES].map((s) => `['${s}'] = true`).join(', ')} }`;

/**
 * `indexStatus(taskKey, openKey, endedKey, id, status, now)`: keeps the two status indexes of a task in step with
 * its record. A task not ended is in the open set (the reconciler's worklist); an ended one leaves it, and, when
 * it has no parent record (a subtask goes with its goal), enters the ended set scored by `now`, which retention
 * reads.
 */
export const indexStatus = `
local TERMINAL = ${terminalSet}
local function indexStatus(taskKey, openKey, endedKey, id, status, now)
  if not TERMINAL[status] then
    redis.call('SADD', openKey, id)
    -- A task retried after its end (dan retry) is no longer retention's.
    redis.call('ZREM', endedKey, id)
    return
  end
  redis.call('SREM', openKey, id)
  local parent = redis.call('HGET', taskKey, 'parent')
  -- The parent's key is this task's key with the id swapped: the same prefix.
  if parent and parent ~= '' and redis.call('EXISTS', string.sub(taskKey, 1, #taskKey - #id) .. parent) == 1 then return end
  redis.call('ZADD', endedKey, now, id)
end
`;
