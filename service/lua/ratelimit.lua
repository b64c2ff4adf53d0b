-- Sliding-window counter for one limit (the algorithm of the `limits` library), one key pair.
-- KEYS[1]: counter of the current window, KEYS[2]: counter of the previous window
--          (both carry the same hash tag, so this is Redis Cluster safe).
-- ARGV[1]: limit (requests per window), ARGV[2]: window length in milliseconds,
-- ARGV[3]: milliseconds already elapsed in the current window.
-- Returns {1, 0} when the request is allowed (and counted), {0, retry_after_ms} when not.
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local elapsed = tonumber(ARGV[3])
local previous = tonumber(redis.call('GET', KEYS[2]) or '0')
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local weighted = math.floor(previous * (window - elapsed) / window) + current
if weighted + 1 > limit then
  return {0, window - elapsed}
end
redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], window * 2)
return {1, 0}
