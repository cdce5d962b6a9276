"""A small Twilio-compatible fake carrier for local demos and tests.

It speaks the slice of Twilio's 2010-04-01 REST API that gotv uses (create and fetch a
Message), sends signed status callbacks and inbound-message webhooks the way Twilio does,
and serves a voter page where a person can reply as any voter.

Contracts worth knowing:

* ``POST /2010-04-01/Accounts/<AccountSid>/Messages.json`` checks HTTP Basic auth and the
  form fields of Twilio's ``CreateMessage`` operation, and answers 201 with the full
  ``api.v2010.account.message`` JSON, or 4xx/5xx with Twilio's error JSON
  ``{code, message, more_info, status}``.
* A send is final in the carrier's own records at once (``delivered`` or ``undelivered``);
  the 201 body shows the initial status (``queued``, or ``accepted`` with a Messaging Service),
  and the status callbacks ``sent`` then ``delivered``/``undelivered`` are queued as
  :class:`Webhook` objects. Tests pop them with :meth:`FakeCarrier.take_webhooks`; a running
  server POSTs them itself after :meth:`FakeCarrier.start_delivery`.
* Like Twilio, a voter reply that is exactly an opt-out keyword (STOP, ...) blocks later sends
  from that sender (or Messaging Service) to the voter with 21610, and START/YES/UNSTOP lifts it.

This module must not import ``twilio``: only ``gotv.sms`` talks to the real client.
Run it with ``python -m gotv.fakecarrier --account-sid AC... --auth-token ...``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import http.client
import math
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from flask import Flask, Response, jsonify, redirect, render_template_string, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException
from werkzeug.serving import make_server

API_VERSION = "2010-04-01"
MESSAGES_ROUTE = "/2010-04-01/Accounts/<AccountSid>/Messages.json"
MESSAGE_ROUTE = "/2010-04-01/Accounts/<AccountSid>/Messages/<Sid>.json"

#: Every form field of Twilio's CreateMessage operation; the fake reads the ones that matter
#: to gotv and, like Twilio, ignores any other name.
CREATE_MESSAGE_FIELDS = frozenset(
    {
        "To",
        "StatusCallback",
        "ApplicationSid",
        "MaxPrice",
        "ProvideFeedback",
        "Attempt",
        "ValidityPeriod",
        "ForceDelivery",
        "ContentRetention",
        "AddressRetention",
        "SmartEncoded",
        "PersistentAction",
        "TrafficType",
        "ShortenUrls",
        "ScheduleType",
        "SendAt",
        "SendAsMms",
        "ContentVariables",
        "RiskCheck",
        "From",
        "FallbackFrom",
        "MessagingServiceSid",
        "Body",
        "MediaUrl",
        "ContentSid",
    }
)
#: Fields that must always be present.
REQUIRED_FIELDS: tuple[str, ...] = ("To",)
#: Groups of which at least one field must be present (the contract's x-twilio "conditional").
#: The fake is stricter than Twilio for the first group: exactly one of From/MessagingServiceSid.
ONE_OF_FIELDS: tuple[tuple[str, ...], ...] = (
    ("From", "MessagingServiceSid"),
    ("Body", "MediaUrl", "ContentSid"),
)

# Twilio's test-credential magic numbers (https://www.twilio.com/docs/iam/test-credentials).
_MAGIC_TO: dict[str, tuple[int, str]] = {
    "+15005550001": (21211, "The 'To' number +15005550001 is not a valid phone number."),
    "+15005550002": (21612, "The 'To' phone number is not currently reachable via SMS."),
    "+15005550003": (21408, "Permission to send an SMS has not been enabled for the region."),
    "+15005550004": (21610, "Attempt to send to unsubscribed recipient"),
    "+15005550009": (21614, "'To' number is not a valid mobile number"),
}
_MAGIC_FROM: dict[str, tuple[int, str]] = {
    "+15005550001": (21212, "The 'From' number +15005550001 is not a valid phone number."),
    "+15005550007": (21606, "The 'From' phone number provided is not owned by your account."),
    "+15005550008": (
        21611,
        "This 'From' number has exceeded the maximum number of queued messages",
    ),
}
_KNOWN_MESSAGES: dict[int, str] = {
    21211: "The 'To' number is not a valid phone number.",
    21408: "Permission to send an SMS has not been enabled for the region.",
    21610: "Attempt to send to unsubscribed recipient",
    21612: "The 'To' phone number is not currently reachable via SMS.",
    21614: "'To' number is not a valid mobile number",
    20429: "Too Many Requests",
    20500: "An internal server error has occurred",
    20503: "Service Unavailable",
    30003: "Unreachable destination handset",
    30004: "Message blocked",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Message filtered",
    30008: "Unknown error",
    30034: "Message from an unregistered number",
}
# Twilio's default keyword handling: whole message, case-insensitive.
_OPT_OUT_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
_OPT_IN_WORDS = frozenset({"START", "YES", "UNSTOP"})
_OPT_OUT_REPLY = (
    "You have successfully been unsubscribed. You will not receive any more messages from "
    "this number. Reply START to resubscribe."
)
_OPT_IN_REPLY = (
    "You have successfully been resubscribed to messages from this number. Reply HELP for "
    "help. Reply STOP to unsubscribe. Msg&Data Rates May Apply."
)

_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
_MAX_BODY = 1600
_MAX_VALIDITY = 36000
_MAX_ATTEMPTS = 4  # one try plus three retries, roughly what Twilio does for a dead endpoint
_WEBHOOK_TIMEOUT = 15.0  # Twilio gives up on a webhook after 15 s

_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")  # each costs two septets (ESC + char)
# A few of Twilio's Smart Encoding substitutions: the look-alikes that usually sneak in.
_SMART_ENCODING = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u2033": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2026": "...",
        "\u00a0": " ",
    }
)


@dataclass
class Webhook:
    """A request the carrier makes (or would make) to the app: POST ``params`` to ``url``.

    ``headers`` carries ``X-Twilio-Signature`` (computed over exactly ``url`` and ``params``)
    and ``I-Twilio-Idempotency-Token``; the form content type is added when it is sent.
    """

    url: str
    params: dict[str, str]
    headers: dict[str, str]


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """Twilio's X-Twilio-Signature.

    base64(HMAC-SHA1(token, url + concat of name+value sorted by name)), where ``url`` is the
    full URL including any query string, exactly as the receiver will see it.
    """
    payload = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


class _ApiError(Exception):
    """A Twilio REST error: HTTP ``status`` with Twilio error ``code``."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }


