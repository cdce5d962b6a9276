"""The volunteer's screens, second round: a reply is never lost, a send counts only for a contact
that was read (and only once), conversations carry their context, who opens later is said, and
every error page is a styled page with the way back."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import select

from gotv.campaigns import review
from gotv.compliance import optouts
from gotv.db import db
from gotv.models import Contact, ContactStatus, Message, Organization, User
from gotv.texting import live, texts
from tests.conftest import csrf_token, login, take_batch
from tests.factories import (
    make_campaign,
    make_canned,
    make_contact,
    make_conversation,
    make_org,
    make_user,
)

pytestmark = pytest.mark.usefixtures("weekday_morning")

MORNING = datetime.fromisoformat("2026-11-03T11:00:00-05:00")


def a_moment_later() -> datetime:
    """A moment after the (ticking) weekday morning: CSRF tokens made so far are not from the
    future there."""
    return datetime.now(UTC) + timedelta(seconds=2)


@pytest.fixture
def read_gate(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """The production gap between a volunteer's initial texts (the tests' app turns it off)."""
    monkeypatch.setitem(app.config, "SEND_MIN_GAP_MS", None)


def send_json(client: FlaskClient, campaign_id: int, contact_id: int, key: str, token: str) -> Any:
    return client.post(
        f"/texting/{campaign_id}/send.json",
        json={"contact_id": contact_id, "idempotency_key": key, "after": 0, "want": 0},
        headers={"X-CSRFToken": token},
    )


def sent_messages(volunteer: User) -> int:
    return len(db.session.scalars(select(Message).where(Message.texter_id == volunteer.id)).all())


def next_message(listener: Any) -> Any:
    """The next message on a subscribed channel, waiting up to 2 s (the subscription's own
    confirmation is read, and skipped, first)."""
    for _ in range(2):
        message = listener.get_message(timeout=2)
        if message is not None:
            return message
    return None


# --- One read contact, one text ------------------------------------------------------------


@pytest.mark.parametrize("interval_ms", [50, 80, 150])
def test_a_second_send_sooner_than_the_minimum_is_refused_and_the_contact_kept(
    client: FlaskClient,
    organization: Organization,
    volunteer: User,
    read_gate: None,
    interval_ms: int,
) -> None:
    campaign = make_campaign(organization)
    first, second = make_contact(campaign), make_contact(campaign)
    db.session.commit()
    login(client, volunteer)
    take_batch(client, campaign.id)
    token = csrf_token(client.get(f"/texting/{campaign.id}/send").get_data(as_text=True))

    with time_machine.travel(a_moment_later(), tick=False) as clock:
        assert send_json(client, campaign.id, first.id, "a" * 24, token).status_code == 200
        clock.shift(timedelta(milliseconds=interval_ms))
        refused = send_json(client, campaign.id, second.id, "b" * 24, token)
        clock.shift(texts.MIN_SEND_GAP)
        later = send_json(client, campaign.id, second.id, "b" * 24, token)

    assert refused.status_code == 409 and refused.get_json()["keep"] is True
    assert "read each message" in refused.get_json()["error"]
    assert later.status_code == 200
    assert sent_messages(volunteer) == 2


def test_the_same_send_twice_within_the_minimum_answers_as_the_first_and_texts_once(
    client: FlaskClient, organization: Organization, volunteer: User, read_gate: None
) -> None:
    campaign = make_campaign(organization)
    contact = make_contact(campaign)
    db.session.commit()
    login(client, volunteer)
    take_batch(client, campaign.id)
    token = csrf_token(client.get(f"/texting/{campaign.id}/send").get_data(as_text=True))

    with time_machine.travel(a_moment_later(), tick=False) as clock:
        first = send_json(client, campaign.id, contact.id, "k" * 24, token)
        clock.shift(timedelta(milliseconds=80))
        again = send_json(client, campaign.id, contact.id, "k" * 24, token)

    assert first.status_code == again.status_code == 200
    assert sent_messages(volunteer) == 1


def test_the_minimum_is_one_volunteers_not_another_ones(
    organization: Organization, volunteer: User
) -> None:
    colleague = make_user(organization)
    gap = texts.MIN_SEND_GAP

    texts.read_gate(volunteer, MORNING, gap)
    texts.read_gate(colleague, MORNING, gap)  # the same moment: not refused
    with pytest.raises(texts.TooSoon):
        texts.read_gate(volunteer, MORNING + gap / 2, gap)
    texts.read_gate(volunteer, MORNING + gap, gap)


# --- A reply is never lost -----------------------------------------------------------------


def reply(client: FlaskClient, contact_id: int, body: str, **extra: str) -> Any:
    """Post a reply as the conversation page's form does (its CSRF token from any page)."""
    token = csrf_token(client.get("/account").get_data(as_text=True))
    return client.post(
        f"/texting/conversations/{contact_id}/reply",
        data={"csrf_token": token, "body": body, "idempotency_key": "r" * 24, **extra},
    )


