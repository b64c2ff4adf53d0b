-- Mark a period set built when PostgreSQL holds no scores for it (no period row yet): if the
-- marker is missing, drop whatever is there and add the marker. A subscriber that created the
-- period meanwhile marked it itself, so nothing it wrote is dropped.
-- KEYS[1]: period sorted set. ARGV[1]: the built marker; ARGV[2]: expire_at (0: never).
-- Returns 1 when it marked the set.
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('ZADD', KEYS[1], '-inf', ARGV[1])
if tonumber(ARGV[2]) > 0 then
  redis.call('EXPIREAT', KEYS[1], ARGV[2])
end
return 1
