import { hsetTable, indexStatus } from './includes.js';

/**
 * Moves a task from one status to another through the state machine, with fencing, then appends the
 * transition to the task's log and publishes it: the record, the log, the event, in that order, atomically.
 * The open and ended indexes follow the new status (see indexStatus).
 *
 * KEYS[1] task hash, KEYS[2] task log stream, KEYS[3] open tasks (set), KEYS[4] ended tasks (zset)
 * ARGV[1]  target status
 * ARGV[2]  statuses allowed as the source, space-separated (the state machine, computed in lib/task.ts)
 * ARGV[3]  fencing: the agent the record must name, or ''
 * ARGV[4]  fencing: the attempt number the record must hold, or ''
 * ARGV[5]  fields to set (JSON object of strings)
 * ARGV[6]  fields to delete, space-separated, or ''
 * ARGV[7]  mode: '' plain, 'claim' (an agent takes the task: attempts+1, checks attempts and cancel request).
 *          A move to `completed` of a record whose cancel was requested ends it `cancelled` instead.
 * ARGV[8]  log text of the transition
 * ARGV[9]  agent named in the log entry and event, or ''
 * ARGV[10] now (ms)
 * ARGV[11] events channel
 * ARGV[12] log maxlen
 * ARGV[13] task id (named in the log entry and event: a damaged record may have lost its own `id` field)
 * ARGV[14] claim only: the heartbeat key of an agent, with '{agent}' where its id goes, or ''. An `active` record
 *          whose agent (another than the claimer, ARGV[9]) still has a heartbeat is not taken: that agent runs it
 *          (its job lock lapsed in a stall, its heartbeat did not), so the claim answers 'busy' and changes nothing.
 * Returns { outcome, from, attempts }: outcome ok | missing | illegal | fenced | exhausted | cancelled | busy
 */
export const transition = `${hsetTable}${indexStatus}
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'missing', '', '0'} end
local attempts = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0')
local allowed = false
for s in string.gmatch(ARGV[2], '%S+') do
  if s == status then allowed = true end
end
if not allowed then return {'illegal', status, tostring(attempts)} end
if ARGV[3] ~= '' and redis.call('HGET', KEYS[1], 'agent') ~= ARGV[3] then
  return {'fenced', status, tostring(attempts)}
end
if ARGV[4] ~= '' and tostring(attempts) ~= ARGV[4] then return {'fenced', status, tostring(attempts)} end
if ARGV[7] == 'claim' and status == 'active' and (ARGV[14] or '') ~= '' then
  local holder = redis.call('HGET', KEYS[1], 'agent')
  if holder and holder ~= '' and holder ~= ARGV[9] then
    local beat = string.gsub(ARGV[14], '{agent}', function() return holder end)
    if redis.call('EXISTS', beat) == 1 then return {'busy', status, tostring(attempts)} end
  end
end

local to = ARGV[1]
local text = ARGV[8]
local outcome = 'ok'
local fields = cjson.decode(ARGV[5])
if ARGV[7] == 'claim' then
  local max = tonumber(redis.call('HGET', KEYS[1], 'maxAttempts') or '1')
  if redis.call('HGET', KEYS[1], 'cancelRequested') == '1' then
    to = 'cancelled'
    outcome = 'cancelled'
    text = 'cancelled before it could start again'
    fields = { finishedAt = ARGV[10] }
  elseif attempts >= max then
    to = 'failed'
    outcome = 'exhausted'
    text = 'gave up after ' .. attempts .. ' of ' .. max .. ' attempts: ' .. (redis.call('HGET', KEYS[1], 'reason') or 'no agent finished it')
    fields = { finishedAt = ARGV[10], error = text }
  else
    attempts = attempts + 1
    fields['attempts'] = tostring(attempts)
  end
elseif to == 'completed' and redis.call('HGET', KEYS[1], 'cancelRequested') == '1' then
  -- A cancel request on the record wins over a run that completed anyway (its agent missed the message).
  local reason = redis.call('HGET', KEYS[1], 'reason') or 'cancel requested'
  to = 'cancelled'
  outcome = 'cancelled'
  text = 'cancelled: ' .. reason .. ' (the run completed after the cancel was requested; its result is not recorded)'
  fields = { finishedAt = ARGV[10], reason = reason }
end

fields['status'] = to
fields['updatedAt'] = ARGV[10]
hsetTable(KEYS[1], fields)
-- The fields to delete belong to the move asked for: a claim that ended the task instead keeps its error.
if ARGV[6] ~= '' and outcome == 'ok' then
  for f in string.gmatch(ARGV[6], '%S+') do redis.call('HDEL', KEYS[1], f) end
end

local id = ARGV[13]
indexStatus(KEYS[1], KEYS[3], KEYS[4], id, to, ARGV[10])
local entry = { ts = tonumber(ARGV[10]), type = 'status', status = to, text = text, task = id }
local event = { kind = 'task', id = id, domain = redis.call('HGET', KEYS[1], 'domain') or '', status = to, ts = tonumber(ARGV[10]) }
if ARGV[9] ~= '' then
  entry['agent'] = ARGV[9]
  event['agent'] = ARGV[9]
end
if text ~= '' then event['reason'] = text end
-- pcall: a log key that cannot take the entry (another type) must not stop the record from changing.
redis.pcall('XADD', KEYS[2], 'MAXLEN', '~', ARGV[12], '*', 'e', cjson.encode(entry))
redis.call('PUBLISH', ARGV[11], cjson.encode(event))
return {outcome, status, tostring(attempts)}
`;
