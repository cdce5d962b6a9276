"""Pacing sends: token buckets, daily caps and requests in flight, kept in Redis and shared by
every worker.

A send takes one token from each bucket that applies to it (its sender's rate and daily cap,
its organization's rate, its Twilio account's rate and its brand's daily cap) in one atomic
Lua call, so any number of workers on any number of machines together stay within each limit.
Daily caps reset at midnight Pacific time, as the carriers' do (T-Mobile's per brand).

Requests in flight are counted per Twilio account the same way: a pump holds slots while its
requests are out (`acquire`, `release`), so together the workers never keep more requests open
than the account allows; a pump that dies without giving its slots back loses them after
HOLD_SECONDS. After Twilio answers 429 the account cools down (`cool`): no pump claims for it
until then.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from redis import Redis
from redis.commands.core import Script

# KEYS: one per limit. ARGV: now (seconds), wanted, then per key: kind, amount, seconds.
#   kind "rate": amount tokens per second, holding at most `seconds` worth (the burst).
#   kind "cap": at most `amount` takes in all; the key expires after `seconds` (the day's end).
# Returns {granted, seconds until one more could be granted (as a string: Lua numbers are
# truncated to integers on the way out)}.
_TAKE = """
local now, wanted = tonumber(ARGV[1]), tonumber(ARGV[2])
local granted, level = wanted, {}
for i, key in ipairs(KEYS) do
  local kind, amount, seconds = ARGV[3 * i], tonumber(ARGV[3 * i + 1]), tonumber(ARGV[3 * i + 2])
  local available
  if kind == "rate" then
    local saved = redis.call("HMGET", key, "tokens", "at")
    local burst = math.max(1, amount * seconds)
    local tokens = tonumber(saved[1]) or burst
    local elapsed = math.max(0, now - (tonumber(saved[2]) or now))
    level[i] = math.min(burst, tokens + elapsed * amount)
    available = math.floor(level[i] + 1e-6)
  else
    level[i] = tonumber(redis.call("GET", key)) or 0
    available = math.max(0, amount - level[i])
  end
  granted = math.min(granted, available)
end
local wait = 0
for i, key in ipairs(KEYS) do
  local kind, amount, seconds = ARGV[3 * i], tonumber(ARGV[3 * i + 1]), tonumber(ARGV[3 * i + 2])
  if kind == "rate" then
    local left = level[i] - granted
    redis.call("HSET", key, "tokens", tostring(left), "at", tostring(now))
    redis.call("EXPIRE", key, math.ceil(seconds + 1 / amount) + 60)
    if left < 1 then wait = math.max(wait, (1 - left) / amount) end
  else
    if granted > 0 then
      redis.call("INCRBY", key, granted)
      redis.call("EXPIRE", key, math.ceil(seconds))
    end
    if level[i] + granted >= amount then wait = math.max(wait, seconds) end
  end
end
return {granted, tostring(wait)}
"""

# A rate bucket holds one second of tokens: a sender may burst that much after idling, and the
# rate over a minute stays within 2% of the limit.
BURST_SECONDS = 1.0
# Where the carriers' day starts and ends: T-Mobile's daily cap per brand resets at midnight
# Pacific time, and gotv's daily caps with it.
CARRIER_DAY = ZoneInfo("America/Los_Angeles")


@dataclass(frozen=True)
class Limit:
    """One limit a send counts against: a rate in messages per second, or a cap per carrier
    day (`seconds`: until the cap resets)."""

    key: str
    kind: str  # "rate" or "cap"
    amount: float
    seconds: float = BURST_SECONDS

    @classmethod
    def rate(cls, key: str, per_second: float) -> Limit:
        return cls(f"gotv:pace:{key}", "rate", per_second)

    @classmethod
    def daily_cap(cls, key: str, cap: int, now: datetime) -> Limit:
        day = now.astimezone(CARRIER_DAY)
        left = (next_carrier_midnight(now) - now).total_seconds()
        return cls(f"gotv:cap:{key}:{day:%Y%m%d}", "cap", cap, max(left, 1.0))


@dataclass(frozen=True)
class Grant:
    """How many sends may go now, and how long until the next one may."""

    granted: int
    retry_after: float


def take(redis: Redis, limits: list[Limit], wanted: int, now: datetime) -> Grant:
    """Take up to `wanted` tokens from every limit at once; all limits give the same number.

    With no limits, everything is granted. `retry_after` is 0 when the limits could give more.
    """
    if not limits or wanted <= 0:
        return Grant(max(0, wanted), 0.0)
    args: list[str | float] = [now.timestamp(), wanted]
    for limit in limits:
        args += [limit.kind, limit.amount, limit.seconds]
    script = _scripts.get(id(redis)) or _scripts.setdefault(id(redis), redis.register_script(_TAKE))
    granted, retry_after = script(keys=[limit.key for limit in limits], args=args)
    return Grant(int(granted), float(retry_after))


# One registered script per connection pool owner, run by its SHA after the first call.
_scripts: dict[int, Script] = {}


def next_carrier_midnight(now: datetime) -> datetime:
    """When the carriers' day after `now` starts (midnight Pacific time)."""
    today = now.astimezone(CARRIER_DAY).date()
    return datetime.combine(today + timedelta(days=1), datetime.min.time(), CARRIER_DAY)


