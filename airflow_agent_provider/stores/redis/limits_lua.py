"""
The Lua side of the Redis rate limits (see stores/redis/limits.py for the Python side).

Per rate-limit key, three Redis keys share one hash tag (``{key}``) so that a cluster keeps them on
one slot, which a multi-key Lua script needs:

* ``log``   sorted set, grant id -> grant time (integer microseconds of the script clock);
* ``meta``  hash: ``keep`` (longest window seen: the log's retention), ``pause``, ``np`` (next
  maintenance), ``lx`` (expiry set on ``lease``), and, once a token window is registered, ``tw``
  (the registered token windows), ``T`` (running sum of every grant's tokens), per token window
  ``c:<w>`` (cursor) and ``b:<w>`` (the part of ``T`` from entries at or before the cursor), and
  one field per grant id holding its tokens (a separate hash would cost one more write per call);
* ``lease`` sorted set, grant id -> lease expiry.

Why it is exact yet cheap (each ``redis.call`` inside a script costs about a microsecond, so the
script is shaped to make as few as possible on the common path):

* A token window's total is ``T - b:<w>``. Entries only ever leave a window, so with a cursor that
  lags, ``T - b`` is an upper bound of the true total: when the bound grants, the true total grants
  too, and the cursor is moved (one ``ZRANGEBYSCORE`` + ``HMGET``) only when the bound would refuse,
  and during maintenance. A grant adds its tokens to ``T`` alone, whatever the number of windows.
* A request window's count is at most ``ZCARD(log)`` (O(1)); ``ZCOUNT`` runs only when that bound
  would refuse. Leases likewise: ``ZCARD(lease)`` counts expired leases too, so expired ones are
  removed only when the bound would refuse, and during maintenance.
* Maintenance (at most every ``_MAINT_US`` of the script clock per key) moves every token cursor,
  prunes what has left the longest window (after the cursors passed it, so no token is lost) and
  expired leases, and sets the keys' expiries. Keys created between two maintenances are caught by
  ``ZCARD == 0``, so no key is ever left without an expiry.

On the common path an acquire runs TIME, HMGET, ZCARD x2, ZADD x2 and one HSET: about a third of
the server time of the previous layout (a ZCOUNT per tier, cursor moves and PEXPIREs on every call).

Each operation is one Lua script (one round trip) that reads ``TIME`` on the server: every worker
shares that one clock, and the check-and-take is atomic. Times are integer microseconds inside
the scripts (a Lua double keeps them exact; ``tostring`` would not, hence ``string.format('%d')``).
"""

from __future__ import annotations

from functools import lru_cache

from airflow_agent_provider.stores.redis.connection import LuaScript

# Shared preamble: the clock and the token-window bookkeeping.
_COMMON = r"""
local function now_us(arg)
  if arg ~= nil and arg ~= '' then return tonumber(arg) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local function fmt(x) return string.format('%d', x) end

local function split(s)
  local list = {}
  if s then for w in string.gmatch(s, '[^,]+') do list[#list + 1] = w end end
  return list
end

-- Sum of the tokens (grant fields of meta) of the given grant ids.
local function tokens_of(meta, ids)
  local sum = 0
  for i = 1, #ids, 1000 do
    local vals = redis.call('HMGET', meta, unpack(ids, i, math.min(i + 999, #ids)))
    for j = 1, #vals do sum = sum + (tonumber(vals[j]) or 0) end
  end
  return sum
end

-- Sum of the tokens of the log entries whose time is in (lo, hi] (hi may be '+inf').
local function tokens_between(log, meta, lo, hi)
  return tokens_of(meta, redis.call('ZRANGEBYSCORE', log, '(' .. fmt(lo), hi))
end
"""

# Maintenance period per key (script clock) and the most log entries one maintenance prunes:
# bounded so that no single call stalls the server after a long idle gap.
_MAINT_US = 250_000
_PRUNE_BATCH = 5000