@dataclass
class _Send:
    """A validated CreateMessage request."""

    to: str
    from_: str | None
    service_sid: str | None
    body: str
    media: list[str]
    status_callback: str | None

    @property
    def sender_key(self) -> str:
        # Twilio scopes a STOP block to the Messaging Service when one is used, else the number.
        return self.service_sid or self.from_ or ""


@dataclass
class _Pending:
    webhook: Webhook
    seq: int
    due: float
    attempts: int = 0


@dataclass
class _Failure:
    status: int
    code: int
    message: str


def _new_sid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


def _rfc2822(moment: datetime) -> str:
    return format_datetime(moment)


def _count_segments(body: str) -> int:
    """Segments Twilio bills for ``body``: GSM-7 160/153 septets, else UCS-2 70/67 units."""
    if all(ch in _GSM7_BASIC or ch in _GSM7_EXTENDED for ch in body):
        units = sum(2 if ch in _GSM7_EXTENDED else 1 for ch in body)
        single, multi = 160, 153
    else:
        # UCS-2 counts UTF-16 code units, so an emoji (a surrogate pair) costs two.
        units = len(body.encode("utf-16-le")) // 2
        single, multi = 70, 67
    if units <= single:
        return 1
    return math.ceil(units / multi)


def _field(form: MultiDict[str, str], name: str) -> str | None:
    # Twilio treats an empty parameter as an absent one.
    value = form.get(name)
    return value if value else None


