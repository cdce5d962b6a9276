"""The send pump: crashes, stuck messages, callbacks in any order, pacing and the campaign tally."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from datetime import timedelta

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import func, select

from gotv.db import db
from gotv.edge import queue, sms
from gotv.fakecarrier import CarrierServer, FakeCarrier
from gotv.models import (
    CampaignStatus,
    CampaignTally,
    ContactStatus,
    Message,
    MessageStatus,
    Sender,
    User,
    utcnow,
)
from gotv.texting import outbox, pacing, senders
from tests.conftest import csrf_token, login, run_jobs
from tests.factories import make_campaign, make_contact, make_message
from tests.test_webhooks import post_signed, status_params
from workers.texting import pump_settings, send_message, sweep_outbox

pytestmark = pytest.mark.usefixtures("weekday_morning")


def queued_messages(volunteer: User, count: int, sender: Sender | None = None) -> list[Message]:
    """`count` committed initial messages to different contacts, as clicks leave them."""
    campaign = make_campaign(volunteer.organization, sender_id=sender.id if sender else None)
    messages = []
    for _ in range(count):
        contact = make_contact(campaign, texter_id=volunteer.id, status=ContactStatus.TEXTED)
        messages.append(
            make_message(contact, is_initial=True, sender=sender.address if sender else "")
        )
    db.session.commit()
    return messages


def make_sender(volunteer: User, address: str, **pace: float) -> Sender:
    """A sender of the volunteer's organization, paced as `pace` says; the pump sees it at once."""
    sender = Sender(organization_id=volunteer.organization_id, address=address, **pace)
    db.session.add(sender)
    db.session.flush()
    outbox._limits_cache.clear()
    senders.forget()
    return sender


def crash_after_claiming() -> list[int]:
    """Claim due messages and die before calling Twilio, as a killed worker would."""
    claimed = outbox.claim(100, utcnow())
    return [outgoing.id for outgoing in claimed.outgoing]


def run_pump(app: Flask) -> int:
    return asyncio.run(outbox.pump(app.config, pump_settings()))


def status_of(message: Message) -> MessageStatus:
    db.session.refresh(message)
    return message.status


# --- Crashes and stuck messages --------------------------------------------------------------


def test_a_crash_between_claim_and_twilio_never_sends_the_message_automatically(
    app: Flask, volunteer: User, carrier: FakeCarrier
) -> None:
    (message,) = queued_messages(volunteer, 1)
    assert crash_after_claiming() == [message.id]

    assert send_message(message.id) is None
    run_pump(app)

    assert status_of(message) == MessageStatus.SENDING
    assert carrier.requests == []


def test_a_message_stuck_in_sending_is_shown_to_organizers_after_five_minutes(
    client: FlaskClient,
    organizer: User,
    volunteer: User,
    carrier: FakeCarrier,
    weekday_morning: time_machine.Traveller,
) -> None:
    (message,) = queued_messages(volunteer, 1)
    crash_after_claiming()
    login(client, organizer)
    settle_form = f"/operations/messages/{message.id}/settle"
    assert settle_form not in client.get("/operations").text

    weekday_morning.shift(timedelta(minutes=6))
    page = client.get("/operations").text

    assert settle_form in page and message.to_number in page
    assert "1 being sent" in page


def settle(client: FlaskClient, message: Message) -> str:
    token = csrf_token(client.get("/operations").text)
    response = client.post(f"/operations/messages/{message.id}/settle", data={"csrf_token": token})
    return client.get(response.headers["Location"]).text


@pytest.fixture
def claimed(volunteer: User) -> Message:
    """A message a worker claimed just before it was killed."""
    (message,) = queued_messages(volunteer, 1)
    crash_after_claiming()
    return message


@pytest.fixture
def organizer_six_minutes_later(
    client: FlaskClient, organizer: User, weekday_morning: time_machine.Traveller
) -> FlaskClient:
    """An organizer signed in once the claimed message has been stuck for six minutes."""
    weekday_morning.shift(timedelta(minutes=6))
    login(client, organizer)
    return client


