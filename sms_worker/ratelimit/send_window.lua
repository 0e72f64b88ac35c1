-- A sliding one-second window of departures for one account, shared by every worker.
-- KEYS[1]: sorted set of departures (score: Redis server time). ARGV: limit, a unique token, then
-- the cost of each request in order. Admits the longest prefix that fits now (a request that
-- costs more than the limit fits an empty window) and returns {admitted, seconds until the next
-- one would fit ('0' when all were admitted)}.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local limit = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 1)
local inside = redis.call('ZCARD', KEYS[1])
local admitted = 0
for i = 3, #ARGV do
  local cost = tonumber(ARGV[i])
  if inside > 0 and inside + cost > limit then break end
  for j = 1, cost do
    redis.call('ZADD', KEYS[1], now, ARGV[2] .. ':' .. i .. ':' .. j)
  end
  inside = inside + cost
  admitted = admitted + 1
end
if admitted > 0 then redis.call('PEXPIRE', KEYS[1], 2000) end
if admitted == #ARGV - 2 then return {admitted, '0'} end
local cost = tonumber(ARGV[admitted + 3])
local leaving = math.min(inside, inside + cost - limit)
local oldest = redis.call('ZRANGE', KEYS[1], leaving - 1, leaving - 1, 'WITHSCORES')
return {admitted, string.format('%.6f', math.max(0.001, tonumber(oldest[2]) + 1 - now))}
