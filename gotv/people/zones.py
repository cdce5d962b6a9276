"""The organization's time zone: organizers read every time in it (the dashboard, review, the
audit log, operations, exports), set on the Settings page.

Voters' texting hours are never in this zone: they are each voter's own (compliance.hours).
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from gotv.models import DEFAULT_TIME_ZONE, Organization

# Offered first on the Settings page: the United States' zones, west to east of the mainland,
# then its territories.
US_ZONES = (
    ("America/New_York", "Eastern"),
    ("America/Chicago", "Central"),
    ("America/Denver", "Mountain"),
    ("America/Phoenix", "Arizona (no daylight saving)"),
    ("America/Los_Angeles", "Pacific"),
    ("America/Anchorage", "Alaska"),
    ("Pacific/Honolulu", "Hawaii"),
    ("America/Puerto_Rico", "Puerto Rico and the Virgin Islands"),
    ("Pacific/Guam", "Guam and the Northern Mariana Islands"),
    ("Pacific/Pago_Pago", "American Samoa"),
)


class UnknownZone(ValueError):
    """Not a time zone of the IANA database."""


def check_zone(name: str) -> str:
    """The zone's name. :raise UnknownZone: for a name the IANA database does not know."""
    name = name.strip()
    if name not in all_zones():
        raise UnknownZone(f"{name or 'An empty name'} is not a time zone gotv knows.")
    return name


@cache
def all_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def zone_choices() -> list[tuple[str, str]]:
    """(zone, label) for the Settings page: the US zones, then every other zone by name."""
    us = [(name, f"{label} ({name})") for name, label in US_ZONES]
    named = {name for name, _label in US_ZONES}
    others = sorted(zone for zone in all_zones() if zone not in named and "/" in zone)
    return us + [("UTC", "UTC")] + [(zone, zone.replace("_", " ")) for zone in others]


@cache
def zone_named(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIME_ZONE)


def organization_zone(organization: Organization) -> ZoneInfo:
    """The zone the organization's people read times in."""
    return zone_named(organization.time_zone or DEFAULT_TIME_ZONE)


def local(moment: datetime, zone: ZoneInfo) -> datetime:
    """`moment` (aware, or naive UTC) as the wall clock in `zone`."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo("UTC"))
    return moment.astimezone(zone)


def iso(moment: datetime | None, zone: ZoneInfo) -> str:
    """ISO 8601 in `zone`, to the second, with its offset ("2026-11-03T11:00:05-05:00"); ""
    for no time. What exports write."""
    return "" if moment is None else local(moment, zone).isoformat(timespec="seconds")


def shown(moment: datetime | None, zone: ZoneInfo, form: str = "%Y-%m-%d %H:%M") -> str:
    """For a page: the wall clock in `zone` with the zone's abbreviation ("2026-11-03 11:00
    EST"); "" for no time."""
    if moment is None:
        return ""
    clock = local(moment, zone)
    return f"{clock.strftime(form)} {clock.tzname()}"
