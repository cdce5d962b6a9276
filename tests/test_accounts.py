"""Every organization its own Twilio account: replies, opt-outs and senders never cross.

Two organizations, A and B, each with its own Twilio account and number on the fake carrier,
both text the same voter. The voter answers A's number; only A hears it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import flask_migrate
import pytest
import sqlalchemy as sa
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from gotv.db import db
from gotv.edge import sms
from gotv.fakecarrier import CarrierServer, FakeCarrier, twilio_signature
from gotv.models import (
    AuditEvent,
    Campaign,
    Contact,
    ContactStatus,
    Message,
    MessageKind,
    MessageMedia,
    MessageStatus,
    OptOut,
    Organization,
    Role,
    Sender,
    TwilioAccount,
    User,
    utcnow,
)
from gotv.texting import outbox, pacing, senders, texts
from tests.conftest import PUBLIC_URL, csrf_token, deliver_webhooks, login
from tests.factories import make_campaign, make_contact, make_org, make_user
from tests.fault_support import private_app
from workers.texting import pump_settings

VOTER = "+12125550242"
A_NUMBER = "+14155550101"
B_NUMBER = "+14155550102"

# These tests queue texts back to back, as no volunteer could (texts.MIN_SEND_GAP).
NO_READ_GAP = timedelta(0)


@dataclass
class Side:
    """One organization on its own Twilio account, with a campaign that texted the voter."""

    organization: Organization
    account_sid: str
    auth_token: str
    number: str
    volunteer: User
    campaign: Campaign
    contact: Contact


def side(carrier: FakeCarrier, name: str, number: str) -> Side:
    account = carrier.add_account(friendly_name=name, numbers=[number])
    organization = make_org(name=name)
    senders.connect(organization.id, account.sid, account.auth_token, None, None, None)
    sender = senders.add_sender(organization.id, number, None)
    volunteer = make_user(organization, role=Role.TEXTER)
    campaign = make_campaign(organization, sender_id=sender.id)
    contact = make_contact(campaign, cell=VOTER, texter_id=volunteer.id)
    return Side(organization, account.sid, account.auth_token, number, volunteer, campaign, contact)


def text_voter(app: Flask, one: Side) -> None:
    """The side's volunteer sends its first text to the voter; the pump sends it."""
    texts.queue_initial(one.campaign, one.contact.id, one.volunteer, f"key-{one.number}", utcnow())
    db.session.commit()
    run_pump(app)


def run_pump(app: Flask) -> int:
    return asyncio.run(outbox.pump(app.config, pump_settings()))


@pytest.fixture
def both(
    app: Flask, carrier: FakeCarrier, weekday_morning: time_machine.Traveller
) -> tuple[Side, Side]:
    """A and B, each on its own account, each having texted the voter from its own number."""
    a, b = side(carrier, "Alpha Votes", A_NUMBER), side(carrier, "Beta Votes", B_NUMBER)
    text_voter(app, a)
    text_voter(app, b)
    carrier.take_webhooks()  # (the status callbacks: not what these tests are about)
    return a, b


def reply_to(client: FlaskClient, carrier: FakeCarrier, number: str, body: str) -> list[int]:
    carrier.reply(VOTER, body, to=number)
    return deliver_webhooks(client, carrier)


def opted_out_in(organization: Organization) -> bool:
    return (
        db.session.scalar(
            select(OptOut.id).where(OptOut.organization_id == organization.id, OptOut.cell == VOTER)
        )
        is not None
    )


# --- The sends went out through each organization's own account --------------------------------


def test_each_organization_texts_through_its_own_account_and_number(
    both: tuple[Side, Side], carrier: FakeCarrier
) -> None:
    a, b = both
    sent = {(message["account_sid"], message["from"]) for message in carrier.messages}

    assert sent == {(a.account_sid, A_NUMBER), (b.account_sid, B_NUMBER)}
    recorded = db.session.scalars(select(Message.account_sid).where(Message.to_number == VOTER))
    assert set(recorded) == {a.account_sid, b.account_sid}


# --- Replies land in the organization whose number the voter answered --------------------------


@pytest.mark.parametrize("stop", ["STOP", "Please stop texting me"])
def test_a_stop_to_one_organizations_number_opts_the_voter_out_there_only(
    app: Flask, client: FlaskClient, carrier: FakeCarrier, both: tuple[Side, Side], stop: str
) -> None:
    a, b = both

    assert reply_to(client, carrier, A_NUMBER, stop) == [200]

    assert opted_out_in(a.organization) and not opted_out_in(b.organization)
    reply = db.session.scalars(select(Message).where(Message.body == stop)).one()
    assert (reply.organization_id, reply.contact_id) == (a.organization.id, a.contact.id)


