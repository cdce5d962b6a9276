"""gotv.sms against the fake carrier and Twilio's own contract for the Messages API."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from flask import Flask

from gotv.edge import sms
from gotv.fakecarrier import FakeCarrier
from tests.conftest import closed_port
from tests.twilio_contract import request_schema

CALLBACK = "https://gotv.test/twilio/status?message=1"


def send(app: Flask, sender: str = "", smart_encoded: bool = False, **config: Any) -> sms.Accepted:
    """Send one text through a fresh sms.Connection, as a pump does."""

    credentials = sms.default_credentials()

    async def one() -> sms.Accepted:
        async with sms.Connection({**app.config, **config}, concurrency=4) as twilio:
            return await twilio.send(
                credentials, "+12125550242", "Hi!", CALLBACK, 600, sender, smart_encoded
            )

    return asyncio.run(one())


def test_our_send_request_uses_only_fields_of_twilios_create_message_contract(
    app: Flask, carrier: FakeCarrier, contract: dict[str, Any]
) -> None:
    send(app, smart_encoded=True)

    schema = request_schema(contract)
    sent = carrier.requests[0]
    assert set(sent) <= set(schema["properties"])
    assert set(schema.get("required", [])) <= set(sent)
    assert (sent["ValidityPeriod"], sent["SmartEncoded"]) == ("600", "true")
    assert sent["StatusCallback"] == CALLBACK


def test_it_returns_twilios_sid_status_and_segments(app: Flask, carrier: FakeCarrier) -> None:
    accepted = send(app)

    assert accepted.sid == carrier.messages[0]["sid"] and accepted.sid.startswith("SM")
    assert (accepted.status, accepted.segments) == ("queued", 1)


def test_a_messaging_service_sender_is_sent_as_messaging_service_sid(
    app: Flask, carrier: FakeCarrier
) -> None:
    send(app, sender="MG" + "0" * 32)

    assert carrier.requests[0]["MessagingServiceSid"] == "MG" + "0" * 32
    assert "From" not in carrier.requests[0]


def test_a_twilio_refusal_is_a_send_error_with_twilios_code(
    app: Flask, carrier: FakeCarrier
) -> None:
    carrier.fail_sends_to("+12125550242", 21610)

    with pytest.raises(sms.SendError) as refusal:
        send(app)

    assert (refusal.value.code, refusal.value.retryable) == (21610, False)


def test_a_twilio_outage_is_a_retryable_send_error(app: Flask, carrier: FakeCarrier) -> None:
    carrier.fail_all_sends(503)

    with pytest.raises(sms.SendError) as outage:
        send(app)

    assert outage.value.retryable and not outage.value.uncertain


def test_a_refused_connection_is_retryable(app: Flask) -> None:
    with pytest.raises(sms.SendError) as outage:
        send(app, TWILIO_API_URL=f"http://127.0.0.1:{closed_port()}")

    assert outage.value.retryable and not outage.value.uncertain


def test_a_request_that_times_out_is_uncertain_and_never_retried(
    app: Flask, silent_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sms, "HTTP_TIMEOUT_SECONDS", 0.3)

    with pytest.raises(sms.SendError) as timeout:
        send(app, TWILIO_API_URL=silent_server)

    assert timeout.value.uncertain and not timeout.value.retryable
