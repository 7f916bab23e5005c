#!lua flags=allow-oom
-- Herald: delete a channel's events and idempotency keys and start a new
-- epoch, offsets again from 1. LAYOUT.md. allow-oom: it only frees memory.
--
-- KEYS: 1 meta, 2 stream, 3 keys, 4 keyq (as publish.lua), 5 (optional) the
-- presence hash: every node's members go with the channel's old life.
-- ARGV: 1 new epoch (random, from the engine), 2 idle ttl ms (0: never expire)
-- Returns {'ok', epoch}, or {'same_epoch', epoch} when the candidate is the
-- current epoch (nothing changed: the engine draws another and calls again).
local meta = KEYS[1]
local idle_ttl = tonumber(ARGV[2])
if redis.call('HGET', meta, 'epoch') == ARGV[1] then return {'same_epoch', ARGV[1]} end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
if KEYS[5] then redis.call('DEL', KEYS[5]) end
-- meta stays, with the new epoch, so that a read sees it and the next
-- publish gets offset 1 in it.
redis.call('HSET', meta, 'epoch', ARGV[1], 'last', '0', 'created', '0')
if idle_ttl > 0 then redis.call('PEXPIRE', meta, idle_ttl) else redis.call('PERSIST', meta) end
return {'ok', ARGV[1]}
