#!lua
-- Herald: store one event of a channel (or answer a replayed/conflicting
-- idempotency key), then PUBLISH it. Layout, encoding and reasons: LAYOUT.md.
-- The shebang makes Redis 7 refuse the whole script up front when it is out
-- of memory (rather than fail half-way) and forbid keys of another slot.
--
-- KEYS: 1 meta, 2 stream, 3 keys, 4 keyq (all of one channel's hash tag)
-- ARGV: 1 epoch candidate, 2 ts_ms, 3 event, 4 data, 5 from_client,
--       6 from_user, 7 from_info, 8 max_events, 9 max_age_ms, 10 key hash
--       ("" none), 11 fingerprint, 12 key window ms, 13 max keys,
--       14 pub/sub channel ("" none), 15 "PUBLISH" | "SPUBLISH",
--       16 idle ttl ms (0: keys never expire), 17 origin (the publishing
--       node's id, first field of the payload)
-- Returns {status, offset, epoch, created_ms}, status ok|replayed|conflict.
local meta, stream, keys, keyq = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local ts = tonumber(ARGV[2])
local max_events, max_age = tonumber(ARGV[8]), tonumber(ARGV[9])
local key, fp = ARGV[10], ARGV[11]
local window, max_keys = tonumber(ARGV[12]), tonumber(ARGV[13])
local idle_ttl = tonumber(ARGV[16])
-- A window of 0 would expire the key at its own ts: nothing to remember.
local keyed = key ~= '' and max_keys > 0 and window > 0
local function int(n) return string.format('%d', n) end -- never "1e+15"
-- Checked before any write: a script that fails half-way is not undone.
local cmd = ARGV[15]
if ARGV[14] ~= '' and cmd ~= 'PUBLISH' and cmd ~= 'SPUBLISH' then
  return redis.error_reply('herald: publish command must be PUBLISH or SPUBLISH')
end
-- Redis Cluster checks a shard channel's slot only when SPUBLISH runs, after
-- the event is stored: refuse a channel of another hash tag up front.
local function hash_tag(s)
  local a = string.find(s, '{', 1, true)
  local b = a and string.find(s, '}', a + 1, true)
  if b and b > a + 1 then return string.sub(s, a + 1, b - 1) end
  return s
end
if cmd == 'SPUBLISH' and ARGV[14] ~= '' and hash_tag(ARGV[14]) ~= hash_tag(meta) then
  return redis.error_reply('herald: SPUBLISH channel must carry the hash tag of the keys')
end

local m = redis.call('HMGET', meta, 'epoch', 'last', 'created')
local epoch, last, created = m[1], tonumber(m[2]), tonumber(m[3])
if not epoch then
  -- A new channel, or one whose meta was lost (expired, flushed): whatever
  -- else survived belongs to an epoch nobody can name any more.
  redis.call('DEL', stream, keys, keyq)
  epoch, last, created = ARGV[1], 0, 0
end

-- Same rule as KeyIndex: known until ts + window, and only while its event
-- is one of the last max_keys (checked here, so pruning below may lag).
if keyed then
  local rec = redis.call('HGET', keys, key)
  if rec then
    local off, rfp, exp = string.match(rec, '^(%d+):(%d+):(%d+)$')
    off, exp = tonumber(off), tonumber(exp)
    if exp > ts and off > last - max_keys then
      return {rfp == fp and 'replayed' or 'conflict', off, epoch, created}
    end
  end
end

local offset = last + 1
local id = int(offset) .. '-0'
if max_events > 0 then
  -- First, as the only command that can fail on bad state (an id not above
  -- the stream's top): nothing is written yet then. MAXLEN ~ frees whole
  -- nodes only; read.lua never looks below last - max_events + 1.
  redis.call('XADD', stream, 'MAXLEN', '~', ARGV[8], id,
             't', ARGV[2], 'e', ARGV[3], 'd', ARGV[4],
             'c', ARGV[5], 'u', ARGV[6], 'i', ARGV[7])
  if max_age > 0 then
    -- Ids carry offsets, not time, so age is trimmed by looking at the
    -- oldest entries' ts, from the oldest end up to the first one still
    -- young (as the memory engine does). Usually the oldest is young: one
    -- entry read (reading 16 every time was over half of the script's cost);
    -- else at most 16 per publish.
    local cutoff = ts - max_age
    local head = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)
    if tonumber(head[1][2][2]) < cutoff then
      head = redis.call('XRANGE', stream, '-', '+', 'COUNT', 16)
      local keep = nil
      for _, e in ipairs(head) do
        if tonumber(e[2][2]) >= cutoff then keep = e[1]; break end
      end
      if not keep then keep = int(tonumber(string.match(head[#head][1], '^(%d+)')) + 1) end
      redis.call('XTRIM', stream, 'MINID', keep)
    end
  end
else
  redis.call('DEL', stream) -- history of 0 events (retention lowered)
end

if offset == 1 then created = ts end
redis.call('HSET', meta, 'epoch', epoch, 'last', int(offset), 'created', int(created))

if keyed then
  local exp = ts + window
  redis.call('HSET', keys, key, int(offset) .. ':' .. fp .. ':' .. int(exp))
  redis.call('RPUSH', keyq, int(offset) .. ':' .. int(exp) .. ':' .. key)
  -- Forget keys expired or max_keys behind, oldest first, at most 16 per
  -- keyed publish (one is added): constant cost, memory bounded. A queue
  -- item whose key was since stored again (after expiring) leaves the new
  -- record alone.
  local keep_from = offset - max_keys + 1
  local q = redis.call('LRANGE', keyq, 0, 15)
  local n = 0
  for _, item in ipairs(q) do
    local o, e, k = string.match(item, '^(%d+):(%d+):(.*)$')
    o, e = tonumber(o), tonumber(e)
    if e > ts and o >= keep_from then break end
    local cur = redis.call('HGET', keys, k)
    if cur and tonumber(string.match(cur, '^(%d+)')) == o then redis.call('HDEL', keys, k) end
    n = n + 1
  end
  if n > 0 then redis.call('LTRIM', keyq, n, -1) end
  -- Every record expires by ts + window at the latest.
  redis.call('PEXPIRE', keys, window)
  redis.call('PEXPIRE', keyq, window)
end

-- Meta outlives everything else of the channel (an epoch must not be
-- forgotten while keys or events of it are held); the stream may go as soon
-- as its newest event is older than max_age.
if idle_ttl > 0 then
  local ttl = math.max(idle_ttl, max_age, window)
  redis.call('PEXPIRE', meta, ttl)
  if max_events > 0 then redis.call('PEXPIRE', stream, max_age > 0 and max_age or ttl) end
else
  redis.call('PERSIST', meta)
  if max_events > 0 then
    if max_age > 0 then redis.call('PEXPIRE', stream, max_age) else redis.call('PERSIST', stream) end
  end
end

if ARGV[14] ~= '' then
  -- "H2" then 9 netstrings (<len>:<bytes>,): origin, offset, ts_ms, epoch,
  -- event, data, from_client, from_user, from_info. Binary-safe, no JSON in
  -- Lua. The origin lets the publishing node recognise its own echo.
  local function ns(s) return #s .. ':' .. s .. ',' end
  redis.call(cmd, ARGV[14], 'H2' .. ns(ARGV[17]) .. ns(int(offset)) .. ns(ARGV[2]) ..
             ns(epoch) .. ns(ARGV[3]) .. ns(ARGV[4]) .. ns(ARGV[5]) .. ns(ARGV[6]) ..
             ns(ARGV[7]))
end

return {'ok', offset, epoch, created}
