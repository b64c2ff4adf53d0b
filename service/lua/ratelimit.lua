-- The member and IP limits on their own (one call), for requests whose work has no Redis
-- script to fold them into. The algorithm: lib/ratelimit.lua.
-- KEYS: one sorted set per limit. All keys of one call carry the same hash tag.
-- ARGV[1]: now in ms (the caller's injected clock), ARGV[2]: window length in ms,
-- ARGV[3]: an id unique to this request, ARGV[4..]: the limit of each key, in KEYS order.
-- Returns {0, 0} when admitted, {i, retry_after_ms} when limit i (1-based) refused it.
--#include lib/ratelimit.lua
local refused = engage_rate_limit(KEYS, ARGV, 0, 0, #KEYS)
if refused then
  return refused
end
return {0, 0}
