#!lua flags=allow-oom
-- Herald: answer a HistoryQuery of one channel. Layout and reasons: LAYOUT.md.
-- allow-oom: history must still be served while Redis is full; the only
-- writes are a missing channel's small meta and its expiry.
--
-- KEYS: 1 meta, 2 stream, 3 keys, 4 keyq (as publish.lua)
-- ARGV: 1 epoch candidate, 2 now_ms, 3 limit, 4 before ("" none),
--       5 after ("" none), 6 max_events, 7 max_age_ms, 8 idle ttl ms
-- Returns {epoch, last_offset, first_offset, created_ms, events}, events
-- oldest first, each {offset, ts_ms, event, data, from_client, from_user,
-- from_info}.
local meta, stream = KEYS[1], KEYS[2]
local now, limit = tonumber(ARGV[2]), tonumber(ARGV[3])
local before, after = tonumber(ARGV[4]), tonumber(ARGV[5]) -- nil for ""
local max_events, max_age = tonumber(ARGV[6]), tonumber(ARGV[7])
local idle_ttl = tonumber(ARGV[8])
local function int(n) return string.format('%d', n) end
local function offset_of(id) return tonumber(string.match(id, '^(%d+)')) end

local m = redis.call('HMGET', meta, 'epoch', 'last', 'created')
if not m[1] then
  -- Like the sqlite engine: a channel never published to reads as an epoch
  -- with offset 0, and that epoch is stored so that the first publish keeps
  -- it and a client that subscribed before it can recover.
  redis.call('DEL', stream, KEYS[3], KEYS[4]) -- leftovers of a lost epoch
  redis.call('HSET', meta, 'epoch', ARGV[1], 'last', '0', 'created', '0')
  if idle_ttl > 0 then redis.call('PEXPIRE', meta, idle_ttl) end
  return {ARGV[1], 0, 0, 0, {}}
end
-- Being read keeps the epoch alive (GT: never shortens, never sets a TTL on
-- a meta that has none).
if idle_ttl > 0 then redis.call('PEXPIRE', meta, idle_ttl, 'GT') end
local epoch, last, created = m[1], tonumber(m[2]), tonumber(m[3])

-- The events held are contiguous, [first, last]: from the newest max_events,
-- drop from the oldest end those older than max_age, up to the first young
-- one (publish.lua trims the same way, in steps, so few are ever skipped).
local first = 0
if max_events > 0 and last > 0 then
  local from = int(math.max(1, last - max_events + 1))
  local cutoff = max_age > 0 and now - max_age or nil
  while first == 0 do
    local batch = redis.call('XRANGE', stream, from, '+', 'COUNT', cutoff and 32 or 1)
    if #batch == 0 then break end
    for _, e in ipairs(batch) do
      if not cutoff or tonumber(e[2][2]) >= cutoff then first = offset_of(e[1]); break end
    end
    from = '(' .. batch[#batch][1]
  end
end

local events = {}
if first > 0 and limit > 0 then
  local lo, hi = first, last
  if after then lo = math.max(lo, after + 1) end
  if before then hi = math.min(hi, before - 1) end
  if lo <= hi then
    local count = int(math.min(limit, hi - lo + 1))
    local entries
    if after then
      entries = redis.call('XRANGE', stream, int(lo), int(hi), 'COUNT', count)
    else
      -- without `after`: the newest `limit` in range, returned oldest first
      local rev = redis.call('XREVRANGE', stream, int(hi), int(lo), 'COUNT', count)
      entries = {}
      for i = #rev, 1, -1 do entries[#entries + 1] = rev[i] end
    end
    for _, e in ipairs(entries) do
      local f = e[2] -- fields in the order publish.lua writes them: t e d c u i
      events[#events + 1] = {offset_of(e[1]), tonumber(f[2]), f[4], f[6], f[8], f[10], f[12]}
    end
  end
end
return {epoch, last, first, created, events}
