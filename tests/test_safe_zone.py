"""The safe time zone: when a voter's ZIP and cell point to different zones or states, a text
waits until it is allowed in all of them, unless the campaign trusts the ZIP alone."""

from __future__ import annotations

import secrets
from datetime import datetime

import pytest
import time_machine
from flask.testing import FlaskClient
from sqlalchemy import select

from gotv.compliance import hours
from gotv.db import db
from gotv.fakecarrier import FakeCarrier
from gotv.lists import contacts
from gotv.models import AuditEvent, Campaign, Contact, Message, MessageStatus, Organization, User
from gotv.texting import texts
from tests.conftest import csrf_token, login
from tests.factories import make_api_token, make_campaign, make_contact, queue_initial_message
from workers.texting import send_message

NEW_YORK_ZIP_LOS_ANGELES_CELL = ("10001", "+12135550242")
LOS_ANGELES_ZIP_NEW_YORK_CELL = ("90012", "+12125550242")


def at(moment: str) -> datetime:
    return datetime.fromisoformat(moment)


def place(zip5: str, cell: str) -> tuple[str, str]:
    """(time zones, rule states) as an import stores them."""
    _, state, zones = contacts.locate(zip5, cell)
    return zones, " ".join(sorted({state, contacts.area_code_state(cell)} - {""}))


def initial_allowed(zip5: str, cell: str, moment: str, trust_zip: bool = False) -> bool:
    zones, states = place(zip5, cell)
    return hours.is_open(zones, at(moment), 9, 20, state=states, trust_zip=trust_zip)


# --- The rule -------------------------------------------------------------------------------


def test_a_contact_keeps_both_the_zips_zone_and_the_area_codes() -> None:
    assert place(*NEW_YORK_ZIP_LOS_ANGELES_CELL) == (
        "America/New_York | America/Los_Angeles",
        "CA NY",
    )
    assert place("10001", "+12125550242") == ("America/New_York", "NY")
    assert place("", "+12135550242") == ("America/Los_Angeles", "CA")


def test_a_new_york_zip_with_a_los_angeles_cell_waits_for_nine_in_los_angeles() -> None:
    # 09:00 Eastern is 06:00 Pacific: not yet; 12:00 Eastern is 09:00 Pacific.
    assert not initial_allowed(*NEW_YORK_ZIP_LOS_ANGELES_CELL, "2026-11-03T09:00:00-05:00")
    assert initial_allowed(*NEW_YORK_ZIP_LOS_ANGELES_CELL, "2026-11-03T12:00:00-05:00")


def test_a_los_angeles_zip_with_a_new_york_cell_stops_at_eight_in_new_york() -> None:
    # 19:00 Pacific is 22:00 Eastern; 16:00 Pacific is 19:00 Eastern.
    assert not initial_allowed(*LOS_ANGELES_ZIP_NEW_YORK_CELL, "2026-11-03T19:00:00-08:00")
    assert initial_allowed(*LOS_ANGELES_ZIP_NEW_YORK_CELL, "2026-11-03T16:00:00-08:00")


def test_a_campaign_that_trusts_the_zip_follows_the_zips_zone_alone() -> None:
    assert initial_allowed(
        *NEW_YORK_ZIP_LOS_ANGELES_CELL, "2026-11-03T09:00:00-05:00", trust_zip=True
    )
    assert initial_allowed(
        *LOS_ANGELES_ZIP_NEW_YORK_CELL, "2026-11-03T19:00:00-08:00", trust_zip=True
    )


def test_the_state_rules_of_both_states_apply_even_when_the_zip_is_trusted() -> None:
    # A Florida cell in a New York ZIP: Florida's law ends texting at 8 pm and presumes an
    # in-state area code is a resident, so its rule holds whichever zone is trusted.
    zones, states = place("10001", "+13055550242")
    assert states == "FL NY"
    assert hours.effective_window(at("2026-11-03").date(), 9, 21, "FL NY").end.seconds == 20 * 3600
    assert not hours.is_open(zones, at("2026-11-03T20:30:00-05:00"), 9, 21, False, states, True)


def test_an_unknown_zip_or_number_zone_leaves_the_other_alone() -> None:
    assert hours.combine_zones("America/Chicago", "") == "America/Chicago"
    assert hours.combine_zones("", "America/Boise America/Los_Angeles") == (
        "America/Boise America/Los_Angeles"
    )
    assert hours.combine_zones("America/Boise", "America/Boise America/Los_Angeles") == (
        "America/Boise | America/Los_Angeles"
    )


