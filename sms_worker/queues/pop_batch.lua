-- Pop up to ARGV[1] message pointers, most urgent first, keeping a share of every batch for
-- standard (ARGV[2]) and low (ARGV[3]) while they are backlogged, so neither starves.
-- KEYS: the ready lists, most urgent first. ARGV[4..6]: their priorities (from sms_worker.priority).
-- Returns a flat list: priority, hex, priority, hex, ...
local size = tonumber(ARGV[1])
local shares = {0, tonumber(ARGV[2]), tonumber(ARGV[3])}
local lengths = {}
local reserved = {0, 0, 0}
for i = 1, 3 do
  lengths[i] = redis.call('LLEN', KEYS[i])
  if i > 1 and lengths[i] > 0 and shares[i] > 0 then
    reserved[i] = math.min(lengths[i], math.max(1, math.floor(size * shares[i])))
  end
end
local take = {0, 0, 0}
local left = size
for i = 1, 3 do
  local keep_for_lower = 0
  for j = i + 1, 3 do keep_for_lower = keep_for_lower + reserved[j] end
  take[i] = math.min(lengths[i], math.max(0, left - keep_for_lower))
  left = left - take[i]
end
for i = 1, 3 do
  local extra = math.min(lengths[i] - take[i], left)
  take[i] = take[i] + extra
  left = left - extra
end
local out = {}
local priority = {ARGV[4], ARGV[5], ARGV[6]}
for i = 1, 3 do
  if take[i] > 0 then
    local items = redis.call('LPOP', KEYS[i], take[i])
    for _, item in ipairs(items) do
      out[#out + 1] = priority[i]
      out[#out + 1] = item
    end
  end
end
return out
