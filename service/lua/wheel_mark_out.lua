-- PostgreSQL refused a win (its stock guard): raise Redis's count to the limit so later draws
-- see the prize as gone. KEYS[1] stock hash; ARGV[1] field; ARGV[2] limit (whole prizes).
-- Never lowers a count. Returns the count now stored, or -1 when the hash is not loaded.
if not redis.call('HGET', KEYS[1], '_epoch') then
  return -1
end
local v = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local limit = tonumber(ARGV[2])
if v < limit then
  redis.call('HSET', KEYS[1], ARGV[1], limit)
  v = limit
end
return v
