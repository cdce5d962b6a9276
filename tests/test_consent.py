"""Consent end to end: what each kind of reply does, the one confirmation, carrier errors."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from gotv.compliance import carrier_errors, optouts
from gotv.compliance.carrier_errors import Action
from gotv.db import db
from gotv.fakecarrier import FakeCarrier
from gotv.models import (
    AuditEvent,
    BlockedNumber,
    Contact,
    ContactStatus,
    Message,
    MessageKind,
    MessageStatus,
    OptOut,
    User,
    utcnow,
)
from gotv.texting import assignment
from tests.conftest import csrf_token, deliver_webhooks, login, run_jobs
from tests.factories import make_campaign, make_contact, make_message
from workers.texting import send_message

pytestmark = pytest.mark.usefixtures("weekday_morning")

CELL = "+12125550242"


@pytest.fixture
def texted(app: Flask, volunteer: User, carrier: FakeCarrier) -> Contact:
    """A contact the volunteer has texted, whose first message was delivered."""
    campaign = make_campaign(volunteer.organization, script="Hi {first_name}!")
    contact = make_contact(campaign, cell=CELL, texter_id=volunteer.id, status=ContactStatus.TEXTED)
    message = make_message(contact, body="Hi Maria!")
    db.session.commit()

    send_message(message.id)
    carrier.take_webhooks()
    return contact


def reply(client: FlaskClient, carrier: FakeCarrier, body: str) -> None:
    """The voter replies; the carrier's webhook reaches the app; the jobs it queued run."""
    carrier.reply(CELL, body)
    assert deliver_webhooks(client, carrier) == [200]


def sent_bodies(carrier: FakeCarrier) -> list[str]:
    return [message["body"] for message in carrier.messages]


def opt_out_row() -> OptOut | None:
    return db.session.scalars(select(OptOut).where(OptOut.cell == CELL)).first()


def test_a_multi_word_opt_out_gets_our_one_confirmation_text(
    app: Flask, client: FlaskClient, texted: Contact, carrier: FakeCarrier
) -> None:
    reply(client, carrier, "Opt out")
    run_jobs(app)

    opt_out = opt_out_row()
    assert opt_out is not None and opt_out.source == "inbound_keyword"
    confirmation = db.session.get(Message, opt_out.confirmation_message_id)
    assert confirmation is not None and confirmation.kind == MessageKind.OPT_OUT_CONFIRMATION
    assert confirmation.status == MessageStatus.ACCEPTED
    assert sent_bodies(carrier)[-1].endswith(
        "you are unsubscribed and will get no more texts from us."
    )
    assert int(carrier.requests[-1]["ValidityPeriod"]) <= 300


@pytest.mark.parametrize(
    ("body", "confirmation"),
    [
        ("ALTO", "Vote Together: se dio de baja. Ya no le enviaremos mensajes."),
        (
            "Deja de escribirme por favor",
            "Vote Together: se dio de baja. Ya no le enviaremos mensajes.",
        ),
        ("no más mensajes", "Vote Together: se dio de baja. Ya no le enviaremos mensajes."),
        (
            "stop texting me",
            "Vote Together: you are unsubscribed and will get no more texts from us.",
        ),
    ],
)
def test_the_confirmation_is_in_the_voters_language_and_names_the_organization(
    app: Flask,
    client: FlaskClient,
    texted: Contact,
    carrier: FakeCarrier,
    body: str,
    confirmation: str,
) -> None:
    reply(client, carrier, body)
    run_jobs(app)

    assert sent_bodies(carrier)[-1] == confirmation


def test_a_twilio_keyword_gets_no_second_confirmation_from_us(
    app: Flask, client: FlaskClient, texted: Contact, carrier: FakeCarrier
) -> None:
    reply(client, carrier, "STOP")
    run_jobs(app)

    assert opt_out_row() is not None
    assert sent_bodies(carrier) == ["Hi Maria!"]


def test_a_clear_phrase_opts_out_automatically(
    app: Flask, client: FlaskClient, texted: Contact, carrier: FakeCarrier
) -> None:
    reply(client, carrier, "Please stop texting me, I already voted")

    opt_out = opt_out_row()
    assert opt_out is not None and opt_out.source == "inbound_phrase"


def test_an_opt_out_is_confirmed_only_once(
    app: Flask, client: FlaskClient, texted: Contact, carrier: FakeCarrier
) -> None:
    reply(client, carrier, "opt out")
    reply(client, carrier, "opt out!!")
    run_jobs(app)

    confirmations = db.session.scalars(
        select(Message).where(Message.kind == MessageKind.OPT_OUT_CONFIRMATION)
    ).all()
    assert len(confirmations) == 1


def test_start_lifts_the_opt_out_and_the_audit_log_says_so(
    app: Flask, client: FlaskClient, texted: Contact, carrier: FakeCarrier
) -> None:
    reply(client, carrier, "STOP")
    reply(client, carrier, "START")

    assert opt_out_row() is None
    actions = db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions == ["opt_out", "opt_out_lifted"]


