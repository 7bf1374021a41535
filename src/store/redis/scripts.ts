/**
 * The Lua scripts of the Redis store, and the time constants they share with it. Every script reads
 * Redis server time (TIME), so replicas with skewed clocks agree; every key it writes expires once
 * its state no longer matters. What each script takes and answers is written above it.
 */
import type { Cluster, Redis } from 'ioredis';

/**
 * How far in the past a take may book its tokens (the grant was due earlier: a late timer, a
 * pause in this process), and how long a key outlives the instant its bucket is full again. The two
 * go together: a key that has expired must mean its bucket was full before any instant a take may
 * book at, or a booking in the past would spend tokens the expired state had already handed out.
 */
export const LATE_BOOKING_WINDOW_MS = 1000;

/**
 * A grant not yet written to the upstream holds the bucket for every replica, as an unwritten
 * grant holds its gate in one process (WRITE_HOLD_LIMIT_MS in src/scheduler/model.ts, the same
 * limit): a replica that stalls between its grant and its write (a GC pause, a CPU quota, a new
 * connection) would otherwise send its request together with the next replica's, and a strict
 * upstream window counts one too many. A grant is recorded in the bucket's hash (`w:<id>`) and
 * removed by the replica's write notice (`usedAt`) or refund; a grant older than
 * PENDING_GRACE_MS (plus twice the round trip) and younger than this blocks other takes, which
 * then ask again shortly. Normally the notice arrives first and nothing ever waits.
 */
export const PENDING_HOLD_MS = 1000;
export const PENDING_GRACE_MS = 5;

/**
 * KEYS: one hash per bucket. ARGV[1]: how long ago (ms) the grant was due, so a late timer does not
 * shift later grants (at most LATE_BOOKING_WINDOW_MS); ARGV[2]: this take's grant id,
 * `<store instance>.<sequence>` (the store's own unwritten grants are the scheduler's to hold, by
 * its gates); ARGV[3]: how old (ms) another replica's unwritten grant must be to hold the bucket;
 * then per bucket its interval (ms per token) and burst.
 * Returns { granted (1/0), granted ? ms since the tokens were booked : ms to wait, blocker index
 * (0-based), then per bucket `t - now` and `p - now` ("" for none) after the take }.
 */
const TAKE_LUA = `
if redis.replicate_commands then pcall(redis.replicate_commands) end
local window = ${LATE_BOOKING_WINDOW_MS}
local hold = ${PENDING_HOLD_MS}
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local due = now - math.min(tonumber(ARGV[1]), window)
local grant = 'w:' .. ARGV[2]
local mine = string.match(grant, '^(w:[^.]*%.)')
local grace = tonumber(ARGV[3])
local n = #KEYS
local tats, pauses, intervals = {}, {}, {}
local ready, blocker = -math.huge, 1
for i = 1, n do
  local state = redis.call('HGETALL', KEYS[i])
  local interval = tonumber(ARGV[2 * i + 2])
  local burst = tonumber(ARGV[2 * i + 3])
  local tat, pause, pending = -math.huge, -math.huge, math.huge
  for j = 1, #state, 2 do
    local field, value = state[j], tonumber(state[j + 1])
    if field == 't' then tat = value
    elseif field == 'p' then pause = value
    elseif value <= now - hold then redis.call('HDEL', KEYS[i], field)
    elseif value < pending and string.sub(field, 1, #mine) ~= mine then pending = value end
  end
  tats[i], pauses[i], intervals[i] = tat, pause, interval
  local available = math.max(tat - (burst - 1) * interval, pause)
  if pending < now - grace then
    -- Another replica has not written its grant yet: ask again shortly (or when it is forgotten).
    available = math.max(available, math.min(now + math.max(1, math.min(5, interval / 4)), pending + hold))
  end
  if available > ready then ready, blocker = available, i end
end
local granted = ready <= now
local answer
if granted then
  local booked = math.max(due, ready)
  for i = 1, n do
    local tat = math.max(tats[i], booked) + intervals[i]
    tats[i] = tat
    redis.call('HSET', KEYS[i], 't', string.format('%.3f', tat), grant, string.format('%.3f', now))
    redis.call('PEXPIRE', KEYS[i], math.ceil(math.max(tat, pauses[i]) - now + window))
  end
  answer = { 1, string.format('%.3f', now - booked), blocker - 1 }
else
  answer = { 0, string.format('%.3f', ready - now), blocker - 1 }
end
for i = 1, n do
  answer[#answer + 1] = tats[i] == -math.huge and '' or string.format('%.3f', tats[i] - now)
  answer[#answer + 1] = pauses[i] == -math.huge and '' or string.format('%.3f', pauses[i] - now)
end
return answer
`;

