--#fold ratelimit (service/core/redis.py: rate= counts the request's limits first)
-- Merge calendars read from PostgreSQL into Redis: byte-wise OR with what is there.
-- KEYS[1] calendar bitmap, KEYS[2] make-up bitmap (same tenant hash tag).
-- ARGV[1] calendar bytes, ARGV[2] make-up bytes (Redis bit order, offset = days since epoch).
-- Days are only ever added, never removed, so the union of a snapshot and what concurrent
-- check-ins marked meanwhile is exact; a plain SET could erase a day marked a moment ago.
-- Returns the calendar's length in bytes.
local function merge(key, add)
  local cur = redis.call('GET', KEYS[key]) or ''
  local n = math.max(#cur, #add)
  local out = {}
  for i = 1, n do
    local a = string.byte(cur, i) or 0
    local b = string.byte(add, i) or 0
    out[i] = string.char(bit.bor(a, b))
  end
  redis.call('SET', KEYS[key], table.concat(out))
  return n
end
local n = merge(1, ARGV[1])
merge(2, ARGV[2])
return n
