-- Record call outcomes of one account and open or close its breaker.
-- KEYS[1]: breaker hash, KEYS[2]: recent outcomes list (newest first).
-- ARGV: outcomes ("1" failure, "0" success, in the order the calls ended), consecutive failures
-- that open, window size, failure ratio over a full window that opens, cooldown seconds, reason.
-- Each outcome is judged as it comes, so a run of faults inside one batch opens the breaker
-- even if the batch ends with a success.
-- Returns {state after (closed, open or half_open), 1 if this call changed it else 0}.
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1e6
local outcomes, run_limit, window = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local ratio, cooldown = tonumber(ARGV[4]), tonumber(ARGV[5])
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local run = tonumber(redis.call('HGET', KEYS[1], 'run') or '0')

local recent = redis.call('LRANGE', KEYS[2], 0, window - 1)  -- newest first
local failures = 0
for _, outcome in ipairs(recent) do
  if outcome == '1' then failures = failures + 1 end
end

local opened, any_success = false, false
for i = 1, #outcomes do
  local outcome = string.sub(outcomes, i, i)
  table.insert(recent, 1, outcome)
  if outcome == '1' then failures = failures + 1; run = run + 1 else run = 0; any_success = true end
  if #recent > window then
    if table.remove(recent) == '1' then failures = failures - 1 end
  end
  if run >= run_limit or (#recent >= window and failures >= ratio * window) then
    opened = true
  end
end
redis.call('DEL', KEYS[2])
if #recent > 0 then
  redis.call('RPUSH', KEYS[2], unpack(recent))
end

local function open()
  redis.call('HSET', KEYS[1], 'state', 'open', 'until', tostring(now + cooldown), 'opened_at', tostring(now), 'reason', ARGV[6], 'run', run)
  return {'open', 1}
end

if state == 'half_open' then
  if any_success then
    redis.call('DEL', KEYS[1], KEYS[2])
    return {'closed', 1}
  end
  return open()
end
if state == 'open' then
  return {'open', 0}  -- late answers of calls started before it opened change nothing
end
if opened then
  return open()
end
redis.call('HSET', KEYS[1], 'run', run)
return {'closed', 0}
