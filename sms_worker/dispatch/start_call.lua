-- Turn claims' markers from 'claimed:<claim>' to 'calling:<claim>', each only if that very claim
-- still holds it (the lease sweep may have taken it, and a later claim may own it now).
-- KEYS: the markers; ARGV: the claim named in each. Returns 1 (may call) or 0 (skip) per key.
local allowed = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == 'claimed:' .. ARGV[i] then
    redis.call('SET', key, 'calling:' .. ARGV[i], 'KEEPTTL')
    allowed[i] = 1
  else
    allowed[i] = 0
  end
end
return allowed