def test_a_stuck_message_twilio_never_got_is_queued_again_and_sent_once(
    app: Flask, claimed: Message, carrier: FakeCarrier, organizer_six_minutes_later: FlaskClient
) -> None:
    message = claimed

    page = settle(organizer_six_minutes_later, message)
    run_jobs(app)

    assert "queued to send again" in page
    assert status_of(message) == MessageStatus.ACCEPTED
    assert [m["to"] for m in carrier.messages] == [message.to_number]


def test_a_stuck_message_twilio_has_is_recorded_as_sent_without_sending_it_again(
    app: Flask,
    claimed: Message,
    carrier: FakeCarrier,
    client: FlaskClient,
    request: pytest.FixtureRequest,
) -> None:
    message = claimed

    credentials = sms.default_credentials()

    async def send_then_die() -> sms.Accepted:  # Twilio took it; the worker died before recording
        async with sms.Connection(app.config, 1) as twilio:
            return await twilio.send(
                credentials, message.to_number, message.body, "https://gotv.test/s", 60
            )

    accepted = asyncio.run(send_then_die())
    organizer = request.getfixturevalue("organizer_six_minutes_later")

    page = settle(organizer, message)
    run_jobs(app)

    assert "it was sent" in page
    assert (status_of(message), message.twilio_sid) == (MessageStatus.ACCEPTED, accepted.sid)
    assert len(carrier.messages) == 1


def test_an_organizer_cannot_settle_another_organizations_message(
    client: FlaskClient, organizer: User, volunteer: User
) -> None:
    other = make_campaign()
    message = make_message(make_contact(other), status=MessageStatus.SENDING)
    db.session.commit()
    login(client, organizer)

    response = client.post(
        f"/operations/messages/{message.id}/settle",
        data={"csrf_token": csrf_token(client.get("/operations").text)},
    )

    assert response.status_code == 404
    assert status_of(message) == MessageStatus.SENDING


def test_failed_background_jobs_are_listed_by_kind_not_by_details(
    app: Flask, client: FlaskClient, organizer: User
) -> None:
    queue.enqueue("gotv.no_such_module.job", 7, organization_id=organizer.organization_id)
    run_jobs(app)
    login(client, organizer)

    page = client.get("/operations").text

    assert "gotv.no_such_module.job" in page
    assert "Traceback" not in page


# --- Twilio's answers ----------------------------------------------------------------------


def test_a_busy_twilio_429_puts_the_message_back_with_a_backoff(
    volunteer: User, carrier: FakeCarrier
) -> None:
    carrier.fail_all_sends(429)
    (message,) = queued_messages(volunteer, 1)

    assert send_message(message.id) == "queued"

    db.session.refresh(message)
    assert message.next_attempt_at is not None and message.next_attempt_at > utcnow()
    assert message.error_code == 20429


def test_a_send_that_times_out_stays_sending_and_is_never_sent_again(
    app: Flask, volunteer: User, silent_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sms, "HTTP_TIMEOUT_SECONDS", 0.3)
    (message,) = queued_messages(volunteer, 1)

    asyncio.run(outbox.pump({**app.config, "TWILIO_API_URL": silent_server}, pump_settings()))

    assert status_of(message) == MessageStatus.SENDING
    assert outbox.due_messages_exist(utcnow()) is False


# --- Redis outages ---------------------------------------------------------------------------


