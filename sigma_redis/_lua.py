"""The Lua scripts the Redis engine runs (loaded once with SCRIPT LOAD, called by SHA).

Keys of one topic share the hash tag ``{topic}`` so that every script touches one Redis Cluster
slot. Per topic:

* ``<prefix>:{<topic>}:m`` — the meta hash: ``v`` (format, ``1``), ``e`` (epoch, decimal 64-bit),
  ``o`` (last offset), ``f`` (fence: the Redis ``master_replid`` the epoch was written under),
  ``b`` (bytes of envelopes held in the stream);
* ``<prefix>:{<topic>}:s`` — the stream: entry id ``<offset>-0``, fields ``d`` (envelope),
  ``t`` (wall-clock ms), ``r`` (route, empty for "every subscriber");
* ``<prefix>:{<topic>}:p`` / ``:i`` — presence: sorted set member → expiry (Redis ``TIME``, ms)
  and hash member → info;
* ``<prefix>:{<topic>}:c`` — the pub/sub channel nodes receiving the topic subscribe to.

Fencing. ``INFO replication`` gives ``master_replid``, which Redis draws anew whenever the data
set's history may have diverged from the one it continued: a restart and a replica promoted with
``REPLICAOF NO ONE`` (or by Sentinel/Cluster failover). A meta hash written under another
``master_replid`` may describe writes this server never received (an asynchronous replica lags),
so the scripts start a new epoch for it (offsets from 1, the old stream dropped) instead of
handing out its offsets again. Clients holding the old epoch get an explicit lost range.
"""

from __future__ import annotations

__all__ = ["APPEND", "HEADS", "PRESENCE_READ", "PRESENCE_REFRESH", "PRESENCE_UPDATE", "READ",
           "SAVE_SESSION"]

_PRELUDE = r"""
local function fence_now(use_fence)
  if use_fence ~= '1' then return 'nofence' end
  local info = redis.call('INFO', 'replication')
  return string.match(info, 'master_replid:(%w+)') or '?'
end

local function corrupt(what)
  return redis.error_reply('SIGMA_CORRUPT ' .. what)
end

-- Returns epoch (string) or false, last offset (number), and the meta fields read
-- {v, e, o, f, b, t} (nil when the topic was created or restarted here), or nil and an error
-- reply table. One HMGET on the common path: TYPE only when the key is missing or not a hash.
local function meta(mkey, skey, create, candidate, use_fence, meta_ttl_ms)
  local m = redis.pcall('HMGET', mkey, 'v', 'e', 'o', 'f', 'b', 't')
  local mtype = 'hash'
  if m['err'] then
    mtype = redis.call('TYPE', mkey)['ok']
  elseif not (m[1] or m[2] or m[3] or m[4]) then
    mtype = redis.call('TYPE', mkey)['ok']  -- missing, or a hash without our fields
  end
  if mtype == 'none' then
    if not create then return false, 0 end
    redis.call('DEL', skey)
    redis.call('HSET', mkey, 'v', '1', 'e', candidate, 'o', '0', 'b', '0',
               'f', fence_now(use_fence))
    if meta_ttl_ms > 0 then redis.call('PEXPIRE', mkey, meta_ttl_ms) end
    return candidate, 0, nil
  end
  if mtype ~= 'hash' then return nil, corrupt(mkey .. ' holds a ' .. mtype .. ', not a hash') end
  if m[1] ~= '1' or not m[2] or not string.match(m[2], '^%d+$')
     or not m[3] or not string.match(m[3], '^%d+$') then
    return nil, corrupt(mkey .. ' is not a sigma topic meta hash')
  end
  local fence = fence_now(use_fence)
  if m[4] ~= fence then
    -- Written under another replication history: its tail may be gone. New epoch.
    redis.call('DEL', skey)
    redis.call('HSET', mkey, 'e', candidate, 'o', '0', 'b', '0', 'f', fence)
    redis.call('HDEL', mkey, 't')
    if meta_ttl_ms > 0 then redis.call('PEXPIRE', mkey, meta_ttl_ms) end
    return candidate, 0, nil
  end
  return m[2], tonumber(m[3]), m
end

local function stream_ok(skey)
  local stype = redis.call('TYPE', skey)['ok']
  if stype ~= 'none' and stype ~= 'stream' then
    return corrupt(skey .. ' holds a ' .. stype .. ', not a stream')
  end
  return nil
end
"""

