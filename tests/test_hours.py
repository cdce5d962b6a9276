"""Quiet hours: 9am to 8pm in the recipient's own time, in every zone they may be in."""

from __future__ import annotations

import csv
from datetime import date, datetime, timedelta
from importlib import resources
from zoneinfo import ZoneInfo

import holidays
import pytest

from gotv.compliance import hours

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


def test_open_pairs_keeps_only_the_zone_lists_open_now() -> None:
    zone_lists = ["America/New_York", "Pacific/Honolulu", "America/New_York America/Chicago"]
    pairs = [(zones, "") for zones in zone_lists]

    open_now = hours.open_pairs(pairs, at("2026-11-03T09:30:00-05:00"), START, END)

    assert open_now == [("America/New_York", "")]


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


# --- The state table -------------------------------------------------------------------------

USPS_STATES = set(
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH "
    "NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY".split()
)
TABLE_COLUMNS = ["state", "days", "start", "end", "verified", "source", "notes"]


def table_rows() -> list[dict[str, str]]:
    text = resources.files("gotv").joinpath("data", hours.STATE_TABLE).read_text("utf-8")
    reader = csv.DictReader(text.splitlines())
    assert reader.fieldnames == TABLE_COLUMNS
    return list(reader)


def test_every_row_of_the_state_table_names_a_state_by_its_usps_code() -> None:
    assert {row["state"] for row in table_rows()} <= USPS_STATES


def test_every_row_of_the_state_table_cites_a_source_with_a_link() -> None:
    for row in table_rows():
        assert "http" in row["source"], row


def test_unverified_rows_say_so_and_verified_ones_do_not() -> None:
    for row in table_rows():
        assert row["verified"] in ("yes", "no"), row
        assert ("unverified" in row["source"].lower()) == (row["verified"] == "no"), row


def test_the_state_table_parses_with_at_most_one_rule_per_state_and_day() -> None:
    rules = hours.state_rules()

    assert len(rules) == len(table_rows())
    for state in {rule.state for rule in rules}:
        assert set(hours.rules_for(state)) <= {*hours.WEEKDAYS, hours.HOLIDAY}


def test_state_windows_start_and_end_on_quarter_hours_so_next_opening_is_exact() -> None:
    for rule in hours.state_rules():
        for moment in (rule.window.start, rule.window.end):
            assert moment % hours.QUARTER_HOUR == timedelta(0), rule


def test_states_with_a_holiday_rule_are_known_to_the_holiday_calendar() -> None:
    for rule in hours.state_rules():
        if hours.HOLIDAY in rule.days:
            assert holidays.country_holidays("US", subdiv=rule.state, years=2026)


def test_the_table_covers_the_states_the_issue_names() -> None:
    assert {"FL", "OK", "MD", "WA", "RI", "AL", "LA", "MS", "UT"} <= {
        rule.state for rule in hours.state_rules()
    }


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        ("daily", set(hours.WEEKDAYS)),
        ("mon-fri", {"mon", "tue", "wed", "thu", "fri"}),
        ("sat", {"sat"}),
        ("holiday", {"holiday"}),
    ],
)
def test_day_classes_in_the_table_read_as_documented(days: str, expected: set[str]) -> None:
    assert hours._parse_days(days) == expected


@pytest.mark.parametrize(("start", "end"), [("20:00", "08:00"), ("8", "20:00"), ("08:00", "")])
def test_a_malformed_window_in_the_table_is_rejected(start: str, end: str) -> None:
    with pytest.raises(ValueError):
        hours._parse_window(start, end)


def test_a_state_without_a_rule_leaves_the_campaign_window_alone() -> None:
    assert hours.state_window("NY", date(2026, 11, 1)) is None
    assert hours.effective_window(date(2026, 11, 1), 8, 21, "NY") == hours.Window(
        timedelta(hours=8), timedelta(hours=21)
    )


