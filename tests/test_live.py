"""Live conversations: replies streamed to their volunteer only, unread counts, closing."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import select

from gotv.db import db
from gotv.fakecarrier import FakeCarrier
from gotv.models import (
    Contact,
    ContactStatus,
    Direction,
    Message,
    MessageStatus,
    Organization,
    User,
)
from gotv.texting import live, replies
from tests.conftest import ACCOUNT_SID, csrf_token, deliver_webhooks, login
from tests.factories import make_campaign, make_contact, make_message, make_org, make_user

pytestmark = pytest.mark.usefixtures("weekday_morning")

VOTER = "+12125550242"


@pytest.fixture
def short_streams(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(app.config, "LIVE_HEARTBEAT_SECONDS", 0.2)
    monkeypatch.setitem(app.config, "LIVE_STREAM_SECONDS", 1.0)


def texted_by(volunteer: User) -> Contact:
    """A contact the volunteer texted, whose reply the carrier can send."""
    campaign = make_campaign(volunteer.organization)
    contact = make_contact(
        campaign,
        cell=VOTER,
        first_name="Maria",
        texter_id=volunteer.id,
        status=ContactStatus.TEXTED,
    )
    make_message(contact, status=MessageStatus.DELIVERED, is_initial=True)
    db.session.commit()
    return contact


def open_stream(app: Flask, user: User) -> Iterator[bytes]:
    """The user's /texting/events stream, subscribed (its first chunk read)."""
    client = app.test_client()
    login(client, user)
    response = client.get("/texting/events", buffered=False)
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    chunks = iter(response.response)
    assert b"retry:" in next(chunks)
    return chunks


def test_a_reply_is_streamed_to_its_volunteer_and_nobody_else(
    app: Flask,
    client: FlaskClient,
    carrier: FakeCarrier,
    organization: Organization,
    volunteer: User,
    short_streams: None,
) -> None:
    contact = texted_by(volunteer)
    colleague = make_user(organization)
    outsider = make_user(make_org())
    db.session.commit()
    streams = {user.id: open_stream(app, user) for user in (volunteer, colleague, outsider)}

    carrier.reply(VOTER, "Yes! Where do I vote?")
    assert deliver_webhooks(client, carrier) == [200]

    heard = {user_id: b"".join(chunks).decode() for user_id, chunks in streams.items()}
    assert "event: inbound" in heard[volunteer.id]
    assert '"body": "Yes! Where do I vote?"' in heard[volunteer.id]
    assert f'"contact_id": {contact.id}' in heard[volunteer.id]
    assert '"unread": 1' in heard[volunteer.id]
    assert ": heartbeat" in heard[colleague.id]
    for other in (colleague.id, outsider.id):
        assert "event:" not in heard[other] and "Where do I vote" not in heard[other]


def test_a_status_change_is_streamed_to_the_volunteer_who_sent_it(
    app: Flask, client: FlaskClient, volunteer: User, short_streams: None
) -> None:
    contact = texted_by(volunteer)
    message = make_message(
        contact, texter_id=volunteer.id, status=MessageStatus.ACCEPTED, twilio_sid="SM" + "a" * 32
    )
    db.session.commit()
    stream = open_stream(app, volunteer)

    replies.record_status(
        {"MessageSid": message.twilio_sid or "", "MessageStatus": "delivered"}, ACCOUNT_SID
    )

    heard = b"".join(stream).decode()
    assert "event: status" in heard and '"status": "delivered"' in heard


def test_unread_replies_are_counted_until_the_volunteer_opens_the_conversation(
    client: FlaskClient, carrier: FakeCarrier, volunteer: User
) -> None:
    contact = texted_by(volunteer)
    carrier.reply(VOTER, "Hello?")
    carrier.reply(VOTER, "Are you there?")
    deliver_webhooks(client, carrier)
    db.session.refresh(contact)
    assert contact.unread == 2 and contact.needs_reply
    login(client, volunteer)

    listed = client.get(f"/texting/{contact.campaign_id}/conversations").get_data(as_text=True)
    client.get(f"/texting/conversations/{contact.id}")

    assert "2 unread" in listed
    db.session.refresh(contact)
    assert contact.unread == 0 and contact.needs_reply


