-- Honour wall page cache, read: the cache generation and the page cached under it.
-- KEYS[1]: the tenant's wall cache hash. ARGV[1]: page field (kind|cursor|limit|lang).
-- Returns {generation, page or false}. Generation 0 when the hash does not exist.
local g = redis.call('HGET', KEYS[1], 'gen') or '0'
return {g, redis.call('HGET', KEYS[1], g .. '|' .. ARGV[1])}
