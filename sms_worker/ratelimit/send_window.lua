-- A sliding one-second window of departures for one account, shared by every worker.
-- KEYS[1]: sorted set of departures (score: Redis server time). ARGV: limit, cost, a unique token.
-- Takes `cost` places and returns '0' if they fit now (or the window is empty); otherwise takes
-- nothing and returns the seconds until enough of the oldest departures leave the window.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local limit, cost = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 1)
local inside = redis.call('ZCARD', KEYS[1])
if inside == 0 or inside + cost <= limit then
  for i = 1, cost do
    redis.call('ZADD', KEYS[1], now, ARGV[3] .. ':' .. i)
  end
  redis.call('PEXPIRE', KEYS[1], 2000)
  return '0'
end
local leaving = math.min(inside, inside + cost - limit)
local oldest = redis.call('ZRANGE', KEYS[1], leaving - 1, leaving - 1, 'WITHSCORES')
return string.format('%.6f', math.max(0.001, tonumber(oldest[2]) + 1 - now))
