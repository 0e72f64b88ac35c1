-- Move pointers whose due time (score) has come from the due set to their ready lists,
-- atomically, so a crash in between can neither lose nor double them.
-- KEYS: due, then the ready lists, most urgent first. ARGV: now (epoch seconds), limit, then the
-- ready lists' priorities in the same order (from sms_worker.priority).
-- Members are "<priority digit><hex>". Returns the count moved per ready list, in KEYS order.
local slot_of = {}
for i = 1, 3 do slot_of[ARGV[i + 2]] = i end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local moved = {0, 0, 0}
if #due == 0 then return moved end
redis.call('ZREM', KEYS[1], unpack(due))
for _, member in ipairs(due) do
  local slot = slot_of[string.sub(member, 1, 1)]
  redis.call('RPUSH', KEYS[slot + 1], string.sub(member, 2))
  moved[slot] = moved[slot] + 1
end
return moved
