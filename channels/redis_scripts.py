"""How a topic lives in Redis: its keys (one hash-tagged slot per topic on a cluster) and the Lua scripts that
sequence it — one script increments the counter, builds the frame, appends it to the stream and publishes it, so
every instance sees one order — plus reading the stream's history back as contiguous entries."""

from __future__ import annotations

import time
from typing import Any

from channels.hub import Entry
from channels.redis_client import RedisClient, key

KEYS_TTL_SECONDS = 24 * 3600
PUBLISH_ID_TTL_MS = 30_000  # longer than the client's retries of one publish (2 retries, 5 s timeouts)

# The counter and epoch outlive the stream (ARGV[8] ms after the last publish, a day by default) so a client
# that was away longer than the history is told recovered:false rather than handed a reset log; an idle
# room's keys then go away on their own.
# Hub-sequenced (live) topics. The epoch is bound to the Redis server process (the first 12 characters of its
# run_id, read by the script itself): a restart, a restore from an older snapshot or a failover to a replica is
# another process, so the topic gets a new epoch and `recovered:true` can never hand out offsets that were
# rewound and reused. KEYS[4] makes a publish idempotent: the client library's retry of a script that already
# ran returns the first offset (for ARGV[9] ms).
RUN = "local run = string.sub(string.match(redis.call('INFO', 'server'), 'run_id:(%w+)'), 1, 12)\n"

PUBLISH = RUN + """
local done = redis.call('GET', KEYS[4])
if done then return tonumber(done) end
local epoch = redis.call('GET', KEYS[2])
if not epoch or string.sub(epoch, 1, 12) ~= run then epoch = run .. ARGV[4] end
redis.call('SET', KEYS[2], epoch, 'PX', ARGV[8])
local off = redis.call('INCR', KEYS[1])
redis.call('SET', KEYS[4], off, 'PX', ARGV[9])
redis.call('PEXPIRE', KEYS[1], ARGV[8])
local frame = ARGV[2] .. off .. ',"epoch":"' .. epoch .. '"' .. ARGV[3]
redis.call('XADD', KEYS[3], 'MAXLEN', ARGV[5], '0-' .. off, 'f', frame, 't', ARGV[7])
redis.call('PEXPIRE', KEYS[3], ARGV[6])
redis.call('PUBLISH', ARGV[1], 'm' .. off .. '|' .. epoch .. '|' .. frame)
return off
"""

POSITION = RUN + """
local epoch = redis.call('GET', KEYS[2])
if not epoch or string.sub(epoch, 1, 12) ~= run then
  epoch = run .. ARGV[1]; redis.call('SET', KEYS[2], epoch, 'PX', ARGV[2])
end
return {epoch, tonumber(redis.call('GET', KEYS[1]) or '0')}
"""

HISTORY = RUN + """
local epoch = redis.call('GET', KEYS[2])
if epoch and string.sub(epoch, 1, 12) ~= run then epoch = nil end
local off = tonumber(redis.call('GET', KEYS[1]) or '0')
local entries = {}
if epoch == ARGV[1] and off > tonumber(ARGV[2]) then
  entries = redis.call('XRANGE', KEYS[3], '0-' .. (tonumber(ARGV[2]) + 1), '+')
end
return {epoch or '', off, entries}
"""

# Many connections of one topic at once. KEYS: zset of members by expiry, hash of metas. ARGV: expiry, now,
# channel, frame prefix, frame suffix, then (member, meta, user id, joins entry) per connection. One presence
# frame announces every user among them who had no live connection before, instead of one frame per join (each
# frame goes to every member of the room: a storm of N joins into a room was N² deliveries). Returns who is
# present then, these connections among them (so a join needs no second round trip to ask).
TRACK_MANY = """
local live = {}
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[2], '+inf')) do
  live[string.match(member, '^[^\t]*')] = true
end
local joins = {}
for i = 6, #ARGV, 4 do
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[i])
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  if not live[ARGV[i + 2]] then
    live[ARGV[i + 2]] = true
    joins[#joins + 1] = ARGV[i + 3]
  end
end
if #joins > 0 then redis.call('PUBLISH', ARGV[3], 'p' .. ARGV[4] .. table.concat(joins, ',') .. ARGV[5]) end
-- Who is present now, with their metas: member, meta, member, meta ... (HMGET in chunks: unpack has a limit).
local present = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[2], '+inf')
local out = {}
for i = 1, #present, 1000 do
  local chunk = {}
  for j = i, math.min(i + 999, #present) do chunk[#chunk + 1] = present[j] end
  local metas = redis.call('HMGET', KEYS[2], unpack(chunk))
  for j, member in ipairs(chunk) do
    out[#out + 1] = member
    out[#out + 1] = metas[j] or ''
  end
end
return out
"""

UNTRACK = """
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
if removed == 0 then return 0 end
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[2], '+inf')) do
  if string.sub(member, 1, string.len(ARGV[3])) == ARGV[3] then return 1 end
end
redis.call('PUBLISH', ARGV[4], 'p' .. ARGV[5])
return 1
"""


class KeyLayout:
    """The names of a topic's keys and channel under the deployment's prefix."""

    def __init__(self, prefix: str, cluster: bool) -> None:
        self.prefix = prefix
        self.cluster = cluster

    def keys(self, topic: str) -> list[str]:
        return [key(self.prefix, kind, topic, self.cluster) for kind in ("o:", "e:", "s:")]

    def presence_keys(self, topic: str) -> list[str]:
        return [key(self.prefix, "pz:", topic, self.cluster), key(self.prefix, "ph:", topic, self.cluster)]

    def channel(self, topic: str) -> str:
        return key(self.prefix, "c:", topic, self.cluster)

    def topic_of(self, channel: str) -> str:
        return channel[len(self.prefix) + 3:-1] if self.cluster else channel[len(self.prefix) + 2:]

    def publish_id_key(self, topic: str, publish_id: str) -> str:
        # On a cluster in the topic's slot (the script reads it); on one server the name it always had.
        return f"{self.prefix}pid:{{{topic}}}:{publish_id}" if self.cluster else f"{self.prefix}pid:{publish_id}"

    def script(self, redis: RedisClient, text: str) -> Any:
        # Sharded pub/sub on a cluster: the channel shares the topic's slot, so the script stays on one node.
        return redis.register_script(text.replace("'PUBLISH'", "'SPUBLISH'") if self.cluster else text)


def contiguous(raw: list[Any], after: int, until: int, history_ms: int) -> list[Entry] | None:
    """The stream's entries after `after` up to `until`, or None when one is missing or older than the history."""
    cutoff = int(time.time() * 1000) - history_ms
    entries: list[Entry] = []
    expected = after + 1
    for entry_id, fields in raw:
        offset = int(str(entry_id).split("-")[1])
        values = dict(zip(fields[::2], fields[1::2], strict=True)) if isinstance(fields, list) else fields
        if offset != expected or int(values["t"]) < cutoff:
            return None
        entries.append(Entry(offset, values["f"]))
        expected += 1
        if offset == until:
            break
    return entries if expected == until + 1 else None
