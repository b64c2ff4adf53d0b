--#fold ratelimit (service/core/redis.py: rate= counts the request's limits first)
-- Draw one prize and take its stock, atomically (service/wheel/rules.py:draw is the reference).
-- KEYS[1]  stock hash of one wheel: _epoch (set by a load), i:<prize> wins so far,
--          d:<day>:<prize> wins on that campaign-local day. Counts are whole prizes.
-- ARGV[1]  day (YYYY-MM-DD), ARGV[2] rule ("redraw" | "consolation"),
-- ARGV[3]  consolation prize position (1-based), ARGV[4] 1 when the pity rule is due,
-- ARGV[5]  number of words W, ARGV[6..5+W] random words (< 2^52, exact in Lua doubles),
-- then     the number of prizes N, then per prize: key, weight, total (-1 unlimited),
--          daily (-1 none), pity (0/1), blocked (0/1: the member's cap or PostgreSQL said no).
-- Returns  {"NOT_LOADED"} when the hash was lost (the caller loads it from PostgreSQL),
--          {"EXHAUSTED"} when every word was rejected (the caller sends the next block),
--          {"OK", prize, word index (0-based, -1 none), value, weight total, epoch,
--           fallback, forced, remaining per prize (-1 unlimited)...}.
local stock = KEYS[1]
local epoch = redis.call('HGET', stock, '_epoch')
if not epoch then
  return {'NOT_LOADED'}
end
local day = ARGV[1]
local rule = ARGV[2]
local consolation = tonumber(ARGV[3])
local pity_due = ARGV[4] == '1'
local nwords = tonumber(ARGV[5])
local words = {}
for j = 1, nwords do
  words[j] = tonumber(ARGV[5 + j])
end
local base = 6 + nwords
local n = tonumber(ARGV[base])
local keys, weights, totals, dailies, pity, available, remaining = {}, {}, {}, {}, {}, {}, {}
for i = 1, n do
  local o = base + (i - 1) * 6
  keys[i] = ARGV[o + 1]
  weights[i] = tonumber(ARGV[o + 2])
  totals[i] = tonumber(ARGV[o + 3])
  dailies[i] = tonumber(ARGV[o + 4])
  pity[i] = ARGV[o + 5] == '1'
  local ok = ARGV[o + 6] ~= '1'
  local left = -1
  if totals[i] >= 0 then
    left = totals[i] - tonumber(redis.call('HGET', stock, 'i:' .. keys[i]) or '0')
  end
  if dailies[i] >= 0 then
    local dleft = dailies[i] - tonumber(redis.call('HGET', stock, 'd:' .. day .. ':' .. keys[i]) or '0')
    if totals[i] < 0 or dleft < left then left = dleft end
  end
  if totals[i] >= 0 or dailies[i] >= 0 then
    if left <= 0 then
      ok = false
      left = 0
    end
  end
  available[i] = ok
  remaining[i] = left
end

local candidates = {}
local forced = false
if pity_due then
  for i = 1, n do
    if pity[i] and available[i] and weights[i] > 0 then
      candidates[#candidates + 1] = i
    end
  end
  forced = #candidates > 0
end
if not forced then
  candidates = {}
  for i = 1, n do
    if weights[i] > 0 and (rule ~= 'redraw' or available[i]) then
      candidates[#candidates + 1] = i
    end
  end
end

local chosen, word_index, value, total, fallback = consolation, -1, -1, 0, 0
if #candidates == 0 then
  fallback = 1
else
  for _, i in ipairs(candidates) do
    total = total + weights[i]
  end
  -- Rejection sampling: only words below the largest multiple of total are used (no bias).
  local limit = math.floor(4503599627370496 / total) * total
  local picked = nil
  for j = 1, nwords do
    if words[j] < limit then
      value = math.fmod(words[j], total)
      word_index = j - 1
      local acc = 0
      for _, i in ipairs(candidates) do
        acc = acc + weights[i]
        if value < acc then
          picked = i
          break
        end
      end
      break
    end
  end
  if not picked then
    return {'EXHAUSTED'}
  end
  chosen = picked
  if not available[chosen] then
    chosen = consolation
    fallback = 1
  end
end

if totals[chosen] >= 0 then
  redis.call('HINCRBY', stock, 'i:' .. keys[chosen], 1)
end
if dailies[chosen] >= 0 then
  redis.call('HINCRBY', stock, 'd:' .. day .. ':' .. keys[chosen], 1)
end
local out = {'OK', chosen, word_index, value, total, epoch, fallback, forced and 1 or 0}
for i = 1, n do
  out[#out + 1] = remaining[i]
end
return out
