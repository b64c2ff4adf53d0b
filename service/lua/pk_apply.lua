-- Write a PK's absolute team totals and member contributions (one PK, one hash tag).
-- KEYS[1] team totals (zset: team id -> total), KEYS[2] meta (hash: built, upd, r:<team>),
-- KEYS[3..] contribution sets, one per team written (zset: member bytes -> rank score).
-- ARGV: now_ms, expire_at (unix s, 0: none), n_teams, then n_teams x (team id, total,
-- reached_ms), then for each contribution key: count, then count x (member, score or "" to
-- remove). Units: totals in metric units; times in ms since the epoch.
-- Returns 0 (nothing written) when the PK is not built: its next read rebuilds it from
-- PostgreSQL, which already holds these values.
if redis.call('HEXISTS', KEYS[2], 'built') == 0 then
  return 0
end
local expire_at = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local i = 4
for _ = 1, n do
  redis.call('ZADD', KEYS[1], ARGV[i + 1], ARGV[i])
  redis.call('HSET', KEYS[2], 'r:' .. ARGV[i], ARGV[i + 2])
  i = i + 3
end
for k = 3, #KEYS do
  local count = tonumber(ARGV[i])
  i = i + 1
  for _ = 1, count do
    if ARGV[i + 1] == '' then
      redis.call('ZREM', KEYS[k], ARGV[i])
    else
      redis.call('ZADD', KEYS[k], ARGV[i + 1], ARGV[i])
    end
    i = i + 2
  end
  if expire_at > 0 then redis.call('EXPIREAT', KEYS[k], expire_at) end
end
redis.call('HSET', KEYS[2], 'upd', ARGV[1])
if expire_at > 0 then
  redis.call('EXPIREAT', KEYS[1], expire_at)
  redis.call('EXPIREAT', KEYS[2], expire_at)
end
return 1
