-- One more connection of a user on a node.
-- KEYS[1] user's hash node -> count, KEYS[2] node's set of users.
-- ARGV[1] node, ARGV[2] user.
-- Returns 1 when the user had no connection anywhere before (went online).
local before = redis.call('HLEN', KEYS[1])
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('SADD', KEYS[2], ARGV[2])
if before == 0 then
  return 1
end
return 0
