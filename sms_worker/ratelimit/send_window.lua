-- A sliding one-second window of departures for one account, shared by every worker.
-- KEYS[1]: sorted set of departures (score: Redis server time). ARGV: limit, a unique token,
-- places to reserve ahead, then the cost of each request in order. Admits the longest prefix
-- that fits now (a request that costs more than the limit fits an empty window). If all were
-- admitted and the window is then at most half full, also takes the places asked ahead.
-- Returns {admitted, seconds until the next one would fit ('0' when all were admitted), ahead}.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local limit, ahead = tonumber(ARGV[1]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 1)
local inside = redis.call('ZCARD', KEYS[1])
local admitted = 0
local function take(cost, tag)
  for j = 1, cost do
    redis.call('ZADD', KEYS[1], now, ARGV[2] .. ':' .. tag .. ':' .. j)
  end
  inside = inside + cost
end
for i = 4, #ARGV do
  local cost = tonumber(ARGV[i])
  if inside > 0 and inside + cost > limit then break end
  take(cost, i)
  admitted = admitted + 1
end
local reserved = 0
if admitted == #ARGV - 3 then
  if ahead > 0 and inside + ahead <= limit / 2 then
    take(ahead, 'ahead')
    reserved = ahead
  end
  if inside > 0 then redis.call('PEXPIRE', KEYS[1], 2000) end
  return {admitted, '0', reserved}
end
redis.call('PEXPIRE', KEYS[1], 2000)
local cost = tonumber(ARGV[admitted + 4])
local leaving = math.min(inside, inside + cost - limit)
local oldest = redis.call('ZRANGE', KEYS[1], leaving - 1, leaving - 1, 'WITHSCORES')
return {admitted, string.format('%.6f', math.max(0.001, tonumber(oldest[2]) + 1 - now)), 0}
