"""The last gate before Twilio: the send job re-checks every rule and sends each message once."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from gotv import create_app
from gotv.db import db
from gotv.edge import queue
from gotv.fakecarrier import FakeCarrier
from gotv.models import (
    Campaign,
    CampaignStatus,
    Contact,
    ContactStatus,
    Message,
    MessageStatus,
    OptOut,
    User,
    utcnow,
)
from gotv.texting import assignment, texts
from tests import conftest
from tests.conftest import closed_port, config_like, csrf_token, login, run_jobs, take_batch
from tests.factories import (
    make_campaign,
    make_contact,
    make_message,
    make_user,
    queue_initial_message,
)
from workers.texting import send_message, sweep_outbox

pytestmark = pytest.mark.usefixtures("weekday_morning")

CELL = "+12125550242"


def queued_initial(volunteer: User, **contact_fields: object) -> Message:
    """A committed initial message for a new contact, queued as a volunteer's click leaves it."""
    campaign = make_campaign(volunteer.organization, script="Hi {first_name}!")
    contact = make_contact(campaign, **{"cell": CELL, **contact_fields})
    message = queue_initial_message(
        campaign, contact.id, volunteer, secrets.token_urlsafe(24), utcnow()
    )
    db.session.commit()
    return message


def status_of(message: Message) -> tuple[MessageStatus, str | None]:
    db.session.refresh(message)
    return message.status, message.refusal_reason


def click_send(client: FlaskClient, campaign: Campaign) -> None:
    """Take a batch, open the send screen and press Send once, as a volunteer does."""
    take_batch(client, campaign.id)
    page = client.get(f"/texting/{campaign.id}/send").get_data(as_text=True)
    form = {"csrf_token": csrf_token(page)}
    for name in ("contact_id", "idempotency_key"):
        start = page.index(f'name="{name}"')
        value_at = page.index('value="', start) + len('value="')
        form[name] = page[value_at : page.index('"', value_at)]
    assert client.post(f"/texting/{campaign.id}/send", data=form).status_code == 302


def enqueue_pump() -> None:
    assert queue.enqueue("workers.texting.pump_outbox", queue_name=queue.SEND)


def new_york(moment: str) -> datetime:
    return datetime.fromisoformat(moment + "-05:00")


# --- Refusals at the last gate -------------------------------------------------------------


def test_a_message_to_a_number_that_opted_out_after_queueing_is_refused(
    volunteer: User, carrier: FakeCarrier
) -> None:
    message = queued_initial(volunteer)
    # Written straight to the table, as another process would, so only the gate can stop it.
    db.session.add(OptOut(organization_id=volunteer.organization_id, cell=CELL, source="admin"))
    db.session.commit()

    send_message(message.id)

    assert status_of(message) == (MessageStatus.REFUSED, "opted_out")
    assert carrier.requests == []


def test_a_message_whose_campaign_was_paused_after_queueing_is_refused(
    volunteer: User, carrier: FakeCarrier
) -> None:
    message = queued_initial(volunteer)
    assert message.contact is not None
    message.contact.campaign.status = CampaignStatus.PAUSED
    db.session.commit()

    send_message(message.id)

    assert status_of(message) == (MessageStatus.REFUSED, "campaign_not_active")
    assert carrier.requests == []


def test_a_message_still_queued_when_quiet_hours_begin_is_refused(
    app: Flask, client: FlaskClient, volunteer: User, carrier: FakeCarrier
) -> None:
    campaign = make_campaign(volunteer.organization, script="Hi {first_name}!")
    make_contact(campaign, cell=CELL, time_zones="America/New_York")
    with time_machine.travel(new_york("2026-11-03T19:45:00"), tick=True):
        login(client, volunteer)
        click_send(client, campaign)

    with time_machine.travel(new_york("2026-11-03T20:30:00"), tick=True):
        run_jobs(app)

    message = db.session.scalars(select(Message)).one()
    assert status_of(message) == (MessageStatus.REFUSED, "quiet_hours")
    assert carrier.requests == []


def test_a_message_whose_contact_was_reassigned_after_queueing_is_refused(
    volunteer: User, carrier: FakeCarrier
) -> None:
    message = queued_initial(volunteer)
    assert message.contact is not None
    message.contact.texter_id = make_user(volunteer.organization).id
    db.session.commit()

    send_message(message.id)

    assert status_of(message) == (MessageStatus.REFUSED, "contact_reassigned")
    assert carrier.requests == []


