"""Quiet hours: whether a recipient may be texted now, in their own local time.

A contact carries every IANA zone it may be in (from its ZIP, else its number's area code).
It may be texted only when the time is inside the campaign's window in every one of them; with
no zone known at all we assume the contiguous United States, the strictest common answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# Used when neither the ZIP nor the number tells us where the recipient is.
UNKNOWN_US_ZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
)
# No initial text this close to the window's end, so a conversation does not start at closing.
CLOSING_BUFFER = timedelta(minutes=10)


def zones_of(time_zones: str) -> tuple[ZoneInfo, ...]:
    """Parse a contact's space-separated zone list, falling back to every US zone."""
    zones = []
    for name in time_zones.split():
        try:
            zones.append(ZoneInfo(name))
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return tuple(zones) or tuple(ZoneInfo(name) for name in UNKNOWN_US_ZONES)


def is_open(
    time_zones: str, now: datetime, start_hour: int, end_hour: int, initial: bool = True
) -> bool:
    """True when `now` is inside [start_hour, end_hour) local time in every candidate zone.

    Initial messages must also leave CLOSING_BUFFER before the window ends.
    """
    buffer = CLOSING_BUFFER if initial else timedelta(0)
    return all(
        _open_in(now.astimezone(zone), start_hour, end_hour, buffer)
        for zone in zones_of(time_zones)
    )


def _open_in(local: datetime, start_hour: int, end_hour: int, buffer: timedelta) -> bool:
    opens = local.replace(hour=start_hour, minute=0, second=0, microsecond=0)
    closes = local.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(hours=end_hour)
    return opens <= local < closes - buffer


def open_zone_lists(
    zone_lists: Iterable[str], now: datetime, start_hour: int, end_hour: int
) -> list[str]:
    """Of the distinct zone lists in a campaign, the ones that may receive an initial text now."""
    return [zones for zones in zone_lists if is_open(zones, now, start_hour, end_hour)]


def next_opening(time_zones: str, now: datetime, start_hour: int, end_hour: int) -> datetime:
    """The first quarter-hour from `now` at which the recipient may receive an initial text."""
    moment = now.replace(second=0, microsecond=0)
    moment += timedelta(minutes=-moment.minute % 15)
    for _ in range(4 * 24 * 8):
        if is_open(time_zones, moment, start_hour, end_hour):
            return moment
        moment += timedelta(minutes=15)
    raise ValueError("the texting window never opens")
