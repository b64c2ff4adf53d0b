-- The members ranked around me: my rank (0-based) and the slice from rank - radius to
-- rank + radius as member, encoded score pairs. Empty reply: I am not on the board.
-- KEYS[1]: period sorted set. ARGV[1]: member; ARGV[2]: radius (count of members each side).
local r = redis.call('ZREVRANK', KEYS[1], ARGV[1])
if not r then
  return {}
end
local radius = tonumber(ARGV[2])
local from = r - radius
if from < 0 then
  from = 0
end
return {r, from, redis.call('ZREVRANGE', KEYS[1], from, r + radius, 'WITHSCORES')}