def test_after_a_stop_the_organization_that_heard_it_never_texts_the_voter_while_the_other_goes_on(
    app: Flask, client: FlaskClient, carrier: FakeCarrier, both: tuple[Side, Side]
) -> None:
    a, b = both
    reply_to(client, carrier, A_NUMBER, "Please stop texting me")
    carrier.take_webhooks()
    before = len(carrier.messages)

    for one in (a, b):
        contact = db.session.get(Contact, one.contact.id)
        assert contact is not None
        try:
            texts.queue_reply(contact, one.volunteer, "One more thing...", f"more-{one.number}")
        except texts.CannotText:
            pass
        db.session.commit()
    run_pump(app)

    # A confirms the opt-out once (its own number) and texts nothing else; B's text goes out.
    new = [(message["from"], message["body"]) for message in carrier.messages[before:]]
    assert (B_NUMBER, "One more thing...") in new
    assert [body for sender, body in new if sender == A_NUMBER] == [
        "Alpha Votes: you are unsubscribed and will get no more texts from us."
    ]


def test_a_plain_reply_to_one_organizations_number_is_its_conversation_alone(
    client: FlaskClient, carrier: FakeCarrier, both: tuple[Side, Side]
) -> None:
    a, b = both

    reply_to(client, carrier, B_NUMBER, "Where do I vote?")

    contacts = {one.contact.id: db.session.get(Contact, one.contact.id) for one in both}
    assert contacts[b.contact.id].unread == 1 and contacts[b.contact.id].needs_reply  # type: ignore[union-attr]
    assert contacts[a.contact.id].unread == 0  # type: ignore[union-attr]
    assert not opted_out_in(a.organization) and not opted_out_in(b.organization)


# --- Senders belong to one organization, in its own account -----------------------------------


def test_one_organization_cannot_add_anothers_number_or_messaging_service(
    carrier: FakeCarrier, both: tuple[Side, Side]
) -> None:
    a, b = both
    a_service = carrier.add_service(a.account_sid, numbers=["+14155550111"])

    with pytest.raises(senders.SenderRefused, match="already belongs to another organization"):
        senders.add_sender(b.organization.id, A_NUMBER, None)
    with pytest.raises(senders.SenderRefused, match="is not in your Twilio account"):
        senders.add_sender(b.organization.id, a_service, None)


def test_the_same_address_cannot_belong_to_two_organizations_even_past_the_form(
    both: tuple[Side, Side],
) -> None:
    a, b = both

    with pytest.raises(sa.exc.IntegrityError):
        with db.session.begin_nested():
            db.session.execute(
                sa.insert(TwilioAccount.metadata.tables["sender"]).values(
                    organization_id=b.organization.id, address=A_NUMBER, label=""
                )
            )


def test_an_organization_with_its_own_account_sends_nothing_from_the_instances_sender(
    app: Flask, carrier: FakeCarrier, both: tuple[Side, Side]
) -> None:
    a, _ = both
    campaign = make_campaign(a.organization)  # no sender of its own: the instance's default
    contact = make_contact(campaign, cell="+12125550299", texter_id=a.volunteer.id)
    before = len(carrier.messages)

    message_id = texts.queue_initial(
        campaign, contact.id, a.volunteer, "default-key", utcnow(), min_gap=NO_READ_GAP
    )
    db.session.commit()
    run_pump(app)

    message = db.session.get(Message, message_id)
    assert message is not None
    assert (message.status, message.refusal_reason) == (MessageStatus.REFUSED, "no_sender")
    assert len(carrier.messages) == before


# --- Webhooks are checked with the right organization's token -----------------------------------


def signed_inbound(client: FlaskClient, params: dict[str, str], token: str) -> int:
    url = PUBLIC_URL + "/twilio/inbound"
    signature = twilio_signature(token, url, params)
    return client.post(url, data=params, headers={"X-Twilio-Signature": signature}).status_code


def inbound(account_sid: str, to: str, body: str = "STOP") -> dict[str, str]:
    return {
        "MessageSid": "SM" + "f" * 32,
        "AccountSid": account_sid,
        "From": VOTER,
        "To": to,
        "Body": body,
        "NumMedia": "0",
    }


def test_a_webhook_signed_with_one_organizations_token_for_anothers_number_is_refused(
    client: FlaskClient, both: tuple[Side, Side]
) -> None:
    a, b = both

    claims_b = signed_inbound(client, inbound(b.account_sid, A_NUMBER), b.auth_token)
    claims_a = signed_inbound(client, inbound(a.account_sid, A_NUMBER), b.auth_token)

    assert (claims_b, claims_a) == (403, 403)
    assert not opted_out_in(a.organization) and not opted_out_in(b.organization)


