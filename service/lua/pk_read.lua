--#fold ratelimit (service/core/redis.py: rate= counts the request's limits first)
-- A PK's live scoreboard in one call, or only my place in it.
-- KEYS[1] team totals (zset), KEYS[2] meta (hash: built, upd, r:<team>), KEYS[3..] the
-- contribution set of each team, in the order the caller lists its teams (my place only:
-- just my team's set, or none).
-- ARGV: top (contributors per team), mine (1-based index of my team's set among KEYS[3..],
-- 0: none), my member bytes, '0' for my place only (the rest is cached by the caller).
-- Returns -1 when the PK is not built (the caller rebuilds it from PostgreSQL), else
-- {totals (flat team, total), meta (flat field, value), per team {top flat, count}, my rank
-- (0-based or false), my score (or false)}; my place only: {my rank, my score}.
if redis.call('HEXISTS', KEYS[2], 'built') == 0 then
  return -1
end
local top = tonumber(ARGV[1])
local mine = tonumber(ARGV[2])
local rank, score = false, false
if mine > 0 then
  rank = redis.call('ZREVRANK', KEYS[2 + mine], ARGV[3])
  score = redis.call('ZSCORE', KEYS[2 + mine], ARGV[3])
end
if ARGV[4] == '0' then
  return {rank, score}
end
local per = {}
for k = 3, #KEYS do
  local items = {}
  if top > 0 then
    items = redis.call('ZREVRANGE', KEYS[k], 0, top - 1, 'WITHSCORES')
  end
  per[#per + 1] = {items, redis.call('ZCARD', KEYS[k])}
end
return {
  redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES'),
  redis.call('HGETALL', KEYS[2]),
  per,
  rank,
  score,
}
