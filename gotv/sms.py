"""Twilio, and the only module that imports it.

`send()` hands one message to Twilio's Messages API; `is_valid_signature()` checks a webhook's
X-Twilio-Signature. `TWILIO_API_URL` points the real client at any Twilio-compatible server,
which is how the fake carrier stands in for Twilio in the demo and in every test.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests
from flask import Flask, current_app
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

# Long enough for a slow Twilio, short enough that a stuck call does not hold a worker for long.
HTTP_TIMEOUT_SECONDS = 15


@dataclass(frozen=True)
class Accepted:
    """Twilio accepted the message: its SID, its status and the number it goes out from."""

    sid: str
    status: str
    from_number: str


class SendError(Exception):
    """Twilio did not take the message.

    `retryable` is true only when Twilio certainly did not take it and may later (an outage, a
    429, a refused connection). `uncertain` is true when the request may have reached Twilio
    (a read timeout): such a message must not be sent again automatically.
    """

    def __init__(
        self,
        message: str,
        code: int | None = None,
        http_status: int | None = None,
        retryable: bool = False,
        uncertain: bool = False,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.http_status = http_status
        self.retryable = retryable
        self.uncertain = uncertain


def init_app(app: Flask) -> None:
    """Build one pooled Twilio client for the app (no network until the first send)."""
    client = Client(
        app.config["TWILIO_ACCOUNT_SID"],
        app.config["TWILIO_AUTH_TOKEN"],
        http_client=TwilioHttpClient(pool_connections=True, timeout=HTTP_TIMEOUT_SECONDS),
    )
    client.api.base_url = app.config["TWILIO_API_URL"].rstrip("/")
    app.extensions["gotv.sms"] = client


def send(to: str, body: str, status_callback: str, validity_period: int | None = None) -> Accepted:
    """Ask Twilio to send `body` to `to`, with status callbacks to `status_callback`.

    Sends from the configured Messaging Service when there is one, else from the number.

    :raise SendError: when Twilio refuses or cannot be reached.
    """
    config = current_app.config
    client: Client = current_app.extensions["gotv.sms"]
    sender: dict[str, Any] = (
        {"messaging_service_sid": config["TWILIO_MESSAGING_SERVICE_SID"]}
        if config.get("TWILIO_MESSAGING_SERVICE_SID")
        else {"from_": config["TWILIO_FROM_NUMBER"]}
    )
    if validity_period is not None:
        sender["validity_period"] = validity_period
    try:
        message = client.messages.create(
            to=to, body=body, status_callback=status_callback, **sender
        )
    except TwilioRestException as error:
        retryable = error.status >= 500 or error.status == 429
        raise SendError(error.msg, error.code, error.status, retryable=retryable) from error
    except requests.ConnectionError as error:
        # requests raises ConnectTimeout as a ConnectionError too: nothing reached Twilio.
        raise SendError(f"Twilio unreachable: {error}", retryable=True) from error
    except requests.Timeout as error:
        raise SendError(f"Twilio did not answer: {error}", uncertain=True) from error
    return Accepted(
        sid=message.sid or "", status=str(message.status), from_number=message.from_ or ""
    )


def is_valid_signature(url: str, params: Mapping[str, Any], signature: str) -> bool:
    """True when `signature` is Twilio's signature of `url` and `params` with our auth token."""
    validator = RequestValidator(current_app.config["TWILIO_AUTH_TOKEN"])
    return bool(validator.validate(url, params, signature))
