"""Twilio, and the only module that imports it.

Every call names the Twilio account it is for (`Credentials`): an organization's own account, or
the instance's (`default_credentials()`, from the environment). `Connection.send()` hands
messages to Twilio's Messages API, many at once, through any number of accounts;
`find_sent()` asks Twilio what it holds for a number; `fetch_account()`, `owns()` and
`create_subaccount()` check and set up an organization's account; `fetch_media()` reads a
picture a voter sent; `is_valid_signature()` checks a webhook's X-Twilio-Signature.
`TWILIO_API_URL` and `TWILIO_MESSAGING_URL` point the real client at any Twilio-compatible
server, which is how the fake carrier stands in for Twilio in the demo and in every test.
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
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from werkzeug.datastructures import MultiDict

# Long enough for a slow Twilio, short enough that a stuck call does not hold a worker for long.
HTTP_TIMEOUT_SECONDS = 15


@dataclass(frozen=True)
class Credentials:
    """One Twilio account as gotv uses it.

    Calls to Twilio authenticate with the API key when there is one, else with the account
    SID and auth token; Twilio signs the account's webhooks with the auth token.
    """

    account_sid: str
    auth_token: str
    api_key_sid: str | None = None
    api_key_secret: str | None = None

    @property
    def login(self) -> tuple[str, str]:
        """(username, password) for HTTP Basic auth with Twilio."""
        if self.api_key_sid and self.api_key_secret:
            return self.api_key_sid, self.api_key_secret
        return self.account_sid, self.auth_token

    def __repr__(self) -> str:  # never the secrets, in a log or a traceback
        return f"Credentials({self.account_sid!r})"


@dataclass(frozen=True)
class Account:
    """A Twilio account texts go through, with its limits across every worker (None: none of
    ours): requests in flight at once, messages per second, the brand's messages per day."""

    credentials: Credentials
    concurrency: int | None = None
    per_second: float | None = None
    daily_cap: int | None = None


def default_credentials() -> Credentials:
    """The instance's own Twilio account (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN)."""
    config = current_app.config
    return Credentials(config["TWILIO_ACCOUNT_SID"], config["TWILIO_AUTH_TOKEN"])


def instance_account() -> Account:
    """The instance's own account, with the limits its environment sets."""
    config = current_app.config
    return Account(
        default_credentials(),
        concurrency=config.get("TWILIO_CONCURRENCY"),
        per_second=config.get("TWILIO_MESSAGES_PER_SECOND"),
        daily_cap=config.get("TWILIO_DAILY_CAP"),
    )


def instance_sender() -> str:
    """The instance's default sender: its Messaging Service if it has one, else its number."""
    return default_sender(current_app.config)


class CarrierRefused(Exception):
    """Twilio refused a call about an account (wrong credentials, no such resource); `str()`
    says why in words an organizer understands."""


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
    """Where Twilio is (no network until the first call)."""
    app.extensions["gotv.sms"] = {}


def client(credentials: Credentials) -> Client:
    """A pooled, synchronous Twilio client for the account, made once per process."""
    clients: dict[Credentials, Client] = current_app.extensions["gotv.sms"]
    if credentials not in clients:
        username, password = credentials.login
        made = Client(
            username,
            password,
            account_sid=credentials.account_sid,
            http_client=TwilioHttpClient(pool_connections=True, timeout=HTTP_TIMEOUT_SECONDS),
        )
        point_at_twilio(made, current_app.config)
        clients[credentials] = made
    return clients[credentials]


def point_at_twilio(made: Client, config: Mapping[str, Any]) -> None:
    """Send the client's calls to TWILIO_API_URL (and the Messaging API's to
    TWILIO_MESSAGING_URL): Twilio's own hosts by default, the fake carrier in tests."""
    made.api.base_url = config["TWILIO_API_URL"].rstrip("/")
    made.messaging.base_url = config["TWILIO_MESSAGING_URL"].rstrip("/")


