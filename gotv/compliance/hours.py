"""Quiet hours: whether a recipient may be texted now, in their own local time.

A contact carries every IANA zone it may be in: its ZIP's, and its number's area code's
(`gotv.lists.contacts.place_zones`). Where a person is is uncertain (a cell keeps its area code
when its owner moves; a voter file's address may be old), so a text waits until it is allowed
in every one of them. When the two disagree the list reads ``"<ZIP's zone> | <area code's
zones>"``, and a campaign that trusts the ZIP alone (`trust_zip=True`) reads only the part
before the bar; a list without a bar has one source, or two that agree. With no zone known at
all we assume every US zone, the strictest common answer.
Local time always comes from the IANA database, so daylight saving time, Arizona (no DST) and
Hawaii need no special cases; unlike Spoke, we never store a fixed UTC offset or guess DST
from a reference zone, and windows may end on any minute rather than on whole hours.

The effective window on a local day is the campaign's [start_hour, end_hour) narrowed by the
rule of each of the contact's states for that day. State rules only ever narrow the campaign's
window, never widen it.

State rules live in ``gotv/data/state_quiet_hours.csv``, one row per state and class of days:

``state``
    Two-letter USPS code.
``days``
    ``daily``; a weekday (``mon`` ... ``sun``); a weekday range such as ``mon-fri`` or
    ``mon-sat``; or ``holiday``. A state names each class of day at most once.
``start``, ``end``
    ``HH:MM`` local wall-clock time, ``[start, end)``, ``end`` up to ``24:00``; both empty
    means no texting at all on those days. Times fall on quarter-hours, which is what lets
    ``next_opening`` find openings by stepping through quarter-hours.
``verified``
    ``yes`` when the research read the statute or an official summary, ``no`` for rows taken
    from industry summary tables only.
``source``, ``notes``
    The citation (statute and URL) and what we decided where the research was unclear, e.g.
    that a statute exempts political texts but we apply it anyway as a conservative default.

On a date that is a public holiday in the state, per ``holidays.country_holidays("US",
subdiv=state)`` (federal holidays, the state's own, and the days they are observed on), a
state's ``holiday`` row replaces its weekday row; a state without one keeps its weekday hours.
A state with no row for a day places no limit on it.

``state`` arguments are space-separated like zone lists: Florida and Oklahoma presume an
in-state area code is a resident, so a caller may pass both the address state and the
area-code state, and every one of their rules applies. An empty ``state`` (no address, or not
yet passed by the caller) applies only the campaign window.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from importlib import resources
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

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

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # in date.weekday() order
HOLIDAY = "holiday"
STATE_TABLE = "state_quiet_hours.csv"
QUARTER_HOUR = timedelta(minutes=15)
# Long enough to cross a weekend, a Sunday ban and a Monday holiday with room to spare.
NEXT_OPENING_HORIZON = timedelta(days=8)


@dataclass(frozen=True)
class Window:
    """[start, end) as wall-clock time since local midnight; empty when start >= end."""

    start: timedelta
    end: timedelta

    @property
    def is_closed(self) -> bool:
        return self.start >= self.end

    def __and__(self, other: Window) -> Window:
        """The part of the day both windows allow."""
        return Window(max(self.start, other.start), min(self.end, other.end))

    def admits(self, since_midnight: timedelta, buffer: timedelta = timedelta(0)) -> bool:
        """True when this wall-clock time is inside the window and `buffer` before its end."""
        return self.start <= since_midnight < self.end - buffer


CLOSED = Window(timedelta(0), timedelta(0))


@dataclass(frozen=True)
class StateRule:
    """One row of the state table: the window a state allows on some classes of day."""

    state: str
    days: frozenset[str]
    window: Window
    verified: bool
    source: str
    notes: str


# --- The state table -------------------------------------------------------------------------


@cache
def state_rules() -> tuple[StateRule, ...]:
    """Every row of the state table, parsed; raises ValueError on a malformed row."""
    text = resources.files("gotv").joinpath("data", STATE_TABLE).read_text(encoding="utf-8")
    return tuple(
        _parse_row(row, line) for line, row in enumerate(csv.DictReader(text.splitlines()), 2)
    )


def _parse_row(row: Mapping[str, str], line: int) -> StateRule:
    try:
        return StateRule(
            state=row["state"].strip().upper(),
            days=_parse_days(row["days"].strip().lower()),
            window=_parse_window(row["start"].strip(), row["end"].strip()),
            verified={"yes": True, "no": False}[row["verified"].strip().lower()],
            source=row["source"].strip(),
            notes=row["notes"].strip(),
        )
    except (KeyError, ValueError, AttributeError) as error:
        raise ValueError(f"{STATE_TABLE} line {line}: {error!r}") from error


def _parse_days(days: str) -> frozenset[str]:
    if days == "daily":
        return frozenset(WEEKDAYS)
    if days == HOLIDAY or days in WEEKDAYS:
        return frozenset({days})
    first, _, last = days.partition("-")
    if first in WEEKDAYS and last in WEEKDAYS and WEEKDAYS.index(first) < WEEKDAYS.index(last):
        return frozenset(WEEKDAYS[WEEKDAYS.index(first) : WEEKDAYS.index(last) + 1])
    raise ValueError(f"unknown days {days!r}")


def _parse_window(start: str, end: str) -> Window:
    if not start and not end:
        return CLOSED
    window = Window(_parse_time(start), _parse_time(end))
    if window.is_closed:
        raise ValueError(f"window {start}-{end} is empty; leave both blank for a closed day")
    return window


def _parse_time(text: str) -> timedelta:
    hour, minute = (int(part) for part in text.split(":"))
    moment = timedelta(hours=hour, minutes=minute)
    if not (0 <= minute < 60 and timedelta(0) <= moment <= timedelta(hours=24)):
        raise ValueError(f"time {text!r} is not HH:MM between 00:00 and 24:00")
    return moment


@cache
def _rules_by_state() -> dict[str, dict[str, Window]]:
    table: dict[str, dict[str, Window]] = {}
    for rule in state_rules():
        by_day = table.setdefault(rule.state, {})
        for day in rule.days:
            # Two rows for the same day would make the table's meaning depend on row order.
            if day in by_day:
                raise ValueError(f"{STATE_TABLE}: {rule.state} has two rows for {day}")
            by_day[day] = rule.window
    return table


def rules_for(state: str) -> Mapping[str, Window]:
    """A state's windows by class of day (``mon`` ... ``sun``, ``holiday``); empty if none."""
    return _rules_by_state().get(state.upper(), {})


