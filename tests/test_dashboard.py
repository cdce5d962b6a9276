"""The campaign dashboard: its numbers (progress, replies waiting, volunteers, delivery), its
charts in the organization's zone, its JSON and who may see them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from flask.testing import FlaskClient
from markupsafe import escape
from sqlalchemy import func, select

from gotv.campaigns import dashboard
from gotv.db import db
from gotv.models import (
    Campaign,
    Contact,
    ContactStatus,
    Direction,
    Message,
    MessageStatus,
    OptOut,
    Organization,
    Role,
    User,
)
from gotv.web.builder import campaign_counts
from tests.conftest import login
from tests.factories import make_campaign, make_contact, make_message, make_org, make_user

NOW = datetime(2026, 11, 3, 16, 30, tzinfo=UTC)
UTC_ZONE = ZoneInfo("UTC")
NEW_YORK = ZoneInfo("America/New_York")
RECENT = NOW - timedelta(minutes=10)  # in the chart's last hour, 16:00
EARLIER = NOW - timedelta(hours=2, minutes=10)  # the 14:00 hour
LONG_AGO = NOW - timedelta(days=3)  # before the chart's window


@dataclass
class Known:
    """A campaign whose every number is known: see known_campaign()."""

    campaign: Campaign
    val: User
    wes: User


def texted(campaign: Campaign, texter: User, status: MessageStatus, **fields: object) -> Contact:
    """A contact `texter` sent the first text to, now in `status`."""
    contact = make_contact(campaign, status=ContactStatus.TEXTED, texter_id=texter.id)
    fields.setdefault("created_at", RECENT)
    make_message(contact, is_initial=True, status=status, **fields)
    return contact


def reply(contact: Contact, at: datetime = EARLIER) -> Message:
    return make_message(
        contact,
        texter_id=None,
        direction=Direction.INBOUND,
        status=MessageStatus.RECEIVED,
        from_number=contact.cell,
        created_at=at,
    )


@pytest.fixture
def known(organization: Organization) -> Known:
    """11 contacts, 10 texted by Val (5) and Wes (5); 3 replies from 2 contacts; 1 opt-out.

    Statuses: 1 each delivered, sent, accepted, undelivered (30003); 3 failed (30007, an unknown
    99999, and 30005 three days ago, outside the chart); 2 refused; 1 queued.
    """
    campaign = make_campaign(organization, name="Ward 7")
    val = make_user(organization, name="Val", role=Role.TEXTER)
    wes = make_user(organization, name="Wes", role=Role.TEXTER)
    answered = texted(campaign, val, MessageStatus.DELIVERED)
    texted(campaign, val, MessageStatus.SENT)
    texted(campaign, val, MessageStatus.FAILED, error_code=99999)
    texted(campaign, val, MessageStatus.QUEUED)
    opted_out = texted(campaign, val, MessageStatus.REFUSED, refusal_reason="opted_out")
    chatty = texted(campaign, wes, MessageStatus.ACCEPTED)
    texted(campaign, wes, MessageStatus.UNDELIVERED, error_code=30003)
    texted(campaign, wes, MessageStatus.FAILED, error_code=30007)
    texted(campaign, wes, MessageStatus.REFUSED, refusal_reason="quiet_hours")
    texted(campaign, wes, MessageStatus.FAILED, error_code=30005, created_at=LONG_AGO)
    make_contact(campaign)  # not texted yet
    reply(answered)
    reply(chatty)
    reply(chatty, at=RECENT)
    db.session.add(OptOut(organization_id=organization.id, cell=opted_out.cell, source="texter"))
    # Neither counts: a number in no contact of the campaign, and another organization's list.
    db.session.add(OptOut(organization_id=organization.id, cell="+13125550200", source="admin"))
    db.session.add(OptOut(organization_id=make_org().id, cell=answered.cell, source="admin"))
    db.session.flush()
    return Known(campaign, val, wes)


def build(known: Known) -> dashboard.Dashboard:
    return dashboard.build(db.session, known.campaign, now=NOW)


# --- The numbers -----------------------------------------------------------------------------


def test_the_totals_count_contacts_sends_replies_and_opt_outs(known: Known) -> None:
    totals = build(known).totals()

    assert totals == {
        "contacts": 11,
        "texted": 10,
        "in_flight": 1,
        "sent": 4,
        "delivered": 1,
        "undelivered": 1,
        "failed": 3,
        "refused": 2,
        "replies": 3,
        "replied_contacts": 2,
        "reply_rate": 0.2,
        "opt_outs": 1,
    }


def test_the_tally_counts_equal_a_group_by_over_the_messages(known: Known) -> None:
    grouped = db.session.execute(
        select(Message.status, func.count())
        .where(Message.campaign_id == known.campaign.id)
        .group_by(Message.status)
    ).all()

    assert dashboard.tally(db.session, known.campaign) == {
        status.value: count for status, count in grouped
    }


def test_failures_since_the_first_text_are_broken_down_by_error_code_with_the_reason(
    known: Known,
) -> None:
    errors = [(error.code, error.reason, error.count) for error in build(known).errors]

    assert sorted(errors, key=str) == sorted(
        [
            (30003, "handset unreachable (off or out of signal)", 1),
            (30005, "unknown or deactivated number", 1),
            (30007, "filtered by the carrier as spam", 1),
            (99999, dashboard.UNKNOWN_REASON, 1),
        ],
        key=str,
    )


def test_refusals_since_the_first_text_are_broken_down_by_reason(known: Known) -> None:
    assert sorted(build(known).refusals) == [("opted_out", 1), ("quiet_hours", 1)]


def test_each_volunteer_has_the_people_they_texted_replies_waiting_and_their_batch(
    known: Known,
) -> None:
    waiting = make_contact(known.campaign, status=ContactStatus.TEXTED, texter_id=known.wes.id)
    waiting.needs_reply = True
    make_contact(known.campaign, texter_id=known.wes.id)  # in Wes's batch, not texted yet
    db.session.flush()

    progress = build(known).volunteers

    assert progress == [
        dashboard.VolunteerProgress("Wes", texted=6, replies=2, waiting=1, holding=1),
        dashboard.VolunteerProgress("Val", texted=5, replies=1, waiting=0, holding=0),
    ]


def test_the_timeline_starts_at_the_first_text_and_counts_by_day_past_three_days(
    known: Known,
) -> None:
    timeline = dashboard.build(db.session, known.campaign, now=NOW, zone=UTC_ZONE).timeline

    assert timeline is not None and not timeline.hourly
    assert [bucket.start.date().isoformat() for bucket in timeline.buckets] == [
        "2026-10-31",
        "2026-11-01",
        "2026-11-02",
        "2026-11-03",
    ]
    assert [(b.sends, b.replies) for b in timeline.buckets] == [(1, 0), (0, 0), (0, 0), (9, 3)]


def test_the_timeline_is_by_the_hour_in_the_organizations_zone_when_recent(
    organization: Organization, volunteer: User
) -> None:
    campaign = make_campaign(organization)
    texted(campaign, volunteer, MessageStatus.DELIVERED)  # 16:20 UTC, 11:20 in New York
    reply(texted(campaign, volunteer, MessageStatus.DELIVERED, created_at=EARLIER))

    timeline = dashboard.build(db.session, campaign, now=NOW, zone=NEW_YORK).timeline

    assert timeline is not None and timeline.hourly
    # Twelve hours at least, so a campaign's first hour is not one wide bar.
    assert len(timeline.buckets) == dashboard.TIMELINE_MIN_HOURS
    first, last = timeline.buckets[0], timeline.buckets[-1]
    assert first.start == datetime(2026, 11, 3, 0, tzinfo=NEW_YORK)
    nine = timeline.buckets[9]
    assert (nine.start, nine.sends, nine.replies) == (
        datetime(2026, 11, 3, 9, tzinfo=NEW_YORK),
        1,
        1,
    )
    assert (last.start, last.sends, last.replies) == (
        datetime(2026, 11, 3, 11, tzinfo=NEW_YORK),
        1,
        0,
    )
    assert timeline.label(last) == "Nov 03 11:00"


def test_an_empty_campaign_has_zeros_and_no_reply_rate(organization: Organization) -> None:
    board = dashboard.build(db.session, make_campaign(organization), now=NOW)

    assert set(board.totals().values()) == {0}
    assert (board.errors, board.refusals, board.volunteers) == ([], [], [])
    assert board.waiting == dashboard.Waiting(0, None)


def test_another_campaigns_messages_do_not_count(known: Known, organization: Organization) -> None:
    texted(make_campaign(organization), known.val, MessageStatus.DELIVERED)

    board = build(known)

    assert (board.delivered, board.texted, board.volunteers[0].texted) == (1, 10, 5)


# --- Progress and replies waiting ------------------------------------------------------------


def test_progress_says_who_can_be_texted_now_later_never_or_not_at_all(
    organization: Organization,
) -> None:
    campaign = make_campaign(organization, window_start_hour=9, window_end_hour=20)
    make_contact(campaign)  # New York, 11:30 on a Tuesday: now
    honolulu = "Pacific/Honolulu"  # 6:30 there: opens at 9:00 their time
    make_contact(campaign, time_zones=honolulu, state="HI", zip="96813")
    make_contact(campaign, time_zones=honolulu, state="HI", zip="96814")
    stopped = make_contact(campaign)
    db.session.add(OptOut(organization_id=organization.id, cell=stopped.cell, source="texter"))
    late = make_campaign(organization, window_start_hour=19, window_end_hour=21)
    make_contact(late, state="RI")  # Rhode Island stops at 18:00, 17:00 on Saturdays
    db.session.flush()

    progress = dashboard.build(db.session, campaign, now=NOW).progress
    never = dashboard.build(db.session, late, now=NOW).progress

    assert (progress.left_now, progress.never, progress.unreachable) == (1, 0, 1)
    assert progress.later == [
        dashboard.Opening(2, datetime(2026, 11, 3, 19, tzinfo=UTC), "9:00 AM")
    ]
    assert (never.left_now, never.later_total, never.never) == (0, 0, 1)


def test_contacts_set_aside_for_their_numbers_count_as_not_textable_once(
    organization: Organization,
) -> None:
    campaign = make_campaign(organization)
    make_contact(campaign)
    make_contact(campaign, cell="+17875550231", refused="us_territory")
    both = make_contact(campaign, cell="+17875550232", refused="us_territory")
    db.session.add(OptOut(organization_id=organization.id, cell=both.cell, source="texter"))
    db.session.flush()

    progress = dashboard.build(db.session, campaign, now=NOW).progress

    assert (progress.left_now, progress.unreachable) == (1, 2)


def test_replies_waiting_are_counted_with_the_oldest_unanswered_reply(known: Known) -> None:
    first = make_contact(known.campaign, status=ContactStatus.TEXTED, texter_id=known.val.id)
    make_message(first, is_initial=True, created_at=LONG_AGO)
    reply(first, at=EARLIER - timedelta(hours=1))  # answered below: not waiting since then
    make_message(first, created_at=EARLIER - timedelta(minutes=30))
    reply(first, at=EARLIER)
    reply(first, at=RECENT)
    second = make_contact(known.campaign, status=ContactStatus.TEXTED, texter_id=known.wes.id)
    make_message(second, is_initial=True, created_at=EARLIER)
    reply(second, at=RECENT)
    first.needs_reply = second.needs_reply = True
    db.session.flush()

    board = build(known)

    assert board.waiting == dashboard.Waiting(2, EARLIER)
    assert board.oldest_wait_minutes == 130


# --- The chart -------------------------------------------------------------------------------


def test_the_chart_has_two_bars_a_bucket_and_the_busiest_reaches_the_top(known: Known) -> None:
    board = build(known)
    chart = dashboard.chart(board.timeline)

    assert board.timeline is not None
    assert len(chart.bars) == 2 * len(board.timeline.buckets)
    assert chart.top == 9
    tallest = max(chart.bars, key=lambda bar: bar.height)
    assert (tallest.series, tallest.value, tallest.y) == ("sends", 9, chart.plot_top)
    assert [bar.height for bar in chart.bars[2:4]] == [0, 0]
    assert 0 < len(chart.ticks) <= dashboard.MAX_TICKS


def test_the_page_draws_the_chart_in_the_organizations_zone_with_a_table_of_its_numbers(
    client: FlaskClient, organizer: User, known: Known
) -> None:
    with time_machine.travel(NOW, tick=False):
        login(client, organizer)
        page = client.get(f"/campaigns/{known.campaign.id}/dashboard").get_data(as_text=True)

    svg = page[page.index("<svg") : page.index("</svg>")]
    assert len(re.findall(r'<rect class="bar sends"', svg)) == 4
    assert len(re.findall(r'<rect class="bar replies"', svg)) == 4
    assert '<title id="chart-title">Sends and replies per day (America/New_York)' in svg
    assert "Day (America/New York)" in svg and ">Messages<" in svg
    assert '<tr><th scope="row">Tue Nov 03</th><td>9</td><td>3</td></tr>' in page
    assert 'data-stat="sent">4<' in page
    assert "filtered by the carrier as spam" in page
    assert 'src="/static/dashboard.js"' in page


def test_every_figure_has_its_meaning_beside_it(
    client: FlaskClient, organizer: User, known: Known
) -> None:
    login(client, organizer)

    page = client.get(f"/campaigns/{known.campaign.id}/dashboard").get_data(as_text=True)

    shown = re.findall(r'data-stat="(\w+)"', page)
    assert {"texted", "contacts", "sent", "waiting", "left_now"} <= set(shown)
    for key in set(shown) & set(dashboard.MEANINGS):
        assert str(escape(dashboard.MEANINGS[key])) in page, key
    assert "People texted counts people" in page


def test_the_campaign_page_links_to_its_dashboard(
    client: FlaskClient, organizer: User, known: Known
) -> None:
    login(client, organizer)

    page = client.get(f"/campaigns/{known.campaign.id}").get_data(as_text=True)

    assert f'href="/campaigns/{known.campaign.id}/dashboard"' in page


# --- The JSON the page polls -----------------------------------------------------------------


def test_the_json_has_the_same_numbers_as_the_page(
    client: FlaskClient, organizer: User, known: Known
) -> None:
    known.campaign.organization.time_zone = "America/Chicago"
    db.session.flush()
    with time_machine.travel(NOW, tick=False):
        login(client, organizer)
        response = client.get(f"/campaigns/{known.campaign.id}/dashboard.json")

    numbers = response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    assert {key: numbers[key] for key in build(known).totals()} == build(known).totals()
    assert numbers["sent"] == 4 and numbers["reply_rate"] == 0.2
    assert (numbers["left_now"], numbers["texted_share"], numbers["waiting"]) == (1, 0.9091, 0)
    # Times in the organization's zone, to the second (a fortnight back: daylight time then).
    assert numbers["since"] == "2026-10-20T11:30:00-05:00"


# --- Who may see it --------------------------------------------------------------------------

PAGES = ["/campaigns/{id}/dashboard", "/campaigns/{id}/dashboard.json"]


@pytest.mark.parametrize("page", PAGES)
def test_a_texter_is_forbidden_the_dashboard(
    client: FlaskClient, volunteer: User, known: Known, page: str
) -> None:
    login(client, volunteer)

    assert client.get(page.format(id=known.campaign.id)).status_code == 403


@pytest.mark.parametrize("page", PAGES)
def test_another_organizations_organizer_finds_no_dashboard(
    client: FlaskClient, other_org_organizer: User, known: Known, page: str
) -> None:
    login(client, other_org_organizer)

    response = client.get(page.format(id=known.campaign.id))

    assert response.status_code == 404
    assert "Ward 7" not in response.get_data(as_text=True)


@pytest.mark.parametrize("page", PAGES)
def test_an_anonymous_visitor_is_sent_to_log_in(
    client: FlaskClient, known: Known, page: str
) -> None:
    response = client.get(page.format(id=known.campaign.id))

    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_the_campaign_pages_counts_come_from_the_tally_and_match_the_messages(
    known: Known,
) -> None:
    outbound = db.session.scalar(
        select(func.count()).where(
            Message.campaign_id == known.campaign.id, Message.direction == Direction.OUTBOUND
        )
    )

    counts = campaign_counts(known.campaign)

    assert counts == {"contacts": 11, "texted": 10, "sent": outbound, "replies": 3}
    assert outbound == 10
