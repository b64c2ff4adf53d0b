-- Board scores: set the members' encoded scores in period sorted sets sharing one hash tag.
-- Units: encoded = score * 2^22 + (2^22 - 1 - tick) (see leaderboards/rules.py), an integer
-- below 2^53 passed as a string so it is never rounded; expire_at in Unix seconds; now in ms.
-- The totals come from PostgreSQL (the source of truth), so replaying a batch sets the same
-- values again: applying is idempotent.
-- KEYS[1..n]: period sorted sets; KEYS[n+1]: hash of updated-at (ms) per period key.
-- ARGV: now_ms, then per key: expire_at (0: never), count, then count x (member, encoded);
--       an empty encoded removes the member (score fell to zero or below).
local n = #KEYS - 1
local meta = KEYS[n + 1]
local i = 2
for k = 1, n do
  local key = KEYS[k]
  local exp = tonumber(ARGV[i])
  local c = tonumber(ARGV[i + 1])
  i = i + 2
  for _ = 1, c do
    local m, s = ARGV[i], ARGV[i + 1]
    i = i + 2
    if s == '' then
      redis.call('ZREM', key, m)
    else
      redis.call('ZADD', key, s, m)
    end
  end
  if exp > 0 then
    redis.call('EXPIREAT', key, exp)
  end
  redis.call('HSET', meta, key, ARGV[1])
end
return n