def test_closing_a_conversation_means_no_reply_is_needed(
    client: FlaskClient, volunteer: User
) -> None:
    contact = texted_by(volunteer)
    contact.needs_reply, contact.unread = True, 1
    db.session.commit()
    login(client, volunteer)
    page = client.get(f"/texting/conversations/{contact.id}").get_data(as_text=True)
    assert "Close: no reply needed" in page and 'id="body"' in page

    response = client.post(
        f"/texting/conversations/{contact.id}/close", data={"csrf_token": csrf_token(page)}
    )

    assert response.status_code == 302
    db.session.refresh(contact)
    assert not contact.needs_reply and contact.unread == 0


def test_the_thread_offers_the_next_and_previous_conversations_waiting(
    client: FlaskClient, volunteer: User
) -> None:
    contact = texted_by(volunteer)
    waiting = make_contact(
        contact.campaign, texter_id=volunteer.id, status=ContactStatus.TEXTED, needs_reply=True
    )
    db.session.commit()
    login(client, volunteer)

    page = client.get(f"/texting/conversations/{contact.id}").get_data(as_text=True)

    assert f'href="/texting/conversations/{waiting.id}" id="next-waiting"' in page
    assert f'href="/texting/conversations/{waiting.id}" id="previous-waiting"' in page


def test_a_publishing_failure_never_breaks_the_webhook(
    app: Flask, client: FlaskClient, carrier: FakeCarrier, volunteer: User
) -> None:
    contact = texted_by(volunteer)
    good = app.extensions["gotv.redis"]
    app.extensions["gotv.redis"] = Redis(port=1, socket_connect_timeout=0.2)
    try:
        carrier.reply(VOTER, "Still there?")
        assert deliver_webhooks(client, carrier) == [200]
    finally:
        app.extensions["gotv.redis"] = good
    stored = db.session.scalars(
        select(Message.body).where(Message.direction == Direction.INBOUND)
    ).all()
    assert stored == ["Still there?"]
    db.session.refresh(contact)
    assert contact.needs_reply and contact.unread == 1


def test_a_web_process_holds_at_most_its_share_of_streams_and_asks_the_rest_to_come_back(
    app: Flask, volunteer: User, short_streams: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.extensions, "gotv.live_slots", live.Slots(1, 4, 1))
    first = app.test_client()
    login(first, volunteer)
    held = first.get("/texting/events", buffered=False)
    assert b": connected" in next(iter(held.response))

    turned_away = app.test_client()
    login(turned_away, volunteer)
    busy = turned_away.get("/texting/events").get_data(as_text=True)
    assert ": busy" in busy and ": connected" not in busy
    assert 15_000 <= int(busy.split("retry: ")[1].split("\n")[0]) <= 45_000

    held.close()  # the page is left: its slot is free again
    again = turned_away.get("/texting/events", buffered=False)
    assert b": connected" in next(iter(again.response))
    again.close()


