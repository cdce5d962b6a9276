"""The campaign dashboard: its numbers, its chart, its JSON and who may see them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from flask.testing import FlaskClient
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
from gotv.web.campaigns import campaign_counts
from tests.conftest import login
from tests.factories import make_campaign, make_contact, make_message, make_org, make_user

NOW = datetime(2026, 11, 3, 16, 30, tzinfo=UTC)
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


def test_failures_in_the_window_are_broken_down_by_error_code_with_the_reason(
    known: Known,
) -> None:
    errors = [(error.code, error.reason, error.count) for error in build(known).errors]

    assert sorted(errors, key=str) == sorted(
        [
            (30003, "handset unreachable (off or out of signal)", 1),
            (30007, "filtered by the carrier as spam", 1),
            (99999, dashboard.UNKNOWN_REASON, 1),
        ],
        key=str,
    )


def test_refusals_in_the_window_are_broken_down_by_reason(known: Known) -> None:
    assert sorted(build(known).refusals) == [("opted_out", 1), ("quiet_hours", 1)]


def test_each_volunteer_has_their_first_texts_and_their_contacts_replies(known: Known) -> None:
    progress = build(known).volunteers

    # Wes's fifth text is three days old, outside the window.
    assert progress == [
        dashboard.VolunteerProgress("Val", texted=5, replies=1),
        dashboard.VolunteerProgress("Wes", texted=4, replies=2),
    ]


def test_the_hours_cover_the_window_with_sends_and_replies_in_their_hour(known: Known) -> None:
    hours = build(known).hours

    assert len(hours) == dashboard.WINDOW_HOURS
    assert hours[0].start == datetime(2026, 11, 1, 17, tzinfo=UTC)
    assert hours[-1] == dashboard.Hour(datetime(2026, 11, 3, 16, tzinfo=UTC), 9, 1)
    assert hours[-3] == dashboard.Hour(datetime(2026, 11, 3, 14, tzinfo=UTC), 0, 2)
    assert sum(hour.sends for hour in hours) == 9
    assert sum(hour.replies for hour in hours) == 3


def test_an_empty_campaign_has_zeros_and_no_reply_rate(organization: Organization) -> None:
    board = dashboard.build(db.session, make_campaign(organization), now=NOW)

    assert set(board.totals().values()) == {0}
    assert (board.errors, board.refusals, board.volunteers) == ([], [], [])


def test_another_campaigns_messages_do_not_count(known: Known, organization: Organization) -> None:
    texted(make_campaign(organization), known.val, MessageStatus.DELIVERED)

    board = build(known)

    assert (board.delivered, board.texted, board.volunteers[0].texted) == (1, 10, 5)


# --- The chart -------------------------------------------------------------------------------


def test_the_chart_has_two_bars_an_hour_and_the_busiest_reaches_the_top(known: Known) -> None:
    chart = dashboard.chart(build(known).hours)

    assert len(chart.bars) == 2 * dashboard.WINDOW_HOURS
    assert chart.top == 9
    tallest = max(chart.bars, key=lambda bar: bar.height)
    assert (tallest.series, tallest.value, tallest.y) == ("sends", 9, chart.plot_top)
    assert [bar.height for bar in chart.bars[:2]] == [0, 0]
    assert len(chart.ticks) == dashboard.WINDOW_HOURS // dashboard.LABEL_EVERY_HOURS


def test_the_page_draws_the_chart_with_a_title_axes_and_a_table_of_its_numbers(
    client: FlaskClient, organizer: User, known: Known
) -> None:
    with time_machine.travel(NOW, tick=False):
        login(client, organizer)
        page = client.get(f"/campaigns/{known.campaign.id}/dashboard").get_data(as_text=True)

    svg = page[page.index("<svg") : page.index("</svg>")]
    assert len(re.findall(r'<rect class="bar sends"', svg)) == dashboard.WINDOW_HOURS
    assert len(re.findall(r'<rect class="bar replies"', svg)) == dashboard.WINDOW_HOURS
    assert '<title id="chart-title">Sends and replies per hour' in svg
    assert "Hour (UTC)" in svg and ">Messages<" in svg
    assert '<tr><th scope="row">Nov 03 16:00</th><td>9</td><td>1</td></tr>' in page
    assert 'data-stat="sent">4<' in page
    assert "filtered by the carrier as spam" in page
    assert 'src="/static/dashboard.js"' in page


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
    with time_machine.travel(NOW, tick=False):
        login(client, organizer)
        response = client.get(f"/campaigns/{known.campaign.id}/dashboard.json")

    numbers = response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    assert {key: numbers[key] for key in build(known).totals()} == build(known).totals()
    assert numbers["sent"] == 4 and numbers["reply_rate"] == 0.2
    assert {"code": 30007, "reason": "filtered by the carrier as spam", "count": 1} in numbers[
        "errors"
    ]
    assert len(numbers["hours"]) == dashboard.WINDOW_HOURS
    assert numbers["volunteers"][0] == {"name": "Val", "texted": 5, "replies": 1}


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
