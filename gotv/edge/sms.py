"""Twilio, and the only module that imports it.

`Connection.send()` hands messages to Twilio's Messages API, many at once; `find_sent()` asks
Twilio what it holds for a number; `is_valid_signature()` checks a webhook's X-Twilio-Signature.
`TWILIO_API_URL` points the real client at any Twilio-compatible server, which is how the fake
carrier stands in for Twilio in the demo and in every test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp
import requests
from flask import Flask, current_app
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from werkzeug.datastructures import MultiDict

# Long enough for a slow Twilio, short enough that a stuck call does not hold a worker for long.
HTTP_TIMEOUT_SECONDS = 15


@dataclass(frozen=True)
class Accepted:
    """A message Twilio holds: its SID, status, the number it goes out from, its segments."""

    sid: str
    status: str
    from_number: str
    segments: int | None = None
    body: str = ""


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


class Connection:
    """Twilio for one send pump: a pooled aiohttp session with up to `concurrency` requests open.

    Use inside a running event loop: ``async with sms.Connection(config, 200) as twilio: ...``.
    """

    def __init__(self, config: Mapping[str, Any], concurrency: int) -> None:
        self.config = config
        self.concurrency = concurrency

    async def __aenter__(self) -> Connection:
        # twilio's own session allows 100 connections; a pump keeps `concurrency` requests open.
        self.http = FormHttpClient(
            aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.concurrency),
                cookie_jar=aiohttp.DummyCookieJar(),  # Twilio's API sets no cookies
                # twilio's client passes aiohttp no timeout of its own: bound every call here.
                timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT_SECONDS),
            )
        )
        self.client = Client(
            self.config["TWILIO_ACCOUNT_SID"],
            self.config["TWILIO_AUTH_TOKEN"],
            http_client=self.http,
        )
        self.client.api.base_url = self.config["TWILIO_API_URL"].rstrip("/")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.http.close()

    async def send(
        self,
        to: str,
        body: str,
        status_callback: str,
        validity_period: int,
        sender: str = "",
        smart_encoded: bool = False,
    ) -> Accepted:
        """Ask Twilio to send `body` to `to`, with status callbacks to `status_callback`.

        `sender` is a number or a Messaging Service SID; "" means the configured default.

        :raise SendError: when Twilio refuses, cannot be reached, or may or may not have it.
        """
        fields: dict[str, Any] = sender_fields(sender or default_sender(self.config))
        if smart_encoded:
            fields["smart_encoded"] = True
        try:
            message = await self.client.messages.create_async(
                to=to,
                body=body,
                status_callback=status_callback,
                validity_period=validity_period,
                **fields,
            )
        except TwilioRestException as error:
            retryable = error.status >= 500 or error.status == 429
            raise SendError(error.msg, error.code, error.status, retryable=retryable) from error
        except aiohttp.ClientConnectorError as error:
            # The connection was never made: nothing reached Twilio.
            raise SendError(f"Twilio unreachable: {error}", retryable=True) from error
        except (aiohttp.ClientError, TimeoutError) as error:
            # The request may have reached Twilio before the connection broke or timed out.
            raise SendError(f"Twilio did not answer: {error!r}", uncertain=True) from error
        return Accepted(
            sid=message.sid or "",
            status=str(message.status),
            from_number=message.from_ or "",
            segments=_int_or_none(message.num_segments),
        )


class FormHttpClient(AsyncTwilioHttpClient):
    """twilio's async HTTP client on a given aiohttp session, without its per-request extras.

    twilio hands aiohttp the form as a dict, which aiohttp wraps in a multipart-capable FormData
    (a fresh uuid and writer each time) before urlencoding it, and it formats a log record of
    every request. At thousands of sends a second those cost more than the request itself, so
    here the form is urlencoded straight to bytes and the Authorization header is built once.
    The twilio Client above it is unchanged: it still builds every request and parses every
    answer.
    """

    def __init__(self, session: aiohttp.ClientSession) -> None:
        super().__init__(pool_connections=False)
        self.session = session
        self.authorizations: dict[tuple[str, str], str] = {}

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        headers = dict(headers or {})
        if auth is not None:
            headers["Authorization"] = self.authorization(auth)
        options: dict[str, Any] = {"params": params, "allow_redirects": allow_redirects}
        if timeout is not None:  # else the session's (None would mean none at all)
            options["timeout"] = aiohttp.ClientTimeout(total=timeout)
        body = urlencode(data, doseq=True).encode() if data else None
        async with self.session.request(
            method.upper(), url, data=body, headers=headers, **options
        ) as response:
            text = await response.text(encoding="utf-8")
        return Response(response.status, text, response.headers)

    def authorization(self, auth: tuple[str, str]) -> str:
        if auth not in self.authorizations:
            self.authorizations[auth] = aiohttp.BasicAuth(*auth).encode()
        return self.authorizations[auth]


def default_sender(config: Mapping[str, Any]) -> str:
    """The deployment's sender: its Messaging Service if it has one, else its number."""
    return str(config.get("TWILIO_MESSAGING_SERVICE_SID") or config["TWILIO_FROM_NUMBER"])


def sender_fields(sender: str) -> dict[str, str]:
    """The Messages API field that names `sender`: MessagingServiceSid for MG..., else From."""
    if sender.startswith("MG"):
        return {"messaging_service_sid": sender}
    return {"from_": sender}


def find_sent(to: str, since: datetime) -> list[Accepted]:
    """Messages Twilio holds to `to` sent since `since` (by day): to settle an uncertain send."""
    client: Client = current_app.extensions["gotv.sms"]
    try:
        messages = client.messages.list(to=to, date_sent_after=since, limit=50)
    except (TwilioRestException, requests.RequestException) as error:
        raise SendError(f"cannot list messages: {error}", retryable=True) from error
    return [
        Accepted(
            sid=message.sid or "",
            status=str(message.status),
            from_number=message.from_ or "",
            segments=_int_or_none(message.num_segments),
            body=message.body or "",
        )
        for message in messages
    ]


def _int_or_none(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def is_valid_signature(url: str, params: MultiDict[str, str], signature: str) -> bool:
    """True when `signature` is Twilio's signature of `url` and `params` with our auth token.

    The URL as received is nearly always the one Twilio signed, so its HMAC is tried alone
    first: one HMAC instead of the two (with and without the port) and the URL parsing of
    twilio's RequestValidator, which decides whenever that one does not match.
    """
    token = current_app.config["TWILIO_AUTH_TOKEN"]
    if hmac.compare_digest(signature_of(token, url, params), signature):
        return True
    return bool(RequestValidator(token).validate(url, params, signature))


def signature_of(token: str, url: str, params: MultiDict[str, str]) -> str:
    """Twilio's X-Twilio-Signature for `url` and `params`, as twilio's RequestValidator
    computes it: base64(HMAC-SHA1(auth token, url + each name and value, sorted))."""
    payload = url + "".join(
        name + value for name in sorted(params) for value in sorted(set(params.getlist(name)))
    )
    digest = hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()
