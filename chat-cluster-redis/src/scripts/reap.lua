-- Forgets the connections of nodes whose heartbeat expired before now.
-- KEYS[1] sorted set node -> expiry, KEYS[2] hash node -> last beat.
-- ARGV[1] now, ARGV[2] key prefix.
-- Returns a flat list: user, last_seen, user, last_seen, ... of the users
-- that went offline because of it. One script, so two nodes reaping at
-- once report each user once: the second finds nothing expired.
--
-- It builds per-node and per-user keys from the prefix, which a single
-- Redis (or one Redis Cluster slot per deployment) allows; see docs/cluster.md.
local prefix = ARGV[2]
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
local last = {}
local order = {}
for _, node in ipairs(expired) do
  local at = redis.call('HGET', KEYS[2], node) or ARGV[1]
  redis.call('ZREM', KEYS[1], node)
  redis.call('HDEL', KEYS[2], node)
  local node_users = prefix .. ':pn:' .. node
  for _, user in ipairs(redis.call('SMEMBERS', node_users)) do
    redis.call('HDEL', prefix .. ':pu:' .. user, node)
    -- Keep the text of the latest beat: Lua numbers print millis badly.
    if last[user] == nil then
      table.insert(order, user)
      last[user] = at
    elseif tonumber(at) > tonumber(last[user]) then
      last[user] = at
    end
  end
  redis.call('DEL', node_users)
end
local gone = {}
for _, user in ipairs(order) do
  if redis.call('EXISTS', prefix .. ':pu:' .. user) == 0 then
    redis.call('SET', prefix .. ':seen:' .. user, last[user])
    table.insert(gone, user)
    table.insert(gone, last[user])
  end
end
return gone
