-- A token bucket shared by every worker on every host: one script, one key, no over-grant.
-- KEYS[1]: the bucket. ARGV: rate (tokens/s), burst, then the cost of each message in order.
-- Grants the longest prefix of messages that fits. A message costing more than the burst is
-- granted once the bucket is full and leaves it in debt, so the long-run rate still holds.
-- A negative cost gives tokens back (never above the burst).
-- Time is the Redis server's, so hosts with skewed clocks still agree.
-- Returns {granted_count, seconds_until_next_fits, server_time} (the last two as strings).
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local granted = 0
local wait = 0
for i = 3, #ARGV do
  local cost = tonumber(ARGV[i])
  local needed = math.min(cost, burst)
  if tokens >= needed then
    tokens = tokens - cost
    granted = granted + 1
  else
    wait = (needed - tokens) / rate
    break
  end
end
tokens = math.min(burst, tokens)
-- %.17g: tostring keeps 14 digits, which would round the clock to 0.1 ms and over-grant
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts', string.format('%.17g', now))
redis.call('EXPIRE', KEYS[1], math.ceil((burst - math.min(tokens, 0)) / rate) + 60)
return {granted, tostring(wait), string.format('%.17g', now)}
