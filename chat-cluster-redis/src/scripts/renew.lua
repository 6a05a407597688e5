-- Renews a node's claim on its worker id.
-- KEYS[1] the claim. ARGV[1] its value (token|holder), ARGV[2] ttl (ms).
-- Returns {'held'}, {'reclaimed'} (it had vanished and is taken back) or
-- {'lost', value of the other holder}.
local value = redis.call('GET', KEYS[1])
if value == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {'held'}
end
if not value then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {'reclaimed'}
end
return {'lost', value}