def _is_http_url(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _parse_senders(form: MultiDict[str, str]) -> tuple[str, str | None, str | None]:
    to = _field(form, "To")
    if to is None:
        raise _ApiError(400, 21604, "A 'To' phone number is required.")
    if not _E164.match(to):
        raise _ApiError(400, 21211, f"The 'To' number {to} is not a valid phone number.")
    from_ = _field(form, "From")
    service_sid = _field(form, "MessagingServiceSid")
    if from_ is None and service_sid is None:
        raise _ApiError(
            400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required to send a message."
        )
    if from_ is not None and service_sid is not None:
        raise _ApiError(
            400, 21603, "Send exactly one of 'From' or 'MessagingServiceSid' (fake carrier rule)."
        )
    if from_ is not None and not _E164.match(from_):
        raise _ApiError(400, 21212, f"The 'From' number {from_} is not a valid phone number.")
    if service_sid is not None and not _SERVICE_SID.match(service_sid):
        raise _ApiError(400, 21701, f"The Messaging Service Sid {service_sid} is invalid.")
    return to, from_, service_sid


def _parse_content(form: MultiDict[str, str]) -> tuple[str, list[str]]:
    body = form.get("Body", "")
    media = [url for url in form.getlist("MediaUrl") if url]
    if not body and not media and _field(form, "ContentSid") is None:
        raise _ApiError(400, 21602, "Message body is required.")
    if (_field(form, "SmartEncoded") or "").lower() == "true":
        body = body.translate(_SMART_ENCODING)
    if len(body) > _MAX_BODY:
        raise _ApiError(
            400, 21617, "The concatenated message body exceeds the 1600 character limit."
        )
    return body, media


def _parse_options(form: MultiDict[str, str]) -> str | None:
    callback = _field(form, "StatusCallback")
    if callback is not None and not _is_http_url(callback):
        raise _ApiError(400, 21609, f"Invalid StatusCallback url: {callback}")
    validity = _field(form, "ValidityPeriod")
    if validity is not None and not (validity.isdigit() and 1 <= int(validity) <= _MAX_VALIDITY):
        raise _ApiError(400, 21624, "Invalid validity period value")
    return callback


def _parse_send(form: MultiDict[str, str]) -> _Send:
    """Validate a CreateMessage form as Twilio does; raise :class:`_ApiError` on a bad one."""
    to, from_, service_sid = _parse_senders(form)
    body, media = _parse_content(form)
    callback = _parse_options(form)
    return _Send(to, from_, service_sid, body, media, callback)


def _post_webhook(webhook: Webhook) -> int | None:
    """POST one webhook; return the HTTP status, or None when no response came back."""
    data = urllib.parse.urlencode(webhook.params).encode()
    headers = {**webhook.headers, "Content-Type": "application/x-www-form-urlencoded"}
    req = urllib.request.Request(webhook.url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=_WEBHOOK_TIMEOUT) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        err.close()  # it holds the socket; leaking it would warn
        return int(err.code)
    except (OSError, ValueError, http.client.HTTPException):
        return None


class FakeCarrier:
    """The carrier's state: accepted messages, conversations, and webhooks waiting to go out.

    Every public method is thread-safe (one lock guards all state) because the HTTP server
    runs threaded and a delivery thread drains the webhook queue concurrently.

    ``messages`` holds the Twilio JSON of every accepted send, in order, in its final state;
    ``requests`` holds the raw form of every Messages.json POST, accepted or not;
    ``delivery_log`` holds one entry per webhook POST attempt by the delivery thread.
    """

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        inbound_url: str | None = None,
        phone_number: str = "+15005550006",
        auto_deliver: bool = False,
        delivery_delay: float = 0.3,
    ) -> None:
        """Create a carrier; with ``auto_deliver`` the delivery thread starts at once."""
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.inbound_url = inbound_url
        self.phone_number = phone_number
        self.auto_deliver = False
        self.delivery_delay = delivery_delay
        self.messages: list[dict[str, Any]] = []
        self.requests: list[dict[str, str]] = []
        self.delivery_log: list[dict[str, Any]] = []
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._by_sid: dict[str, dict[str, Any]] = {}
        self._conversations: dict[str, list[dict[str, Any]]] = {}
        self._send_failures: dict[str, _Failure] = {}
        self._delivery_failures: dict[str, int] = {}
        self._outage: int | None = None
        self._opted_out: set[tuple[str, str]] = set()
        self._last_sender: dict[str, tuple[str, str | None]] = {}
        self._pending: list[_Pending] = []
        self._seq = 0
        self._thread: threading.Thread | None = None
        self._stopping = False
        if auto_deliver:
            self.start_delivery()

    # -- failure switches -------------------------------------------------------------------

    def fail_sends_to(
        self, number: str, code: int, status: int = 400, message: str | None = None
    ) -> None:
        """Make later sends To ``number`` fail synchronously with Twilio error ``code``.

        ``message`` defaults to Twilio's text for well-known codes.
        """
        text = message or _KNOWN_MESSAGES.get(code, f"Simulated Twilio error {code}")
        with self._lock:
            self._send_failures[number] = _Failure(status, code, text)

    def fail_delivery_to(self, number: str, error_code: int = 30003) -> None:
        """Accept later sends To ``number`` but report them ``undelivered`` with ``error_code``."""
        with self._lock:
            self._delivery_failures[number] = error_code

    def fail_all_sends(self, status: int = 503) -> None:
        """Simulate an outage: every API request gets ``status`` and code 20000+status."""
        with self._lock:
            self._outage = status

    def recover(self) -> None:
        """End an outage started by :meth:`fail_all_sends`."""
        with self._lock:
            self._outage = None

    # -- the REST API (called by the Flask app) ----------------------------------------------

    def _outage_error(self) -> _ApiError | None:
        if self._outage is None:
            return None
        code = 20000 + self._outage if self._outage in (429, 500, 503) else 20500
        return _ApiError(self._outage, code, _KNOWN_MESSAGES.get(code, "Service Unavailable"))

    def _check_auth(self, path_sid: str, username: str | None, password: str | None) -> None:
        good = (
            username is not None
            and password is not None
            and hmac.compare_digest(username.encode(), self.account_sid.encode())
            and hmac.compare_digest(password.encode(), self.auth_token.encode())
            and path_sid == self.account_sid
        )
        if not good:
            raise _ApiError(401, 20003, "Authenticate")

    def _handle_send(
        self, path_sid: str, auth: tuple[str | None, str | None], form: MultiDict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        """Run one CreateMessage request; return (HTTP status, JSON body)."""
        with self._lock:
            self.requests.append(form.to_dict())
            try:
                self._check_auth(path_sid, *auth)
                outage = self._outage_error()
                if outage is not None:
                    raise outage
                send = _parse_send(form)
                self._check_refusals(send)
                return 201, self._accept(send)
            except _ApiError as err:
                return err.status, err.body()

    def _handle_fetch(
        self, path_sid: str, auth: tuple[str | None, str | None], sid: str
    ) -> tuple[int, dict[str, Any]]:
        """Run one Message fetch; return (HTTP status, JSON body)."""
        with self._lock:
            try:
                self._check_auth(path_sid, *auth)
                outage = self._outage_error()
                if outage is not None:
                    raise outage
                message = self._by_sid.get(sid)
                if message is None:
                    path = f"/{API_VERSION}/Accounts/{path_sid}/Messages/{sid}.json"
                    raise _ApiError(404, 20404, f"The requested resource {path} was not found")
                return 200, _copy_message(message)
            except _ApiError as err:
                return err.status, err.body()

    def _check_refusals(self, send: _Send) -> None:
        failure = self._send_failures.get(send.to)
        if failure is not None:
            raise _ApiError(failure.status, failure.code, failure.message)
        if send.to in _MAGIC_TO:
            raise _ApiError(400, *_MAGIC_TO[send.to])
        if send.from_ is not None and send.from_ in _MAGIC_FROM:
            raise _ApiError(400, *_MAGIC_FROM[send.from_])
        if (send.to, send.sender_key) in self._opted_out:
            raise _ApiError(400, 21610, "Attempt to send to unsubscribed recipient")

    def _accept(self, send: _Send) -> dict[str, Any]:
        """Store an accepted send, queue its callbacks, and return the 201 body."""
        now = datetime.now(UTC)
        stamp = _rfc2822(now)
        sid = _new_sid("MM" if send.media else "SM")
        base = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}"
        uses_service = send.service_sid is not None
        segments = str(_count_segments(send.body))
        record: dict[str, Any] = {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": send.body,
            "date_created": stamp,
            "date_sent": None,
            "date_updated": stamp,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            # A Messaging Service picks the sender later, so Twilio answers with from=null
            # and num_segments="0" until then.
            "from": None if uses_service else send.from_,
            "messaging_service_sid": send.service_sid,
            "num_media": str(len(send.media)),
            "num_segments": "0" if uses_service else segments,
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "accepted" if uses_service else "queued",
            "subresource_uris": {"media": f"{base}/Media.json"},
            "to": send.to,
            "uri": f"{base}.json",
        }
        response = _copy_message(record)
        sender = send.from_ or self.phone_number
        error_code = self._delivery_failures.get(send.to)
        final = "undelivered" if error_code is not None else "delivered"
        record.update(
            {
                "from": sender,
                "num_segments": segments,
                "status": final,
                "date_sent": stamp,
                "error_code": error_code,
                "error_message": None if error_code is None else _KNOWN_MESSAGES.get(error_code),
            }
        )
        self.messages.append(record)
        self._by_sid[sid] = record
        self._conversations.setdefault(send.to, []).append(record)
        self._last_sender[send.to] = (sender, send.service_sid)
        if send.status_callback is not None:
            self._queue_callbacks(send, record, error_code)
        return response

    def _queue_callbacks(self, send: _Send, record: dict[str, Any], error_code: int | None) -> None:
        assert send.status_callback is not None
        done = datetime.now(UTC).strftime("%y%m%d%H%M")
        for step, status in enumerate(("sent", record["status"]), start=1):
            params = {
                "MessageSid": record["sid"],
                "SmsSid": record["sid"],
                "MessageStatus": status,
                "SmsStatus": status,
                "AccountSid": self.account_sid,
                "From": record["from"],
                "To": send.to,
                "ApiVersion": API_VERSION,
            }
            if send.service_sid is not None:
                params["MessagingServiceSid"] = send.service_sid
            if status != "sent":
                params["RawDlrDoneDate"] = done
            if status == "undelivered" and error_code is not None:
                params["ErrorCode"] = str(error_code)
            self._enqueue(self._signed(send.status_callback, params), step)

    # -- voters ------------------------------------------------------------------------------

    def reply(self, from_number: str, body: str, to: str | None = None) -> Webhook:
        """A voter texts in: queue (and return) a signed inbound webhook to ``inbound_url``.

        ``to`` defaults to the number that last texted ``from_number`` (the pool number when a
        Messaging Service sent it), else ``phone_number``. ``MessagingServiceSid`` is included
        when that conversation used one. A body that is exactly an opt-out keyword blocks later
        sends to the voter (21610) and an opt-in keyword lifts the block; either change adds
        Twilio's auto-reply to the conversation (no webhook: Twilio sends none for it).
        Raises ``ValueError`` when the carrier has no ``inbound_url``.
        """
        with self._lock:
            if self.inbound_url is None:
                raise ValueError("this FakeCarrier has no inbound_url to send replies to")
            last = self._last_sender.get(from_number)
            if to is None:
                to = last[0] if last is not None else self.phone_number
            service_sid = last[1] if last is not None and last[0] == to else None
            sid = _new_sid("SM")
            params = {
                "ToCountry": "US",
                "FromCountry": "US",
                "MessageSid": sid,
                "SmsMessageSid": sid,
                "SmsSid": sid,
                "AccountSid": self.account_sid,
                "From": from_number,
                "To": to,
                "Body": body,
                "NumMedia": "0",
                "NumSegments": str(_count_segments(body)),
                "SmsStatus": "received",
                "ApiVersion": API_VERSION,
            }
            if service_sid is not None:
                params["MessagingServiceSid"] = service_sid
            self._record_voter_message(from_number, to, body, sid, service_sid, "inbound")
            webhook = self._signed(self.inbound_url, params)
            self._enqueue(webhook, 1)
            self._apply_keyword(from_number, to, service_sid, body)
            return webhook

    def _record_voter_message(
        self,
        voter: str,
        ours: str,
        body: str,
        sid: str,
        service_sid: str | None,
        direction: str,
    ) -> None:
        stamp = _rfc2822(datetime.now(UTC))
        inbound = direction == "inbound"
        base = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}"
        record: dict[str, Any] = {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": body,
            "date_created": stamp,
            "date_sent": stamp,
            "date_updated": stamp,
            "direction": direction,
            "error_code": None,
            "error_message": None,
            "from": voter if inbound else ours,
            "messaging_service_sid": service_sid,
            "num_media": "0",
            "num_segments": str(_count_segments(body)),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "received" if inbound else "delivered",
            "subresource_uris": {"media": f"{base}/Media.json"},
            "to": ours if inbound else voter,
            "uri": f"{base}.json",
        }
        self._by_sid[sid] = record
        self._conversations.setdefault(voter, []).append(record)

    def _apply_keyword(self, voter: str, ours: str, service_sid: str | None, body: str) -> None:
        # Twilio matches the whole message, case-insensitively; "STOP please" is not a keyword.
        word = body.strip().upper()
        key = (voter, service_sid or ours)
        if word in _OPT_OUT_WORDS:
            self._opted_out.add(key)
            auto_reply = _OPT_OUT_REPLY
        elif word in _OPT_IN_WORDS and key in self._opted_out:
            # Only a voter who had opted out gets the resubscribe text: in a demo, a plain
            # "Yes" to "Will you vote?" should not draw a carrier auto-reply.
            self._opted_out.discard(key)
            auto_reply = _OPT_IN_REPLY
        else:
            return
        self._record_voter_message(
            voter, ours, auto_reply, _new_sid("SM"), service_sid, "outbound-reply"
        )

    def conversations(self) -> dict[str, list[dict[str, Any]]]:
        """Voter number -> every message with that voter, both ways, oldest first (copies)."""
        with self._lock:
            return {
                voter: [_copy_message(m) for m in thread]
                for voter, thread in self._conversations.items()
            }

    # -- webhook queue -----------------------------------------------------------------------

    def _signed(self, url: str, params: dict[str, str]) -> Webhook:
        headers = {
            "X-Twilio-Signature": twilio_signature(self.auth_token, url, params),
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
        }
        return Webhook(url=url, params=params, headers=headers)

    def _enqueue(self, webhook: Webhook, step: int) -> None:
        # Callbacks for one message are spaced out so that a live demo shows them in turn.
        self._seq += 1
        due = time.monotonic() + self.delivery_delay * step
        self._pending.append(_Pending(webhook, self._seq, due))
        self._wake.notify_all()

    def take_webhooks(self) -> list[Webhook]:
        """Remove and return every pending webhook (status callbacks and inbound), in order."""
        with self._lock:
            taken = [p.webhook for p in self._pending]
            self._pending.clear()
            return taken

    def pending_webhooks(self) -> list[Webhook]:
        """Return the pending webhooks, in order, without removing them."""
        with self._lock:
            return [p.webhook for p in self._pending]

    def start_delivery(self) -> None:
        """Start the daemon thread that POSTs pending webhooks when due (idempotent).

        A webhook that gets no response or a 5xx is retried with exponential backoff up to
        four attempts in all; one that got any other status is never sent again.
        """
        with self._lock:
            self.auto_deliver = True
            if self._thread is not None and self._thread.is_alive():
                return
            self._stopping = False
            self._thread = threading.Thread(
                target=self._deliver_loop, name="fakecarrier-delivery", daemon=True
            )
            self._thread.start()

    def stop_delivery(self) -> None:
        """Stop the delivery thread and wait for it; undelivered webhooks stay pending."""
        with self._lock:
            self.auto_deliver = False
            self._stopping = True
            thread, self._thread = self._thread, None
            self._wake.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=_WEBHOOK_TIMEOUT + 1)

    def _deliver_loop(self) -> None:
        while True:
            item = self._next_due()
            if item is None:
                return
            status = _post_webhook(item.webhook)
            self._after_attempt(item, status)

    def _next_due(self) -> _Pending | None:
        with self._wake:
            while not self._stopping:
                now = time.monotonic()
                for item in self._pending:
                    if item.due <= now:
                        self._pending.remove(item)
                        return item
                wait = min((p.due for p in self._pending), default=now + 1.0) - now
                self._wake.wait(timeout=max(wait, 0.001))
            return None

    def _after_attempt(self, item: _Pending, status: int | None) -> None:
        with self._lock:
            item.attempts += 1
            self.delivery_log.append(
                {"url": item.webhook.url, "status": status, "attempt": item.attempts}
            )
            retry = status is None or status >= 500
            if retry and item.attempts < _MAX_ATTEMPTS:
                backoff = max(self.delivery_delay, 0.05) * 2 ** (item.attempts - 1)
                item.due = time.monotonic() + backoff
                self._pending.append(item)
                self._pending.sort(key=lambda p: p.seq)
                self._wake.notify_all()


