-- One connection of a user on a node closed.
-- KEYS[1] user's hash node -> count, KEYS[2] node's set of users,
-- KEYS[3] user's last_seen.
-- ARGV[1] node, ARGV[2] user, ARGV[3] now.
-- Returns 1 when that was the user's last connection anywhere (went
-- offline; last_seen becomes now). A connection that is not counted (for
-- example one reaped with its node) changes nothing.
local count = tonumber(redis.call('HGET', KEYS[1], ARGV[1]))
if not count then
  return 0
end
if count <= 1 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('SREM', KEYS[2], ARGV[2])
else
  redis.call('HSET', KEYS[1], ARGV[1], count - 1)
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('SET', KEYS[3], ARGV[3])
  return 1
end
return 0