class Connection:
    """Twilio for one send pump: a pooled aiohttp session with up to `concurrency` requests open,
    shared by the clients of every account the pump sends through.

    Use inside a running event loop: ``async with sms.Connection(config, 200) as twilio: ...``.
    """

    def __init__(self, config: Mapping[str, Any], concurrency: int) -> None:
        self.config = config
        self.concurrency = concurrency
        self.clients: dict[Credentials, Client] = {}

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
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.http.close()

    def client(self, credentials: Credentials) -> Client:
        if credentials not in self.clients:
            username, password = credentials.login
            made = Client(
                username, password, account_sid=credentials.account_sid, http_client=self.http
            )
            point_at_twilio(made, self.config)
            self.clients[credentials] = made
        return self.clients[credentials]

    async def send(
        self,
        credentials: Credentials,
        to: str,
        body: str,
        status_callback: str,
        validity_period: int,
        sender: str = "",
        smart_encoded: bool = False,
    ) -> Accepted:
        """Ask Twilio to send `body` to `to` through the account, with status callbacks to
        `status_callback`.

        `sender` is a number or a Messaging Service SID; "" means the instance's default
        sender (TWILIO_MESSAGING_SERVICE_SID or TWILIO_FROM_NUMBER).

        :raise SendError: when Twilio refuses, cannot be reached, or may or may not have it.
        """
        fields: dict[str, Any] = sender_fields(sender or default_sender(self.config))
        if smart_encoded:
            fields["smart_encoded"] = True
        try:
            message = await self.client(credentials).messages.create_async(
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


def find_sent(credentials: Credentials, to: str, since: datetime) -> list[Accepted]:
    """Messages the account holds to `to` sent since `since` (by day): to settle an uncertain
    send."""
    try:
        messages = client(credentials).messages.list(to=to, date_sent_after=since, limit=50)
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


# --- An organization's own account ------------------------------------------------------------


@dataclass(frozen=True)
class AccountInfo:
    """What Twilio says of an account."""

    sid: str
    friendly_name: str
    status: str
    parent_sid: str | None


def fetch_account(credentials: Credentials) -> AccountInfo:
    """Twilio's answer for the account, asked with its own credentials: proof they work.

    :raise CarrierRefused: when Twilio refuses them or cannot be reached.
    """
    try:
        account = client(credentials).api.v2010.accounts(credentials.account_sid).fetch()
    except TwilioException as error:
        raise CarrierRefused(_refusal(error)) from error
    except requests.RequestException as error:
        raise CarrierRefused(f"Twilio could not be reached ({type(error).__name__})") from error
    parent = account.owner_account_sid
    return AccountInfo(
        sid=account.sid or "",
        friendly_name=account.friendly_name or "",
        status=str(account.status),
        parent_sid=parent if parent and parent != account.sid else None,
    )


def check_key(credentials: Credentials) -> None:
    """Make one harmless call with the credentials' API key (a standard key may not read the
    account itself): proof the key works for this account.

    :raise CarrierRefused: when Twilio refuses it or cannot be reached.
    """
    try:
        numbers = client(credentials).api.v2010.accounts(credentials.account_sid)
        numbers.incoming_phone_numbers.list(limit=1)
    except TwilioException as error:
        raise CarrierRefused(_refusal(error)) from error
    except requests.RequestException as error:
        raise CarrierRefused(f"Twilio could not be reached ({type(error).__name__})") from error


def owns(credentials: Credentials, address: str) -> bool:
    """True when the account holds the number (an incoming phone number of its) or the
    Messaging Service (MG...).

    :raise CarrierRefused: when Twilio refuses the credentials or cannot be reached.
    """
    twilio = client(credentials)
    try:
        if address.startswith("MG"):
            service = twilio.messaging.v1.services(address).fetch()
            return (service.account_sid or credentials.account_sid) == credentials.account_sid
        numbers = twilio.api.v2010.accounts(credentials.account_sid).incoming_phone_numbers
        return any(number.phone_number == address for number in numbers.list(phone_number=address))
    except TwilioException as error:
        if isinstance(error, TwilioRestException) and error.status == 404:
            return False
        raise CarrierRefused(_refusal(error)) from error
    except requests.RequestException as error:
        raise CarrierRefused(f"Twilio could not be reached ({type(error).__name__})") from error


def create_subaccount(parent: Credentials, friendly_name: str) -> Credentials:
    """A new subaccount of `parent`, named `friendly_name`, and its credentials.

    :raise CarrierRefused: when Twilio refuses.
    """
    try:
        account = client(parent).api.v2010.accounts.create(friendly_name=friendly_name)
    except TwilioException as error:
        raise CarrierRefused(_refusal(error)) from error
    return Credentials(account.sid or "", account.auth_token or "")


def _refusal(error: TwilioException) -> str:
    if not isinstance(error, TwilioRestException):
        return f"Twilio refused: {error}"
    if error.status == 401:
        return "Twilio did not accept these credentials (check the SID and the secret)"
    return f"Twilio refused: {error.msg} (error {error.code})"


# --- Pictures voters send -------------------------------------------------------------------

# What a thread shows inline; anything else is listed, never shown.
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
MAX_MEDIA_BYTES = 5 * 1024 * 1024  # Twilio's own limit for an MMS


class MediaRefused(Exception):
    """The media could not be fetched, or is not a picture of an acceptable size."""


def fetch_media(credentials: Credentials, url: str) -> tuple[str, bytes]:
    """The picture at `url` (a Media URL Twilio sent the account): its type and bytes.

    Fetched with the account's credentials; only Twilio's own media URLs of that account,
    only the IMAGE_TYPES, at most MAX_MEDIA_BYTES.

    :raise MediaRefused: saying why.
    """
    base = current_app.config["TWILIO_API_URL"].rstrip("/")
    prefix = f"{base}/2010-04-01/Accounts/{credentials.account_sid}/Messages/"
    if not url.startswith(prefix) or ".." in url:
        raise MediaRefused("not a media URL of this account")
    try:
        with requests.get(
            url, auth=credentials.login, stream=True, timeout=HTTP_TIMEOUT_SECONDS
        ) as response:
            if response.status_code != 200:
                raise MediaRefused(f"Twilio answered {response.status_code}")
            kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if kind not in IMAGE_TYPES:
                raise MediaRefused(f"not a picture gotv shows ({kind or 'no type'})")
            content = b""
            for chunk in response.iter_content(64 * 1024):
                content += chunk
                if len(content) > MAX_MEDIA_BYTES:
                    raise MediaRefused("larger than an MMS can be")
    except requests.RequestException as error:
        raise MediaRefused(f"Twilio could not be reached ({type(error).__name__})") from error
    return kind, content


def _int_or_none(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def is_valid_signature(token: str, url: str, params: MultiDict[str, str], signature: str) -> bool:
    """True when `signature` is Twilio's signature of `url` and `params` with the auth token
    `token` (the account's the webhook says it comes from).

    The URL as received is nearly always the one Twilio signed, so its HMAC is tried alone
    first: one HMAC instead of the two (with and without the port) and the URL parsing of
    twilio's RequestValidator, which decides whenever that one does not match.
    """
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
