-- May a message go to this account now? KEYS[1]: the breaker hash. ARGV[1]: seconds a probe
-- may stay unanswered before another is allowed.
-- Returns {capacity, state}: capacity -1 unlimited (closed), 0 none (open, or a probe is out),
-- 1 one probe (the cooldown is over: half-open).
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1e6
local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  return {-1, 'closed'}
end
if now < tonumber(redis.call('HGET', KEYS[1], 'until')) then
  return {0, state}
end
redis.call('HSET', KEYS[1], 'state', 'half_open', 'until', tostring(now + tonumber(ARGV[1])))
return {1, 'half_open'}
