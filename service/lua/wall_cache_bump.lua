-- Honour wall page cache, invalidate: a new generation; pages of older ones are dropped.
-- KEYS[1]: the wall cache hash. ARGV[1]: TTL in seconds. Returns the new generation.
local g = redis.call('HINCRBY', KEYS[1], 'gen', 1)
local fields = redis.call('HKEYS', KEYS[1])
for _, f in ipairs(fields) do
  if f ~= 'gen' then
    redis.call('HDEL', KEYS[1], f)
  end
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
return g