# The acquire script is generated per policy (tiers + whether it takes a lease), with the tiers'
# limits and windows written into the code: parsing a tier list and looping over it costs a Lua
# script several microseconds per call, more than most of the Redis commands it runs. A worker uses
# a handful of policies, so the server caches a handful of scripts. ``@...@`` marks what is filled in.
_ACQUIRE_TEMPLATE = (
    _COMMON
    + r"""
local log, meta, lease = KEYS[1], KEYS[2], KEYS[3]
local now = now_us(ARGV[1])
local tokens, gid = tonumber(ARGV[2]), ARGV[3]

-- One read for everything the common path needs.
local head = redis.call('HMGET', meta, 'keep', 'pause', 'np', 'lx', 'T'@FIELDS@)
local keep = tonumber(head[1] or '0')
local pause = tonumber(head[2] or '0')
local np = tonumber(head[3])
local lx = tonumber(head[4] or '0')
local T = tonumber(head[5])
-- Token windows of this policy: window (string, as in field names) -> cursor and b.
local state = {@STATE@}

-- Fields of meta to write, sent as one HSET at the end.
local put, tdirty = {}, false
local function set(f, v) put[#put + 1] = f; put[#put + 1] = v end

local function advance(w, st)
  local cutoff = now - tonumber(w)
  if cutoff > st.c then
    st.b = st.b + tokens_between(log, meta, st.c, fmt(cutoff))
    st.c = cutoff
    st.dirty = true
  end
end

if keep < @KEEP@ then keep = @KEEP@; set('keep', '@KEEP@') end

-- Register new token windows: cursor at the window's start, total read off the log once.
local registered = nil
for w, st in pairs(state) do
  if st.c == nil or st.b == nil then
    if T == nil then T = 0; tdirty = true end
    st.c = now - tonumber(w)
    st.b = T - tokens_between(log, meta, st.c, '+inf')
    st.dirty = true
    if registered == nil then registered = split(redis.call('HGET', meta, 'tw')) end
    local found = false
    for _, r in ipairs(registered) do if r == w then found = true end end
    if not found then registered[#registered + 1] = w; set('tw', table.concat(registered, ',')) end
  end
end

-- Maintenance: move every cursor, then prune what they have all passed, then expired leases.
local maint = np == nil or now >= np or np - now > @MAINT@
if maint then
  local nextm = now + @MAINT@
  if T ~= nil then
    if registered == nil then registered = split(redis.call('HGET', meta, 'tw')) end
    local miss, f = {}, {}
    for _, w in ipairs(registered) do
      if not state[w] then miss[#miss + 1] = w; f[#f + 1] = 'c:' .. w; f[#f + 1] = 'b:' .. w end
    end
    if #f > 0 then
      local cb = redis.call('HMGET', meta, unpack(f))
      for i, w in ipairs(miss) do
        if cb[2 * i - 1] and cb[2 * i] then state[w] = {c = tonumber(cb[2 * i - 1]), b = tonumber(cb[2 * i])} end
      end
    end
    for w, st in pairs(state) do advance(w, st) end
  end
  if keep > 0 then
    local gone = redis.call('ZRANGEBYSCORE', log, '-inf', fmt(now - keep), 'LIMIT', 0, @PRUNE@)
    if #gone > 0 then
      if T ~= nil then
        for i = 1, #gone, 1000 do redis.call('HDEL', meta, unpack(gone, i, math.min(i + 999, #gone))) end
      end
      redis.call('ZREMRANGEBYRANK', log, 0, #gone - 1)
      if #gone >= @PRUNE@ then nextm = now end
    end
  end
  redis.call('ZREMRANGEBYSCORE', lease, '-inf', fmt(now))
  set('np', fmt(nextm))
end

local n_log = 0
if keep > 0 then n_log = redis.call('ZCARD', log) end

local function finish(res)
  for w, st in pairs(state) do
    if st.dirty then set('c:' .. w, fmt(st.c)); set('b:' .. w, fmt(st.b)) end
  end
  if tdirty then set('T', fmt(T)) end
  if #put > 0 then redis.call('HSET', meta, unpack(put)) end
  -- Expiries: at maintenance, and whenever this call may have created the log.
  if maint or (keep > 0 and n_log == 0) then
    local idle_ms = math.floor(math.max(keep, pause - now) / 1000) + 60000
    if keep > 0 then redis.call('PEXPIRE', log, idle_ms) end
    redis.call('PEXPIRE', meta, idle_ms)
  end
  return res
end

-- Seconds until a token window could take ``tokens``: its total is T - b, an upper bound while
-- the cursor lags, so the cursor is moved only when the bound alone would refuse.
local function token_wait(ws, w, limit)
  local st = state[ws]
  if T - st.b + tokens > limit then advance(ws, st) end
  local excess = T - st.b + tokens - limit
  if excess <= 0 then return 0 end
  local cutoff, freed, offset = '(' .. fmt(now - w), 0, 0
  while true do
    local ids = redis.call('ZRANGEBYSCORE', log, cutoff, '+inf', 'WITHSCORES', 'LIMIT', offset, 200)
    if #ids == 0 then return w end
    local names = {}
    for i = 1, #ids, 2 do names[#names + 1] = ids[i] end
    local vals = redis.call('HMGET', meta, unpack(names))
    for j = 1, #names do
      freed = freed + (tonumber(vals[j]) or 0)
      if freed >= excess then return tonumber(ids[2 * j]) + w - now end
    end
    offset = offset + 200
  end
end

-- Same for a request window: its count is at most ZCARD(log), so ZCOUNT runs only when that would refuse.
local function request_wait(w, limit)
  if n_log < limit then return 0 end
  if redis.call('ZCOUNT', log, '(' .. fmt(now - w), '+inf') < limit then return 0 end
  local e = redis.call('ZRANGE', log, -limit, -limit, 'WITHSCORES')
  return tonumber(e[2]) + w - now
end

-- Tiers (reason = the tier's position in the policy).
local wait, reason = 0, false
local tw
@CHECKS@
@LEASE_CHECK@
if pause - now > wait then wait, reason = pause - now, 'paused' end
if wait > 0 then return finish({0, now, wait, reason}) end

if keep > 0 then
  redis.call('ZADD', log, fmt(now), gid)
  if T ~= nil and tokens ~= 0 then set(gid, fmt(tokens)); T = T + tokens; tdirty = true end
end
@LEASE_TAKE@
return finish({1, now})
"""
)

