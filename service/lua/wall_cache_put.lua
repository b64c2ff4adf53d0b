-- Honour wall page cache, write: store a page only if no change happened since it was read
-- (an opt-out or a hidden entry bumps the generation), so a page built before the change is
-- never cached after it. KEYS[1]: the wall cache hash. ARGV[1]: the generation seen by the read,
-- ARGV[2]: page field, ARGV[3]: page bytes, ARGV[4]: TTL in seconds. Returns 1 if stored.
local g = redis.call('HGET', KEYS[1], 'gen') or '0'
if g ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], g .. '|' .. ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
return 1