/**
 * KEYS: buckets. ARGV[1]: the grant id ('' for none), then per bucket its interval. Gives one token
 * back to each bucket that still exists, and forgets the grant.
 */
const REFUND_LUA = `
for i = 1, #KEYS do
  local tat = tonumber(redis.call('HGET', KEYS[i], 't'))
  if tat then redis.call('HSET', KEYS[i], 't', string.format('%.3f', tat - tonumber(ARGV[i + 1]))) end
  if ARGV[1] ~= '' then redis.call('HDEL', KEYS[i], 'w:' .. ARGV[1]) end
end
return 1
`;

/**
 * The write notice. KEYS: buckets. ARGV[1]: the grant id ('' for none), ARGV[2]: ms since the write,
 * ARGV[3]: tolerance ms, ARGV[4]: 1 when the write was late, then per bucket its interval. Forgets the
 * grant; after a late write, no bucket holds more than if its token had been taken at the write
 * (TokenBucket#usedAt).
 */
const USED_AT_LUA = `
if redis.replicate_commands then pcall(redis.replicate_commands) end
local window = ${LATE_BOOKING_WINDOW_MS}
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local written = now - tonumber(ARGV[2])
for i = 1, #KEYS do
  if ARGV[1] ~= '' then redis.call('HDEL', KEYS[i], 'w:' .. ARGV[1]) end
  if ARGV[4] == '1' then
    local state = redis.call('HMGET', KEYS[i], 't', 'p')
    local floor = written - tonumber(ARGV[3]) + tonumber(ARGV[4 + i])
    if floor > (tonumber(state[1]) or -math.huge) then
      redis.call('HSET', KEYS[i], 't', string.format('%.3f', floor))
      redis.call('PEXPIRE', KEYS[i], math.max(1, math.ceil(math.max(floor, tonumber(state[2]) or -math.huge) - now + window)))
    end
  end
end
return 1
`;

/** KEYS: buckets. ARGV[1]: ms from now until the pause ends. Pauses extend, never shorten. */
const PAUSE_LUA = `
if redis.replicate_commands then pcall(redis.replicate_commands) end
local window = ${LATE_BOOKING_WINDOW_MS}
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local untilAt = now + tonumber(ARGV[1])
for i = 1, #KEYS do
  local state = redis.call('HMGET', KEYS[i], 't', 'p')
  local pause = tonumber(state[2]) or -math.huge
  if untilAt > pause then
    redis.call('HSET', KEYS[i], 'p', string.format('%.3f', untilAt))
    redis.call('PEXPIRE', KEYS[i], math.ceil(math.max(untilAt, tonumber(state[1]) or -math.huge) - now + window))
  end
end
return 1
`;

/** The commands the store defines on its client (EVALSHA, reloaded by ioredis after NOSCRIPT). */
export interface SluiceCommands {
  sluiceTake(numKeys: number, ...args: (string | number)[]): Promise<(string | number)[]>;
  sluiceRefund(numKeys: number, ...args: (string | number)[]): Promise<unknown>;
  sluiceUsedAt(numKeys: number, ...args: (string | number)[]): Promise<unknown>;
  sluicePause(numKeys: number, ...args: (string | number)[]): Promise<unknown>;
}

/** Defines the scripts on `client` (ioredis loads them with EVALSHA, again after a NOSCRIPT). */
export function defineSluiceCommands(client: Redis | Cluster): SluiceCommands {
  client.defineCommand('sluiceTake', { lua: TAKE_LUA });
  client.defineCommand('sluiceRefund', { lua: REFUND_LUA });
  client.defineCommand('sluiceUsedAt', { lua: USED_AT_LUA });
  client.defineCommand('sluicePause', { lua: PAUSE_LUA });
  return client as unknown as SluiceCommands;
}
