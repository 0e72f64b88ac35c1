-- Turn claims' markers from 'claimed' to 'calling', each only if the lease sweep has not
-- taken it. KEYS: the markers. Returns 1 (may call) or 0 (skip) per key.
local allowed = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == 'claimed' then
    redis.call('SET', key, 'calling', 'KEEPTTL')
    allowed[i] = 1
  else
    allowed[i] = 0
  end
end
return allowed
