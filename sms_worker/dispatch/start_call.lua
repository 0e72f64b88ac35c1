-- Turn a claim's marker from 'claimed' to 'calling', only if the lease sweep has not taken it.
if redis.call('GET', KEYS[1]) == 'claimed' then
  redis.call('SET', KEYS[1], 'calling', 'KEEPTTL')
  return 1
end
return 0
