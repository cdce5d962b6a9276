"""Quiet hours: 9am to 8pm in the recipient's own time, in every zone they may be in."""

from __future__ import annotations

from datetime import datetime

import pytest

from gotv import hours

START, END = 9, 20
# Offsets on Tuesday 2026-11-03, after every US zone has left daylight saving time.
NOVEMBER_ZONES = [
    ("America/New_York", "-05:00"),
    ("America/Chicago", "-06:00"),
    ("America/Phoenix", "-07:00"),
    ("Pacific/Honolulu", "-10:00"),
]


def at(moment: str) -> datetime:
    """An aware datetime from ISO 8601 with an explicit offset (or Z)."""
    return datetime.fromisoformat(moment)


def is_open(zones: str, moment: str, initial: bool = True) -> bool:
    return hours.is_open(zones, at(moment), START, END, initial=initial)


# --- Inside and outside the window, zone by zone -------------------------------------------


@pytest.mark.parametrize(("zone", "offset"), NOVEMBER_ZONES)
def test_a_recipient_may_be_texted_from_nine_in_the_morning_their_time(
    zone: str, offset: str
) -> None:
    assert is_open(zone, f"2026-11-03T09:00:00{offset}")


@pytest.mark.parametrize(("zone", "offset"), NOVEMBER_ZONES)
def test_a_recipient_may_not_be_texted_before_nine_in_the_morning_their_time(
    zone: str, offset: str
) -> None:
    assert not is_open(zone, f"2026-11-03T08:59:59{offset}")


@pytest.mark.parametrize(("zone", "offset"), NOVEMBER_ZONES)
def test_a_reply_may_be_sent_until_just_before_eight_in_the_evening_their_time(
    zone: str, offset: str
) -> None:
    assert is_open(zone, f"2026-11-03T19:59:59{offset}", initial=False)


@pytest.mark.parametrize(("zone", "offset"), NOVEMBER_ZONES)
def test_nothing_is_sent_from_eight_in_the_evening_their_time(zone: str, offset: str) -> None:
    assert not is_open(zone, f"2026-11-03T20:00:00{offset}", initial=False)


@pytest.mark.parametrize(("zone", "offset"), NOVEMBER_ZONES)
def test_nothing_is_sent_in_the_middle_of_the_night_their_time(zone: str, offset: str) -> None:
    assert not is_open(zone, f"2026-11-03T03:00:00{offset}", initial=False)


def test_the_same_instant_is_open_in_new_york_and_closed_in_chicago() -> None:
    assert is_open("America/New_York", "2026-11-03T14:30:00Z")
    assert not is_open("America/Chicago", "2026-11-03T14:30:00Z")


def test_phoenix_keeps_standard_time_in_summer_when_denver_does_not() -> None:
    # 15:30 UTC in July is 8:30 in Phoenix (MST all year) but 9:30 in Denver (MDT).
    assert not is_open("America/Phoenix", "2026-07-14T15:30:00Z")
    assert is_open("America/Denver", "2026-07-14T15:30:00Z")


def test_honolulu_opens_at_the_same_utc_time_in_summer_and_winter() -> None:
    for day in ("2026-01-13", "2026-07-14"):
        assert not is_open("Pacific/Honolulu", f"{day}T18:59:00Z")
        assert is_open("Pacific/Honolulu", f"{day}T19:00:00Z")


# --- Daylight saving time switch days in New York ------------------------------------------


def test_on_the_spring_forward_day_new_york_opens_at_nine_daylight_time() -> None:
    # 2026-03-08: clocks jump from 2:00 EST to 3:00 EDT; 9:00 EDT is 13:00 UTC.
    assert not is_open("America/New_York", "2026-03-08T12:59:00Z")
    assert is_open("America/New_York", "2026-03-08T13:00:00Z")


def test_on_the_spring_forward_day_new_york_closes_at_eight_daylight_time() -> None:
    assert is_open("America/New_York", "2026-03-08T23:59:00Z", initial=False)
    assert not is_open("America/New_York", "2026-03-09T00:00:00Z", initial=False)


def test_on_the_fall_back_day_new_york_opens_at_nine_standard_time() -> None:
    # 2026-11-01: clocks fall back from 2:00 EDT to 1:00 EST; 9:00 EST is 14:00 UTC.
    assert not is_open("America/New_York", "2026-11-01T13:59:00Z")
    assert is_open("America/New_York", "2026-11-01T14:00:00Z")


def test_on_the_fall_back_day_new_york_closes_at_eight_standard_time() -> None:
    assert is_open("America/New_York", "2026-11-02T00:59:00Z", initial=False)
    assert not is_open("America/New_York", "2026-11-02T01:00:00Z", initial=False)


def test_the_repeated_hour_of_the_fall_back_night_is_closed_both_times() -> None:
    assert not is_open("America/New_York", "2026-11-01T05:30:00Z", initial=False)  # 1:30 EDT
    assert not is_open("America/New_York", "2026-11-01T06:30:00Z", initial=False)  # 1:30 EST


# --- The closing buffer for initial texts --------------------------------------------------


