//! The Lua scripts the stores run in Redis: each is one atomic step on the server, timed by
//! the server's clock (`TIME`, relative TTLs), never by a replica's.
//!
//! Numbers written back to Redis go through `string.format('%d', ..)`: Lua's default number
//! formatting keeps 14 digits, fewer than a microsecond timestamp has.

use std::sync::LazyLock;

use redis::Script;

/// Closes a gate for `ARGV[1]` milliseconds unless it is already closed for longer: closing
/// only extends; an extension is published (`<ms> <name>`) for the other replicas' mirrors.
/// KEYS: the gate. ARGV: the wait (ms), the channel, the gate's name. Answers 1 if it
/// extended the gate.
pub(crate) static CLOSE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local left = redis.call('PTTL', KEYS[1])
local wait = tonumber(ARGV[1])
if left < wait then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
  redis.call('PUBLISH', ARGV[2], ARGV[1] .. ' ' .. ARGV[3])
  return 1
end
return 0
",
    )
});

/// Opens a gate and publishes it (`0 <name>`). KEYS: the gate. ARGV: the channel, the name.
/// Answers 1 if it was closed.
pub(crate) static REOPEN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local deleted = redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[1], '0 ' .. ARGV[2])
return deleted
",
    )
});

/// Reserves quota slots in a sliding-window log: a sorted set of slot instants (server
/// microseconds) named by a sequence number.
///
/// Each entry is scored by the *latest* instant its call may go: its slot plus the lease's
/// `slack` (zero for a slot reserved for one waiting call). A new slot is no sooner than
/// `not_before`, nor than the end of the gate, nor than one window after the entry `calls`
/// places before it, nor than the last entry less its own slack (first come, first served,
/// and scores never decrease). So any `calls + 1` entries span a window: the newest goes no
/// sooner than `per` after the latest instant of one `calls` places earlier, which is no
/// earlier than any older entry's latest; however late in its slack each call goes, no window
/// of `per` holds more than `calls`.
///
/// The first slot is the caller's; up to `count - 1` more are leased for later calls if free
/// at the same instant. Past `latest` nothing is reserved. A constant number of commands
/// whatever `count`: the entries it depends on are read in one range, the slots added in one
/// `ZADD`.
///
/// KEYS: the log, its sequence, the gate. ARGV: calls, per, not_before, latest, count, slack
/// (µs). Answers `{1, wait_us, id, wait_us, id, ..}` or `{0, earliest_us}`.
pub(crate) static RESERVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local calls = tonumber(ARGV[1])
local per = tonumber(ARGV[2])
local from = now + tonumber(ARGV[3])
local latest = now + tonumber(ARGV[4])
local count = tonumber(ARGV[5])
local slack = tonumber(ARGV[6])
local gate = redis.call('PTTL', KEYS[3])
if gate > 0 then
  from = math.max(from, now + gate * 1000)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now - per))
local n = redis.call('ZCARD', KEYS[1])
local last = nil
if n > 0 then
  last = tonumber(redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2])
end
-- The scores of the entries `calls` places before each new slot, fetched at once.
local older = {}
local a = math.max(n - calls, 0)
local b = math.min(n - calls + count - 1, n - 1)
if a <= b then
  local range = redis.call('ZRANGE', KEYS[1], a, b, 'WITHSCORES')
  for i = 1, #range, 2 do
    older[a + (i - 1) / 2] = tonumber(range[i + 1])
  end
end
local slots = {}
for j = 0, count - 1 do
  local slot = from
  local back = n + j - calls
  if back >= 0 then
    local score = older[back]
    if back >= n then
      score = slots[back - n + 1] + slack
    end
    slot = math.max(slot, score + per)
  end
  if j > 0 then
    slot = math.max(slot, slots[j])
  elseif last then
    slot = math.max(slot, last - slack)
  end
  if j == 0 and slot > latest then
    return {0, slot - now}
  end
  if j > 0 and slot > slots[1] then
    break
  end
  slots[j + 1] = slot
end
local first_id = redis.call('INCRBY', KEYS[2], #slots) - #slots
local entries = {}
local answer = {1}
for j, slot in ipairs(slots) do
  entries[#entries + 1] = string.format('%d', slot + slack)
  entries[#entries + 1] = first_id + j
  answer[#answer + 1] = slot - now
  answer[#answer + 1] = first_id + j
end
redis.call('ZADD', KEYS[1], unpack(entries))
local ttl = string.format('%d', math.ceil((slots[1] + slack - now + per) / 1000) + 1)
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
return answer
",
    )
});
