-- Take back the bits a check-in or make-up set before its statement, when the statement did
-- not commit (service/checkins/service.py: the calendar is marked with the request's folded
-- rate limit, before PostgreSQL decides).
-- KEYS[1] calendar bitmap, KEYS[2] make-up bitmap (same tenant hash tag).
-- ARGV[1] bit offset; ARGV[2] what the mark set: 1 the calendar bit, 2 the make-up bit, 3 both.
-- Only bits of an existing calendar are cleared (a calendar dropped meanwhile is seeded from
-- PostgreSQL when next used). Returns 1.
local what = tonumber(ARGV[2])
if what % 2 == 1 and redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('SETBIT', KEYS[1], ARGV[1], 0)
end
if what >= 2 and redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('SETBIT', KEYS[2], ARGV[1], 0)
end
return 1
