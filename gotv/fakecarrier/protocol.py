"""What the fake carrier speaks: Twilio's API paths and fields, errors, keywords, paging,
signed webhooks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import math
import re
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any, TypeVar

from multidict import MultiMapping

T = TypeVar("T")

API_VERSION = "2010-04-01"
#: The API's paths, in the contract's (and aiohttp's) ``{Name}`` placeholder syntax.
MESSAGES_ROUTE = "/2010-04-01/Accounts/{AccountSid}/Messages.json"
MESSAGE_ROUTE = "/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json"
ACCOUNTS_ROUTE = "/2010-04-01/Accounts.json"
ACCOUNT_ROUTE = "/2010-04-01/Accounts/{Sid}.json"
INCOMING_NUMBERS_ROUTE = "/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json"
MEDIA_LIST_ROUTE = "/2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media.json"
MEDIA_ROUTE = "/2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media/{Sid}.json"
#: A media item's bytes: its metadata's path without ``.json`` (not in the contract, which
#: describes JSON only; it is the ``MediaUrl{N}`` of an inbound MMS).
MEDIA_CONTENT_ROUTE = "/2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media/{Sid}"
SERVICE_ROUTE = "/v1/Services/{Sid}"
SERVICE_NUMBERS_ROUTE = "/v1/Services/{ServiceSid}/PhoneNumbers"

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
#: CreateAccount's form fields (it requires none).
CREATE_ACCOUNT_FIELDS = frozenset({"FriendlyName"})
#: ListIncomingPhoneNumber's filters that the fake applies (it ignores Beta and Origin).
NUMBER_FILTERS: tuple[str, ...] = ("PhoneNumber", "FriendlyName")
#: The paging parameters of every list the fake serves.
PAGING_PARAMETERS: tuple[str, ...] = ("PageSize", "Page", "PageToken")
#: Fields that must always be present.
REQUIRED_FIELDS: tuple[str, ...] = ("To",)
#: Groups of which at least one field must be present (the contract's x-twilio "conditional").
#: The fake is stricter than Twilio for the first group: exactly one of From/MessagingServiceSid.
ONE_OF_FIELDS: tuple[tuple[str, ...], ...] = (
    ("From", "MessagingServiceSid"),
    ("Body", "MediaUrl", "ContentSid"),
)

# Twilio's test-credential magic numbers (https://www.twilio.com/docs/iam/test-credentials).
MAGIC_TO: dict[str, tuple[int, str]] = {
    "+15005550001": (21211, "The 'To' number +15005550001 is not a valid phone number."),
    "+15005550002": (21612, "The 'To' phone number is not currently reachable via SMS."),
    "+15005550003": (21408, "Permission to send an SMS has not been enabled for the region."),
    "+15005550004": (21610, "Attempt to send to unsubscribed recipient"),
    "+15005550009": (21614, "'To' number is not a valid mobile number"),
}
MAGIC_FROM: dict[str, tuple[int, str]] = {
    "+15005550001": (21212, "The 'From' number +15005550001 is not a valid phone number."),
    "+15005550007": (21606, "The 'From' phone number provided is not owned by your account."),
    "+15005550008": (
        21611,
        "This 'From' number has exceeded the maximum number of queued messages",
    ),
}
KNOWN_MESSAGES: dict[int, str] = {
    21211: "The 'To' number is not a valid phone number.",
    21408: "Permission to send an SMS has not been enabled for the region.",
    21610: "Attempt to send to unsubscribed recipient",
    21612: "The 'To' phone number is not currently reachable via SMS.",
    21614: "'To' number is not a valid mobile number",
    20003: "Authenticate",
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
OPT_OUT_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
OPT_IN_WORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})
OPT_OUT_REPLY = (
    "You have successfully been unsubscribed. You will not receive any more messages from "
    "this number. Reply START to resubscribe."
)
OPT_IN_REPLY = (
    "You have successfully been resubscribed to messages from this number. Reply HELP for "
    "help. Reply STOP to unsubscribe. Msg&Data Rates May Apply."
)

HELP_REPLY = "Reply STOP to unsubscribe. Msg&Data Rates May Apply."
#: Advanced Opt-Out's ``OptOutType`` for each class of keyword.
OPT_OUT_TYPES: tuple[tuple[frozenset[str], str], ...] = (
    (OPT_OUT_WORDS, "STOP"),
    (OPT_IN_WORDS, "START"),
    (HELP_WORDS, "HELP"),
)

# Errors of an account's own resources (checked against Twilio's error pages).
FROM_NOT_OWNED = 21660  # "Mismatch between the 'From' number and the account"
SERVICE_NOT_FOUND = 21701  # "The Messaging Service does not exist" (or not this account's)
SERVICE_WITHOUT_NUMBERS = 21704  # "The Messaging Service contains no phone numbers"
TOO_MANY_REQUESTS = 20429

_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
_MAX_BODY = 1600
_MAX_VALIDITY = 36000
MAX_ATTEMPTS = 4  # one try plus three retries, roughly what Twilio does for a dead endpoint
WEBHOOK_TIMEOUT = 15.0  # Twilio gives up on a webhook after 15 s

_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")  # each costs two septets (ESC + char)
_GSM7 = _GSM7_BASIC | _GSM7_EXTENDED
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


class ApiError(Exception):
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
class Send:
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
class Pending:
    webhook: Webhook
    seq: int
    due: float
    attempts: int = 0


@dataclass
class Failure:
    status: int
    code: int
    message: str


def new_sid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


def rfc2822(moment: datetime) -> str:
    return format_datetime(moment)


def count_segments(body: str) -> int:
    """Segments Twilio bills for ``body``: GSM-7 160/153 septets, else UCS-2 70/67 units."""
    # Set and str methods rather than a loop per character: this runs on every send.
    if _GSM7.issuperset(body):
        units = len(body) + sum(body.count(ch) for ch in _GSM7_EXTENDED)
        single, multi = 160, 153
    else:
        # UCS-2 counts UTF-16 code units, so an emoji (a surrogate pair) costs two.
        units = len(body.encode("utf-16-le")) // 2
        single, multi = 70, 67
    if units <= single:
        return 1
    return math.ceil(units / multi)


def _field(form: MultiMapping[str], name: str) -> str | None:
    # Twilio treats an empty parameter as an absent one.
    value = form.get(name)
    return value if value else None


def _is_http_url(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _parse_senders(form: MultiMapping[str]) -> tuple[str, str | None, str | None]:
    to = _field(form, "To")
    if to is None:
        raise ApiError(400, 21604, "A 'To' phone number is required.")
    if not _E164.match(to):
        raise ApiError(400, 21211, f"The 'To' number {to} is not a valid phone number.")
    from_ = _field(form, "From")
    service_sid = _field(form, "MessagingServiceSid")
    if from_ is None and service_sid is None:
        raise ApiError(
            400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required to send a message."
        )
    if from_ is not None and service_sid is not None:
        raise ApiError(
            400, 21603, "Send exactly one of 'From' or 'MessagingServiceSid' (fake carrier rule)."
        )
    if from_ is not None and not _E164.match(from_):
        raise ApiError(400, 21212, f"The 'From' number {from_} is not a valid phone number.")
    if service_sid is not None and not _SERVICE_SID.match(service_sid):
        raise ApiError(400, 21701, f"The Messaging Service Sid {service_sid} is invalid.")
    return to, from_, service_sid


def _parse_content(form: MultiMapping[str]) -> tuple[str, list[str]]:
    body = form.get("Body", "")
    media = [url for url in form.getall("MediaUrl", []) if url]
    if not body and not media and _field(form, "ContentSid") is None:
        raise ApiError(400, 21602, "Message body is required.")
    if (_field(form, "SmartEncoded") or "").lower() == "true":
        body = body.translate(_SMART_ENCODING)
    if len(body) > _MAX_BODY:
        raise ApiError(
            400, 21617, "The concatenated message body exceeds the 1600 character limit."
        )
    return body, media


def _parse_options(form: MultiMapping[str]) -> str | None:
    callback = _field(form, "StatusCallback")
    if callback is not None and not _is_http_url(callback):
        raise ApiError(400, 21609, f"Invalid StatusCallback url: {callback}")
    validity = _field(form, "ValidityPeriod")
    if validity is not None and not (validity.isdigit() and 1 <= int(validity) <= _MAX_VALIDITY):
        raise ApiError(400, 21624, "Invalid validity period value")
    return callback


def parse_send(form: MultiMapping[str]) -> Send:
    """Validate a CreateMessage form as Twilio does; raise :class:`ApiError` on a bad one."""
    to, from_, service_sid = _parse_senders(form)
    body, media = _parse_content(form)
    callback = _parse_options(form)
    return Send(to, from_, service_sid, body, media, callback)


#: ListMessage's filters, in the order Twilio writes them into page URIs.
LIST_FILTERS: tuple[str, ...] = ("To", "From", "DateSent", "DateSent<", "DateSent>")
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
_DAY_SECONDS = 86400
_PAGE_TOKEN = re.compile(r"^PA(\d+)$")


@dataclass(frozen=True)
class ListQuery:
    """A validated ListMessage query.

    ``sent_from``/``sent_until`` are inclusive bounds on ``date_sent`` in whole Unix seconds
    (Twilio's dates have one-second precision). ``page_token`` is the fake's own cursor: the
    exclusive upper index, into the carrier's arrival-ordered list, where the page starts.
    """

    filters: dict[str, str]
    to: str | None
    from_: str | None
    sent_from: int | None
    sent_until: int | None
    page_size: int
    page: int
    page_token: int | None

    def admits(self, sent: int, message: Mapping[str, Any]) -> bool:
        """Whether a message sent at ``sent`` (Unix seconds) passes every filter."""
        return (
            (self.to is None or message["to"] == self.to)
            and (self.from_ is None or message["from"] == self.from_)
            and (self.sent_from is None or sent >= self.sent_from)
            and (self.sent_until is None or sent <= self.sent_until)
        )

    def page_query(self, page: int, page_token: int | None) -> str:
        """The query string of a page of this list, as Twilio writes it into page URIs."""
        params = [*self.filters.items(), ("PageSize", str(self.page_size)), ("Page", str(page))]
        if page_token is not None:
            params.append(("PageToken", f"PA{page_token}"))
        return urllib.parse.urlencode(params)


def _bad_parameter(name: str, value: str) -> ApiError:
    # Twilio's "Invalid parameter" error; the fake names the offending query parameter.
    return ApiError(400, 20001, f"Invalid {name}: {value}")


def sent_bounds(name: str, value: str) -> tuple[int, int]:
    """Parse a DateSent filter value into inclusive (first, last) Unix seconds, in GMT.

    ``YYYY-MM-DD`` covers that whole day; a date-time (ISO 8601 as the twilio client writes
    it, ``YYYY-MM-DD HH:MM:SS[.fff]``, or RFC 2822) is one second. A time without a zone is
    GMT, as Twilio documents. Raises :class:`ApiError` for anything else.
    """
    text = value.strip()
    try:
        if len(text) == 10:
            start = datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
            first = int(start.timestamp())
            return first, first + _DAY_SECONDS - 1
        moment = _parse_moment(text)
    except (TypeError, ValueError):
        raise _bad_parameter(name, value) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    second = math.floor(moment.timestamp())
    return second, second


def _parse_moment(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return parsedate_to_datetime(text)


def _page_size(query: MultiMapping[str]) -> int:
    raw = query.get("PageSize")
    if raw is None:
        return DEFAULT_PAGE_SIZE
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        raise _bad_parameter("PageSize", raw)
    return int(raw)


def _page_position(query: MultiMapping[str]) -> tuple[int, int | None]:
    raw_page, raw_token = query.get("Page", "0"), query.get("PageToken")
    if not raw_page.isdigit():
        raise _bad_parameter("Page", raw_page)
    if raw_token is None:
        return int(raw_page), None
    match = _PAGE_TOKEN.match(raw_token)
    if match is None:
        raise _bad_parameter("PageToken", raw_token)
    return int(raw_page), int(match.group(1))


def parse_list(query: MultiMapping[str]) -> ListQuery:
    """Validate a ListMessage query string; raise :class:`ApiError` on a bad parameter.

    ``DateSent`` keeps one day (or second), ``DateSent>`` is on-or-after and ``DateSent<``
    on-or-before its value, as in Twilio's ``>=``/``<=`` spelling of them.
    """
    filters = {name: query[name] for name in LIST_FILTERS if query.get(name)}
    sent_from: int | None = None
    sent_until: int | None = None
    for name in ("DateSent", "DateSent>", "DateSent<"):
        if name not in filters:
            continue
        first, last = sent_bounds(name, filters[name])
        if name != "DateSent<":
            sent_from = first if sent_from is None else max(sent_from, first)
        if name != "DateSent>":
            sent_until = last if sent_until is None else min(sent_until, last)
    page, token = _page_position(query)
    return ListQuery(
        filters=filters,
        to=filters.get("To"),
        from_=filters.get("From"),
        sent_from=sent_from,
        sent_until=sent_until,
        page_size=_page_size(query),
        page=page,
        page_token=token,
    )


@dataclass(frozen=True)
class Paging:
    """A validated page of a short list (an account's numbers, a service's, a message's media):
    ``PageSize`` items from ``offset`` (``Page`` times the size, or a ``PageToken``)."""

    page_size: int
    page: int
    offset: int

    def window(self, items: Sequence[T]) -> tuple[list[T], bool]:
        """This page's items, and whether another page follows."""
        chunk = list(items[self.offset : self.offset + self.page_size])
        return chunk, self.offset + self.page_size < len(items)

    def query(self, filters: Mapping[str, str], page: int) -> str:
        """The query string of page ``page`` of this list, filters first, as Twilio writes it."""
        params = [*filters.items(), ("PageSize", str(self.page_size)), ("Page", str(page))]
        if page > 0:
            params.append(("PageToken", f"PA{page * self.page_size}"))
        return urllib.parse.urlencode(params)


def parse_paging(query: MultiMapping[str]) -> Paging:
    """Validate ``PageSize``, ``Page`` and ``PageToken``; raise :class:`ApiError` on a bad one."""
    size = _page_size(query)
    page, token = _page_position(query)
    return Paging(size, page, page * size if token is None else token)


def list_page(
    key: str, path: str, filters: Mapping[str, str], items: Sequence[Any], paging: Paging
) -> dict[str, Any]:
    """One page of a 2010 API list, in Twilio's shape (``next_page_uri`` and friends)."""
    chunk, more = paging.window(items)
    page = paging.page
    return {
        "end": paging.offset + max(len(chunk) - 1, 0),
        "first_page_uri": f"{path}?{paging.query(filters, 0)}",
        key: chunk,
        "next_page_uri": f"{path}?{paging.query(filters, page + 1)}" if more else None,
        "page": page,
        "page_size": paging.page_size,
        "previous_page_uri": f"{path}?{paging.query(filters, page - 1)}" if page > 0 else None,
        "start": paging.offset,
        "uri": f"{path}?{paging.query(filters, page)}",
    }


def meta_page(key: str, url: str, items: Sequence[Any], paging: Paging) -> dict[str, Any]:
    """One page of a Messaging (v1) API list: the items under ``key`` and absolute ``meta``."""
    chunk, more = paging.window(items)
    page = paging.page
    return {
        key: chunk,
        "meta": {
            "first_page_url": f"{url}?{paging.query({}, 0)}",
            "key": key,
            "next_page_url": f"{url}?{paging.query({}, page + 1)}" if more else None,
            "page": page,
            "page_size": paging.page_size,
            "previous_page_url": f"{url}?{paging.query({}, page - 1)}" if page > 0 else None,
            "url": f"{url}?{paging.query({}, page)}",
        },
    }


def post_webhook(webhook: Webhook) -> int | None:
    """POST one webhook; return the HTTP status, or None when no response came back."""
    data = urllib.parse.urlencode(webhook.params).encode()
    headers = {**webhook.headers, "Content-Type": "application/x-www-form-urlencoded"}
    req = urllib.request.Request(webhook.url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=WEBHOOK_TIMEOUT) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        err.close()  # it holds the socket; leaking it would warn
        return int(err.code)
    except (OSError, ValueError, http.client.HTTPException):
        return None
