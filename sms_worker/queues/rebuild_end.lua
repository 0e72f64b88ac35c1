-- End a rebuild, in one atomic step, if the lock is still this rebuild's: set the epoch when it
-- finished (Redis has its queues again), then release the lock. If the lock is gone, Redis was
-- flushed again during the rebuild (or the lock outlived its lifetime): the epoch is not set,
-- so the next process to notice rebuilds once more.
-- KEYS: the epoch, the rebuild lock. ARGV: this rebuild's token, 1 if it finished (0: it failed).
-- Returns 1 if the epoch was set.
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2])
if ARGV[2] ~= '1' then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