def test_a_message_that_passes_the_gate_is_accepted_with_twilios_sid(
    volunteer: User, carrier: FakeCarrier
) -> None:
    message = queued_initial(volunteer)

    assert send_message(message.id) == "accepted"

    db.session.refresh(message)
    assert [(m["to"], m["body"], m["sid"]) for m in carrier.messages] == [
        (CELL, "Hi Maria!", message.twilio_sid)
    ]


# --- Exactly once --------------------------------------------------------------------------


def test_a_message_sent_twice_reaches_the_carrier_once(
    volunteer: User, carrier: FakeCarrier
) -> None:
    message = queued_initial(volunteer)

    first, second = send_message(message.id), send_message(message.id)

    assert (first, second) == ("accepted", None)
    assert len(carrier.messages) == 1


def test_two_pumps_for_the_same_message_reach_the_carrier_once(
    app: Flask, volunteer: User, carrier: FakeCarrier
) -> None:
    message = queued_initial(volunteer)
    enqueue_pump()
    enqueue_pump()

    run_jobs(app)

    assert len(carrier.messages) == 1
    assert status_of(message) == (MessageStatus.ACCEPTED, None)


def test_a_message_already_sending_is_not_sent_again(volunteer: User, carrier: FakeCarrier) -> None:
    message = queued_initial(volunteer)
    message.status = MessageStatus.SENDING
    db.session.commit()

    assert send_message(message.id) is None
    assert carrier.requests == []


# --- What the carrier's answers mean -------------------------------------------------------


def test_a_21610_from_the_carrier_fails_the_message(volunteer: User, carrier: FakeCarrier) -> None:
    carrier.fail_sends_to(CELL, 21610)
    message = queued_initial(volunteer)

    send_message(message.id)

    db.session.refresh(message)
    assert (message.status, message.error_code) == (MessageStatus.FAILED, 21610)
    assert carrier.messages == []


def test_a_21610_from_the_carrier_opts_the_number_out(
    volunteer: User, carrier: FakeCarrier
) -> None:
    carrier.fail_sends_to(CELL, 21610)
    message = queued_initial(volunteer)

    send_message(message.id)

    opt_out = db.session.scalars(select(OptOut)).one()
    assert (opt_out.organization_id, opt_out.cell, opt_out.source, opt_out.message_id) == (
        volunteer.organization_id,
        CELL,
        "carrier_21610",
        message.id,
    )


def test_a_21610_refuses_the_other_messages_queued_to_that_number(
    volunteer: User, carrier: FakeCarrier
) -> None:
    carrier.fail_sends_to(CELL, 21610)
    message = queued_initial(volunteer)
    other_campaign = make_campaign(volunteer.organization)
    other_contact = make_contact(other_campaign, cell=CELL, texter_id=volunteer.id)
    waiting = make_message(other_contact, texter_id=volunteer.id)
    db.session.commit()

    send_message(message.id)

    assert status_of(waiting) == (MessageStatus.REFUSED, "opted_out")


def test_a_twilio_outage_puts_the_message_back_in_the_queue_for_a_retry(
    volunteer: User, carrier: FakeCarrier
) -> None:
    carrier.fail_all_sends()
    message = queued_initial(volunteer)

    assert send_message(message.id) == "queued"

    db.session.refresh(message)
    assert (message.status, message.attempts) == (MessageStatus.QUEUED, 1)
    assert message.next_attempt_at is not None and message.next_attempt_at > utcnow()
    assert carrier.messages == []


def test_a_retry_waits_for_its_backoff(volunteer: User, carrier: FakeCarrier) -> None:
    carrier.fail_all_sends()
    message = queued_initial(volunteer)
    send_message(message.id)
    carrier.recover()

    assert send_message(message.id) == "queued"
    assert carrier.messages == []


def test_the_retry_after_an_outage_sends_the_message_exactly_once(
    volunteer: User, carrier: FakeCarrier, weekday_morning: time_machine.Traveller
) -> None:
    carrier.fail_all_sends()
    message = queued_initial(volunteer)
    send_message(message.id)
    carrier.recover()
    weekday_morning.shift(timedelta(seconds=6))

    assert send_message(message.id) == "accepted"
    assert send_message(message.id) is None

    assert [m["body"] for m in carrier.messages] == ["Hi Maria!"]