# --- State rules on top of the campaign window ---------------------------------------------
# 2026-11-03 is a Tuesday; 2026-11-07 a Saturday; 2026-11-08 a Sunday. All offsets standard.

EIGHT_TO_EIGHT = [
    ("FL", "America/New_York", "-05:00"),
    ("OK", "America/Chicago", "-06:00"),
    ("MD", "America/New_York", "-05:00"),
    ("WA", "America/Los_Angeles", "-08:00"),
]


def state_open(
    zones: str,
    moment: str,
    state: str,
    window: tuple[int, int] = (START, END),
    initial: bool = True,
) -> bool:
    return hours.is_open(zones, at(moment), *window, initial=initial, state=state)


@pytest.mark.parametrize(("state", "zone", "offset"), EIGHT_TO_EIGHT)
def test_an_eight_to_eight_state_still_waits_for_a_nine_oclock_campaign_window(
    state: str, zone: str, offset: str
) -> None:
    assert not state_open(zone, f"2026-11-03T08:30:00{offset}", state)
    assert state_open(zone, f"2026-11-03T09:00:00{offset}", state)


@pytest.mark.parametrize(("state", "zone", "offset"), EIGHT_TO_EIGHT)
def test_an_eight_to_eight_state_allows_eight_oclock_when_the_campaign_does(
    state: str, zone: str, offset: str
) -> None:
    assert not state_open(zone, f"2026-11-03T07:59:00{offset}", state, (8, 21))
    assert state_open(zone, f"2026-11-03T08:00:00{offset}", state, (8, 21))


@pytest.mark.parametrize(("state", "zone", "offset"), EIGHT_TO_EIGHT)
def test_an_eight_to_eight_state_cuts_a_campaign_window_to_eight_in_the_evening(
    state: str, zone: str, offset: str
) -> None:
    assert state_open(zone, f"2026-11-03T19:59:00{offset}", state, (8, 21), initial=False)
    assert not state_open(zone, f"2026-11-03T20:00:00{offset}", state, (8, 21), initial=False)
    # The same window and hour elsewhere is still open.
    assert state_open(zone, f"2026-11-03T20:30:00{offset}", "NY", (8, 21))


def test_the_state_code_is_read_without_regard_to_case() -> None:
    assert not state_open("America/New_York", "2026-11-03T20:00:00-05:00", "fl", (8, 21))


def test_rhode_island_closes_at_six_on_weekdays() -> None:
    assert state_open("America/New_York", "2026-11-03T17:59:00-05:00", "RI", initial=False)
    assert not state_open("America/New_York", "2026-11-03T18:00:00-05:00", "RI", initial=False)


def test_rhode_island_allows_texts_from_ten_to_five_on_saturday() -> None:
    assert not state_open("America/New_York", "2026-11-07T09:59:00-05:00", "RI")
    assert state_open("America/New_York", "2026-11-07T10:00:00-05:00", "RI")
    assert state_open("America/New_York", "2026-11-07T16:59:00-05:00", "RI", initial=False)
    assert not state_open("America/New_York", "2026-11-07T17:00:00-05:00", "RI", initial=False)


@pytest.mark.parametrize("state", ["RI", "AL", "LA", "MS", "UT"])
def test_states_that_ban_sunday_texts_are_closed_all_sunday(state: str) -> None:
    zone = "America/New_York" if state == "RI" else "America/Chicago"
    for hour in range(24):
        assert not state_open(zone, f"2026-11-08T{hour:02}:30:00-06:00", state, (0, 24))


def test_the_day_after_a_sunday_ban_opens_as_usual() -> None:
    assert state_open("America/Chicago", "2026-11-09T09:00:00-06:00", "MS")


def test_texas_allows_sunday_texts_only_from_noon() -> None:
    assert not state_open("America/Chicago", "2026-11-08T11:59:00-06:00", "TX")
    assert state_open("America/Chicago", "2026-11-08T12:00:00-06:00", "TX")
    assert state_open("America/Chicago", "2026-11-07T09:00:00-06:00", "TX")