#: KEYS: meta, stream. ARGV: candidate epoch, envelope, time ms, route, channel, publish command,
#: max count, max bytes, max age ms, meta ttl ms, now ms, fence flag. Returns {epoch, offset}.
#: The meta hash keeps ``b`` (bytes held) and ``t`` (time ms of the oldest entry held, a lower
#: bound: the stream is read only when a bound may be exceeded), so the common append is HMGET,
#: INFO (the fence), XLEN, XADD, HSET, two PEXPIREs and the PUBLISH — no read of the stream.
APPEND = _PRELUDE + r"""
local mkey, skey = KEYS[1], KEYS[2]
local max_count, max_bytes = tonumber(ARGV[7]), tonumber(ARGV[8])
local max_age, meta_ttl, now = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local epoch, last, m = meta(mkey, skey, true, ARGV[1], ARGV[12], meta_ttl)
if epoch == nil then return last end
local count = redis.pcall('XLEN', skey)
if type(count) == 'table' then
  return corrupt(skey .. ' holds a ' .. redis.call('TYPE', skey)['ok'] .. ', not a stream')
end
local held, oldest = 0, tonumber(ARGV[3])
if count > 0 and m then
  held = tonumber(m[5]) or 0
  oldest = tonumber(m[6]) or -1  -- unknown (written by an older script): read the stream
end
local offset = last + 1
local off = string.format('%d', offset)
redis.call('XADD', skey, off .. '-0', 'd', ARGV[2], 't', ARGV[3], 'r', ARGV[4])
held = held + #ARGV[2]
count = count + 1
local horizon = now - max_age
if (max_count > 0 and count > max_count) or (max_bytes > 0 and held > max_bytes)
   or (max_age > 0 and oldest < horizon) then
  while count > 0 do
    local first = redis.call('XRANGE', skey, '-', '+', 'COUNT', 1)[1]
    local fields, size, t = first[2], 0, nil
    for i = 1, #fields, 2 do
      if fields[i] == 'd' then size = #fields[i + 1] elseif fields[i] == 't' then
        t = tonumber(fields[i + 1]) end
    end
    oldest = t or 0
    local old = max_age > 0 and t ~= nil and t < horizon
    if count == 1 or not ((max_count > 0 and count > max_count)
                          or (max_bytes > 0 and held > max_bytes) or old) then
      break
    end
    redis.call('XDEL', skey, first[1])
    held = held - size
    count = count - 1
  end
end
redis.call('HSET', mkey, 'o', off, 'b', held, 't', oldest)
local stream_ttl = meta_ttl
if max_age > 0 and (meta_ttl <= 0 or max_age < meta_ttl) then stream_ttl = max_age end
if stream_ttl > 0 then redis.call('PEXPIRE', skey, stream_ttl) end
if meta_ttl > 0 then redis.call('PEXPIRE', mkey, meta_ttl) end
redis.call(ARGV[6], ARGV[5], epoch .. ' ' .. off .. ' ' .. ARGV[3] .. ' ' .. #ARGV[4] .. ' '
           .. ARGV[4] .. ARGV[2])
return {epoch, offset}
"""

#: KEYS: meta, stream. ARGV: candidate epoch, asked epoch, asked offset, max count, fence flag,
#: meta ttl ms. Returns {epoch or '0', last offset, entries...} where entries are the raw XRANGE
#: rows after the asked offset when the epoch matches (the driver checks them), else none.
READ = _PRELUDE + r"""
local mkey, skey = KEYS[1], KEYS[2]
local epoch, last = meta(mkey, skey, false, ARGV[1], ARGV[5], tonumber(ARGV[6]))
if epoch == nil then return last end
if epoch == false then return {'0', 0} end
local bad = stream_ok(skey)
if bad then return bad end
local after = tonumber(ARGV[3])
if epoch ~= ARGV[2] or after >= last then return {epoch, last} end
local rows = redis.call('XRANGE', skey, '(' .. ARGV[3] .. '-0', '+', 'COUNT', tonumber(ARGV[4]))
return {epoch, last, rows}
"""

#: Many topics in one call (one INFO for all): KEYS meta1, stream1, meta2, stream2, ...;
#: ARGV: create flag, fence flag, meta ttl ms, then one candidate epoch per topic. Returns
#: {epoch or '0', last offset, ...} per topic, or {'!', reason} for a topic whose keys are not
#: ours. Keys of several slots: a standalone Redis only (see docs/cluster.md).
HEADS = _PRELUDE + r"""
local out = {}
local create = ARGV[1] == '1'
local fence = fence_now(ARGV[2])
local saved = fence_now
fence_now = function(_) return fence end
for i = 1, #KEYS / 2 do
  local epoch, last = meta(KEYS[2 * i - 1], KEYS[2 * i], create, ARGV[3 + i], ARGV[2],
                           tonumber(ARGV[3]))
  if epoch == nil then
    out[#out + 1] = '!'
    out[#out + 1] = last['err']
  elseif epoch == false then
    out[#out + 1] = '0'
    out[#out + 1] = 0
  else
    out[#out + 1] = epoch
    out[#out + 1] = last
  end
end
fence_now = saved
return out
"""

