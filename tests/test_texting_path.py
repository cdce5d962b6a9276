"""The whole path: upload a list, click Send, Twilio (the fake carrier), callbacks, a reply."""

from __future__ import annotations

import io
import re
from datetime import datetime

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from gotv.db import db
from gotv.fakecarrier import FakeCarrier
from gotv.models import (
    Campaign,
    CampaignStatus,
    Contact,
    Direction,
    Message,
    MessageStatus,
    OptOut,
    Organization,
    User,
)
from tests.conftest import csrf_token, deliver_webhooks, login, run_jobs, take_batch
from tests.factories import make_campaign, make_contact

pytestmark = pytest.mark.usefixtures("weekday_morning")

VOTER_LIST = (
    "first name,last name,cell,zip\n"
    "maria,GARCIA,(212) 555-0242,10001\n"
    "James,Smith,212.555.0299,10001\n"
    "Broken,Number,555-12,10001\n"
)


def upload_list(client: FlaskClient, campaign: Campaign, csv_text: str) -> str:
    """Upload a list, start it with the columns as auto-mapped, let the worker load it.

    Returns the import's summary page.
    """
    page = client.get(f"/campaigns/{campaign.id}")
    response = client.post(
        f"/campaigns/{campaign.id}/imports",
        data={
            "csrf_token": csrf_token(page.get_data(as_text=True)),
            "contacts": (io.BytesIO(csv_text.encode()), "voters.csv"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    mapping_screen = response.headers["Location"]
    form = client.get(mapping_screen).get_data(as_text=True)
    started = client.post(mapping_screen, data=auto_mapped_form(form))
    assert started.status_code == 302, started.get_data(as_text=True)
    run_jobs(client.application)
    return client.get(started.headers["Location"]).get_data(as_text=True)


def auto_mapped_form(html: str) -> dict[str, str]:
    """The mapping screen's form as the organizer would submit it without changing anything."""
    form = {"csrf_token": csrf_token(html), "mode": "append"}
    for field in ("cell", "first_name", "last_name", "zip"):
        chosen = re.search(
            rf'id="map-{field}"[^>]*>.*?<option selected value="([^"]*)"', html, re.S
        )
        form[field] = chosen.group(1) if chosen else ""
    return form


def click_send(client: FlaskClient, campaign: Campaign) -> str:
    """Take a batch, open the send screen and press Send once; returns the page shown."""
    take_batch(client, campaign.id)
    page = client.get(f"/texting/{campaign.id}/send").get_data(as_text=True)
    form = {
        "csrf_token": csrf_token(page),
        "contact_id": _hidden(page, "contact_id"),
        "idempotency_key": _hidden(page, "idempotency_key"),
    }
    assert client.post(f"/texting/{campaign.id}/send", data=form).status_code == 302
    return page


def _hidden(html: str, name: str) -> str:
    start = html.index(f'name="{name}"')
    value_at = html.index('value="', start) + len('value="')
    return html[value_at : html.index('"', value_at)]


def test_an_uploaded_list_is_normalized_and_bad_rows_are_reported(
    client: FlaskClient, organizer: User
) -> None:
    campaign = make_campaign(organizer.organization, status=CampaignStatus.DRAFT)
    login(client, organizer)

    page = upload_list(client, campaign, VOTER_LIST)

    contacts = db.session.scalars(select(Contact).order_by(Contact.cell)).all()
    assert [(c.first_name, c.last_name, c.cell) for c in contacts] == [
        ("Maria", "Garcia", "+12125550242"),
        ("James", "Smith", "+12125550299"),
    ]
    assert contacts[0].time_zones == "America/New_York" and contacts[0].state == "NY"
    assert "not a valid phone number" in page or "not a phone number" in page


def test_a_volunteer_click_sends_one_text_through_twilio_and_records_its_delivery(
    app: Flask, client: FlaskClient, organizer: User, volunteer: User, carrier: FakeCarrier
) -> None:
    campaign = make_campaign(
        organizer.organization, script="Hi {first_name}, it's {texter_name}. Will you vote Tuesday?"
    )
    login(client, organizer)
    upload_list(client, campaign, VOTER_LIST)
    client.post("/logout", data={"csrf_token": csrf_token(client.get("/campaigns").text)})
    login(client, volunteer)

    page = click_send(client, campaign)
    run_jobs(app)

    assert "Hi Maria, it&#39;s Val. Will you vote Tuesday?" in page
    assert [(m["to"], m["body"]) for m in carrier.messages] == [
        ("+12125550242", "Hi Maria, it's Val. Will you vote Tuesday?")
    ]
    request = carrier.requests[0]
    message = db.session.scalars(select(Message)).one()
    assert request["StatusCallback"] == f"https://gotv.test/twilio/status?message={message.id}"
    assert request["From"] == "+15005550006" and int(request["ValidityPeriod"]) > 0
    assert message.twilio_sid == carrier.messages[0]["sid"]
    assert deliver_webhooks(client, carrier) == [200, 200]
    db.session.refresh(message)
    assert message.status == MessageStatus.DELIVERED


def test_a_reply_reaches_the_volunteer_who_answers_it(
    app: Flask, client: FlaskClient, volunteer: User, carrier: FakeCarrier
) -> None:
    campaign = _active_campaign_with_one_contact(volunteer)
    login(client, volunteer)
    click_send(client, campaign)
    run_jobs(app)
    deliver_webhooks(client, carrier)

    carrier.reply("+12125550242", "Yes! Where do I vote?")
    assert deliver_webhooks(client, carrier) == [200]
    contact = db.session.scalars(select(Contact)).one()
    thread = client.get(f"/texting/conversations/{contact.id}").get_data(as_text=True)
    assert "Yes! Where do I vote?" in thread
    client.post(
        f"/texting/conversations/{contact.id}/reply",
        data={
            "csrf_token": csrf_token(thread),
            "body": "At the library on Main St.",
            "idempotency_key": _hidden(thread, "idempotency_key"),
        },
    )
    run_jobs(app)

    assert [m["body"] for m in carrier.messages][-1] == "At the library on Main St."
    assert carrier.conversations()["+12125550242"][-1]["body"] == "At the library on Main St."


def test_a_stop_reply_opts_the_number_out_of_the_whole_organization(
    app: Flask, client: FlaskClient, volunteer: User, carrier: FakeCarrier
) -> None:
    campaign = _active_campaign_with_one_contact(volunteer)
    login(client, volunteer)
    click_send(client, campaign)
    run_jobs(app)

    carrier.reply("+12125550242", "Stop.")
    deliver_webhooks(client, carrier)

    opt_out = db.session.scalars(select(OptOut)).one()
    assert (opt_out.cell, opt_out.source) == ("+12125550242", "inbound_keyword")
    assert opt_out.organization_id == volunteer.organization_id


def test_it_refuses_to_text_an_opted_out_number_even_from_a_queued_reply(
    app: Flask, client: FlaskClient, volunteer: User, carrier: FakeCarrier
) -> None:
    campaign = _active_campaign_with_one_contact(volunteer)
    login(client, volunteer)
    click_send(client, campaign)
    run_jobs(app)
    contact = db.session.scalars(select(Contact)).one()
    thread = client.get(f"/texting/conversations/{contact.id}").get_data(as_text=True)
    client.post(
        f"/texting/conversations/{contact.id}/reply",
        data={
            "csrf_token": csrf_token(thread),
            "body": "Are you still there?",
            "idempotency_key": _hidden(thread, "idempotency_key"),
        },
    )

    carrier.reply("+12125550242", "STOP")  # arrives before the reply's job runs
    deliver_webhooks(client, carrier)
    run_jobs(app)

    assert len(carrier.messages) == 1
    reply = db.session.scalars(select(Message).where(Message.body == "Are you still there?")).one()
    assert (reply.status, reply.refusal_reason) == (MessageStatus.REFUSED, "opted_out")


def test_pressing_send_twice_on_the_same_screen_sends_one_text(
    app: Flask, client: FlaskClient, volunteer: User, carrier: FakeCarrier
) -> None:
    campaign = _active_campaign_with_one_contact(volunteer)
    login(client, volunteer)
    take_batch(client, campaign.id)
    page = client.get(f"/texting/{campaign.id}/send").get_data(as_text=True)
    form = {
        "csrf_token": csrf_token(page),
        "contact_id": _hidden(page, "contact_id"),
        "idempotency_key": _hidden(page, "idempotency_key"),
    }
    client.post(f"/texting/{campaign.id}/send", data=form)
    client.post(f"/texting/{campaign.id}/send", data=form)
    run_jobs(app)

    assert len(carrier.messages) == 1
    outbound = select(Message).where(Message.direction == Direction.OUTBOUND)
    assert len(db.session.scalars(outbound).all()) == 1


def _active_campaign_with_one_contact(volunteer: User) -> Campaign:
    campaign = make_campaign(volunteer.organization, script="Hi {first_name}!")
    make_contact(campaign, cell="+12125550242")
    return campaign


def test_the_send_page_at_night_says_when_the_next_voter_may_be_texted(
    client: FlaskClient, organization: Organization, volunteer: User
) -> None:
    campaign = make_campaign(organization)
    make_contact(campaign)
    login(client, volunteer)

    with time_machine.travel(datetime.fromisoformat("2026-11-03T03:00:00-05:00"), tick=False):
        page = client.get(f"/texting/{campaign.id}/send")

    assert page.status_code == 200
    assert "1 person opens at 9:00 AM their time" in page.text and "14:00 UTC" in page.text