def test_kentucky_waits_until_ten() -> None:
    assert not state_open("America/New_York", "2026-11-03T09:59:00-05:00", "KY")
    assert state_open("America/New_York", "2026-11-03T10:00:00-05:00", "KY")


@pytest.mark.parametrize(
    "day",
    [
        "2026-08-10",  # Victory Day, a Rhode Island holiday only
        "2026-11-11",  # Veterans Day, a Wednesday
        "2026-07-03",  # Friday, the day Independence Day is observed
    ],
)
def test_rhode_island_is_closed_on_its_legal_holidays(day: str) -> None:
    assert not state_open("America/New_York", f"{day}T12:00:00-04:00", "RI")
    assert state_open("America/New_York", f"{day}T12:00:00-04:00", "MA")


def test_louisiana_is_closed_on_mardi_gras() -> None:
    assert not state_open("America/Chicago", "2026-02-17T12:00:00-06:00", "LA")
    assert state_open("America/Chicago", "2026-02-18T12:00:00-06:00", "LA")


def test_louisiana_lists_election_day_as_a_legal_holiday_so_it_is_closed() -> None:
    # Deliberately surfaced: the conservative default blocks Louisiana GOTV on Election Day.
    assert not state_open("America/Chicago", "2026-11-03T12:00:00-06:00", "LA")


def test_pennsylvania_is_closed_only_on_holidays() -> None:
    assert not state_open("America/New_York", "2026-11-27T12:00:00-05:00", "PA")
    assert state_open("America/New_York", "2026-11-28T19:00:00-05:00", "PA")


def test_a_holiday_is_the_recipients_local_date() -> None:
    # Pennsylvania limits only holidays. 2026-11-28 00:30 in New York is a plain Saturday, but
    # in Honolulu it is still 19:30 on Friday 2026-11-27, the Day After Thanksgiving.
    moment = "2026-11-28T05:30:00Z"
    assert state_open("America/New_York", moment, "PA", (0, 24))
    assert not state_open("Pacific/Honolulu", moment, "PA", (0, 24))


def test_every_listed_state_applies_to_a_contact_in_two_states() -> None:
    # An address in Massachusetts and a Rhode Island area code: Rhode Island's six o'clock.
    assert state_open("America/New_York", "2026-11-03T17:00:00-05:00", "MA")
    assert not state_open("America/New_York", "2026-11-03T18:30:00-05:00", "MA RI")
    assert not state_open("America/New_York", "2026-11-08T12:00:00-05:00", "MA RI")


# --- State rules across zones, DST, Arizona and Hawaii -------------------------------------


def test_a_state_rule_holds_on_the_spring_forward_day() -> None:
    # 2026-03-08 is a Sunday: Texas opens at noon daylight time, 17:00 UTC.
    assert not state_open("America/Chicago", "2026-03-08T16:59:00Z", "TX")
    assert state_open("America/Chicago", "2026-03-08T17:00:00Z", "TX")


def test_a_state_rule_holds_on_the_fall_back_day() -> None:
    # 2026-11-01 is a Sunday: Texas opens at noon standard time, 18:00 UTC.
    assert not state_open("America/Chicago", "2026-11-01T17:59:00Z", "TX")
    assert state_open("America/Chicago", "2026-11-01T18:00:00Z", "TX")


def test_florida_closes_at_eight_daylight_time_in_summer() -> None:
    # 20:00 EDT is 00:00 UTC.
    assert state_open("America/New_York", "2026-07-14T23:59:00Z", "FL", (8, 21), initial=False)
    assert not state_open("America/New_York", "2026-07-15T00:00:00Z", "FL", (8, 21), initial=False)


