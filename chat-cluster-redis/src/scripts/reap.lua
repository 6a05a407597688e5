-- Forgets up to ARGV[3] connections of the nodes whose heartbeat expired
-- before now, one chunk per call, so that reaping a dead node that held
-- 100,000 users never blocks Redis for long: the caller calls again while
-- the first element of the answer is 1.
-- KEYS[1] sorted set node -> expiry, KEYS[2] hash node -> last beat.
-- ARGV[1] now, ARGV[2] key prefix, ARGV[3] users per call.
-- Returns a flat list: more (1 or 0), then user, last_seen, user,
-- last_seen, ... of the users that went offline because of this call. A
-- dead node stays in KEYS[1] (and its beat in KEYS[2]) until its set of
-- users is empty; users are taken off that set with SPOP, so two nodes
-- reaping at once take different users and report each user once.
--
-- It builds per-node and per-user keys from the prefix, which a single
-- Redis (or one Redis Cluster slot per deployment) allows; see docs/cluster.md.
local prefix = ARGV[2]
local budget = tonumber(ARGV[3])
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
local gone = {'0'}
for _, node in ipairs(expired) do
  if budget <= 0 then
    gone[1] = '1'
    break
  end
  local at = redis.call('HGET', KEYS[2], node) or ARGV[1]
  local node_users = prefix .. ':pn:' .. node
  local users = redis.call('SPOP', node_users, budget)
  budget = budget - #users
  for _, user in ipairs(users) do
    local key = prefix .. ':pu:' .. user
    redis.call('HDEL', key, node)
    if redis.call('EXISTS', key) == 0 then
      -- Keep the text of the beat: Lua numbers print millis badly.
      redis.call('SET', prefix .. ':seen:' .. user, at)
      table.insert(gone, user)
      table.insert(gone, at)
    end
  end
  if redis.call('SCARD', node_users) == 0 then
    redis.call('ZREM', KEYS[1], node)
    redis.call('HDEL', KEYS[2], node)
  else
    gone[1] = '1'
  end
end
return gone
