/**
 * Registry scripts: heartbeat with self-fencing, atomic reaping, the leader lease.
 */

/**
 * Renews an agent's heartbeat, unless the agent has been reaped, and says which of the tasks it runs have a cancel
 * request on their record (the record is the authority: a control message can be lost, the record cannot).
 * KEYS[1] agents set, KEYS[2] heartbeat key, KEYS[3] agent hash, KEYS[4..] hashes of the tasks it runs
 * ARGV[1] agent id, ARGV[2] ttl ms, ARGV[3] now ms, ARGV[4..] the ids of those tasks, in the same order
 * Returns { 0 } reaped (the agent must stop work and exit), or { 1, id, reason, id, reason … } alive, with each
 * running task whose cancel was requested and the reason given.
 */
export const heartbeat = `
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return { 0 } end
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[2])
redis.call('HSET', KEYS[3], 'lastSeen', ARGV[3])
local out = { 1 }
for i = 4, #KEYS do
  local task = redis.call('HMGET', KEYS[i], 'cancelRequested', 'reason')
  if task[1] == '1' then
    out[#out + 1] = ARGV[i]
    out[#out + 1] = task[2] or 'cancelled'
  end
end
return out
`;

/**
 * Reaps one agent if, and only if, it is still registered and its heartbeat has expired, so two reapers
 * racing never both act on it. In the same step the agent enters the to-release set: releasing its work is the
 * second step, done (and redone after a crash) until the reaper removes it from there.
 * KEYS[1] agents set, KEYS[2] heartbeat key, KEYS[3] agent hash, KEYS[4] to-release set
 * ARGV[1] agent id, ARGV[2] now ms, ARGV[3] events channel, ARGV[4] keep dead record (s)
 * Returns the agent hash as a flat list, or an empty list when there is nothing to reap.
 */
export const reap = `
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return {} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {} end
redis.call('SREM', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[4], ARGV[1])
redis.call('HSET', KEYS[3], 'status', 'dead', 'reapedAt', ARGV[2])
local record = redis.call('HGETALL', KEYS[3])
redis.call('EXPIRE', KEYS[3], ARGV[4])
local event = { kind = 'agent', id = ARGV[1], domain = redis.call('HGET', KEYS[3], 'domain') or '', status = 'dead', ts = tonumber(ARGV[2]) }
redis.call('PUBLISH', ARGV[3], cjson.encode(event))
return record
`;

/**
 * Takes or renews the leader lease.
 * KEYS[1] leader key; ARGV[1] candidate id, ARGV[2] ttl ms
 * Returns 1 when the candidate holds the lease, 0 otherwise.
 */
export const acquireLease = `
local holder = redis.call('GET', KEYS[1])
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`;

/** Releases the lease if held. KEYS[1] leader key; ARGV[1] holder id. Returns 1 if released. */
export const releaseLease = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;
