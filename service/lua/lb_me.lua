--#fold ratelimit (service/core/redis.py: rate= counts the request's limits first)
-- My place on a board in one round trip: rank (0-based), my encoded score, and the encoded
-- score of the member just above me ('' when I am first).
-- KEYS[1]: period sorted set. ARGV[1]: member (6 bytes, see leaderboards/rules.py);
-- ARGV[2]: the built marker (see lb_apply.lua).
-- Reply: -1 when the set is not built (the caller rebuilds it), {} when I am not on the
-- board, else {rank, score, prev}.
if not redis.call('ZSCORE', KEYS[1], ARGV[2]) then
  return -1
end
local r = redis.call('ZREVRANK', KEYS[1], ARGV[1])
if not r then
  return {}
end
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
local prev = ''
if r > 0 then
  prev = redis.call('ZREVRANGE', KEYS[1], r - 1, r - 1, 'WITHSCORES')[2]
end
return {r, s, prev}