def test_a_reply_to_a_conversation_given_to_someone_else_is_kept_and_explained(
    client: FlaskClient, organization: Organization, organizer: User, volunteer: User
) -> None:
    campaign = make_campaign(organization)
    contact = make_conversation(campaign, volunteer, replies=("Where is the early vote site?",))
    colleague = make_user(organization)
    db.session.commit()
    login(client, volunteer)
    review.reassign_selected(organization.id, [contact.id], colleague.id, organizer.id)
    db.session.commit()

    answer = reply(client, contact.id, "At the library, 7am to 8pm.")

    page = answer.get_data(as_text=True)
    assert answer.status_code == 404
    assert "Your reply was not sent" in page and "another volunteer" in page
    assert "At the library, 7am to 8pm." in page  # kept, to copy
    assert 'class="topbar"' in page and 'href="/texting"' in page  # styled, with the way back
    assert (
        db.session.scalars(select(Message).where(Message.body.like("At the library%"))).all() == []
    )


def test_a_reply_to_someone_who_opted_out_meanwhile_is_kept_and_explained(
    client: FlaskClient, organization: Organization, volunteer: User
) -> None:
    campaign = make_campaign(organization)
    contact = make_conversation(campaign, volunteer, replies=("Hi",))
    db.session.commit()
    login(client, volunteer)
    optouts.record_opt_out(organization.id, contact.cell, "admin", None)
    db.session.commit()

    answer = reply(client, contact.id, "Thanks for letting us know")

    page = answer.get_data(as_text=True)
    assert answer.status_code == 409
    assert "opted out" in page and "Thanks for letting us know" in page
    assert f'href="/texting/{campaign.id}/conversations"' in page


def test_reassigning_tells_the_previous_volunteers_open_pages_after_the_commit(
    app: Flask, organization: Organization, organizer: User, volunteer: User
) -> None:
    campaign = make_campaign(organization)
    contact = make_conversation(campaign, volunteer)
    colleague = make_user(organization)
    db.session.commit()
    connection: Redis = app.extensions["gotv.redis"]
    listener = connection.pubsub(ignore_subscribe_messages=True)
    listener.subscribe(live.channel(connection, volunteer.id))

    review.reassign_selected(organization.id, [contact.id], colleague.id, organizer.id)
    assert listener.get_message(timeout=0.2) is None  # not before the commit
    db.session.commit()

    message = listener.get_message(timeout=2)
    listener.close()
    assert message is not None
    event = json.loads(message["data"])
    assert event == {"type": "conversation", "contact_ids": [contact.id], "change": "reassigned"}


@pytest.mark.parametrize(("action", "change"), [("close", "closed"), ("opt-out", "opted_out")])
def test_an_organizer_closing_or_opting_out_tells_the_volunteers_open_pages(
    app: Flask,
    client: FlaskClient,
    organization: Organization,
    organizer: User,
    volunteer: User,
    action: str,
    change: str,
) -> None:
    campaign = make_campaign(organization)
    contact = make_conversation(campaign, volunteer, needs_reply=True)
    second = make_org()  # another organization's conversation is not the organizer's to change
    other = make_conversation(make_campaign(second), make_user(second), needs_reply=True)
    db.session.commit()
    connection: Redis = app.extensions["gotv.redis"]
    listener = connection.pubsub(ignore_subscribe_messages=True)
    listener.subscribe(live.channel(connection, volunteer.id))
    login(client, organizer)
    token = csrf_token(client.get(f"/texting/conversations/{contact.id}").get_data(as_text=True))

    pressed = client.post(
        f"/texting/conversations/{contact.id}/{action}", data={"csrf_token": token, "confirm": ""}
    )
    elsewhere = client.post(
        f"/texting/conversations/{other.id}/{action}", data={"csrf_token": token, "confirm": ""}
    )

    message = next_message(listener)
    listener.close()
    assert pressed.status_code == 302 and elsewhere.status_code == 404
    assert message is not None
    event = json.loads(message["data"])
    assert event == {"type": "conversation", "contact_ids": [contact.id], "change": change}


