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
