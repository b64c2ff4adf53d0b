-- Sliding-window counters (the algorithm of the `limits` library) for one or more limits,
-- checked and counted atomically: either every limit admits the request and all count it,
-- or none counts it.
-- KEYS: per limit, the counter of the current window then of the previous window. All keys
--       of one call carry the same hash tag (Redis Cluster safe).
-- ARGV[1]: window length in ms, ARGV[2]: ms elapsed in the current window,
-- ARGV[3..]: the per-window limit of each key pair, in KEYS order.
-- Returns {0, 0} when allowed, {i, retry_after_ms} when limit i (1-based) refused it.
local window = tonumber(ARGV[1])
local elapsed = tonumber(ARGV[2])
local n = #KEYS / 2
for i = 1, n do
  local limit = tonumber(ARGV[2 + i])
  local current = tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0')
  local previous = tonumber(redis.call('GET', KEYS[2 * i]) or '0')
  if math.floor(previous * (window - elapsed) / window) + current + 1 > limit then
    return {i, window - elapsed}
  end
end
for i = 1, n do
  redis.call('INCR', KEYS[2 * i - 1])
  redis.call('PEXPIRE', KEYS[2 * i - 1], window * 2)
end
return {0, 0}
