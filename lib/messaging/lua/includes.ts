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
