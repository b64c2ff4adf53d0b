-- Replace one wheel's stock hash with counts read from PostgreSQL, in one step, so a draw
-- never sees a half-loaded hash.
-- KEYS[1] stock hash; ARGV[1] new epoch; ARGV[2..] field, value pairs (wins so far, whole
-- prizes: i:<prize> and d:<day>:<prize>). Returns the number of fields loaded.
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], '_epoch', ARGV[1])
local n = 0
for j = 2, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[j], ARGV[j + 1])
  n = n + 1
end
return n
