-- Take the rebuild lock only if Redis has forgotten its queues, in one atomic step.
-- KEYS: the epoch, the rebuild lock. ARGV: this rebuild's token, the lock's lifetime (seconds).
-- Returns 1 if the caller must rebuild now (it holds the lock), 0 if not: the epoch is there
-- (a rebuild finished since the flush) or another process holds the lock (it is rebuilding).
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'EX', tonumber(ARGV[2])) then return 1 end
return 0
