--#fold ratelimit (service/core/redis.py: rate= counts the request's limits first)
-- Mark one day on a member's check-in calendar, if the calendar is in Redis.
-- KEYS[1] calendar bitmap (all checked days), KEYS[2] make-up bitmap (days made up);
-- both share the tenant hash tag.
-- ARGV[1] bit offset = days since the campaign epoch; ARGV[2] "1" when the day was a make-up.
-- Returns 1 when marked, 0 when the calendar is absent (the caller seeds it from
-- PostgreSQL instead: marking an absent key would make a calendar that lacks older days).
--
-- ARGV[3] = "1": the mark of a check-in or make-up BEFORE its statement runs
-- (service/checkins/service.py), answering the bits this call turned on (1 the calendar's,
-- 2 the make-up's; 0 when they were on already) so that only those are taken back if the
-- statement does not commit (checkin_unmark.lua). A calendar is complete when BOTH keys
-- exist (checkin_seed.lua always writes both); when one is missing the day is still set on the
-- calendar key (never on the make-up key), so the calendar stays incomplete and the read path
-- merges it with PostgreSQL (store.read answers None): a check-in that committed while a read
-- was seeding is never lost, and no call is needed after the commit.
if ARGV[3] == '1' then
  if redis.call('EXISTS', KEYS[1]) == 0 then
    -- A make-up bitmap without its calendar is no calendar (it would look complete after
    -- the SETBIT below): drop it, the read path seeds both.
    redis.call('DEL', KEYS[2])
  end
  local turned = 0
  if redis.call('SETBIT', KEYS[1], ARGV[1], 1) == 0 then
    turned = 1
  end
  if ARGV[2] == '1' and redis.call('EXISTS', KEYS[2]) == 1 then
    if redis.call('SETBIT', KEYS[2], ARGV[1], 1) == 0 then
      turned = turned + 2
    end
  end
  return turned
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('SETBIT', KEYS[1], ARGV[1], 1)
if ARGV[2] == '1' then
  redis.call('SETBIT', KEYS[2], ARGV[1], 1)
end
return 1
