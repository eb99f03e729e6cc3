/**
 * Marks an active task as cancel-requested (its agent is then told through its control channel), and logs it.
 *
 * KEYS[1] task hash, KEYS[2] task log stream
 * ARGV[1] now (ms), ARGV[2] reason, ARGV[3] log maxlen, ARGV[4] task id
 * Returns { outcome, status, agent }: outcome ok | missing | not_active
 */
export const requestCancel = `
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'missing', '', ''} end
if status ~= 'active' then return {'not_active', status, ''} end
local agent = redis.call('HGET', KEYS[1], 'agent') or ''
redis.call('HSET', KEYS[1], 'cancelRequested', '1', 'reason', ARGV[2], 'updatedAt', ARGV[1])
local entry = { ts = tonumber(ARGV[1]), type = 'info', text = 'cancel requested: ' .. ARGV[2], task = ARGV[4] }
redis.pcall('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'e', cjson.encode(entry))
return {'ok', status, agent}
`;
