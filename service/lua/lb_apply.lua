-- Board scores: set the members' encoded scores in period sorted sets sharing one hash tag.
-- Units: encoded is the order-preserving double of the 62-bit order key (see
-- leaderboards/rules.py), passed as its shortest round-trip string so it is never rounded;
-- expire_at in Unix seconds; now in ms. The totals come from PostgreSQL (the source of
-- truth), so replaying a batch sets the same values again: applying is idempotent.
-- A period set is "built" when it holds the marker member ARGV[2] (score -inf, so it ranks
-- below everyone and is never shown). A set without it was lost (Redis restarted empty,
-- evicted) or built by an older encoding: writing into it would make a board of only the
-- newest members, so it is skipped and the next read rebuilds it from PostgreSQL. A period
-- created in the same transaction (create = 1) has nothing to rebuild: it is marked here.
-- KEYS[1..n]: period sorted sets; KEYS[n+1]: hash of updated-at (ms) per period key.
-- ARGV: now_ms, marker, then per key: expire_at (0: never), create (0/1), count, then
--       count x (member, encoded); an empty encoded removes the member (score fell to <= 0).
-- Returns the 1-based indexes of the keys skipped as not built.
local n = #KEYS - 1
local meta = KEYS[n + 1]
local marker = ARGV[2]
local skipped = {}
local i = 3
for k = 1, n do
  local key = KEYS[k]
  local exp = tonumber(ARGV[i])
  local create = ARGV[i + 1] == '1'
  local c = tonumber(ARGV[i + 2])
  i = i + 3
  local built = redis.call('ZSCORE', key, marker)
  if not built and create then
    redis.call('DEL', key)
    redis.call('ZADD', key, '-inf', marker)
    built = true
  end
  if built then
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
  else
    i = i + 2 * c
    skipped[#skipped + 1] = k
  end
end
return skipped
