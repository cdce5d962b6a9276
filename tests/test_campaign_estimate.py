"""The campaign page: what the script's texts cost, and the Smart Encoding switch."""

from __future__ import annotations

import html
import re

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from gotv.compliance import optouts
from gotv.db import db
from gotv.models import AuditEvent, Campaign, CampaignStatus, ContactStatus, User
from tests.conftest import csrf_token, login
from tests.factories import make_campaign, make_contact

SCRIPT = "Hi {first_name}, it's {texter_name} from Vote Together. Will you vote on Tuesday?"


def page_of(client: FlaskClient, campaign: Campaign) -> str:
    return html.unescape(client.get(f"/campaigns/{campaign.id}").get_data(as_text=True))


def stat(page: str, name: str) -> str:
    match = re.search(rf'id="cost-{name}">([^<]*)<', page)
    assert match, f"no {name} on the page"
    return match.group(1)


def draft(organizer: User, script: str = SCRIPT, **overrides: object) -> Campaign:
    return make_campaign(
        organizer.organization, script=script, status=CampaignStatus.DRAFT, **overrides
    )


def test_the_page_shows_encoding_length_segments_and_cost_before_launch(
    client: FlaskClient, organizer: User
) -> None:
    campaign = draft(organizer, smart_encoding=False)
    for name in ("Ana", "Bob", "Maria"):
        make_contact(campaign, first_name=name)
    login(client, organizer)

    page = page_of(client, campaign)

    assert stat(page, "encoding") == "GSM-7"
    assert stat(page, "characters") == "65–67"
    assert stat(page, "segments") == "1 max, 1.00 avg"
    assert stat(page, "total") == "$0.02"  # 3 texts x 1 segment x $0.0083
    assert "3 left to text" in page
    assert "segment-warnings" not in page


def test_the_estimate_counts_only_voters_still_to_text_at_the_configured_price(
    app: Flask, client: FlaskClient, organizer: User
) -> None:
    campaign = draft(organizer, script="{first_name} " + "a" * 160)
    for number in range(4):
        make_contact(campaign, first_name=f"V{number}")
    make_contact(campaign, status=ContactStatus.TEXTED)
    opted_out = make_contact(campaign)
    optouts.record_opt_out(campaign.organization_id, opted_out.cell, "admin")
    db.session.flush()
    login(client, organizer)
    app.config["PRICE_PER_SEGMENT"] = "0.25"
    try:
        page = page_of(client, campaign)
    finally:
        del app.config["PRICE_PER_SEGMENT"]

    assert "4 left to text × 2.00 segments × $0.25 a segment" in page
    assert stat(page, "total") == "$2.00"


def test_a_name_outside_gsm_is_named_in_a_warning_with_what_it_costs(
    client: FlaskClient, organizer: User
) -> None:
    campaign = draft(organizer, script=SCRIPT + " Polls are open 7am to 8pm.")
    for name in ("Maria", "Zoë", "José", "Zoë"):
        make_contact(campaign, first_name=name)
    login(client, organizer)

    page = page_of(client, campaign)

    assert (
        "2 of 4 sampled messages switch to UCS-2 because first_name contains ‘Zoë’:"
        " they cost 2 segments instead of 1." in page
    )
    assert stat(page, "encoding") == "GSM-7 (2), UCS-2 (2)"
    assert stat(page, "segments") == "2 max, 1.50 avg"


def test_smart_encoding_decides_whether_a_curly_apostrophe_costs_more(
    client: FlaskClient, organizer: User
) -> None:
    campaign = draft(organizer, smart_encoding=True)
    make_contact(campaign, first_name="Siobhán")
    make_contact(campaign, first_name="Pat", last_name="O’Brien")
    campaign.script = "Hi {first_name} {last_name}! " + "a" * 60
    login(client, organizer)

    smart = page_of(client, campaign)
    campaign.smart_encoding = False
    db.session.flush()
    plain = page_of(client, campaign)

    assert "first_name contains ‘Siobhán’" in smart
    assert "last_name contains" not in smart  # (the preview shows the name itself)
    assert "last_name contains ‘O’Brien’" in plain


def smart_encoding_checked(page: str) -> bool:
    match = re.search(r'<input[^>]*id="smart_encoding"[^>]*>', page)
    assert match, "no Smart Encoding checkbox"
    return " checked" in match.group(0)


def test_the_organizer_turns_smart_encoding_off_and_it_is_audited(
    client: FlaskClient, organizer: User
) -> None:
    campaign = draft(organizer)
    login(client, organizer)
    page = client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert smart_encoding_checked(page)

    response = client.post(
        f"/campaigns/{campaign.id}/smart-encoding", data={"csrf_token": csrf_token(page)}
    )

    assert response.status_code == 302
    db.session.refresh(campaign)
    assert campaign.smart_encoding is False
    event = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "smart_encoding_changed")
    ).one()
    assert (event.user_id, event.details) == (organizer.id, {"smart_encoding": False})
    page = client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert "Smart Encoding is off." in page
    assert not smart_encoding_checked(page)


def test_the_organizer_turns_smart_encoding_back_on(client: FlaskClient, organizer: User) -> None:
    campaign = draft(organizer, smart_encoding=False)
    login(client, organizer)
    token = csrf_token(client.get(f"/campaigns/{campaign.id}").get_data(as_text=True))

    client.post(
        f"/campaigns/{campaign.id}/smart-encoding",
        data={"csrf_token": token, "smart_encoding": "y"},
    )

    db.session.refresh(campaign)
    assert campaign.smart_encoding is True


def test_a_campaign_with_nobody_left_to_text_says_so(client: FlaskClient, organizer: User) -> None:
    campaign = draft(organizer)
    login(client, organizer)

    page = page_of(client, campaign)

    assert "No voters left to text" in page