def test_an_initial_text_may_be_sent_until_ten_minutes_before_closing() -> None:
    assert is_open("America/New_York", "2026-11-03T19:49:59-05:00")


def test_no_initial_text_is_sent_in_the_last_ten_minutes_before_closing() -> None:
    assert not is_open("America/New_York", "2026-11-03T19:50:00-05:00")


def test_a_reply_may_still_be_sent_in_the_last_ten_minutes_before_closing() -> None:
    assert is_open("America/New_York", "2026-11-03T19:55:00-05:00", initial=False)


def test_the_closing_buffer_applies_in_the_recipients_own_zone() -> None:
    # 19:55 in Honolulu is 05:55 UTC the next day.
    assert not is_open("Pacific/Honolulu", "2026-11-04T05:55:00Z")
    assert is_open("Pacific/Honolulu", "2026-11-04T05:55:00Z", initial=False)


# --- Contacts with several candidate zones -------------------------------------------------


def test_a_contact_in_several_zones_is_closed_while_one_of_them_is_still_before_nine() -> None:
    # 9:30 in New York, 8:30 in Chicago.
    assert not is_open("America/New_York America/Chicago", "2026-11-03T14:30:00Z")


def test_a_contact_in_several_zones_is_open_once_every_zone_is_open() -> None:
    assert is_open("America/New_York America/Chicago", "2026-11-03T15:00:00Z")


def test_a_contact_in_several_zones_closes_when_the_first_zone_closes() -> None:
    # 20:00 in New York, only 19:00 in Chicago.
    assert not is_open("America/New_York America/Chicago", "2026-11-04T01:00:00Z", initial=False)


# --- Unknown zones -------------------------------------------------------------------------


def test_an_empty_zone_list_stands_for_every_us_zone() -> None:
    assert {zone.key for zone in hours.zones_of("")} == set(hours.UNKNOWN_US_ZONES)


def test_a_contact_with_no_known_zone_waits_until_nine_in_honolulu() -> None:
    # 13:59 in New York, but 8:59 in Honolulu.
    assert not is_open("", "2026-11-03T18:59:00Z")
    assert is_open("", "2026-11-03T19:00:00Z")


def test_a_contact_with_no_known_zone_gets_no_initial_text_near_eight_in_new_york() -> None:
    assert not is_open("", "2026-11-03T19:50:00-05:00")


def test_a_zone_list_of_unrecognised_names_falls_back_to_every_us_zone() -> None:
    assert {zone.key for zone in hours.zones_of("Mars/Olympus_Mons ../etc")} == set(
        hours.UNKNOWN_US_ZONES
    )
    assert not is_open("Mars/Olympus_Mons", "2026-11-03T11:00:00-05:00")


def test_an_unrecognised_name_next_to_a_known_zone_is_ignored() -> None:
    assert is_open("Mars/Olympus_Mons America/New_York", "2026-11-03T11:00:00-05:00")


# --- Which zone lists are open, and when the next one opens --------------------------------


def test_open_zone_lists_keeps_only_the_lists_open_now() -> None:
    zone_lists = ["America/New_York", "Pacific/Honolulu", "America/New_York America/Chicago"]

    open_now = hours.open_zone_lists(zone_lists, at("2026-11-03T09:30:00-05:00"), START, END)

    assert open_now == ["America/New_York"]


def test_the_next_opening_before_nine_is_nine_that_morning() -> None:
    opening = hours.next_opening("America/New_York", at("2026-11-03T07:07:00-05:00"), START, END)

    assert opening == at("2026-11-03T09:00:00-05:00")


def test_the_next_opening_is_the_first_open_quarter_hour() -> None:
    # 9:30 in New York, 8:30 in Chicago: Chicago opens at 15:00 UTC, the next quarter-hour that
    # is open after the rounding up from 14:31.
    opening = hours.next_opening(
        "America/New_York America/Chicago", at("2026-11-03T14:31:20Z"), START, END
    )

    assert opening == at("2026-11-03T15:00:00Z")


def test_the_next_opening_in_the_closing_buffer_is_nine_the_next_morning() -> None:
    opening = hours.next_opening("America/New_York", at("2026-11-03T19:52:00-05:00"), START, END)

    assert opening == at("2026-11-04T09:00:00-05:00")


def test_the_next_opening_for_several_zones_waits_for_the_latest_to_open() -> None:
    opening = hours.next_opening(
        "America/New_York Pacific/Honolulu", at("2026-11-03T07:00:00-05:00"), START, END
    )

    assert opening == at("2026-11-03T09:00:00-10:00")


def test_the_next_opening_on_the_fall_back_day_is_nine_standard_time() -> None:
    opening = hours.next_opening("America/New_York", at("2026-11-01T05:00:00Z"), START, END)

    assert opening == at("2026-11-01T14:00:00Z")


def test_a_window_that_never_opens_has_no_next_opening() -> None:
    with pytest.raises(ValueError):
        hours.next_opening("America/New_York", at("2026-11-03T07:00:00-05:00"), 20, 9)