@pytest.fixture
def redis_down(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """The app's Redis connection points where nothing listens."""
    monkeypatch.setitem(app.extensions, "gotv.redis", Redis.from_url("redis://127.0.0.1:1/0"))


def test_a_click_while_redis_is_down_is_sent_once_redis_is_back(
    app: Flask, volunteer: User, carrier: FakeCarrier, monkeypatch: pytest.MonkeyPatch
) -> None:
    (message,) = queued_messages(volunteer, 1)
    with monkeypatch.context() as outage:
        outage.setitem(app.extensions, "gotv.redis", Redis.from_url("redis://127.0.0.1:1/0"))
        assert queue.wake_senders() is False

    assert sweep_outbox() is True
    run_jobs(app)

    assert status_of(message) == MessageStatus.ACCEPTED
    assert len(carrier.messages) == 1


def test_redis_failing_mid_claim_leaves_no_message_claimed(
    app: Flask, volunteer: User, carrier: FakeCarrier, redis_down: None
) -> None:
    sender = make_sender(volunteer, "+14155550200", per_second=10)
    (message,) = queued_messages(volunteer, 1, sender)

    with pytest.raises(RedisError):
        run_pump(app)
    db.session.rollback()

    assert status_of(message) == MessageStatus.QUEUED
    assert carrier.requests == []


# --- Status callbacks ------------------------------------------------------------------------


SID = "SM" + "c" * 32


def test_a_status_callback_that_beats_the_send_job_is_applied_and_not_undone(
    app: Flask, client: FlaskClient, volunteer: User
) -> None:
    (message,) = queued_messages(volunteer, 1)
    crash_after_claiming()  # Twilio has it; its answer is not recorded yet

    response = post_signed(
        client, f"/twilio/status?message={message.id}", status_params(SID, "delivered")
    )
    outbox.record(
        [outbox.Result(message.id, sms.Accepted(SID, "queued", "+15005550006"))], utcnow()
    )

    assert response.status_code == 200
    assert (status_of(message), message.twilio_sid) == (MessageStatus.DELIVERED, SID)


@pytest.mark.parametrize(
    "order",
    [list(p) for p in itertools.permutations(["sent", "delivered", "sent", "delivered"], 4)][:6],
)
def test_callbacks_in_any_order_and_repeated_end_at_the_furthest_status(
    client: FlaskClient, volunteer: User, order: list[str]
) -> None:
    (message,) = queued_messages(volunteer, 1)
    crash_after_claiming()

    for status in order:
        post_signed(client, f"/twilio/status?message={message.id}", status_params(SID, status))

    assert status_of(message) == MessageStatus.DELIVERED


def test_a_callback_naming_another_messages_sid_is_ignored(
    client: FlaskClient, volunteer: User
) -> None:
    first, second = queued_messages(volunteer, 2)
    first.twilio_sid, first.status = SID, MessageStatus.ACCEPTED
    db.session.commit()

    post_signed(
        client, f"/twilio/status?message={first.id}", status_params("SM" + "d" * 32, "failed")
    )

    assert status_of(first) == MessageStatus.ACCEPTED


# --- Pacing ----------------------------------------------------------------------------------


def test_two_workers_together_stay_within_a_senders_rate(redis_url: str) -> None:
    granted: list[int] = []
    limits = [pacing.Limit.rate("test:two-workers", 20)]
    deadline = time.monotonic() + 1.0

    def worker() -> None:
        connection = Redis.from_url(redis_url)
        while time.monotonic() < deadline:
            granted.append(pacing.take(connection, limits, 3, utcnow()).granted)
            time.sleep(0.005)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # A full bucket (one second's worth) plus one second of refill, shared by both workers.
    assert 36 <= sum(granted) <= 41


def test_a_daily_cap_is_shared_and_resets_at_midnight_utc(redis_url: str) -> None:
    connection = Redis.from_url(redis_url)
    now = utcnow()
    cap = [pacing.Limit.daily_cap("test:cap", 5, now)]

    assert pacing.take(connection, cap, 3, now).granted == 3
    assert pacing.take(connection, cap, 3, now).granted == 2
    assert pacing.take(connection, cap, 3, now).granted == 0
    tomorrow = now + timedelta(days=1)
    assert (
        pacing.take(
            connection, [pacing.Limit.daily_cap("test:cap", 5, tomorrow)], 3, tomorrow
        ).granted
        == 3
    )


def test_a_paced_sender_sends_no_faster_than_its_limit(
    app: Flask, volunteer: User, carrier: FakeCarrier
) -> None:
    sender = make_sender(volunteer, "+14155550201", per_second=20)
    messages = queued_messages(volunteer, 30, sender)

    started = time.monotonic()
    sent = run_pump(app)
    elapsed = time.monotonic() - started

    # 20 at once (the bucket starts full), then 10 more at 20 a second.
    assert sent == 30 and elapsed >= 0.45
    assert {status_of(message) for message in messages} == {MessageStatus.ACCEPTED}
    assert {request["From"] for request in carrier.requests} == {"+14155550201"}


def test_messages_beyond_a_senders_daily_cap_wait_in_the_queue(
    app: Flask, volunteer: User, carrier: FakeCarrier
) -> None:
    sender = make_sender(volunteer, "+14155550202", daily_cap=2)
    messages = queued_messages(volunteer, 3, sender)

    assert run_pump(app) == 2

    assert sorted(status_of(message) for message in messages) == sorted(
        [MessageStatus.ACCEPTED, MessageStatus.ACCEPTED, MessageStatus.QUEUED]
    )


# --- The campaign tally ----------------------------------------------------------------------


def tally() -> dict[tuple[int, str], int]:
    rows = db.session.execute(
        select(CampaignTally.campaign_id, CampaignTally.status, func.sum(CampaignTally.count))
        .group_by(CampaignTally.campaign_id, CampaignTally.status)
        .having(func.sum(CampaignTally.count) != 0)
    )
    return {(campaign_id, status): int(count) for campaign_id, status, count in rows}


def counted() -> dict[tuple[int, str], int]:
    rows = db.session.execute(
        select(Message.campaign_id, Message.status, func.count())
        .where(Message.campaign_id.is_not(None))
        .group_by(Message.campaign_id, Message.status)
    )
    return {(campaign_id, status.value): count for campaign_id, status, count in rows}


def test_the_campaign_tally_always_equals_the_messages_by_status(
    app: Flask, client: FlaskClient, volunteer: User, carrier: FakeCarrier
) -> None:
    messages = queued_messages(volunteer, 4)
    paused = queued_messages(volunteer, 2)
    carrier.fail_sends_to(messages[0].to_number, 21211)
    assert paused[0].campaign is not None
    paused[0].campaign.status = CampaignStatus.PAUSED
    db.session.commit()
    assert tally() == counted()

    run_pump(app)
    for hook in carrier.take_webhooks():
        client.post(hook.url, data=hook.params, headers=hook.headers)
    db.session.delete(messages[2])
    db.session.commit()

    assert tally() == counted()
    assert set(status for _, status in tally()) >= {"failed", "refused"}


def test_an_organizations_limit_holds_across_all_its_senders(
    app: Flask, volunteer: User, carrier: FakeCarrier
) -> None:
    volunteer.organization.per_second = 20
    senders = [make_sender(volunteer, f"+1415555020{n}") for n in range(2)]
    messages = queued_messages(volunteer, 15, senders[0]) + queued_messages(
        volunteer, 15, senders[1]
    )

    started = time.monotonic()
    sent = run_pump(app)

    assert sent == 30 and time.monotonic() - started >= 0.45
    assert {status_of(message) for message in messages} == {MessageStatus.ACCEPTED}


def test_a_pump_whose_whole_batch_answers_at_once_goes_on_to_the_next_batch(
    app: Flask,
    volunteer: User,
    carrier: FakeCarrier,
    carrier_server: CarrierServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Found by tests/test_faults.py: when every request in flight was answered within one
    # wait, the pump stopped after its first batch and left the rest to another pump.
    monkeypatch.setattr(carrier_server, "latency", 0.02)
    messages = queued_messages(volunteer, 30)

    sent = asyncio.run(outbox.pump(app.config, outbox.PumpSettings("https://gotv.test/s", 10)))

    assert sent == 30
    assert {status_of(message) for message in messages} == {MessageStatus.ACCEPTED}


def test_a_pump_whose_whole_claim_is_refused_goes_on_to_the_messages_behind_it(
    app: Flask, volunteer: User, carrier: FakeCarrier
) -> None:
    stale = queued_messages(volunteer, 10)
    for message in stale:  # queued two hours ago: the last gate refuses them as expired
        message.created_at = utcnow() - timedelta(hours=2)
    fresh = queued_messages(volunteer, 3)

    sent = asyncio.run(outbox.pump(app.config, outbox.PumpSettings("https://gotv.test/s", 10)))

    assert {status_of(message) for message in stale} == {MessageStatus.REFUSED}
    assert sent == 3
    assert {status_of(message) for message in fresh} == {MessageStatus.ACCEPTED}
