/**
 * Whether an agent may start a CLI now, and if so a running slot for it (issue 12): one script, so that two
 * agents never both take the last slot.
 *
 * KEYS[1] pauses (hash scope → JSON), KEYS[2] limits (hash), KEYS[3] today's spend (hash domain → usd),
 * KEYS[4] running (hash `<agent>|<task>` → since)
 * ARGV[1] now (ms)
 * ARGV[2] the pause scopes that apply to the agent, space-separated (`token:0 network`)
 * ARGV[3] the slot's member, `<agent>|<task>`
 * ARGV[4] the heartbeat key of an agent, with '{agent}' where its id goes: a slot whose agent has no heartbeat
 *         any more (SIGKILLed, reaped) is freed here
 * ARGV[5] the start of the next UTC day (ms)
 * Returns {'ok'} | {'paused', untilMs, kind, scope} | {'budget', nextDayMs, spent, cap} | {'full', running, cap}
 */
export const admitRun = `
local now = tonumber(ARGV[1])
for scope in string.gmatch(ARGV[2], '%S+') do
  local raw = redis.call('HGET', KEYS[1], scope)
  if raw then
    local p = cjson.decode(raw)
    if tonumber(p.untilMs) > now then return {'paused', p.untilMs, p.kind, scope} end
  end
end
local cap = tonumber(redis.call('HGET', KEYS[2], 'dailyBudgetUsd') or '')
if cap then
  local spent = 0
  for _, v in ipairs(redis.call('HVALS', KEYS[3])) do spent = spent + tonumber(v) end
  if spent >= cap then return {'budget', ARGV[5], tostring(spent), tostring(cap)} end
end
for _, member in ipairs(redis.call('HKEYS', KEYS[4])) do
  local agent = string.match(member, '^(.-)|') or member
  local beat = string.gsub(ARGV[4], '{agent}', function() return agent end)
  if redis.call('EXISTS', beat) == 0 then redis.call('HDEL', KEYS[4], member) end
end
if redis.call('HEXISTS', KEYS[4], ARGV[3]) == 1 then return {'ok'} end
local max = tonumber(redis.call('HGET', KEYS[2], 'maxRunning') or '')
local running = redis.call('HLEN', KEYS[4])
if max and running >= max then return {'full', tostring(running), tostring(max)} end
redis.call('HSET', KEYS[4], ARGV[3], ARGV[1])
return {'ok'}
`;

/**
 * Pauses a scope after a limit: until the reset time the CLI gave, else with exponential backoff (the base,
 * doubling with each limit since the last pause ended more than the maximum ago, at most the maximum). A pause
 * never shortens one that lasts longer.
 *
 * KEYS[1] pauses (hash scope → JSON)
 * ARGV[1] scope, ARGV[2] now (ms), ARGV[3] the reset time (ms) or '', ARGV[4] kind, ARGV[5] message,
 * ARGV[6] backoff base (ms), ARGV[7] backoff maximum (ms), ARGV[8] the furthest a reset time may lie ahead (ms)
 * Returns the end of the pause (ms), as a string.
 */
export const pauseScope = `
local now = tonumber(ARGV[2])
local base = tonumber(ARGV[6])
local max = tonumber(ARGV[7])
local failures = 0
local current = 0
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if raw then
  local p = cjson.decode(raw)
  current = tonumber(p.untilMs)
  if now <= current + max then failures = tonumber(p.failures) end
end
failures = failures + 1
local untilMs
local reset = tonumber(ARGV[3])
if reset and reset > now then
  untilMs = math.min(reset, now + tonumber(ARGV[8]))
else
  untilMs = now + math.min(max, base * (2 ^ math.min(failures - 1, 10)))
end
if current > untilMs then untilMs = current end
local text = string.format('%d', untilMs)
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode({ untilMs = text, kind = ARGV[4], failures = tostring(failures), message = ARGV[5], since = ARGV[2] }))
return text
`;