def test_a_message_queued_through_a_long_outage_expires_instead_of_going_late(
    volunteer: User, carrier: FakeCarrier, weekday_morning: time_machine.Traveller
) -> None:
    carrier.fail_all_sends()
    message = queued_initial(volunteer)
    send_message(message.id)
    carrier.recover()
    weekday_morning.shift(timedelta(minutes=61))

    assert send_message(message.id) == "refused"
    assert status_of(message) == (MessageStatus.REFUSED, "expired")
    assert carrier.messages == []


@pytest.fixture
def app_with_twilio_down(app: Flask) -> Iterator[Flask]:
    """The app configured with a Twilio URL on a local port where nothing listens."""
    unreachable = create_app(config_like(app, TWILIO_API_URL=f"http://127.0.0.1:{closed_port()}"))
    yield unreachable
    with unreachable.app_context():
        db.engine.dispose()


def test_an_unreachable_twilio_is_retried_later(
    app_with_twilio_down: Flask, volunteer: User
) -> None:
    message_id = queued_initial(volunteer).id

    with app_with_twilio_down.app_context():
        assert send_message(message_id) == "queued"

    unsent = db.session.get(Message, message_id)
    assert unsent is not None and unsent.status == MessageStatus.QUEUED


def test_a_first_text_still_queued_in_the_last_ten_minutes_is_refused_at_the_last_gate(
    volunteer: User, carrier: FakeCarrier
) -> None:
    with time_machine.travel(new_york("2026-11-03T19:49:00"), tick=False):
        message = queued_initial(volunteer, time_zones="America/New_York")
    with time_machine.travel(new_york("2026-11-03T19:52:00"), tick=False):
        send_message(message.id)

    assert status_of(message) == (MessageStatus.REFUSED, "closing_buffer")
    assert carrier.requests == []


def test_a_reply_in_the_last_ten_minutes_still_goes_out(
    volunteer: User, carrier: FakeCarrier
) -> None:
    with time_machine.travel(new_york("2026-11-03T19:49:00"), tick=False):
        first = queued_initial(volunteer, time_zones="America/New_York")
        send_message(first.id)
        assert first.contact is not None
        reply = make_message(first.contact, texter_id=volunteer.id, body="See you there!")
        db.session.commit()
    with time_machine.travel(new_york("2026-11-03T19:55:00"), tick=False):
        send_message(reply.id)

    assert status_of(reply)[0] == MessageStatus.ACCEPTED
    assert 240 < int(carrier.requests[-1]["ValidityPeriod"]) <= 5 * 60


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ("+14165550242", "number_canada"),
        ("+18765550242", "number_caribbean"),
        ("+12125550142", "number_fictional"),
        ("+17875550242", "number_us_territory"),
        ("+1２１２５５５０２４２", "number_invalid"),
    ],
)
def test_a_number_the_policy_refuses_is_refused_at_the_last_gate(
    volunteer: User, carrier: FakeCarrier, cell: str, reason: str
) -> None:
    # Contacts loaded before the policy, or in a territory the organization stopped texting.
    contact = make_contact(make_campaign(volunteer.organization), cell=cell)
    message = make_message(contact, texter_id=volunteer.id, is_initial=True)
    contact.texter_id = volunteer.id
    db.session.commit()

    send_message(message.id)

    assert status_of(message) == (MessageStatus.REFUSED, reason)
    assert carrier.requests == []


def test_a_territory_number_is_sent_when_the_organization_texts_the_territories(
    volunteer: User, carrier: FakeCarrier
) -> None:
    volunteer.organization.texts_us_territories = True
    message = queued_initial(volunteer, cell="+17875550242", time_zones="America/Puerto_Rico")

    send_message(message.id)

    assert status_of(message)[0] == MessageStatus.ACCEPTED


# --- How long Twilio may hold a message ----------------------------------------------------