# --- Every path that texts asks it --------------------------------------------------------


@pytest.fixture
def split_contact(volunteer: User) -> Contact:
    """A voter with a New York ZIP and a Los Angeles cell, as the import stores them."""
    campaign = make_campaign(volunteer.organization, script="Hi {first_name}!")
    zones, states = place(*NEW_YORK_ZIP_LOS_ANGELES_CELL)
    return make_contact(
        campaign,
        cell=NEW_YORK_ZIP_LOS_ANGELES_CELL[1],
        zip="10001",
        state="NY",
        time_zones=zones,
        rule_states=states,
    )


def click(campaign: Campaign, contact: Contact, volunteer: User, moment: str) -> int:
    message = queue_initial_message(
        campaign, contact.id, volunteer, secrets.token_urlsafe(24), at(moment)
    )
    return message.id


def test_the_click_refuses_until_it_is_nine_in_both_zones(
    split_contact: Contact, volunteer: User
) -> None:
    with pytest.raises(texts.CannotText, match="outside this person's texting hours"):
        click(split_contact.campaign, split_contact, volunteer, "2026-11-03T09:00:00-05:00")


def test_the_click_follows_the_zip_alone_when_the_campaign_says_so(
    split_contact: Contact, volunteer: User
) -> None:
    split_contact.campaign.trust_zip_alone = True

    assert click(split_contact.campaign, split_contact, volunteer, "2026-11-03T09:00:00-05:00")


def test_the_last_gate_refuses_a_text_queued_for_the_zip_once_the_campaign_stops_trusting_it(
    split_contact: Contact, volunteer: User, carrier: FakeCarrier
) -> None:
    campaign = split_contact.campaign
    campaign.trust_zip_alone = True
    with time_machine.travel(at("2026-11-03T09:05:00-05:00"), tick=False):
        message_id = click(campaign, split_contact, volunteer, "2026-11-03T09:05:00-05:00")
        campaign.trust_zip_alone = False
        db.session.commit()
        send_message(message_id)

    status = db.session.execute(
        select(Message.status, Message.refusal_reason).where(Message.id == message_id)
    ).one()
    assert tuple(status) == (MessageStatus.REFUSED, "quiet_hours")
    assert carrier.requests == []


# --- Where organizers choose it ------------------------------------------------------------


def test_trusting_the_zip_is_off_by_default(volunteer: User) -> None:
    campaign = Campaign(organization_id=volunteer.organization_id, name="New")
    db.session.add(campaign)
    db.session.flush()

    assert campaign.trust_zip_alone is False


def test_an_organizer_turns_trusting_the_zip_on_and_off_on_the_campaign_page(
    client: FlaskClient, organizer: User
) -> None:
    campaign = make_campaign(organizer.organization)
    login(client, organizer)
    page = client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert "Use the ZIP code alone for each voter&#39;s time zone" in page

    form = {"csrf_token": csrf_token(page), "trust_zip_alone": "y"}
    client.post(f"/campaigns/{campaign.id}/time-zones", data=form)
    assert campaign.trust_zip_alone is True
    client.post(f"/campaigns/{campaign.id}/time-zones", data={"csrf_token": form["csrf_token"]})
    assert campaign.trust_zip_alone is False

    audited = db.session.scalars(
        select(AuditEvent.action).where(AuditEvent.organization_id == organizer.organization_id)
    ).all()
    assert audited.count("time_zone_rule_changed") == 2


def test_the_api_creates_reads_and_changes_the_zip_rule(
    client: FlaskClient, organization: Organization, organizer: User
) -> None:
    headers = {"Authorization": f"Bearer {make_api_token(organization, organizer)}"}

    made = client.post("/api/v1/campaigns", json={"name": "Trusting"}, headers=headers)
    campaign_id = made.get_json()["id"]
    changed = client.put(
        f"/api/v1/campaigns/{campaign_id}/time-zone-rule",
        json={"trust_zip_alone": True},
        headers=headers,
    )
    refused = client.put(
        f"/api/v1/campaigns/{campaign_id}/time-zone-rule",
        json={"trust_zip_alone": "yes"},
        headers=headers,
    )

    assert made.get_json()["trust_zip_alone"] is False
    assert changed.get_json()["trust_zip_alone"] is True
    assert refused.status_code == 422
