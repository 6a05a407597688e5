-- Claims a worker id for a node.
-- KEYS[1] the marker (epoch), KEYS[2] the settling flag.
-- ARGV[1] key prefix, ARGV[2] wanted id or -1 for any, ARGV[3] the claim's
-- value (token|holder), ARGV[4] ttl (ms), ARGV[5] the id to try first,
-- ARGV[6] how many ids there are, ARGV[7] settle time (ms), ARGV[8] '1'
-- when nodes may be running on this Redis, ARGV[9] now.
-- Returns {'ok', id}, {'taken', holder value, pttl}, {'wait', ms} or {'full'}.
--
-- A missing marker means a fresh deployment or one whose Redis lost its
-- data. In the second case running nodes are about to claim their ids
-- again, so nobody may claim before they had the time: the deployment
-- settles (and claims wait) when there is a sign of running nodes.
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('SET', KEYS[1], ARGV[9])
  if ARGV[8] == '1' then
    redis.call('SET', KEYS[2], '1', 'PX', ARGV[7])
  end
end
local settling = redis.call('PTTL', KEYS[2])
if settling > 0 then
  return {'wait', settling}
end
local function try(id)
  return redis.call('SET', ARGV[1] .. ':claim:' .. id, ARGV[3], 'NX', 'PX', ARGV[4])
end
local wanted = tonumber(ARGV[2])
if wanted >= 0 then
  if try(wanted) then
    return {'ok', wanted}
  end
  local key = ARGV[1] .. ':claim:' .. wanted
  return {'taken', redis.call('GET', key) or '', redis.call('PTTL', key)}
end
local ids = tonumber(ARGV[6])
local first = tonumber(ARGV[5])
for k = 0, ids - 1 do
  local id = (first + k) % ids
  if try(id) then
    return {'ok', id}
  end
end
return {'full'}