def test_yes_resubscribes_only_a_number_that_opted_out(
    app: Flask, client: FlaskClient, texted: Contact, carrier: FakeCarrier
) -> None:
    reply(client, carrier, "yes")
    assert opt_out_row() is None and texted.needs_reply

    reply(client, carrier, "STOP")
    reply(client, carrier, "YES")
    assert opt_out_row() is None


def test_help_that_twilio_does_not_answer_gets_the_organizations_help_text(
    app: Flask, client: FlaskClient, texted: Contact, carrier: FakeCarrier
) -> None:
    reply(client, carrier, "Ayuda")
    run_jobs(app)

    assert sent_bodies(carrier)[-1].startswith("Vote Together: volunteers texting")


def test_plain_help_is_left_to_twilio(
    app: Flask, client: FlaskClient, texted: Contact, carrier: FakeCarrier
) -> None:
    reply(client, carrier, "HELP")
    run_jobs(app)

    assert sent_bodies(carrier) == ["Hi Maria!"]


def test_a_possible_opt_out_is_flagged_for_the_volunteer_not_applied(
    app: Flask, client: FlaskClient, volunteer: User, texted: Contact, carrier: FakeCarrier
) -> None:
    reply(client, carrier, "leave me alone")
    login(client, volunteer)

    page = client.get(f"/texting/conversations/{texted.id}").get_data(as_text=True)

    assert opt_out_row() is None
    assert texted.opt_out_suggested and "This reply may be asking to stop" in page


def test_the_volunteer_confirms_a_suggested_opt_out_with_one_click(
    app: Flask, client: FlaskClient, volunteer: User, texted: Contact, carrier: FakeCarrier
) -> None:
    reply(client, carrier, "leave me alone")
    login(client, volunteer)
    page = client.get(f"/texting/conversations/{texted.id}").get_data(as_text=True)

    client.post(
        f"/texting/conversations/{texted.id}/opt-out",
        data={"csrf_token": csrf_token(page), "confirm": "y"},
    )
    run_jobs(app)

    opt_out = opt_out_row()
    assert opt_out is not None and (opt_out.source, opt_out.user_id) == ("texter", volunteer.id)
    assert sent_bodies(carrier)[-1].endswith("will get no more texts from us.")


def test_a_volunteers_opt_out_after_a_spanish_reply_is_confirmed_in_spanish(
    app: Flask, client: FlaskClient, volunteer: User, texted: Contact, carrier: FakeCarrier
) -> None:
    reply(client, carrier, "Déjenme en paz por favor")
    login(client, volunteer)
    page = client.get(f"/texting/conversations/{texted.id}").get_data(as_text=True)

    client.post(
        f"/texting/conversations/{texted.id}/opt-out",
        data={"csrf_token": csrf_token(page), "confirm": "y"},
    )
    run_jobs(app)

    assert sent_bodies(carrier)[-1] == (
        "Vote Together: se dio de baja. Ya no le enviaremos mensajes."
    )


def test_the_volunteer_can_opt_someone_out_without_the_confirmation_text(
    app: Flask, client: FlaskClient, volunteer: User, texted: Contact, carrier: FakeCarrier
) -> None:
    login(client, volunteer)
    page = client.get(f"/texting/conversations/{texted.id}").get_data(as_text=True)

    client.post(
        f"/texting/conversations/{texted.id}/opt-out", data={"csrf_token": csrf_token(page)}
    )
    run_jobs(app)

    assert opt_out_row() is not None
    assert sent_bodies(carrier) == ["Hi Maria!"]


def test_not_an_opt_out_clears_the_flag_and_is_audited(
    app: Flask, client: FlaskClient, volunteer: User, texted: Contact, carrier: FakeCarrier
) -> None:
    reply(client, carrier, "leave me alone")
    login(client, volunteer)
    page = client.get(f"/texting/conversations/{texted.id}").get_data(as_text=True)

    client.post(
        f"/texting/conversations/{texted.id}/not-an-opt-out", data={"csrf_token": csrf_token(page)}
    )

    db.session.refresh(texted)
    assert not texted.opt_out_suggested
    assert db.session.scalars(select(AuditEvent.action)).all() == ["opt_out_suggestion_dismissed"]


@pytest.mark.parametrize("code", [30004, 30005, 30006])
def test_a_carrier_error_for_a_dead_number_blocks_it_for_good(
    app: Flask, client: FlaskClient, volunteer: User, carrier: FakeCarrier, code: int
) -> None:
    campaign = make_campaign(volunteer.organization)
    contact = make_contact(campaign, cell=CELL, texter_id=volunteer.id, status=ContactStatus.TEXTED)
    carrier.fail_delivery_to(CELL, code)
    first, second = make_message(contact), make_message(contact, body="Hello again")
    db.session.commit()

    send_message(first.id)
    deliver_webhooks(client, carrier)
    send_message(second.id)

    blocked = db.session.scalars(select(BlockedNumber)).one()
    assert (blocked.cell, blocked.error_code) == (CELL, code)
    db.session.refresh(second)
    assert (second.status, second.refusal_reason) == (MessageStatus.REFUSED, "undeliverable")