#: KEYS: session hash. ARGV: version, record, ttl ms (0: no expiry). Returns 1 stored, 0 fenced.
SAVE_SESSION = r"""
local key = KEYS[1]
local ktype = redis.call('TYPE', key)['ok']
if ktype ~= 'none' and ktype ~= 'hash' then
  return redis.error_reply('SIGMA_CORRUPT ' .. key .. ' holds a ' .. ktype .. ', not a hash')
end
local current = redis.call('HGET', key, 'v')
if current then
  if not string.match(current, '^%d+$') then
    return redis.error_reply('SIGMA_CORRUPT ' .. key .. ' has no valid version')
  end
  if tonumber(current) >= tonumber(ARGV[1]) then return 0 end
end
redis.call('HSET', key, 'v', ARGV[1], 'r', ARGV[2])
if tonumber(ARGV[3]) > 0 then
  redis.call('PEXPIRE', key, ARGV[3])
else
  redis.call('PERSIST', key)
end
return 1
"""

_PRESENCE_PRELUDE = r"""
local zkey, ikey = KEYS[1], KEYS[2]
for _, k in ipairs({zkey, ikey}) do
  local t = redis.call('TYPE', k)['ok']
  if t ~= 'none' and t ~= (k == zkey and 'zset' or 'hash') then
    return redis.error_reply('SIGMA_CORRUPT ' .. k .. ' holds a ' .. t)
  end
end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
"""

#: The end of PRESENCE_UPDATE and PRESENCE_REFRESH: drop the expired members (and their info),
#: keep the keys alive as long as their longest-lived member, delete them when none is left.
_PRESENCE_EXPIRE = r"""
local expired = redis.call('ZRANGEBYSCORE', zkey, '-inf', now)
for _, m in ipairs(expired) do redis.call('HDEL', ikey, m) end
redis.call('ZREMRANGEBYSCORE', zkey, '-inf', now)
local top = redis.call('ZRANGE', zkey, -1, -1, 'WITHSCORES')
if #top > 0 then
  redis.call('PEXPIREAT', zkey, top[2])
  redis.call('PEXPIREAT', ikey, top[2])
else
  redis.call('DEL', zkey, ikey)
end
"""

#: KEYS: presence zset, info hash. ARGV: ttl ms, number of joins, then member/info pairs, then
#: members leaving. Expired members are removed on the way.
PRESENCE_UPDATE = _PRESENCE_PRELUDE + r"""
local ttl = tonumber(ARGV[1])
local joins = tonumber(ARGV[2])
local i = 3
for _ = 1, joins do
  redis.call('ZADD', zkey, now + ttl, ARGV[i])
  redis.call('HSET', ikey, ARGV[i], ARGV[i + 1])
  i = i + 2
end
while i <= #ARGV do
  redis.call('ZREM', zkey, ARGV[i])
  redis.call('HDEL', ikey, ARGV[i])
  i = i + 1
end
""" + _PRESENCE_EXPIRE + r"""
return 1
"""

#: KEYS: presence zset, info hash. ARGV: ttl ms, then member ids. Pushes the expiry of the
#: unexpired members among them to now + ttl (never shortens one: ZADD XX GT), leaves their info
#: alone, drops the expired members, keeps the keys alive as long as their longest-lived member
#: (deletes them when none is left), and returns the ids it could not refresh (not held or
#: expired), which the node joins again with their info. One ZMSCORE and one ZADD per 2,000
#: members: no info bytes on the wire.
PRESENCE_REFRESH = _PRESENCE_PRELUDE + r"""
local expiry = now + tonumber(ARGV[1])
local missing, live = {}, {}
for first = 2, #ARGV, 2000 do
  local last = math.min(first + 1999, #ARGV)
  local scores = redis.call('ZMSCORE', zkey, unpack(ARGV, first, last))
  for i = 1, #scores do
    local member = ARGV[first + i - 1]
    if scores[i] and tonumber(scores[i]) > now then
      live[#live + 1] = expiry
      live[#live + 1] = member
    else
      missing[#missing + 1] = member
    end
  end
  if #live > 0 then
    redis.call('ZADD', zkey, 'XX', 'GT', unpack(live))
    live = {}
  end
end
""" + _PRESENCE_EXPIRE + r"""
return missing
"""

#: KEYS: presence zset, info hash. Returns {member, info, ...} of the unexpired members.
PRESENCE_READ = _PRESENCE_PRELUDE + r"""
local members = redis.call('ZRANGEBYSCORE', zkey, '(' .. now, '+inf')
local out = {}
for _, m in ipairs(members) do
  local info = redis.call('HGET', ikey, m)
  out[#out + 1] = m
  out[#out + 1] = info or ''
end
return out
"""