def test_a_state_rule_in_arizona_follows_standard_time_all_year() -> None:
    # Utah's eight o'clock start for a contact whose zone is Phoenix (area code fallback):
    # 15:00 UTC is 8:00 MST in both January and July.
    for day in ("2026-01-13", "2026-07-14"):
        assert not state_open("America/Phoenix", f"{day}T14:59:00Z", "UT", (8, 21))
        assert state_open("America/Phoenix", f"{day}T15:00:00Z", "UT", (8, 21))


def test_a_state_rule_in_honolulu_closes_at_the_same_utc_time_all_year() -> None:
    for day in ("2026-01-14", "2026-07-15"):
        assert state_open("Pacific/Honolulu", f"{day}T05:59:00Z", "WA", (8, 21), initial=False)
        assert not state_open("Pacific/Honolulu", f"{day}T06:00:00Z", "WA", (8, 21), initial=False)


def test_a_multi_zone_contact_in_a_state_closes_when_its_first_zone_closes() -> None:
    # Florida's panhandle: 19:30 in Chicago is already 20:30 in New York.
    zones = "America/New_York America/Chicago"
    assert not state_open(zones, "2026-11-04T01:30:00Z", "FL", (8, 21), initial=False)
    assert state_open(zones, "2026-11-04T00:30:00Z", "FL", (8, 21), initial=False)


def test_a_multi_zone_contact_in_a_state_opens_when_its_last_zone_opens() -> None:
    # Kentucky spans both zones: 10:00 in Chicago is 11:00 in New York.
    zones = "America/New_York America/Chicago"
    assert not state_open(zones, "2026-11-03T15:30:00Z", "KY")
    assert state_open(zones, "2026-11-03T16:00:00Z", "KY")


# --- The closing buffer against a state-imposed close --------------------------------------


def test_no_initial_text_in_the_last_ten_minutes_before_a_state_closes() -> None:
    assert state_open("America/New_York", "2026-11-03T17:49:59-05:00", "RI")
    assert not state_open("America/New_York", "2026-11-03T17:50:00-05:00", "RI")
    assert state_open("America/New_York", "2026-11-03T17:55:00-05:00", "RI", initial=False)


def test_the_buffer_applies_to_the_state_close_not_the_campaign_close() -> None:
    assert not state_open("America/New_York", "2026-11-03T19:50:00-05:00", "FL", (8, 21))
    assert state_open("America/New_York", "2026-11-03T19:50:00-05:00", "NY", (8, 21))


# --- When the window closes ----------------------------------------------------------------


def test_closes_at_is_the_campaign_close_without_a_state_rule() -> None:
    closes = hours.closes_at("America/New_York", at("2026-11-03T10:00:00-05:00"), START, END)

    assert closes == at("2026-11-03T20:00:00-05:00")
    assert closes is not None and closes.utcoffset() == timedelta(0)


def test_closes_at_is_the_state_close_when_it_is_earlier() -> None:
    closes = hours.closes_at("America/New_York", at("2026-11-03T10:00:00-05:00"), 8, 21, state="FL")

    assert closes == at("2026-11-03T20:00:00-05:00")


def test_closes_at_is_five_on_a_rhode_island_saturday() -> None:
    closes = hours.closes_at(
        "America/New_York", at("2026-11-07T11:00:00-05:00"), START, END, state="RI"
    )

    assert closes == at("2026-11-07T17:00:00-05:00")


def test_closes_at_is_the_earliest_close_across_zones() -> None:
    closes = hours.closes_at(
        "America/New_York America/Chicago", at("2026-11-03T16:00:00Z"), START, END, state="KY"
    )

    assert closes == at("2026-11-03T21:00:00-05:00") - timedelta(hours=1)


def test_closes_at_counts_the_real_hours_on_a_dst_day() -> None:
    # 2026-03-08: 9:00 EDT is 13:00 UTC and 20:00 EDT is 00:00 UTC, eleven real hours later.
    now = at("2026-03-08T13:00:00Z")

    closes = hours.closes_at("America/New_York", now, START, END)

    assert closes is not None and closes - now == timedelta(hours=11)