def test_after_a_reply_the_volunteer_may_go_on_to_the_person_waiting_longest(
    client: FlaskClient, organization: Organization, volunteer: User
) -> None:
    campaign = make_campaign(organization)
    now = datetime.fromisoformat("2026-11-03T16:00:00+00:00")
    answering = make_conversation(campaign, volunteer, needs_reply=True, waiting_since=now)
    recent = make_conversation(campaign, volunteer, needs_reply=True, waiting_since=now)
    longest = make_conversation(
        campaign, volunteer, needs_reply=True, waiting_since=now - timedelta(hours=2)
    )
    db.session.commit()
    login(client, volunteer)

    answer = reply(client, answering.id, "Polls open at 7", then_next="y")

    assert answer.status_code == 302
    assert answer.headers["Location"].startswith(f"/texting/conversations/{longest.id}?sent=")
    assert recent.id != longest.id


# --- Conversations with their context ------------------------------------------------------


def test_conversations_show_the_last_message_the_wait_and_who_can_no_longer_be_texted(
    client: FlaskClient, organization: Organization, volunteer: User
) -> None:
    campaign = make_campaign(organization)
    now = datetime.fromisoformat("2026-11-03T16:00:00+00:00")
    recent = make_conversation(
        campaign,
        volunteer,
        first_name="Recent",
        needs_reply=True,
        waiting_since=now - timedelta(minutes=5),
        last_message="Is it too late to register?",
        last_message_at=now - timedelta(minutes=5),
    )
    longest = make_conversation(
        campaign,
        volunteer,
        first_name="Longest",
        needs_reply=True,
        waiting_since=now - timedelta(minutes=40),
        last_message="Where is the early vote site?",
        last_message_at=now - timedelta(minutes=40),
    )
    stopped = make_conversation(campaign, volunteer, first_name="Stopped")
    blocked = make_conversation(campaign, volunteer, first_name="Landline")
    optouts.record_opt_out(organization.id, stopped.cell, "admin", None)
    optouts.block_number(organization.id, blocked.cell, 30006, "landline")
    db.session.commit()
    login(client, volunteer)

    with time_machine.travel(now, tick=False):
        page = client.get(f"/texting/{campaign.id}/conversations").get_data(as_text=True)

    assert page.index("Longest") < page.index("Recent") < page.index("Stopped")
    assert "Where is the early vote site?" in page and "waiting 40 min" in page
    assert "waiting 5 min" in page
    assert "Hello" in page  # the initial text, for a conversation with nothing since
    row = page[page.index("Stopped") :]
    assert "opted out" in row[: row.index("</li>")]
    row = page[page.index("Landline") :]
    assert "cannot receive texts" in row[: row.index("</li>")]
    assert recent.id and longest.id


def test_a_blocked_numbers_thread_says_why_no_reply_can_be_sent(
    client: FlaskClient, organization: Organization, volunteer: User
) -> None:
    campaign = make_campaign(organization)
    contact = make_conversation(campaign, volunteer, replies=("hello",))
    optouts.block_number(organization.id, contact.cell, 30006, "landline")
    db.session.commit()
    login(client, volunteer)

    page = client.get(f"/texting/conversations/{contact.id}").get_data(as_text=True)

    assert "cannot receive texts" in page and "no reply can be sent" in page
    assert 'id="reply-form"' not in page
    assert "<time datetime=" in page  # each message says when


