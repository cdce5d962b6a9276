"""gotv.sms against the fake carrier and Twilio's own contract for the Messages API."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from gotv import sms
from gotv.fakecarrier import FakeCarrier
from tests.twilio_contract import request_schema


def test_our_send_request_uses_only_fields_of_twilios_create_message_contract(
    app: Flask, carrier: FakeCarrier, contract: dict[str, Any]
) -> None:
    sms.send("+12125550142", "Hi Maria!", "https://gotv.test/twilio/status", validity_period=600)

    schema = request_schema(contract)
    sent = carrier.requests[0]
    assert set(sent) <= set(schema["properties"])
    assert set(schema.get("required", [])) <= set(sent)
    assert sent["ValidityPeriod"] == "600"


def test_it_returns_twilios_sid_and_status(app: Flask, carrier: FakeCarrier) -> None:
    accepted = sms.send("+12125550142", "Hi!", "https://gotv.test/twilio/status")

    assert accepted.sid == carrier.messages[0]["sid"] and accepted.sid.startswith("SM")
    assert accepted.status == "queued"


def test_a_twilio_refusal_is_a_send_error_with_twilios_code(
    app: Flask, carrier: FakeCarrier
) -> None:
    carrier.fail_sends_to("+12125550142", 21610)

    with pytest.raises(sms.SendError) as refusal:
        sms.send("+12125550142", "Hi!", "https://gotv.test/twilio/status")

    assert (refusal.value.code, refusal.value.retryable) == (21610, False)


def test_a_twilio_outage_is_a_retryable_send_error(app: Flask, carrier: FakeCarrier) -> None:
    carrier.fail_all_sends(503)

    with pytest.raises(sms.SendError) as outage:
        sms.send("+12125550142", "Hi!", "https://gotv.test/twilio/status")

    assert outage.value.retryable and not outage.value.uncertain
