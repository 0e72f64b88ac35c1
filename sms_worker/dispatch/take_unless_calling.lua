-- For an expired lease: leave a 'calling:<claim>' marker alone (the provider may have the
-- message) and answer 'calling'; otherwise delete the marker, so a slow worker that still holds
-- the claim skips its call.
local marker = redis.call('GET', KEYS[1])
if marker and string.sub(marker, 1, 8) == 'calling:' then return 'calling' end
redis.call('DEL', KEYS[1])
return marker or 'none'
