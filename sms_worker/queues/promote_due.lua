-- Move pointers whose due time (score) has come from the due set to their ready lists,
-- atomically, so a crash in between can neither lose nor double them.
-- KEYS: due, ready:3, ready:2, ready:1. ARGV: now (epoch seconds), limit.
-- Members are "<priority><hex>". Returns the count moved per priority: {p3, p2, p1}.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local moved = {0, 0, 0}
if #due == 0 then return moved end
redis.call('ZREM', KEYS[1], unpack(due))
for _, member in ipairs(due) do
  local priority = tonumber(string.sub(member, 1, 1))
  local slot = 4 - priority
  redis.call('RPUSH', KEYS[slot + 1], string.sub(member, 2))
  moved[slot] = moved[slot] + 1
end
return moved
