-- The nodes whose registration has not expired at now, and forgetting of
-- registrations that expired long ago.
-- KEYS[1] sorted set node -> expiry, KEYS[2] hash node -> url,
-- KEYS[3] hash node -> load.
-- ARGV[1] now, ARGV[2] forget registrations that expired before this.
-- Returns a flat list: id, url, load, id, url, load, ...
local stale = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2])
for _, id in ipairs(stale) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id)
end
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '+inf')) do
  local url = redis.call('HGET', KEYS[2], id)
  local load = redis.call('HGET', KEYS[3], id)
  if url and load then
    table.insert(out, id)
    table.insert(out, url)
    table.insert(out, load)
  end
end
return out