def test_a_webhook_from_an_account_gotv_does_not_know_is_refused(client: FlaskClient) -> None:
    stranger = "AC" + "7" * 32

    assert signed_inbound(client, inbound(stranger, A_NUMBER), "any-token") == 403


def test_a_stop_to_a_number_nobody_uses_opts_out_nobody(
    client: FlaskClient, carrier: FakeCarrier, both: tuple[Side, Side]
) -> None:
    unused = "+14155550188"
    carrier.add_number(both[0].account_sid, unused)  # in A's account, never added as a sender

    answer = signed_inbound(client, inbound(both[0].account_sid, unused), both[0].auth_token)

    assert answer == 200
    assert db.session.scalar(select(sa.func.count()).select_from(OptOut)) == 0
    assert db.session.scalar(select(Message.id).where(Message.to_number == unused)) is None


def test_a_status_callback_signed_by_one_organization_cannot_touch_anothers_message(
    client: FlaskClient, both: tuple[Side, Side]
) -> None:
    a, b = both
    message = db.session.scalars(select(Message).where(Message.contact_id == a.contact.id)).one()
    url = f"{PUBLIC_URL}/twilio/status?message={message.id}"
    params = {
        "MessageSid": message.twilio_sid or "",
        "AccountSid": b.account_sid,
        "MessageStatus": "undelivered",
        "ErrorCode": "21610",  # would opt the voter out of A
    }
    signature = twilio_signature(b.auth_token, url, params)

    answer = client.post(url, data=params, headers={"X-Twilio-Signature": signature})

    db.session.refresh(message)
    assert answer.status_code == 200
    assert message.status != MessageStatus.UNDELIVERED and not opted_out_in(a.organization)


# --- Twilio's own opt-out handling: never two confirmations --------------------------------------


def test_a_stop_twilios_advanced_opt_out_answered_gets_no_second_confirmation(
    app: Flask, client: FlaskClient, carrier: FakeCarrier, weekday_morning: time_machine.Traveller
) -> None:
    account = carrier.add_account(friendly_name="Gamma")
    service = carrier.add_service(account.sid, numbers=[A_NUMBER], advanced_opt_out=True)
    organization = make_org(name="Gamma")
    senders.connect(organization.id, account.sid, account.auth_token, None, None, None)
    sender = senders.add_sender(organization.id, service, None)
    volunteer = make_user(organization)
    campaign = make_campaign(organization, sender_id=sender.id)
    contact = make_contact(campaign, cell=VOTER, texter_id=volunteer.id)
    text_voter(app, Side(organization, account.sid, "", A_NUMBER, volunteer, campaign, contact))
    carrier.take_webhooks()

    carrier.reply(VOTER, "STOP", to=A_NUMBER)
    (webhook,) = carrier.pending_webhooks()
    deliver_webhooks(client, carrier)

    assert webhook.params["OptOutType"] == "STOP"  # Twilio answered it itself
    confirmations = db.session.scalars(
        select(Message).where(Message.kind == MessageKind.OPT_OUT_CONFIRMATION)
    ).all()
    assert opted_out_in(organization)
    assert confirmations == []


def test_a_stop_in_plain_words_gets_our_one_confirmation(
    app: Flask, client: FlaskClient, carrier: FakeCarrier, both: tuple[Side, Side]
) -> None:
    reply_to(client, carrier, A_NUMBER, "Please stop texting me")
    reply_to(client, carrier, A_NUMBER, "I said stop texting me")

    confirmations = db.session.scalars(
        select(Message.body).where(Message.kind == MessageKind.OPT_OUT_CONFIRMATION)
    ).all()
    assert confirmations == [
        "Alpha Votes: you are unsubscribed and will get no more texts from us."
    ]


# --- Pictures voters send -----------------------------------------------------------------------

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00"
    b"\x00\x00IEND\xaeB`\x82"
)


def test_a_picture_a_voter_sends_shows_in_the_thread_through_gotv_with_the_accounts_credentials(
    client: FlaskClient, carrier: FakeCarrier, both: tuple[Side, Side]
) -> None:
    a, _ = both
    carrier.reply(VOTER, "Here's my ballot receipt", to=A_NUMBER, media=[("image/png", PNG)])
    deliver_webhooks(client, carrier)
    login(client, a.volunteer)

    page = client.get(f"/texting/conversations/{a.contact.id}").get_data(as_text=True)
    media = db.session.scalars(select(MessageMedia)).one()
    picture = client.get(f"/texting/media/{media.id}")

    assert f"/texting/media/{media.id}" in page and "api" not in page.split("<img")[1][:200]
    assert (picture.status_code, picture.mimetype, picture.data) == (200, "image/png", PNG)