@pytest.mark.parametrize("code", [21211, 21614])
def test_a_send_refused_for_a_bad_number_blocks_it(
    app: Flask, volunteer: User, carrier: FakeCarrier, code: int
) -> None:
    campaign = make_campaign(volunteer.organization)
    contact = make_contact(campaign, cell=CELL, texter_id=volunteer.id, status=ContactStatus.TEXTED)
    carrier.fail_sends_to(CELL, code)
    message = make_message(contact)
    db.session.commit()

    assert send_message(message.id) == "failed"
    assert optouts.is_blocked(volunteer.organization_id, CELL)


def test_carrier_filtering_is_shown_to_organizers(
    app: Flask, client: FlaskClient, organizer: User, volunteer: User, carrier: FakeCarrier
) -> None:
    campaign = make_campaign(volunteer.organization)
    contact = make_contact(campaign, cell=CELL, texter_id=volunteer.id, status=ContactStatus.TEXTED)
    carrier.fail_delivery_to(CELL, 30007)
    message = make_message(contact)
    db.session.commit()

    send_message(message.id)
    deliver_webhooks(client, carrier)
    login(client, organizer)

    page = client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert "Carriers filtered 1 of this campaign" in page
    assert db.session.scalars(select(AuditEvent.action)).all() == ["carrier_alert"]
    assert not optouts.is_blocked(volunteer.organization_id, CELL)


def test_an_unreachable_handset_is_marked_but_not_blocked(
    app: Flask, client: FlaskClient, volunteer: User, carrier: FakeCarrier
) -> None:
    campaign = make_campaign(volunteer.organization)
    contact = make_contact(campaign, cell=CELL, texter_id=volunteer.id, status=ContactStatus.TEXTED)
    carrier.fail_delivery_to(CELL, 30003)
    message = make_message(contact)
    db.session.commit()

    send_message(message.id)
    deliver_webhooks(client, carrier)

    db.session.refresh(message)
    assert (message.status, message.error_code) == (MessageStatus.UNDELIVERED, 30003)
    assert not optouts.is_blocked(volunteer.organization_id, CELL)


def test_a_blocked_number_is_never_offered_to_a_volunteer(app: Flask, volunteer: User) -> None:
    campaign = make_campaign(volunteer.organization)
    make_contact(campaign, cell=CELL)
    optouts.block_number(volunteer.organization_id, CELL, 30006, "landline")

    assert assignment.take_batch(campaign, volunteer, utcnow()) == 0
    assert assignment.batch(campaign, volunteer, utcnow()).ready == []


@pytest.mark.parametrize("entry", list(carrier_errors.TABLE.values()), ids=str)
def test_every_code_in_the_carrier_error_table_is_acted_on(
    volunteer: User, entry: carrier_errors.CarrierError
) -> None:
    campaign = make_campaign(volunteer.organization)
    contact = make_contact(campaign, cell=CELL, texter_id=volunteer.id, status=ContactStatus.TEXTED)
    message = make_message(contact, status=MessageStatus.ACCEPTED)

    assert optouts.apply_carrier_error(message, entry.code) == entry.action

    assert (opt_out_row() is not None) == (entry.action == Action.OPT_OUT)
    assert optouts.is_blocked(volunteer.organization_id, CELL) == (
        entry.action == Action.BLOCK_NUMBER
    )
    alerts = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "carrier_alert"))
    alerting = (Action.ALERT, Action.SLOW_DOWN, Action.PAUSE_FOR_THE_DAY)
    assert (len(alerts.all()) == 1) == (entry.action in alerting)


def test_a_code_the_table_does_not_know_changes_nothing(volunteer: User) -> None:
    contact = make_contact(make_campaign(volunteer.organization), cell=CELL)
    message = make_message(contact)

    assert optouts.apply_carrier_error(message, 12345) == Action.NONE
    assert opt_out_row() is None and not optouts.is_blocked(volunteer.organization_id, CELL)


def test_a_florida_number_with_a_new_york_zip_follows_floridas_8pm_rule(
    volunteer: User, carrier: FakeCarrier
) -> None:
    campaign = make_campaign(volunteer.organization, window_start_hour=8, window_end_hour=21)
    contact = make_contact(
        campaign,
        cell="+13055550201",
        state="NY",
        rule_states="FL NY",
        texter_id=volunteer.id,
        status=ContactStatus.TEXTED,
    )
    with time_machine.travel(datetime(2026, 11, 3, 20, 30, tzinfo=ZoneInfo("America/New_York"))):
        message = make_message(contact)
        db.session.commit()
        send_message(message.id)

    db.session.refresh(message)
    assert (message.status, message.refusal_reason) == (MessageStatus.REFUSED, "quiet_hours")
    assert carrier.messages == []