@cache
def _holiday_calendar(state: str) -> holidays.HolidayBase:
    return holidays.country_holidays("US", subdiv=state)


def state_window(state: str, day: date) -> Window | None:
    """The window a state's rule allows on this local date, or None when it sets no limit."""
    rules = rules_for(state)
    if HOLIDAY in rules and day in _holiday_calendar(state.upper()):
        return rules[HOLIDAY]
    return rules.get(WEEKDAYS[day.weekday()])


def effective_window(day: date, start_hour: int, end_hour: int, state: str = "") -> Window:
    """The campaign's window on this local date, narrowed by every listed state's rule."""
    window = Window(timedelta(hours=start_hour), timedelta(hours=end_hour))
    for code in state.split():
        rule = state_window(code, day)
        if rule is not None:
            window &= rule
    return window


# --- Zones and the window in each -------------------------------------------------------------


ZIP_SEPARATOR = "|"


def combine_zones(zip_zone: str, number_zones: str) -> str:
    """A contact's zone list from its ZIP's zone and its number's zones (space-separated):
    one list when they agree or one is unknown, else ``"<ZIP's> | <the number's others>"``."""
    others = [zone for zone in number_zones.split() if zone != zip_zone]
    if not zip_zone or not others:
        return zip_zone or number_zones
    return f"{zip_zone} {ZIP_SEPARATOR} {' '.join(others)}"


def zones_of(time_zones: str, trust_zip: bool = False) -> tuple[ZoneInfo, ...]:
    """Parse a contact's space-separated zone list, falling back to every US zone.

    With `trust_zip`, only the ZIP's zone where the list names one apart (before the bar).
    """
    zip_zones, separator, _ = time_zones.partition(ZIP_SEPARATOR)
    names = zip_zones if trust_zip and separator and zip_zones.strip() else time_zones
    zones = []
    for name in names.replace(ZIP_SEPARATOR, " ").split():
        try:
            zones.append(ZoneInfo(name))
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return tuple(zones) or tuple(ZoneInfo(name) for name in UNKNOWN_US_ZONES)