def test_the_validity_period_never_outlasts_the_recipients_window(
    volunteer: User, carrier: FakeCarrier
) -> None:
    with time_machine.travel(new_york("2026-11-03T19:40:00"), tick=True):
        message = queued_initial(volunteer, time_zones="America/New_York")
        send_message(message.id)

    assert 1100 < int(carrier.requests[0]["ValidityPeriod"]) <= 20 * 60


def test_the_validity_period_ends_when_the_first_of_several_zones_closes(
    volunteer: User, carrier: FakeCarrier
) -> None:
    with time_machine.travel(new_york("2026-11-03T19:00:00"), tick=True):
        message = queued_initial(volunteer, time_zones="America/Chicago America/New_York")
        send_message(message.id)

    assert 3500 < int(carrier.requests[0]["ValidityPeriod"]) <= 60 * 60


def test_the_validity_period_is_at_most_four_hours(volunteer: User, carrier: FakeCarrier) -> None:
    message = queued_initial(volunteer)  # 11:00 in New York: nine hours left

    send_message(message.id)

    assert int(carrier.requests[0]["ValidityPeriod"]) == texts.MAX_VALIDITY_SECONDS


# --- The sweeper ---------------------------------------------------------------------------


def queued_since(volunteer: User, age: timedelta, **fields: object) -> Message:
    campaign = make_campaign(volunteer.organization)
    contact = make_contact(campaign, texter_id=volunteer.id, status=ContactStatus.TEXTED)
    message = make_message(contact, updated_at=utcnow() - age, **fields)
    db.session.commit()
    return message


def send_jobs() -> list[str]:
    return [job.func_name for job in queue.queue(queue.SEND).get_jobs()]


def test_the_sweeper_wakes_a_pump_for_a_message_nobody_picked_up(volunteer: User) -> None:
    queued_since(volunteer, timedelta(minutes=3))

    assert sweep_outbox() is True

    assert send_jobs() == ["workers.texting.pump_outbox"]


def test_the_sweeper_leaves_a_retry_that_is_not_due_yet(volunteer: User) -> None:
    queued_since(volunteer, timedelta(minutes=1), next_attempt_at=utcnow() + timedelta(seconds=30))

    assert sweep_outbox() is False

    assert send_jobs() == []


def test_the_sweeper_never_wakes_a_pump_for_a_message_that_may_have_reached_twilio(
    volunteer: User,
) -> None:
    queued_since(volunteer, timedelta(hours=1), status=MessageStatus.SENDING)

    assert sweep_outbox() is False


def test_clicks_while_a_pump_waits_in_the_queue_add_no_second_pump(volunteer: User) -> None:
    assert queue.wake_senders() and queue.wake_senders()

    assert send_jobs() == ["workers.texting.pump_outbox"]


def test_a_swept_message_is_sent_once(app: Flask, volunteer: User, carrier: FakeCarrier) -> None:
    queued_since(volunteer, timedelta(minutes=3), body="Still voting?")
    enqueue_pump()  # the original wake-up turns up late, after the sweep

    sweep_outbox()
    run_jobs(app)

    assert [m["body"] for m in carrier.messages] == ["Still voting?"]


# --- Queueing an initial text --------------------------------------------------------------


def queue_now(campaign: Campaign, contact: Contact, texter: User, now: datetime) -> Message:
    return queue_initial_message(campaign, contact.id, texter, secrets.token_urlsafe(24), now)


def test_an_opted_out_contact_cannot_be_queued(volunteer: User) -> None:
    campaign = make_campaign(volunteer.organization)
    contact = make_contact(campaign)
    db.session.add(
        OptOut(organization_id=volunteer.organization_id, cell=contact.cell, source="admin")
    )

    with pytest.raises(texts.CannotText, match="opted out"):
        queue_now(campaign, contact, volunteer, conftest.WEEKDAY_MORNING_ET)


def test_a_contact_outside_their_hours_cannot_be_queued(volunteer: User) -> None:
    campaign = make_campaign(volunteer.organization)
    contact = make_contact(campaign, time_zones="Pacific/Honolulu")  # 6:00 there

    with pytest.raises(texts.CannotText, match="outside this person's texting hours"):
        queue_now(campaign, contact, volunteer, conftest.WEEKDAY_MORNING_ET)


