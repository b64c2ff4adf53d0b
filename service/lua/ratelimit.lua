-- Exact sliding-window limits (a sliding log) for one or more limits, checked and counted
-- atomically: either every limit admits the request and all record it, or none records it.
-- Promise: for each key, at most its limit admissions fall in ANY half-open interval
-- [t, t + window) of the caller's clock, wherever the interval starts.
-- Memory: each key is a sorted set of the admissions of the last window (score = admission
-- time in ms, member = a caller-unique id), so at most `limit` entries per key; refused
-- requests store nothing. A key expires one window (plus a second) after its last admission.
-- KEYS: one sorted set per limit. All keys of one call carry the same hash tag.
-- ARGV[1]: now in ms (the caller's injected clock), ARGV[2]: window length in ms,
-- ARGV[3]: an id unique to this request, ARGV[4..]: the limit of each key, in KEYS order.
-- Returns {0, 0} when admitted, {i, retry_after_ms} when limit i (1-based) refused it.
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local id = ARGV[3]
for i = 1, #KEYS do
  local limit = tonumber(ARGV[3 + i])
  -- Admissions at or before now - window are outside every window that holds now.
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  -- Admissions more than a window ahead can only come from a clock set back (dev clock).
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '(' .. (now + window), '+inf')
  local n = redis.call('ZCARD', KEYS[i])
  if n >= limit then
    -- One more fits once the (n - limit + 1)-th oldest admission has left the window.
    local edge = redis.call('ZRANGE', KEYS[i], n - limit, n - limit, 'WITHSCORES')
    return {i, tonumber(edge[2]) + window - now}
  end
end
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], now, id)
  redis.call('PEXPIRE', KEYS[i], window + 1000)
end
return {0, 0}