def test_a_voters_attachment_that_is_not_a_picture_is_not_shown(
    client: FlaskClient, carrier: FakeCarrier, both: tuple[Side, Side]
) -> None:
    a, _ = both
    carrier.reply(VOTER, "see attached", to=A_NUMBER, media=[("text/html", b"<script>x</script>")])
    deliver_webhooks(client, carrier)
    login(client, a.volunteer)
    media = db.session.scalars(select(MessageMedia)).one()

    shown = client.get(f"/texting/media/{media.id}")

    assert shown.mimetype == "image/svg+xml" and b"<script>" not in shown.data


def test_another_organizations_volunteer_cannot_see_a_voters_picture(
    client: FlaskClient, carrier: FakeCarrier, both: tuple[Side, Side]
) -> None:
    _, b = both
    carrier.reply(VOTER, "photo", to=A_NUMBER, media=[("image/png", PNG)])
    deliver_webhooks(client, carrier)
    login(client, b.volunteer)
    media = db.session.scalars(select(MessageMedia)).one()

    assert client.get(f"/texting/media/{media.id}").status_code == 404


# --- Connecting an account, on the settings page ------------------------------------------------


def test_an_owner_connects_the_organizations_account_after_twilio_confirms_it(
    client: FlaskClient, carrier: FakeCarrier, organizer: User
) -> None:
    account = carrier.add_account(friendly_name="Our own")
    login(client, organizer)
    page = client.get("/settings/twilio").get_data(as_text=True)
    form = {"account_sid": account.sid, "csrf_token": csrf_token(page)}

    wrong = client.post("/settings/twilio", data={**form, "auth_token": "0" * 32})
    refused = client.get("/settings/twilio").get_data(as_text=True)
    right = client.post("/settings/twilio", data={**form, "auth_token": account.auth_token})
    shown = client.get("/settings/twilio").get_data(as_text=True)

    assert wrong.status_code == right.status_code == 302
    assert "did not accept these credentials" in refused
    row = senders.own_account(organizer.organization_id)
    assert row is not None and row.friendly_name == "Our own"
    assert account.auth_token not in shown and account.sid in shown
    stored = db.session.execute(
        sa.text("SELECT auth_token FROM twilio_account WHERE id = :id"), {"id": row.id}
    ).scalar_one()
    assert account.auth_token not in stored  # encrypted at rest
    entry = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "twilio_account_connected")
    ).one()
    assert account.auth_token not in str(entry.details)


def test_an_api_key_of_the_account_is_what_gotv_calls_twilio_with(
    carrier: FakeCarrier, organizer: User
) -> None:
    account = carrier.add_account()
    key, secret = carrier.add_api_key(account.sid)

    senders.connect(
        organizer.organization_id, account.sid, account.auth_token, key, secret, organizer.id
    )

    credentials = senders.credentials_for(account.sid)
    assert credentials is not None and credentials.login == (key, secret)
    with pytest.raises(senders.SenderRefused):
        senders.connect(
            organizer.organization_id, account.sid, account.auth_token, key, "wrong", None
        )


def test_an_operator_gives_an_organization_a_subaccount_of_the_instances_account(
    app: Flask, carrier: FakeCarrier, organization: Organization
) -> None:
    result = app.test_cli_runner().invoke(args=["create-subaccount", "--org", str(organization.id)])

    row = senders.own_account(organization.id)
    assert result.exit_code == 0, result.output
    assert row is not None and carrier.account(row.account_sid).parent_sid == carrier.account_sid


def test_a_sender_the_account_does_not_hold_is_refused_naming_the_account(
    carrier: FakeCarrier, organizer: User
) -> None:
    account = carrier.add_account(numbers=["+14155550177"])
    senders.connect(organizer.organization_id, account.sid, account.auth_token, None, None, None)

    added = senders.add_sender(organizer.organization_id, "+14155550177", None)
    with pytest.raises(senders.SenderRefused, match=f"not in your Twilio account \\({account.sid}"):
        senders.add_sender(organizer.organization_id, "+14155550178", None)

    assert added.twilio_account_id is not None


# --- Limits per Twilio account, across every pump ----------------------------------------------