def test_canned_responses_are_numbered_for_their_keys(
    client: FlaskClient, organization: Organization, volunteer: User
) -> None:
    campaign = make_campaign(organization)
    make_canned(campaign, title="Where to vote")
    contact = make_conversation(campaign, volunteer)
    db.session.commit()
    login(client, volunteer)

    page = client.get(f"/texting/conversations/{contact.id}").get_data(as_text=True)

    assert '<kbd aria-hidden="true">1</kbd> <span class="canned-title">Where to vote' in page
    assert 'id="shortcuts"' in page


# --- Who opens later -----------------------------------------------------------------------


def test_an_empty_batch_at_dawn_says_how_many_open_later_and_when(
    client: FlaskClient, organization: Organization, volunteer: User
) -> None:
    campaign = make_campaign(organization)
    for _ in range(3):
        make_contact(campaign, time_zones="America/Los_Angeles", state="CA")  # 8 am there
    db.session.commit()
    login(client, volunteer)
    page = client.get(f"/texting/{campaign.id}/send").get_data(as_text=True)

    taken = client.post(
        f"/texting/{campaign.id}/batch",
        data={"csrf_token": csrf_token(page)},
        follow_redirects=True,
    ).get_data(as_text=True)

    assert "Nobody can be texted right now: 3 people open at 9:00 AM their time." in taken
    assert "Later in this campaign" in taken
    assert "Your batch is done" not in taken[: taken.index('id="gotv-strings"')]


# --- Error pages ---------------------------------------------------------------------------


def test_a_missing_page_is_a_styled_page_with_the_way_back(
    client: FlaskClient, volunteer: User
) -> None:
    login(client, volunteer)

    missing = client.get("/texting/conversations/999999")
    nowhere = client.get("/no/such/page")

    for response in (missing, nowhere):
        page = response.get_data(as_text=True)
        assert response.status_code == 404
        assert 'href="/static/style.css"' in page and 'class="topbar"' in page
        assert 'href="/texting"' in page  # the way back
    assert client.get("/api/v1/nothing").is_json


def test_another_organizations_conversation_is_not_found_there(
    client: FlaskClient, organization: Organization, volunteer: User
) -> None:
    stranger = make_user(make_org())
    contact = make_conversation(make_campaign(stranger.organization), stranger)
    db.session.commit()
    login(client, volunteer)

    assert client.get(f"/texting/conversations/{contact.id}").status_code == 404
    answer = reply(client, contact.id, "hello")
    assert answer.status_code == 404 and "Back to your conversations" not in answer.text


# --- Spanish -------------------------------------------------------------------------------


def test_the_browsers_language_is_the_default_and_the_persons_choice_wins(
    client: FlaskClient, organization: Organization, volunteer: User
) -> None:
    campaign = make_campaign(organization)
    db.session.commit()
    login(client, volunteer)
    spanish = {"Accept-Language": "es-US,es;q=0.9,en;q=0.5"}

    browser = client.get(f"/texting/{campaign.id}/send", headers=spanish).get_data(as_text=True)
    account = client.get("/account", headers=spanish).get_data(as_text=True)
    chosen = client.post(
        "/account/language",
        data={"csrf_token": csrf_token(account), "locale": "en"},
        headers=spanish,
        follow_redirects=True,
    ).get_data(as_text=True)
    after = client.get(f"/texting/{campaign.id}/send", headers=spanish).get_data(as_text=True)

    assert '<html lang="es">' in browser and "Tus conversaciones" in browser
    assert "Language saved." in chosen
    assert '<html lang="en">' in after and "Your conversations" in after
    db.session.refresh(volunteer)
    assert volunteer.locale == "en"


def test_refusals_from_the_rules_are_translated(
    client: FlaskClient, organization: Organization, volunteer: User
) -> None:
    campaign = make_campaign(organization)
    contact = make_contact(campaign, status=ContactStatus.TEXTED)
    db.session.commit()
    login(client, volunteer)
    token = csrf_token(client.get(f"/texting/{campaign.id}/send").get_data(as_text=True))

    refused = client.post(
        f"/texting/{campaign.id}/send.json",
        json={"contact_id": contact.id, "idempotency_key": "s" * 24, "after": 0, "want": 0},
        headers={"X-CSRFToken": token, "Accept-Language": "es"},
    )

    assert refused.status_code == 409
    assert refused.get_json()["error"] == "Ya se le escribió a esta persona."
    assert db.session.get(Contact, contact.id) is not None
