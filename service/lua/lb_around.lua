--#fold ratelimit (service/core/redis.py: rate= counts the request's limits first)
-- The members ranked around me: my rank (0-based) and the slice from rank - radius to
-- rank + radius as member, encoded score pairs (never the built marker).
-- KEYS[1]: period sorted set. ARGV[1]: member; ARGV[2]: radius (count of members each side);
-- ARGV[3]: the built marker (see lb_apply.lua).
-- Reply: -1 when the set is not built (the caller rebuilds it), {} when I am not on the
-- board, else {rank, start, {member, encoded, ...}}.
if not redis.call('ZSCORE', KEYS[1], ARGV[3]) then
  return -1
end
local r = redis.call('ZREVRANK', KEYS[1], ARGV[1])
if not r then
  return {}
end
local radius = tonumber(ARGV[2])
local from = r - radius
if from < 0 then
  from = 0
end
local flat = redis.call('ZREVRANGE', KEYS[1], from, r + radius, 'WITHSCORES')
local out = {}
for j = 1, #flat, 2 do
  if flat[j] ~= ARGV[3] then
    out[#out + 1] = flat[j]
    out[#out + 1] = flat[j + 1]
  end
end
return {r, from, out}
