"""Pacing sends: token buckets and daily caps kept in Redis, shared by every worker.

A send takes one token from each bucket that applies to it (its sender's rate, the sender's daily
cap, the organization's rate) in one atomic Lua call, so any number of workers on any number of
machines together stay within each limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

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


@dataclass(frozen=True)
class Limit:
    """One limit a send counts against: a rate in messages per second, or a cap per UTC day."""

    key: str
    kind: str  # "rate" or "cap"
    amount: float

    @classmethod
    def rate(cls, key: str, per_second: float) -> Limit:
        return cls(f"gotv:pace:{key}", "rate", per_second)

    @classmethod
    def daily_cap(cls, key: str, cap: int, now: datetime) -> Limit:
        return cls(f"gotv:cap:{key}:{now.astimezone(UTC):%Y%m%d}", "cap", cap)


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
    day_left = (_next_utc_midnight(now) - now).total_seconds()
    args: list[str | float] = [now.timestamp(), wanted]
    for limit in limits:
        seconds = BURST_SECONDS if limit.kind == "rate" else day_left
        args += [limit.kind, limit.amount, seconds]
    script = _scripts.get(id(redis)) or _scripts.setdefault(id(redis), redis.register_script(_TAKE))
    granted, retry_after = script(keys=[limit.key for limit in limits], args=args)
    return Grant(int(granted), float(retry_after))


# One registered script per connection pool owner, run by its SHA after the first call.
_scripts: dict[int, Script] = {}


def _next_utc_midnight(now: datetime) -> datetime:
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today + timedelta(days=1)