def _since_midnight(local: datetime) -> timedelta:
    # Wall-clock time, so both passes through the repeated hour of a fall-back night read 1:30.
    return timedelta(
        hours=local.hour, minutes=local.minute, seconds=local.second, microseconds=local.microsecond
    )


def _window_in(local: datetime, start_hour: int, end_hour: int, state: str) -> Window:
    return effective_window(local.date(), start_hour, end_hour, state)


def is_open(
    time_zones: str,
    now: datetime,
    start_hour: int,
    end_hour: int,
    initial: bool = True,
    state: str = "",
    trust_zip: bool = False,
) -> bool:
    """True when `now` is inside the effective window in every candidate zone.

    The effective window is [start_hour, end_hour) local time narrowed by the rule of each
    state in `state` for that local day (weekday, Saturday, Sunday or holiday). Initial
    messages must also leave CLOSING_BUFFER before the effective window ends, so a state that
    closes earlier than the campaign moves the buffer with it.
    """
    buffer = CLOSING_BUFFER if initial else timedelta(0)
    for zone in zones_of(time_zones, trust_zip):
        local = now.astimezone(zone)
        if not _window_in(local, start_hour, end_hour, state).admits(
            _since_midnight(local), buffer
        ):
            return False
    return True


def closes_at(
    time_zones: str,
    now: datetime,
    start_hour: int,
    end_hour: int,
    state: str = "",
    trust_zip: bool = False,
) -> datetime | None:
    """When the recipient's window closes today, in UTC, or None if closed (to replies) now.

    The earliest close across candidate zones of the campaign window narrowed by the state
    rules for each zone's local day, without the initial-message buffer: a message queued at
    Twilio must not be delivered after this instant. Returned in UTC so that subtracting
    `now` gives elapsed time whatever zone `now` is in.
    """
    if not is_open(
        time_zones, now, start_hour, end_hour, initial=False, state=state, trust_zip=trust_zip
    ):
        return None
    closings = []
    for zone in zones_of(time_zones, trust_zip):
        local = now.astimezone(zone)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0, fold=0)
        # Adding to an aware datetime moves its wall clock, so 20:00 stays 20:00 on a DST day.
        closes = midnight + _window_in(local, start_hour, end_hour, state).end
        closings.append(closes.astimezone(UTC))
    return min(closings)


def open_pairs(
    pairs: Iterable[tuple[str, str]],
    now: datetime,
    start_hour: int,
    end_hour: int,
    trust_zip: bool = False,
) -> list[tuple[str, str]]:
    """Of distinct (time_zones, state) pairs, in order, those that may get an initial text now."""
    return [
        (zones, state)
        for zones, state in pairs
        if is_open(zones, now, start_hour, end_hour, state=state, trust_zip=trust_zip)
    ]


def next_opening(
    time_zones: str,
    now: datetime,
    start_hour: int,
    end_hour: int,
    state: str = "",
    trust_zip: bool = False,
) -> datetime:
    """When the recipient may next receive an initial text: `now` itself if already open.

    Otherwise the first quarter-hour after `now` at which the effective window is open in
    every candidate zone (state windows start on quarter-hours, so this is exact), in the
    zone of `now`.

    :raise ValueError: when the window does not open within NEXT_OPENING_HORIZON, e.g. an empty
        campaign window, or one that lies wholly outside a state's hours.
    """
    if is_open(time_zones, now, start_hour, end_hour, state=state, trust_zip=trust_zip):
        return now
    # Step in UTC: adding to a zoned datetime moves its wall clock, which skips or repeats
    # an hour on DST days.
    utc = now.astimezone(UTC)
    moment = utc.replace(minute=utc.minute - utc.minute % 15, second=0, microsecond=0)
    if moment < utc:
        moment += QUARTER_HOUR
    while moment - utc <= NEXT_OPENING_HORIZON:
        if is_open(time_zones, moment, start_hour, end_hour, state=state, trust_zip=trust_zip):
            return moment.astimezone(now.tzinfo)
        moment += QUARTER_HOUR
    raise ValueError("the texting window never opens")
