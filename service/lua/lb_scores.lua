-- Encoded scores of some members (false when absent), in one round trip.
-- KEYS[1]: period sorted set. ARGV[1]: the built marker (see lb_apply.lua); ARGV[2..]: members.
-- Reply: -1 when the set is not built (the caller rebuilds it), else the scores in order.
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return -1
end
local out = {}
for j = 2, #ARGV do
  out[j - 1] = redis.call('ZSCORE', KEYS[1], ARGV[j]) or false
end
return out
