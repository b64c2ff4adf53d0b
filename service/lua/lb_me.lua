-- My place on a board in one round trip: rank (0-based), my encoded score, and the encoded
-- score of the member just above me ('' when I am first). Empty reply: not on the board.
-- KEYS[1]: period sorted set. ARGV[1]: member (6 bytes, see leaderboards/rules.py).
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
