-- Sets a node's connections to a list: counts set, not added; users not
-- listed that the node held are counted out.
-- KEYS[1] node's set of users.
-- ARGV[1] key prefix, ARGV[2] node, ARGV[3] now, ARGV[4] n, then n pairs
-- user, count, then the users to count out.
-- Returns a flat list: 'on', user, 'off', user, ... for each user whose
-- presence changed (one script, so when nodes restore at once each change
-- is reported by exactly one of them).
local prefix = ARGV[1]
local node = ARGV[2]
local out = {}
local n = tonumber(ARGV[4])
local i = 5
for _ = 1, n do
  local user = ARGV[i]
  local key = prefix .. ':pu:' .. user
  local before = redis.call('HLEN', key)
  redis.call('HSET', key, node, ARGV[i + 1])
  redis.call('SADD', KEYS[1], user)
  if before == 0 then
    table.insert(out, 'on')
    table.insert(out, user)
  end
  i = i + 2
end
while i <= #ARGV do
  local user = ARGV[i]
  local key = prefix .. ':pu:' .. user
  redis.call('SREM', KEYS[1], user)
  if redis.call('HDEL', key, node) == 1 and redis.call('EXISTS', key) == 0 then
    redis.call('SET', prefix .. ':seen:' .. user, ARGV[3])
    table.insert(out, 'off')
    table.insert(out, user)
  end
  i = i + 1
end
return out
