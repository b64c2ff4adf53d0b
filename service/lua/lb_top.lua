--#fold ratelimit (service/core/redis.py: rate= counts the request's limits first)
-- A page of a board in one round trip: members from rank ARGV[3] (0-based), at most ARGV[4],
-- whose encoded score is at least ARGV[2], with when the period was last updated.
-- KEYS[1]: period sorted set; KEYS[2]: hash of updated-at (ms) per period key.
-- ARGV[1]: the built marker (see lb_apply.lua); ARGV[2]: minimum encoded score.
-- Reply: -1 when the set is not built (the caller rebuilds it from PostgreSQL), else
-- {updated_at ms or '', {member, encoded, ...}}.
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return -1
end
local page = redis.call('ZREVRANGEBYSCORE', KEYS[1], '+inf', ARGV[2], 'WITHSCORES', 'LIMIT',
  ARGV[3], ARGV[4])
return {redis.call('HGET', KEYS[2], KEYS[1]) or '', page}