def _copy_message(message: dict[str, Any]) -> dict[str, Any]:
    copied = dict(message)
    copied["subresource_uris"] = dict(message["subresource_uris"])
    return copied


_VOTER_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Fake carrier (demo)</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; }
.banner { background: #fff3cd; border: 1px solid #e0c36a; padding: .75rem 1rem; }
ol { list-style: none; padding: 0; }
li { margin: .4rem 0; padding: .4rem .6rem; border-radius: .5rem; max-width: 80%; }
li.out { background: #e8eef8; }
li.in { background: #dff3e4; margin-left: auto; }
.meta { display: block; font-size: .8em; color: #555; }
section { border-top: 1px solid #ccc; padding: .5rem 0 1rem; }
</style>
</head>
<body>
<h1>Fake carrier</h1>
<p class="banner"><strong>This is a fake carrier for demos and tests.</strong>
No real text messages are sent. Account {{ account_sid }}, number {{ phone_number }};
replies go to {{ inbound_url or "(no inbound URL configured)" }};
{{ pending }} webhook(s) waiting. <a href="{{ url_for('voter_page') }}">Refresh</a></p>
{% for number, thread in conversations.items() %}
<section>
<h2>{{ number }}</h2>
<ol>
{% for m in thread %}
<li class="{{ 'in' if m['direction'] == 'inbound' else 'out' }}">
<span class="meta">{{ m['from'] or '' }} &rarr; {{ m['to'] }} &middot; {{ m['status'] }}
{%- if m['error_code'] %} &middot; error {{ m['error_code'] }}{% endif %}</span>
{{ m['body'] }}</li>
{% endfor %}
</ol>
<form method="post" action="{{ url_for('voter_reply') }}">
<input type="hidden" name="from" value="{{ number }}">
<label>Reply as {{ number }} <input name="body" required></label>
<button type="submit">Send reply</button>
</form>
</section>
{% else %}
<p>No messages yet.</p>
{% endfor %}
<section>
<h2>Text in as another voter</h2>
<form method="post" action="{{ url_for('voter_reply') }}">
<label>From <input name="from" placeholder="+15555550100" required></label>
<label>Message <input name="body" required></label>
<button type="submit">Send</button>
</form>
</section>
</body>
</html>
"""


def _basic_auth() -> tuple[str | None, str | None]:
    auth = request.authorization
    if auth is None or auth.type != "basic":
        return None, None
    return auth.username, auth.password


def _api_response(status: int, body: dict[str, Any]) -> Response:
    response = jsonify(body)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
    return response


def _control_reply(carrier: FakeCarrier) -> ResponseReturnValue:
    """``POST /_carrier/reply``: form or JSON ``from``, ``body``, optional ``to``."""
    data = request.get_json(silent=True) if request.is_json else request.form
    fields: Mapping[str, Any] = data if isinstance(data, Mapping) else {}
    sender, body, to = fields.get("from"), fields.get("body"), fields.get("to")
    if not isinstance(sender, str) or not sender or not isinstance(body, str) or not body:
        return jsonify({"error": "fields 'from' and 'body' are required"}), 400
    try:
        webhook = carrier.reply(sender, body, to=to if isinstance(to, str) and to else None)
    except ValueError as err:
        return jsonify({"error": str(err)}), 409
    return jsonify({"url": webhook.url, "params": webhook.params, "headers": webhook.headers}), 201


def _api_not_found(err: HTTPException) -> ResponseReturnValue:
    # Inside the API, answer with Twilio's error JSON; elsewhere keep Flask's page.
    status = err.code or 404
    if not request.path.startswith(f"/{API_VERSION}/"):
        return err.get_response()
    if status == 405:
        return _api_response(status, _ApiError(status, 20004, "Method not allowed").body())
    message = f"The requested resource {request.path} was not found"
    return _api_response(status, _ApiError(status, 20404, message).body())


def create_carrier_app(carrier: FakeCarrier) -> Flask:
    """Build the Flask app serving ``carrier``: Twilio's Messages API plus the voter page.

    Routes: ``POST`` :data:`MESSAGES_ROUTE`, ``GET`` :data:`MESSAGE_ROUTE` (Basic auth),
    ``GET /`` (voter page), ``POST /reply`` (form: from, body; redirects to ``/``) and
    ``POST /_carrier/reply`` (form or JSON: from, body, optional to; returns the webhook).
    The control routes need no auth: this is a local fake.
    """
    app = Flask(__name__)

    @app.post(MESSAGES_ROUTE)
    def create_message(AccountSid: str) -> Response:
        return _api_response(*carrier._handle_send(AccountSid, _basic_auth(), request.form))

    @app.get(MESSAGE_ROUTE)
    def fetch_message(AccountSid: str, Sid: str) -> Response:
        return _api_response(*carrier._handle_fetch(AccountSid, _basic_auth(), Sid))

    @app.get("/")
    def voter_page() -> str:
        return render_template_string(
            _VOTER_PAGE,
            conversations=carrier.conversations(),
            account_sid=carrier.account_sid,
            phone_number=carrier.phone_number,
            inbound_url=carrier.inbound_url,
            pending=len(carrier.pending_webhooks()),
        )

    @app.post("/reply")
    def voter_reply() -> ResponseReturnValue:
        sender = request.form.get("from", "").strip()
        body = request.form.get("body", "")
        if not sender or not body:
            return "Both 'from' and 'body' are required.", 400
        try:
            carrier.reply(sender, body)
        except ValueError as err:
            return str(err), 409
        return redirect(url_for("voter_page"), code=303)

    @app.post("/_carrier/reply")
    def control_reply() -> ResponseReturnValue:
        return _control_reply(carrier)

    app.register_error_handler(404, _api_not_found)
    app.register_error_handler(405, _api_not_found)
    return app


def main(argv: list[str] | None = None) -> None:
    """Serve a fake carrier until interrupted; credentials come from the command line only."""
    parser = argparse.ArgumentParser(
        prog="python -m gotv.fakecarrier",
        description="Run a fake Twilio carrier for local demos (no real texts are sent).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--account-sid", required=True, help="AccountSid clients must use")
    parser.add_argument("--auth-token", required=True, help="auth token; also signs webhooks")
    parser.add_argument("--inbound-url", default=None, help="where voter replies are POSTed")
    parser.add_argument("--phone-number", default="+15005550006")
    parser.add_argument("--delay", type=float, default=0.3, help="seconds before each webhook")
    args = parser.parse_args(argv)
    carrier = FakeCarrier(
        args.account_sid,
        args.auth_token,
        inbound_url=args.inbound_url,
        phone_number=args.phone_number,
        delivery_delay=args.delay,
    )
    server = make_server(args.host, args.port, create_carrier_app(carrier), threaded=True)
    print(
        f"Fake carrier listening on http://{args.host}:{server.server_port} "
        f"(voter page at /; inbound webhooks to {args.inbound_url or 'nowhere'})",
        flush=True,
    )
    carrier.start_delivery()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        carrier.stop_delivery()


if __name__ == "__main__":
    main()