def test_closes_at_is_still_set_inside_the_closing_buffer() -> None:
    closes = hours.closes_at("America/New_York", at("2026-11-03T19:55:00-05:00"), START, END)

    assert closes == at("2026-11-03T20:00:00-05:00")


@pytest.mark.parametrize(
    ("moment", "state"),
    [
        ("2026-11-03T08:00:00-05:00", ""),
        ("2026-11-03T20:00:00-05:00", ""),
        ("2026-11-08T12:00:00-05:00", "RI"),
        ("2026-11-03T18:30:00-05:00", "RI"),
    ],
)
def test_closes_at_is_none_when_already_closed(moment: str, state: str) -> None:
    assert hours.closes_at("America/New_York", at(moment), START, END, state=state) is None


# --- Open (zones, state) pairs ----------------------------------------------------------------


def test_open_pairs_keeps_only_the_pairs_open_now_in_order() -> None:
    pairs = [
        ("America/New_York", "RI"),
        ("America/New_York", "MA"),
        ("America/Chicago", "TX"),
        ("America/New_York", ""),
        ("America/New_York America/Chicago", "KY"),
    ]

    # Sunday 2026-11-08, 11:00 in New York, 10:00 in Chicago.
    open_now = hours.open_pairs(pairs, at("2026-11-08T16:00:00Z"), START, END)

    assert open_now == [
        ("America/New_York", "MA"),
        ("America/New_York", ""),
        ("America/New_York America/Chicago", "KY"),
    ]


def test_open_pairs_respects_the_closing_buffer() -> None:
    pairs = [("America/New_York", "RI"), ("America/New_York", "")]

    assert hours.open_pairs(pairs, at("2026-11-03T17:55:00-05:00"), START, END) == [
        ("America/New_York", "")
    ]


# --- The next opening with a state rule ------------------------------------------------------


def test_the_next_opening_is_now_when_already_open() -> None:
    now = at("2026-11-03T10:07:31-05:00")

    assert hours.next_opening("America/New_York", now, START, END) == now


def test_the_next_opening_from_seconds_past_a_quarter_hour_is_a_later_quarter_hour() -> None:
    now = at("2026-11-03T08:45:30-05:00")

    assert hours.next_opening("America/New_York", now, START, END) == at(
        "2026-11-03T09:00:00-05:00"
    )


def test_the_next_rhode_island_opening_after_saturday_closing_is_monday_at_nine() -> None:
    opening = hours.next_opening(
        "America/New_York", at("2026-11-07T16:55:00-05:00"), START, END, state="RI"
    )

    assert opening == at("2026-11-09T09:00:00-05:00")


def test_the_next_rhode_island_opening_skips_a_monday_holiday() -> None:
    # Saturday 2026-08-08 after five; Sunday closed; Monday 2026-08-10 is Victory Day.
    opening = hours.next_opening(
        "America/New_York", at("2026-08-08T18:00:00-04:00"), START, END, state="RI"
    )

    assert opening == at("2026-08-11T09:00:00-04:00")


def test_the_next_opening_on_a_rhode_island_saturday_morning_is_ten() -> None:
    opening = hours.next_opening(
        "America/New_York", at("2026-11-07T08:00:00-05:00"), START, END, state="RI"
    )

    assert opening == at("2026-11-07T10:00:00-05:00")


def test_the_next_opening_keeps_the_zone_of_now() -> None:
    now = datetime(2026, 11, 3, 7, 0, tzinfo=ZoneInfo("America/New_York"))

    opening = hours.next_opening("America/New_York", now, START, END)

    assert opening == at("2026-11-03T09:00:00-05:00")
    assert opening.tzinfo == now.tzinfo


def test_a_campaign_window_wholly_outside_a_states_hours_never_opens() -> None:
    with pytest.raises(ValueError):
        hours.next_opening("America/New_York", at("2026-11-03T07:00:00-05:00"), 18, 21, state="RI")