# Concurrency: ZCARD(lease) also counts expired leases, so they are removed only when it would refuse.
_LEASE_CHECK = r"""
local maxc, ttl = tonumber(ARGV[4]), tonumber(ARGV[5])
local n_lease = redis.call('ZCARD', lease)
if n_lease >= maxc and not maint then
  redis.call('ZREMRANGEBYSCORE', lease, '-inf', fmt(now))
  n_lease = redis.call('ZCARD', lease)
end
if n_lease >= maxc then
  local first = redis.call('ZRANGE', lease, 0, 0, 'WITHSCORES')
  tw = tonumber(first[2]) - now
  if tw > wait then wait, reason = tw, 'concurrency' end
end
"""

# lx: the expiry last given to the lease key (script clock), always past every lease in it.
_LEASE_TAKE = r"""
redis.call('ZADD', lease, fmt(now + ttl), gid)
if n_lease == 0 or now + ttl > lx then
  redis.call('PEXPIRE', lease, math.floor(ttl / 1000) + 60000)
  set('lx', fmt(now + ttl + 60000000))
end
"""


@lru_cache(maxsize=256)
def acquire_source(spec: tuple[tuple[str, int, int], ...], lease: bool) -> str:
    """The acquire script for one policy: ``spec`` is (unit, limit, window in µs) per tier."""
    windows = sorted({w for unit, _, w in spec if unit == "tokens"})
    fields = "".join(f", 'c:{w}', 'b:{w}'" for w in windows)
    state = ", ".join(
        f"['{w}'] = {{c = tonumber(head[{6 + 2 * i}]), b = tonumber(head[{7 + 2 * i}])}}"
        for i, w in enumerate(windows)
    )
    checks: list[str] = []
    for i, (unit, limit, w) in enumerate(spec, start=1):
        if unit == "tokens":
            checks.append(
                f"if tokens > {limit} then return finish({{0, now, -1, {i}}}) end\n"
                f"tw = token_wait('{w}', {w}, {limit})"
            )
        else:
            checks.append(f"tw = request_wait({w}, {limit})")
        checks.append(f"if tw > wait then wait, reason = tw, {i} end")
    lua = _ACQUIRE_TEMPLATE
    for marker, value in (
        ("@FIELDS@", fields),
        ("@STATE@", state),
        ("@KEEP@", str(max((w for *_, w in spec), default=0))),
        ("@MAINT@", str(_MAINT_US)),
        ("@PRUNE@", str(_PRUNE_BATCH)),
        ("@CHECKS@", "\n".join(checks)),
        ("@LEASE_CHECK@", _LEASE_CHECK if lease else ""),
        ("@LEASE_TAKE@", _LEASE_TAKE if lease else ""),
    ):
        lua = lua.replace(marker, value)
    return lua