def test_open_streams_never_take_the_redis_connections_that_requests_publish_with(
    app: Flask, volunteer: User, short_streams: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One connection for the requests: a stream holding it would leave none to publish with.
    requests_redis = Redis.from_url(app.config["REDIS_URL"], max_connections=1)
    monkeypatch.setitem(app.extensions, "gotv.redis", requests_redis)
    client = app.test_client()
    login(client, volunteer)
    stream = client.get("/texting/events", buffered=False)
    chunks = iter(stream.response)
    next(chunks)  # subscribed

    with app.app_context():
        live.publish(volunteer.id, {"type": "status", "message_id": 7})

    assert "event: status" in b"".join(chunks).decode()


def test_requests_past_the_limit_wait_their_turn_in_order_while_live_streams_never_wait(
    app: Flask, volunteer: User, short_streams: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    streamer = app.test_client()
    login(streamer, volunteer)
    admission = app.wsgi_app
    # The order requests are let into the app, seen from inside the turns (the order their
    # threads then finish in is the scheduler's).
    admitted: list[str] = []
    inner = admission.wsgi_app

    def recording(environ: dict[str, Any], start_response: Any) -> Any:
        if "HTTP_X_ASKER" in environ:
            admitted.append(environ["HTTP_X_ASKER"])
        return inner(environ, start_response)

    monkeypatch.setattr(admission, "wsgi_app", recording)
    in_flight = admission.free
    for _ in range(in_flight):
        admission.enter()  # every turn taken by a request in flight
    try:
        stream = streamer.get("/texting/events", buffered=False)
        assert b": connected" in next(iter(stream.response))  # no wait for a stream

        answered: list[str] = []

        def ask(name: str) -> None:
            with app.test_client().get("/static/inbox.js", headers={"X-Asker": name}) as page:
                answered.append(f"{name} {page.status_code}")

        askers = [threading.Thread(target=ask, args=(name,)) for name in ("first", "second")]
        for waiting, asker in enumerate(askers, start=1):
            asker.start()
            until(lambda waiting=waiting: len(admission.waiting) == waiting)
        assert admitted == [] and answered == []  # both wait for a turn

        admission.leave()  # a request in flight ends: its turn goes to the first, then on
        in_flight -= 1
        for asker in askers:
            asker.join(5)
        assert admitted == ["first", "second"]
        assert sorted(answered) == ["first 200", "second 200"]
        stream.close()
    finally:
        for _ in range(in_flight):
            admission.leave()


def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


# --- Limits per user and per organization; leaving; signing out -----------------------------


def busy(app: Flask, user: User) -> bool:
    """Whether the user's next stream is turned away."""
    client = app.test_client()
    login(client, user)
    with client.get("/texting/events", buffered=False) as response:
        return b": busy" in next(iter(response.response))


def test_one_user_cannot_take_every_slot_of_a_process(
    app: Flask, organization: Organization, short_streams: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.extensions, "gotv.live_slots", live.Slots(10, 2, 10))
    greedy, other = make_user(organization), make_user(organization)
    db.session.commit()
    held = [open_stream(app, greedy) for _ in range(2)]

    assert busy(app, greedy)
    assert not busy(app, other)
    assert len(held) == 2


def test_one_organization_cannot_take_every_slot_of_a_process(
    app: Flask, organization: Organization, short_streams: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.extensions, "gotv.live_slots", live.Slots(4, 4, 2))
    ours = [make_user(organization) for _ in range(3)]
    theirs = make_user(make_org())
    db.session.commit()
    held = [open_stream(app, user) for user in ours[:2]]

    assert busy(app, ours[2])
    assert not busy(app, theirs)
    assert len(held) == 2


def test_by_default_an_organization_may_hold_three_quarters_of_a_process(app: Flask) -> None:
    slots = app.extensions["gotv.live_slots"]

    assert slots.per_organization == 72 and slots.per_user == live.STREAMS_PER_USER


def test_a_stream_gives_its_slot_back_as_soon_as_the_browser_leaves(app: Flask) -> None:
    slots = live.Slots(1, 1, 1)
    browser, server_side = socket.socketpair()
    events = live.stream(
        Redis.from_url(app.config["REDIS_URL"]),
        7,
        1,
        slots,
        heartbeat_seconds=60,
        stream_seconds=60,
        client=server_side,
    )
    assert ": connected" in next(events)
    ended = threading.Thread(target=lambda: list(events))
    ended.start()

    browser.close()  # the page is closed: no heartbeat is due for a minute
    ended.join(5)

    assert not ended.is_alive()
    assert slots.take(7, 1)  # free again
    server_side.close()


def test_a_suspended_users_open_stream_is_closed_at_once(
    app: Flask, volunteer: User, organizer: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "LIVE_STREAM_SECONDS", 30.0)
    texted_by(volunteer)
    stream = open_stream(app, volunteer)
    boss = app.test_client()
    login(boss, organizer)
    page = boss.get("/team").get_data(as_text=True)

    boss.post(f"/team/members/{volunteer.id}/suspend", data={"csrf_token": csrf_token(page)})
    heard = b"".join(stream).decode()  # ends at the sign-out, not in 30 s

    assert "event: signed_out" in heard
    with app.app_context():
        live.publish(volunteer.id, {"type": "inbound", "body": "Where do I vote?"})
    assert "Where do I vote" not in heard


def test_signing_out_everywhere_closes_the_users_open_streams(
    app: Flask, volunteer: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "LIVE_STREAM_SECONDS", 30.0)
    db.session.commit()
    stream = open_stream(app, volunteer)
    elsewhere = app.test_client()
    login(elsewhere, volunteer)
    page = elsewhere.get("/account").get_data(as_text=True)

    elsewhere.post("/account/sign-out-everywhere", data={"csrf_token": csrf_token(page)})

    assert "event: signed_out" in b"".join(stream).decode()
