--#fold ratelimit (service/core/redis.py: rate= counts the request's limits first)
-- Mark one day on a member's check-in calendar, if the calendar is in Redis.
-- KEYS[1] calendar bitmap (all checked days), KEYS[2] make-up bitmap (days made up);
-- both share the tenant hash tag.
-- ARGV[1] bit offset = days since the campaign epoch; ARGV[2] "1" when the day was a make-up.
-- Returns 1 when marked, 0 when the calendar is absent (the caller seeds it from
-- PostgreSQL instead: marking an absent key would make a calendar that lacks older days).
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('SETBIT', KEYS[1], ARGV[1], 1)
if ARGV[2] == '1' then
  redis.call('SETBIT', KEYS[2], ARGV[1], 1)
end
return 1