@pytest.mark.parametrize(
    ("cell", "why"),
    [("+14165550242", "a Canadian number"), ("+17875550242", "a US territory number")],
)
def test_the_click_refuses_a_number_the_policy_refuses(
    volunteer: User, cell: str, why: str
) -> None:
    campaign = make_campaign(volunteer.organization)
    contact = make_contact(campaign, cell=cell)

    with pytest.raises(texts.CannotText, match=f"This number is not texted: {why}"):
        queue_now(campaign, contact, volunteer, conftest.WEEKDAY_MORNING_ET)


def test_the_send_screen_passes_over_a_number_the_policy_refuses(volunteer: User) -> None:
    campaign = make_campaign(volunteer.organization)
    make_contact(campaign, cell="+14165550242", texter_id=volunteer.id)  # loaded before the policy
    textable = make_contact(campaign, cell="+12125550243", texter_id=volunteer.id)
    now = conftest.WEEKDAY_MORNING_ET

    ready = assignment.batch(campaign, volunteer, now).ready
    next_rows, _ = assignment.next_ready(campaign, volunteer, now, after=0, limit=5)

    assert [contact.id for contact in ready] == [textable.id]
    assert [row.id for row in next_rows] == [textable.id]


def test_a_contact_already_texted_cannot_be_queued_again(volunteer: User) -> None:
    campaign = make_campaign(volunteer.organization)
    contact = make_contact(campaign)
    queue_now(campaign, contact, make_user(volunteer.organization), conftest.WEEKDAY_MORNING_ET)

    with pytest.raises(texts.CannotText, match="already been texted"):
        queue_now(campaign, contact, volunteer, conftest.WEEKDAY_MORNING_ET)


def test_a_contact_of_another_campaign_cannot_be_queued(volunteer: User) -> None:
    campaign = make_campaign(volunteer.organization)
    elsewhere = make_contact(make_campaign(volunteer.organization))

    with pytest.raises(texts.CannotText, match="not in this campaign"):
        queue_now(campaign, elsewhere, volunteer, conftest.WEEKDAY_MORNING_ET)


def test_a_contact_of_a_draft_campaign_cannot_be_queued(volunteer: User) -> None:
    campaign = make_campaign(volunteer.organization, status=CampaignStatus.DRAFT)
    contact = make_contact(campaign)

    with pytest.raises(texts.CannotText, match="not active"):
        queue_now(campaign, contact, volunteer, conftest.WEEKDAY_MORNING_ET)


def test_the_database_allows_one_initial_message_per_contact_even_without_the_claim(
    volunteer: User,
) -> None:
    contact = make_contact(make_campaign(volunteer.organization), texter_id=volunteer.id)
    make_message(contact, is_initial=True)

    with pytest.raises(IntegrityError), db.session.begin_nested():
        make_message(contact, is_initial=True)


def test_the_database_allows_any_number_of_replies_to_a_contact(volunteer: User) -> None:
    contact = make_contact(make_campaign(volunteer.organization), texter_id=volunteer.id)
    make_message(contact, is_initial=True)

    make_message(contact, body="One")
    make_message(contact, body="Two")

    assert len(db.session.scalars(select(Message.id)).all()) == 3


# --- Scripts -------------------------------------------------------------------------------


def test_a_script_is_filled_with_the_contacts_first_name_and_the_texters_name(
    volunteer: User,
) -> None:
    contact = make_contact(make_campaign(volunteer.organization), first_name="Maria")

    body = texts.render("Hi {first_name}, it's {texter_name}!", contact, volunteer)

    assert body == "Hi Maria, it's Val!"


def test_a_script_is_filled_with_the_lists_custom_fields(volunteer: User) -> None:
    contact = make_contact(
        make_campaign(volunteer.organization), custom_fields={"polling_place": "the library"}
    )

    body = texts.render("You vote at {polling_place}.", contact, volunteer)

    assert body == "You vote at the library."


def test_a_custom_field_cannot_override_a_standard_merge_field(volunteer: User) -> None:
    contact = make_contact(
        make_campaign(volunteer.organization), custom_fields={"texter_name": "Mallory"}
    )

    assert texts.render("{texter_name}", contact, volunteer) == "Val"


def test_a_merge_field_nobody_can_fill_is_flagged() -> None:
    script = "Hi {nickname}, it's {texter_name}. You vote at {polling_place}."

    assert texts.unknown_merge_fields(script, ["polling_place"]) == ["nickname"]