def test_pumps_together_keep_no_more_requests_in_flight_than_the_account_allows(
    app: Flask,
    carrier: FakeCarrier,
    carrier_server: CarrierServer,
    both: tuple[Side, Side],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Twilio answers 429 past the account's limit of 3 (the fake carrier too): two pumps of
    100 each, answered slowly enough to overlap, share the 3 and are never refused."""
    a, _ = both
    monkeypatch.setattr(carrier_server, "latency", 0.2)
    carrier.account(a.account_sid).concurrency = 3
    senders.set_limits(a.organization.id, 3, None, None, None)
    for n in range(12):
        contact = make_contact(a.campaign, cell=f"+1646555{n:04d}", texter_id=a.volunteer.id)
        texts.queue_initial(
            a.campaign, contact.id, a.volunteer, f"limit-{n}", utcnow(), min_gap=NO_READ_GAP
        )
    db.session.commit()

    async def two_pumps() -> list[int]:
        settings = pump_settings()
        return list(
            await asyncio.gather(
                outbox.pump(app.config, settings), outbox.pump(app.config, settings)
            )
        )

    sent = asyncio.run(two_pumps())

    assert sum(sent) == 12
    assert len([m for m in carrier.messages if m["to"].startswith("+1646555")]) == 12
    assert carrier.account(a.account_sid).throttled == 0


def test_twilios_429_puts_the_message_back_and_cools_the_account(
    app: Flask, carrier: FakeCarrier, both: tuple[Side, Side]
) -> None:
    a, _ = both
    carrier.fail_all_sends(429)
    contact = make_contact(a.campaign, cell="+12125550277", texter_id=a.volunteer.id)
    message_id = texts.queue_initial(
        a.campaign, contact.id, a.volunteer, "cool-key", utcnow(), min_gap=NO_READ_GAP
    )
    db.session.commit()

    run_pump(app)
    carrier.recover()

    message = db.session.get(Message, message_id)
    assert message is not None and message.status == MessageStatus.QUEUED
    redis = app.extensions["gotv.redis"]
    assert pacing.cooling(redis, a.account_sid) > 0


def test_daily_caps_reset_at_midnight_pacific_with_the_carriers(app: Flask) -> None:
    redis = app.extensions["gotv.redis"]
    late = datetime.fromisoformat("2026-11-03T23:59:00-08:00")

    spent = pacing.take(redis, [pacing.Limit.daily_cap("brand", 2, late)], 3, late)
    same_day = pacing.take(
        redis, [pacing.Limit.daily_cap("brand", 2, late)], 1, late + timedelta(seconds=30)
    )
    next_day = late + timedelta(minutes=1)
    fresh = pacing.take(redis, [pacing.Limit.daily_cap("brand", 2, next_day)], 1, next_day)

    assert (spent.granted, same_day.granted, fresh.granted) == (2, 0, 1)


def test_the_instances_own_sender_still_works_for_an_organization_without_an_account(
    app: Flask, carrier: FakeCarrier, volunteer: User, weekday_morning: time_machine.Traveller
) -> None:
    campaign = make_campaign(volunteer.organization)
    contact = make_contact(campaign, cell=VOTER, texter_id=volunteer.id)

    texts.queue_initial(campaign, contact.id, volunteer, "plain-key", utcnow())
    db.session.commit()
    run_pump(app)

    assert [(m["account_sid"], m["from"]) for m in carrier.messages] == [
        (carrier.account_sid, carrier.phone_number)
    ]
    assert db.session.get(Contact, contact.id).status == ContactStatus.TEXTED  # type: ignore[union-attr]


# --- Existing data ------------------------------------------------------------------------------


@pytest.mark.committing
def test_todays_senders_belong_to_the_instances_account_after_the_migration(
    app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with private_app(app, tmp_path, monkeypatch, upgrade=False) as ours:
        flask_migrate.upgrade(revision="0014")
        for statement in (
            "INSERT INTO organization (id, name, help_text, created_at) "
            "VALUES (1, 'Old', 'help', CURRENT_TIMESTAMP)",
            "INSERT INTO sender (id, organization_id, address, label, created_at) "
            "VALUES (1, 1, '+14155550123', '', CURRENT_TIMESTAMP)",
        ):
            db.session.execute(sa.text(statement))
        db.session.commit()
        flask_migrate.upgrade()
        senders.forget()
        sender = db.session.scalars(select(Sender)).one()
        account = senders.sending_account(1, "+14155550123")
        instance = sms.default_credentials()
        owned_through = sender.twilio_account_id
        db.session.rollback()
        assert ours is not None

    assert owned_through is None
    assert not isinstance(account, str) and account.credentials == instance
