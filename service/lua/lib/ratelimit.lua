-- Exact sliding-window limits (a sliding log), as a function other scripts compose in
-- (service/core/redis.py: a script whose first line is `--#fold ratelimit` runs this check
-- first, and its own body only when every limit admits the request).
-- Promise: for each key, at most its limit admissions fall in ANY half-open interval
-- [t, t + window) of the caller's clock, wherever the interval starts.
-- Memory: each key is a sorted set of the admissions of the last window (score = admission
-- time in ms, member = a caller-unique id), so at most `limit` entries per key; refused
-- requests store nothing. A key expires one window (plus a second) after its last admission.
-- engage_rate_limit(keys, argv, k0, a0, n): the n sorted sets are keys[k0 + 1 .. k0 + n];
-- argv[a0 + 1]: now in ms (the caller's injected clock), argv[a0 + 2]: window length in ms,
-- argv[a0 + 3]: an id unique to this request, argv[a0 + 3 + i]: the limit of set i.
-- Returns nil when admitted (and recorded in every set), {i, retry_after_ms} when limit i
-- (1-based) refused it (nothing recorded).
local function engage_rate_limit(keys, argv, k0, a0, n)
  local now = tonumber(argv[a0 + 1])
  local window = tonumber(argv[a0 + 2])
  local id = argv[a0 + 3]
  for i = 1, n do
    local key = keys[k0 + i]
    local limit = tonumber(argv[a0 + 3 + i])
    -- Admissions at or before now - window are outside every window that holds now.
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
    -- Admissions more than a window ahead can only come from a clock set back (dev clock).
    redis.call('ZREMRANGEBYSCORE', key, '(' .. (now + window), '+inf')
    local count = redis.call('ZCARD', key)
    if count >= limit then
      -- One more fits once the (count - limit + 1)-th oldest admission has left the window.
      local edge = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
      return {i, tonumber(edge[2]) + window - now}
    end
  end
  for i = 1, n do
    redis.call('ZADD', keys[k0 + i], now, id)
    redis.call('PEXPIRE', keys[k0 + i], window + 1000)
  end
  return nil
end