# --- Requests in flight, per Twilio account ---------------------------------------------------

# A holder's slots are dropped when it has not been heard from for this long: longer than any
# request to Twilio may take (sms.HTTP_TIMEOUT_SECONDS), so a live pump never loses its own.
HOLD_SECONDS = 60

# KEYS: the account's holders (hash: holder -> slots) and their last sign of life (sorted set,
# in Redis's own clock: the hosts' clocks may disagree). ARGV: holder, wanted, limit, hold
# seconds. Returns the slots granted.
_ACQUIRE = """
local clock = redis.call("TIME")
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local holder = ARGV[1]
local wanted, limit, hold = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
for _, gone in ipairs(redis.call("ZRANGEBYSCORE", KEYS[2], "-inf", now - hold)) do
  redis.call("HDEL", KEYS[1], gone)
  redis.call("ZREM", KEYS[2], gone)
end
local held = 0
for _, count in ipairs(redis.call("HVALS", KEYS[1])) do held = held + tonumber(count) end
local granted = math.max(0, math.min(wanted, limit - held))
if granted > 0 then redis.call("HINCRBY", KEYS[1], holder, granted) end
redis.call("ZADD", KEYS[2], now, holder)
redis.call("EXPIRE", KEYS[1], hold)
redis.call("EXPIRE", KEYS[2], hold)
return granted
"""
# The same KEYS; ARGV: holder, slots given back (all of them when negative).
_RELEASE = """
local clock = redis.call("TIME")
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local holder, count = ARGV[1], tonumber(ARGV[2])
local left = tonumber(redis.call("HGET", KEYS[1], holder)) or 0
if count < 0 or count >= left then
  redis.call("HDEL", KEYS[1], holder)
  redis.call("ZREM", KEYS[2], holder)
  return 0
end
redis.call("HINCRBY", KEYS[1], holder, -count)
redis.call("ZADD", KEYS[2], now, holder)
return left - count
"""


def _in_flight_keys(account_sid: str) -> list[str]:
    return [f"gotv:inflight:{account_sid}", f"gotv:inflight:{account_sid}:seen"]


def acquire(redis: Redis, account_sid: str, holder: str, wanted: int, limit: int | None) -> int:
    """Take up to `wanted` of the account's `limit` request slots for `holder`; how many it got
    (all of them when there is no limit)."""
    if limit is None or wanted <= 0:
        return max(0, wanted)
    script = _registered(redis, "acquire", _ACQUIRE)
    granted = script(
        keys=_in_flight_keys(account_sid),
        args=[holder, wanted, limit, HOLD_SECONDS],
    )
    return int(granted)


def release(redis: Redis, account_sid: str, holder: str, count: int = -1) -> None:
    """Give back `count` of the holder's slots on the account (all of them by default)."""
    script = _registered(redis, "release", _RELEASE)
    script(keys=_in_flight_keys(account_sid), args=[holder, count])


# --- Cooling down after Twilio's 429 ---------------------------------------------------------


def cool(redis: Redis, account_sid: str, seconds: float) -> None:
    """No pump claims for the account for `seconds` (Twilio said 429: too many requests)."""
    redis.set(f"gotv:cool:{account_sid}", 1, px=max(1, int(seconds * 1000)))


def cooling(redis: Redis, account_sid: str) -> float:
    """Seconds until the account may be sent through again (0: now)."""
    left = redis.pttl(f"gotv:cool:{account_sid}")
    return max(0, int(left)) / 1000


def _registered(redis: Redis, name: str, source: str) -> Script:
    key = (id(redis), name)
    if key not in _named_scripts:
        _named_scripts[key] = redis.register_script(source)
    return _named_scripts[key]


_named_scripts: dict[tuple[int, str], Script] = {}
