-- Gives a worker id up, if the claim is still this node's.
-- KEYS[1] the claim. ARGV[1] its value (token|holder).
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
