-- Give back the stock of a draw whose PostgreSQL transaction failed.
-- KEYS[1] stock hash of one wheel; ARGV[1] the _epoch the draw saw; ARGV[2] total field
-- (i:<prize>) or ''; ARGV[3] daily field (d:<day>:<prize>) or ''. Counts are whole prizes.
-- Only the load the draw decremented is corrected: after a reload from PostgreSQL the failed
-- draw is not counted anyway, and giving back twice would let Redis oversell (PostgreSQL
-- would still refuse, but the member would see a retry).
-- Returns 1 when given back, 0 when the hash was reloaded or lost since.
local epoch = redis.call('HGET', KEYS[1], '_epoch')
if epoch ~= ARGV[1] then
  return 0
end
for f = 2, 3 do
  local field = ARGV[f]
  if field ~= '' then
    local v = tonumber(redis.call('HGET', KEYS[1], field) or '0')
    if v > 0 then
      redis.call('HINCRBY', KEYS[1], field, -1)
    end
  end
end
return 1
