"""Twilio's webhooks: only Twilio may call them, and what it tells us is recorded once, in order."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict
from werkzeug.test import TestResponse

from gotv.db import db
from gotv.edge import sms
from gotv.fakecarrier import FakeCarrier, twilio_signature
from gotv.models import Contact, Direction, Message, MessageStatus, OptOut, Sender, User
from gotv.web.webhooks import EMPTY_TWIML, MAX_WEBHOOK_BYTES
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, PUBLIC_URL
from tests.factories import make_campaign, make_contact, make_message, make_org

VOTER = "+12125550242"
SID = "SM" + "a" * 32  # a voter's text
SENT_SID = "SM" + "b" * 32  # our text to the voter


def inbound_params(**overrides: str) -> dict[str, str]:
    """The form Twilio posts for a text from a voter (the fields gotv reads, and a few more)."""
    return {
        "MessageSid": SID,
        "SmsSid": SID,
        "AccountSid": ACCOUNT_SID,
        "From": VOTER,
        "To": FROM_NUMBER,
        "Body": "Yes, I'll vote",
        "NumMedia": "0",
        **overrides,
    }


def status_params(sid: str, status: str, **overrides: str) -> dict[str, str]:
    return {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": ACCOUNT_SID,
        "MessageStatus": status,
        **overrides,
    }


def post_signed(client: FlaskClient, path: str, params: dict[str, str]) -> TestResponse:
    """POST `params` to our public URL for `path`, signed the way Twilio signs it."""
    url = PUBLIC_URL + path
    signature = twilio_signature(AUTH_TOKEN, url, params)
    return client.post(url, data=params, headers={"X-Twilio-Signature": signature})


def texted_contact(volunteer: User) -> tuple[Contact, Message]:
    """A contact the volunteer has texted; Twilio accepted the text as SENT_SID."""
    contact = make_contact(
        make_campaign(volunteer.organization), cell=VOTER, texter_id=volunteer.id
    )
    message = make_message(
        contact, twilio_sid=SENT_SID, status=MessageStatus.ACCEPTED, is_initial=True
    )
    return contact, message


def message_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Message)) or 0


# --- Signatures ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/twilio/inbound", "/twilio/status"])
def test_it_refuses_a_webhook_without_a_signature(client: FlaskClient, path: str) -> None:
    response = client.post(PUBLIC_URL + path, data=inbound_params())

    assert response.status_code == 403
    assert message_count() == 0


@pytest.mark.parametrize("path", ["/twilio/inbound", "/twilio/status"])
def test_it_refuses_a_webhook_with_a_wrong_signature(client: FlaskClient, path: str) -> None:
    params = inbound_params()
    wrong = twilio_signature("someone-elses-token", PUBLIC_URL + path, params)

    response = client.post(PUBLIC_URL + path, data=params, headers={"X-Twilio-Signature": wrong})

    assert response.status_code == 403
    assert message_count() == 0


def test_it_refuses_a_webhook_whose_body_was_changed_after_signing(client: FlaskClient) -> None:
    url = PUBLIC_URL + "/twilio/inbound"
    signature = twilio_signature(AUTH_TOKEN, url, inbound_params(Body="Yes"))

    response = client.post(
        url, data=inbound_params(Body="STOP"), headers={"X-Twilio-Signature": signature}
    )

    assert response.status_code == 403
    assert message_count() == 0


@pytest.mark.parametrize("path", ["/twilio/inbound", "/twilio/status"])
def test_it_refuses_a_webhook_body_far_larger_than_any_twilio_sends_with_413(
    client: FlaskClient, path: str
) -> None:
    params = inbound_params(Body="x" * (MAX_WEBHOOK_BYTES + 1))

    response = post_signed(client, path, params)

    assert response.status_code == 413
    assert message_count() == 0


def test_it_takes_a_reply_as_long_as_twilio_allows_with_ten_media_urls(
    client: FlaskClient, volunteer: User
) -> None:
    texted_contact(volunteer)
    media = {
        f"MediaUrl{n}": f"https://api.twilio.com/2010-04-01/Media/ME{n:032d}" for n in range(10)
    }
    params = inbound_params(Body="é" * 1600, NumMedia="10", **media)

    response = post_signed(client, "/twilio/inbound", params)

    assert response.status_code == 200
    assert db.session.scalar(select(Message.body).where(Message.twilio_sid == SID)) == "é" * 1600


def test_it_refuses_a_signature_computed_for_another_url(client: FlaskClient) -> None:
    params = inbound_params()
    signature = twilio_signature(AUTH_TOKEN, "https://elsewhere.example/twilio/inbound", params)

    response = client.post(
        PUBLIC_URL + "/twilio/inbound", data=params, headers={"X-Twilio-Signature": signature}
    )

    assert response.status_code == 403


def test_it_refuses_a_signature_for_the_status_url_sent_to_the_inbound_url(
    client: FlaskClient,
) -> None:
    params = inbound_params()
    signature = twilio_signature(AUTH_TOKEN, PUBLIC_URL + "/twilio/status", params)

    response = client.post(
        PUBLIC_URL + "/twilio/inbound", data=params, headers={"X-Twilio-Signature": signature}
    )

    assert response.status_code == 403


def test_it_validates_a_proxied_request_against_the_public_https_url(client: FlaskClient) -> None:
    params = inbound_params()
    signature = twilio_signature(AUTH_TOKEN, "https://gotv.test/twilio/inbound", params)

    response = client.post(
        "http://internal:5000/twilio/inbound",
        data=params,
        headers={
            "X-Twilio-Signature": signature,
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "gotv.test",
            "X-Forwarded-For": "203.0.113.7",
        },
    )

    assert response.status_code == 200


def test_it_refuses_a_proxied_request_without_forwarded_headers(client: FlaskClient) -> None:
    params = inbound_params()
    signature = twilio_signature(AUTH_TOKEN, "https://gotv.test/twilio/inbound", params)

    response = client.post(
        "http://internal:5000/twilio/inbound",
        data=params,
        headers={"X-Twilio-Signature": signature},
    )

    assert response.status_code == 403


# --- Inbound messages ------------------------------------------------------------------------


def test_a_valid_inbound_webhook_gets_empty_twiml_without_a_csrf_token(
    client: FlaskClient,
) -> None:
    response = post_signed(client, "/twilio/inbound", inbound_params())

    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    assert response.get_data(as_text=True) == EMPTY_TWIML


def test_a_reply_is_stored_in_the_conversation_of_the_contact_we_texted(
    client: FlaskClient, volunteer: User
) -> None:
    contact, _ = texted_contact(volunteer)

    post_signed(client, "/twilio/inbound", inbound_params(Body="Where do I vote?"))

    reply = db.session.scalars(select(Message).where(Message.direction == Direction.INBOUND)).one()
    assert (reply.contact_id, reply.body, reply.status) == (
        contact.id,
        "Where do I vote?",
        MessageStatus.RECEIVED,
    )
    db.session.refresh(contact)
    assert contact.needs_reply


def test_a_stop_carrying_a_nul_character_is_stored_without_it_and_opts_the_voter_out(
    client: FlaskClient, volunteer: User
) -> None:
    """PostgreSQL cannot store a NUL in text: kept, the reply would fail on every retry."""
    texted_contact(volunteer)

    response = post_signed(client, "/twilio/inbound", inbound_params(Body="STOP\x00"))

    assert response.status_code == 200
    assert db.session.scalars(
        select(Message.body).where(Message.direction == Direction.INBOUND)
    ).all() == ["STOP"]
    assert db.session.scalars(select(OptOut.cell)).all() == [VOTER]


def test_a_reply_from_an_opted_out_number_is_counted_unread_but_asks_for_no_reply(
    client: FlaskClient, volunteer: User
) -> None:
    contact, _ = texted_contact(volunteer)
    db.session.add(OptOut(organization_id=volunteer.organization_id, cell=VOTER, source="admin"))
    db.session.commit()

    post_signed(client, "/twilio/inbound", inbound_params(Body="Who is this?"))

    db.session.refresh(contact)
    assert (contact.unread, contact.needs_reply, contact.opt_out_suggested) == (1, False, False)


def test_a_reply_that_looks_like_a_request_to_stop_is_flagged_for_the_volunteer(
    client: FlaskClient, volunteer: User
) -> None:
    contact, _ = texted_contact(volunteer)

    post_signed(client, "/twilio/inbound", inbound_params(Body="leave me alone"))

    db.session.refresh(contact)
    assert (contact.unread, contact.needs_reply, contact.opt_out_suggested) == (1, True, True)
    assert db.session.scalar(select(func.count()).select_from(OptOut)) == 0


def test_our_signature_is_the_one_twilios_validator_computes() -> None:
    form = MultiDict([("Body", "b"), ("To", "+1"), ("MediaUrl", "y"), ("MediaUrl", "x")])
    url = PUBLIC_URL + "/twilio/inbound?x=1"

    ours = sms.signature_of(AUTH_TOKEN, url, form)

    assert ours == RequestValidator(AUTH_TOKEN).compute_signature(url, form)


def test_a_webhook_twilio_signed_with_the_default_port_is_accepted(
    client: FlaskClient, volunteer: User
) -> None:
    texted_contact(volunteer)
    params = inbound_params()
    # Twilio sometimes signs https://host:443/...; the request itself names no port.
    signature = twilio_signature(AUTH_TOKEN, PUBLIC_URL + ":443/twilio/inbound", params)

    response = client.post(
        PUBLIC_URL + "/twilio/inbound", data=params, headers={"X-Twilio-Signature": signature}
    )

    assert response.status_code == 200
    assert message_count() == 2


def test_the_same_inbound_delivered_twice_is_stored_once(client: FlaskClient) -> None:
    first = post_signed(client, "/twilio/inbound", inbound_params())
    second = post_signed(client, "/twilio/inbound", inbound_params())

    assert (first.status_code, second.status_code) == (200, 200)
    assert db.session.scalars(select(Message.twilio_sid)).all() == [SID]


def test_a_carrier_retry_of_a_reply_is_stored_once(
    client: FlaskClient, volunteer: User, carrier: FakeCarrier
) -> None:
    texted_contact(volunteer)
    webhook = carrier.reply(VOTER, "Count me in")

    statuses = [
        client.post(webhook.url, data=webhook.params, headers=webhook.headers).status_code
        for _ in range(2)
    ]

    assert statuses == [200, 200]
    inbound = select(Message).where(Message.direction == Direction.INBOUND)
    assert [m.body for m in db.session.scalars(inbound)] == ["Count me in"]


def test_an_inbound_from_an_unknown_number_is_stored_and_answered(client: FlaskClient) -> None:
    response = post_signed(
        client, "/twilio/inbound", inbound_params(From="+13125550000", Body="Who is this?")
    )

    assert response.status_code == 200
    message = db.session.scalars(select(Message)).one()
    assert (message.from_number, message.body, message.contact_id, message.organization_id) == (
        "+13125550000",
        "Who is this?",
        None,
        None,
    )


def test_a_stop_to_the_shared_default_sender_from_a_number_nobody_texted_opts_out_nobody(
    client: FlaskClient,
) -> None:
    make_org(), make_org()

    answer = post_signed(
        client, "/twilio/inbound", inbound_params(From="+13125550000", Body="STOP")
    )

    assert answer.status_code == 200
    opted_out = db.session.scalars(select(OptOut.id).where(OptOut.cell == "+13125550000"))
    assert list(opted_out) == []


def test_a_stop_to_an_organizations_own_sender_opts_out_of_that_organization_only(
    client: FlaskClient,
) -> None:
    ours, theirs = make_org(), make_org()
    db.session.add(Sender(organization_id=ours.id, address="+14155550223"))
    db.session.flush()

    post_signed(
        client,
        "/twilio/inbound",
        inbound_params(From="+13125550000", To="+14155550223", Body="take me off your list"),
    )

    opted_out = set(db.session.scalars(select(OptOut.organization_id)))
    assert ours.id in opted_out and theirs.id not in opted_out


def test_a_question_from_a_number_we_never_texted_opts_nobody_out(client: FlaskClient) -> None:
    make_org()

    post_signed(client, "/twilio/inbound", inbound_params(From="+13125550000", Body="Who is this?"))

    assert db.session.scalars(select(OptOut)).first() is None


# --- Status callbacks ------------------------------------------------------------------------


def test_a_status_callback_records_delivery(client: FlaskClient, volunteer: User) -> None:
    _, message = texted_contact(volunteer)

    response = post_signed(client, "/twilio/status", status_params(SENT_SID, "delivered"))

    assert response.status_code == 200
    db.session.refresh(message)
    assert message.status == MessageStatus.DELIVERED


def test_a_late_sent_callback_does_not_undo_delivered(client: FlaskClient, volunteer: User) -> None:
    _, message = texted_contact(volunteer)

    post_signed(client, "/twilio/status", status_params(SENT_SID, "delivered"))
    response = post_signed(client, "/twilio/status", status_params(SENT_SID, "sent"))

    assert response.status_code == 200
    db.session.refresh(message)
    assert message.status == MessageStatus.DELIVERED


def test_a_duplicate_status_callback_is_harmless(client: FlaskClient, volunteer: User) -> None:
    _, message = texted_contact(volunteer)

    statuses = [
        post_signed(client, "/twilio/status", status_params(SENT_SID, "delivered")).status_code
        for _ in range(2)
    ]

    assert statuses == [200, 200]
    db.session.refresh(message)
    assert message.status == MessageStatus.DELIVERED
    assert message_count() == 1


def test_a_status_callback_for_an_unknown_message_is_acknowledged(client: FlaskClient) -> None:
    response = post_signed(client, "/twilio/status", status_params("SM" + "f" * 32, "delivered"))

    assert response.status_code == 200
    assert message_count() == 0


def test_an_unsubscribed_recipient_error_opts_the_number_out_of_the_organization(
    client: FlaskClient, volunteer: User
) -> None:
    _, message = texted_contact(volunteer)

    response = post_signed(
        client, "/twilio/status", status_params(SENT_SID, "failed", ErrorCode="21610")
    )

    assert response.status_code == 200
    opt_out = db.session.scalars(select(OptOut)).one()
    assert (opt_out.organization_id, opt_out.cell, opt_out.source, opt_out.message_id) == (
        volunteer.organization_id,
        VOTER,
        "carrier_21610",
        message.id,
    )
    db.session.refresh(message)
    assert (message.status, message.error_code) == (MessageStatus.FAILED, 21610)


def test_a_repeated_unsubscribed_recipient_error_records_one_opt_out(
    client: FlaskClient, volunteer: User
) -> None:
    texted_contact(volunteer)
    params = status_params(SENT_SID, "undelivered", ErrorCode="21610")

    statuses = [post_signed(client, "/twilio/status", params).status_code for _ in range(2)]

    assert statuses == [200, 200]
    assert len(db.session.scalars(select(OptOut)).all()) == 1
