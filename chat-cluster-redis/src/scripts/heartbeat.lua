-- A node's presence heartbeat, and the marker that this Redis still holds
-- the deployment's presence.
-- KEYS[1] sorted set node -> expiry, KEYS[2] hash node -> last beat,
-- KEYS[3] the marker (epoch), KEYS[4] the settling flag.
-- ARGV[1] node, ARGV[2] now, ARGV[3] expiry, ARGV[4] settle time (ms).
-- When the marker is missing, Redis lost its data (a restart without
-- persistence, FLUSHALL): the marker comes back and presence settles (its
-- offline answers are unsure) while the nodes re-register. Returns 1 then.
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
if redis.call('SET', KEYS[3], ARGV[2], 'NX') then
  redis.call('SET', KEYS[4], '1', 'PX', ARGV[4])
  return 1
end
return 0