SETTLE = LuaScript(
    "rl_settle",
    _COMMON
    + r"""
local log, meta = KEYS[1], KEYS[2]
local gid, actual = ARGV[1], tonumber(ARGV[2])
local t = redis.call('ZSCORE', log, gid)
if not t then return 0 end
t = tonumber(t)
local h = redis.call('HMGET', meta, 'tw', 'T', gid)
local tws = split(h[1])
if #tws == 0 then return 0 end
-- Left every token window by the latest grant: nothing to correct (as if already pruned).
local maxw = 0
for _, w in ipairs(tws) do maxw = math.max(maxw, tonumber(w)) end
local latest = redis.call('ZRANGE', log, -1, -1, 'WITHSCORES')
if t <= tonumber(latest[2]) - maxw then return 0 end
local delta = actual - (tonumber(h[3]) or 0)
if delta == 0 then return 0 end
local f = {}
for _, w in ipairs(tws) do f[#f + 1] = 'c:' .. w; f[#f + 1] = 'b:' .. w end
local cb = redis.call('HMGET', meta, unpack(f))
local put = {gid, fmt(actual), 'T', fmt((tonumber(h[2]) or 0) + delta)}
for i, w in ipairs(tws) do
  local c, b = tonumber(cb[2 * i - 1]), tonumber(cb[2 * i])
  -- A window whose cursor has passed the entry holds it in b: the correction must not count there.
  if c and b and t <= c then put[#put + 1] = 'b:' .. w; put[#put + 1] = fmt(b + delta) end
end
redis.call('HSET', meta, unpack(put))
return delta
""",
)

PENALIZE = LuaScript(
    "rl_penalize",
    _COMMON
    + r"""
local meta = KEYS[1]
local now = now_us('')
local target
if ARGV[1] ~= '' then target = tonumber(ARGV[1]) else target = now + tonumber(ARGV[2]) end
local cur = tonumber(redis.call('HGET', meta, 'pause') or '0')
if target > cur then
  redis.call('HSET', meta, 'pause', fmt(target))
  local ms = math.floor((target - now) / 1000) + 60000
  if redis.call('PTTL', meta) < ms then redis.call('PEXPIRE', meta, ms) end
  cur = target
end
return cur
""",
)

PAUSED = LuaScript(
    "rl_paused",
    _COMMON
    + r"""
return {tonumber(redis.call('HGET', KEYS[1], 'pause') or '0'), now_us('')}
""",
)
