"""The fake carrier's accounts, numbers, Messaging Services, API keys and media, as Twilio
shows them: each resource's JSON has exactly the properties of its schema in Twilio's contract.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gotv.fakecarrier.protocol import API_VERSION, ApiError, new_sid, rfc2822

#: What the fake's Messaging API (Twilio's ``messaging.twilio.com``) paths start with.
MESSAGING_VERSION = "v1"


def new_token() -> str:
    """A new auth token or API key secret: 32 hex digits, like Twilio's."""
    return secrets.token_hex(16)


def iso8601(moment: datetime) -> str:
    """The Messaging API's date format (the 2010 API uses RFC 2822)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(eq=False)
class Account:
    """A Twilio account or subaccount and what it owns.

    ``numbers`` lists its phone numbers (those of its Messaging Services included) in the order
    they were added; ``strict`` is False only for the carrier's main account, which also sends
    from numbers and services that no account owns (the demo and test default).
    ``concurrency`` bounds its API requests in flight (None: no bound) and may be changed at
    any time; ``in_flight`` counts them and ``throttled`` counts the 429s it was given.
    Read these fields freely; change them through :class:`~gotv.fakecarrier.FakeCarrier`.
    """

    sid: str
    auth_token: str
    friendly_name: str
    parent_sid: str | None = None
    concurrency: int | None = None
    strict: bool = True
    numbers: list[str] = field(default_factory=list)
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    in_flight: int = 0
    throttled: int = 0

    @property
    def owner_sid(self) -> str:
        """Twilio's ``owner_account_sid``: the parent's SID, or its own for a parent."""
        return self.parent_sid or self.sid

    def resource(self) -> dict[str, Any]:
        """The ``api.v2010.account`` JSON (auth token included, as Twilio shows its owner)."""
        stamp = rfc2822(self.created)
        base = f"/{API_VERSION}/Accounts/{self.sid}"
        return {
            "auth_token": self.auth_token,
            "date_created": stamp,
            "date_updated": stamp,
            "friendly_name": self.friendly_name,
            "owner_account_sid": self.owner_sid,
            "sid": self.sid,
            "status": "active",
            "subresource_uris": {
                "incoming_phone_numbers": f"{base}/IncomingPhoneNumbers.json",
                "messages": f"{base}/Messages.json",
            },
            "type": "Full",
            "uri": f"{base}.json",
        }


@dataclass(eq=False)
class Service:
    """A Messaging Service: its sender pool, and the sender each recipient is stuck to.

    ``advanced_opt_out`` makes keyword replies to its numbers carry ``OptOutType``.
    """

    sid: str
    account_sid: str
    friendly_name: str
    advanced_opt_out: bool = False
    numbers: list[str] = field(default_factory=list)
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    sticky: dict[str, str] = field(default_factory=dict)
    _turn: int = 0

    def sender_for(self, recipient: str) -> str:
        """The pool number that texts ``recipient``: the one it had before (Sticky Sender),
        else the next in turn. The pool must not be empty."""
        sender = self.sticky.get(recipient)
        if sender is None or sender not in self.numbers:
            sender = self.numbers[self._turn % len(self.numbers)]
            self._turn += 1
            self.sticky[recipient] = sender
        return sender

    def resource(self, base_url: str, inbound_url: str | None) -> dict[str, Any]:
        """The ``messaging.v1.service`` JSON; its URLs are absolute, on ``base_url``."""
        stamp = iso8601(self.created)
        url = f"{base_url}/{MESSAGING_VERSION}/Services/{self.sid}"
        return {
            "sid": self.sid,
            "account_sid": self.account_sid,
            "friendly_name": self.friendly_name,
            "date_created": stamp,
            "date_updated": stamp,
            "inbound_request_url": inbound_url,
            "inbound_method": "POST",
            "fallback_url": None,
            "fallback_method": "POST",
            "status_callback": None,
            "sticky_sender": True,
            "mms_converter": True,
            "smart_encoding": True,
            "scan_message_content": "inherit",
            "fallback_to_long_code": False,
            "area_code_geomatch": True,
            "synchronous_validation": False,
            "validity_period": 36000,
            "url": url,
            "links": {
                "phone_numbers": f"{url}/PhoneNumbers",
                "short_codes": f"{url}/ShortCodes",
                "alpha_senders": f"{url}/AlphaSenders",
            },
            "usecase": "undeclared",
            "us_app_to_person_registered": True,
            "use_inbound_webhook_on_number": False,
        }


@dataclass(frozen=True)
class ApiKey:
    """An API key: HTTP Basic ``(sid, secret)`` acts for ``account_sid`` (and its subaccounts).

    A standard key (``main=False``, the only kind Twilio's API creates) may not use the
    Accounts resources themselves (fetch or create an account), as with Twilio; a main key may.
    """

    sid: str
    secret: str
    account_sid: str
    main: bool = False


@dataclass(frozen=True)
class PhoneNumber:
    """An incoming phone number an account owns."""

    sid: str
    number: str
    account_sid: str
    created: datetime

    def resource(self, sms_url: str | None) -> dict[str, Any]:
        """The ``api.v2010.account.incoming_phone_number`` JSON."""
        stamp = rfc2822(self.created)
        path = f"/{API_VERSION}/Accounts/{self.account_sid}/IncomingPhoneNumbers/{self.sid}"
        return {
            "account_sid": self.account_sid,
            "address_sid": None,
            "address_requirements": "none",
            "api_version": API_VERSION,
            "beta": False,
            "capabilities": {"mms": True, "sms": True, "voice": True, "fax": False},
            "date_created": stamp,
            "date_updated": stamp,
            "friendly_name": friendly_number(self.number),
            "identity_sid": None,
            "phone_number": self.number,
            "origin": "twilio",
            "sid": self.sid,
            "sms_application_sid": None,
            "sms_fallback_method": "POST",
            "sms_fallback_url": None,
            "sms_method": "POST",
            "sms_url": sms_url,
            "status_callback": None,
            "status_callback_method": "POST",
            "trunk_sid": None,
            "uri": f"{path}.json",
            "voice_receive_mode": "voice",
            "voice_application_sid": None,
            "voice_caller_id_lookup": False,
            "voice_fallback_method": "POST",
            "voice_fallback_url": None,
            "voice_method": "POST",
            "voice_url": None,
            "emergency_status": "Inactive",
            "emergency_address_sid": None,
            "emergency_address_status": "unregistered",
            "bundle_sid": None,
            "status": "in-use",
            "type": "local",
        }

    def service_resource(self, base_url: str, service_sid: str) -> dict[str, Any]:
        """The ``messaging.v1.service.phone_number`` JSON of this number in a service."""
        stamp = iso8601(self.created)
        return {
            "sid": self.sid,
            "account_sid": self.account_sid,
            "service_sid": service_sid,
            "date_created": stamp,
            "date_updated": stamp,
            "phone_number": self.number,
            "country_code": "US",
            "capabilities": ["SMS", "MMS", "Voice"],
            "url": f"{base_url}/{MESSAGING_VERSION}/Services/{service_sid}/PhoneNumbers/{self.sid}",
        }


@dataclass(frozen=True)
class Media:
    """One media item of a message: the bytes a voter sent, or a URL an outbound MMS named."""

    sid: str
    account_sid: str
    message_sid: str
    content_type: str
    created: datetime
    content: bytes | None = None
    source_url: str | None = None

    @property
    def path(self) -> str:
        """Where its bytes are served (the ``.json`` path is its metadata)."""
        return (
            f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.message_sid}"
            f"/Media/{self.sid}"
        )

    def resource(self) -> dict[str, Any]:
        """The ``api.v2010.account.message.media`` JSON."""
        stamp = rfc2822(self.created)
        return {
            "account_sid": self.account_sid,
            "content_type": self.content_type,
            "date_created": stamp,
            "date_updated": stamp,
            "parent_sid": self.message_sid,
            "sid": self.sid,
            "uri": f"{self.path}.json",
        }


def new_media(
    account_sid: str,
    message_sid: str,
    content_type: str,
    content: bytes | None = None,
    source_url: str | None = None,
) -> Media:
    return Media(
        new_sid("ME"),
        account_sid,
        message_sid,
        content_type,
        datetime.now(UTC),
        content,
        source_url,
    )


_NANP = re.compile(r"^\+1(\d{3})(\d{3})(\d{4})$")


def friendly_number(number: str) -> str:
    """Twilio's default friendly name of a number: ``(555) 123-4567`` for a NANP number."""
    match = _NANP.match(number)
    return f"({match[1]}) {match[2]}-{match[3]}" if match else number


def number_matches(pattern: str, number: str) -> bool:
    """ListIncomingPhoneNumber's ``PhoneNumber`` filter: digits anywhere in the number, ``*``
    standing for any one digit (Twilio accepts partial numbers)."""
    wanted = "".join(ch for ch in pattern if ch.isdigit() or ch == "*")
    if not wanted:
        return True
    regex = "".join(r"\d" if ch == "*" else ch for ch in wanted)
    return re.search(regex, number) is not None


@dataclass(frozen=True)
class Route:
    """How a send goes out: from ``sender``, through ``service_sid`` if any, and what a STOP
    blocks (``block_key``: the Messaging Service, else the number)."""

    sender: str
    service_sid: str | None
    block_key: str


_ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
Auth = tuple[str | None, str | None]


class Directory:
    """Who owns what: accounts, API keys, numbers, Messaging Services and media, and who may act
    for which account. Not thread-safe by itself: the carrier calls it under its lock.

    A number belongs to one account and to at most one of that account's services; a service
    belongs to one account. Mistakes in setting it up raise ``ValueError``.
    """

    def __init__(self, main: Account, phone_number: str) -> None:
        self.main = main
        self.phone_number = phone_number
        self.accounts: dict[str, Account] = {main.sid: main}
        self.keys: dict[str, ApiKey] = {}
        self.numbers: dict[str, PhoneNumber] = {}
        self.services: dict[str, Service] = {}
        self.service_of: dict[str, str] = {}  # number -> the service it is in
        self.media: dict[str, Media] = {}
        self.media_of: dict[str, list[Media]] = {}  # message SID -> its media, in order
        self.add_number(main, phone_number)

    # -- setting up -------------------------------------------------------------------------

    def add_account(
        self,
        sid: str | None,
        auth_token: str | None,
        friendly_name: str,
        parent_sid: str | None,
        concurrency: int | None,
    ) -> Account:
        sid = sid or new_sid("AC")
        if not _ACCOUNT_SID.match(sid):
            raise ValueError(f"{sid!r} is not an account SID (AC and 32 hex digits)")
        if sid in self.accounts:
            raise ValueError(f"account {sid} already exists")
        if parent_sid is not None and self.account(parent_sid).parent_sid is not None:
            raise ValueError("a subaccount cannot have subaccounts of its own")
        if concurrency is not None and concurrency < 1:
            raise ValueError("concurrency must be at least 1 (or None: no limit)")
        now = datetime.now(UTC)
        if not friendly_name:
            meridian = now.strftime("%p").lower()
            friendly_name = (
                f"SubAccount Created at {now:%Y-%m-%d %I:%M} {meridian}"
                if parent_sid is not None
                else f"Fake account {sid[-4:]}"
            )
        account = Account(
            sid=sid,
            auth_token=auth_token or new_token(),
            friendly_name=friendly_name,
            parent_sid=parent_sid,
            concurrency=concurrency,
            created=now,
        )
        self.accounts[sid] = account
        return account

    def account(self, sid: str) -> Account:
        account = self.accounts.get(sid)
        if account is None:
            raise ValueError(f"no account {sid}")
        return account

    def check_claimable(
        self, account_sid: str | None, numbers: Sequence[str], into_service: bool
    ) -> None:
        """Raise ``ValueError`` unless every number may go to the account (None: a new one),
        and, ``into_service``, into a new service of it: so that setting up is all or nothing."""
        for number in numbers:
            if not _E164.match(number):
                raise ValueError(f"{number!r} is not an E.164 phone number")
            owned = self.numbers.get(number)
            if owned is not None and owned.account_sid != account_sid:
                raise ValueError(f"{number} already belongs to account {owned.account_sid}")
            if into_service and number in self.service_of:
                raise ValueError(
                    f"{number} is already in Messaging Service {self.service_of[number]}"
                )

    def add_number(self, account: Account, number: str) -> PhoneNumber:
        """Give ``number`` to ``account`` (idempotent for the same account)."""
        if not _E164.match(number):
            raise ValueError(f"{number!r} is not an E.164 phone number")
        owned = self.numbers.get(number)
        if owned is not None:
            if owned.account_sid != account.sid:
                raise ValueError(f"{number} already belongs to account {owned.account_sid}")
            return owned
        owned = PhoneNumber(new_sid("PN"), number, account.sid, datetime.now(UTC))
        self.numbers[number] = owned
        account.numbers.append(number)
        return owned

    def add_service(
        self,
        account: Account,
        sid: str | None,
        friendly_name: str,
        advanced_opt_out: bool,
    ) -> Service:
        sid = sid or new_sid("MG")
        if not _SERVICE_SID.match(sid):
            raise ValueError(f"{sid!r} is not a Messaging Service SID (MG and 32 hex digits)")
        if sid in self.services:
            raise ValueError(f"Messaging Service {sid} already exists")
        name = friendly_name or f"Fake service {sid[-4:]}"
        service = Service(sid, account.sid, name, advanced_opt_out)
        self.services[sid] = service
        return service

    def service(self, sid: str) -> Service:
        service = self.services.get(sid)
        if service is None:
            raise ValueError(f"no Messaging Service {sid}")
        return service

    def add_to_service(self, service: Service, number: str) -> None:
        """Put ``number`` (given to the service's account if it has no owner) in ``service``."""
        owned = self.add_number(self.account(service.account_sid), number)
        current = self.service_of.get(owned.number)
        if current == service.sid:
            return
        if current is not None:
            raise ValueError(f"{number} is already in Messaging Service {current}")
        self.service_of[owned.number] = service.sid
        service.numbers.append(owned.number)

    def add_api_key(self, account: Account, main: bool) -> ApiKey:
        key = ApiKey(new_sid("SK"), new_token(), account.sid, main)
        self.keys[key.sid] = key
        return key

    # -- who may act for whom -------------------------------------------------------------

    def authenticate(self, path_sid: str | None, auth: Auth, accounts_resource: bool) -> Account:
        """The account a request acts on: ``path_sid``'s, or with no account in the path (the
        Messaging API, CreateAccount) the credentials' own. An account's SID and auth token, or
        an API key's SID and secret, act for that account and its subaccounts; a standard key
        may not use the Accounts resources (``accounts_resource``). Else 401 with 20003."""
        username, password = auth
        holder: str | None = None
        if username is not None and password is not None:
            if username.startswith("SK"):
                key = self.keys.get(username)
                if key is not None and _same(password, key.secret):
                    holder = key.account_sid if key.main or not accounts_resource else None
            else:
                account = self.accounts.get(username)
                if account is not None and _same(password, account.auth_token):
                    holder = account.sid
        if holder is None:
            raise _unauthenticated()
        if path_sid is None or path_sid == holder:
            return self.accounts[holder]
        target = self.accounts.get(path_sid)
        if target is None or target.parent_sid != holder:
            raise _unauthenticated()
        return target

    def owner_of(self, number: str) -> Account:
        """The account owning ``number``; the main account for a number nobody owns."""
        owned = self.numbers.get(number)
        return self.main if owned is None else self.accounts[owned.account_sid]

    def route(self, account: Account, to: str, from_: str | None, service_sid: str | None) -> Route:
        """Where a send by ``account`` goes out from, or the ApiError Twilio would answer.

        A strict account sends only from its own numbers and services. The main account also
        sends from any number and service no other account owns, a service it does not know
        (or one without numbers) going out from its ``phone_number``.
        """
        if service_sid is not None:
            service = self.services.get(service_sid)
            if service is None or service.account_sid != account.sid:
                if account.strict or service is not None:
                    raise ApiError(
                        400, 21701, f"The Messaging Service Sid {service_sid} is invalid."
                    )
                return Route(self.phone_number, service_sid, service_sid)
            if service.numbers:
                return Route(service.sender_for(to), service_sid, service_sid)
            if account.strict:
                raise ApiError(400, 21704, "The Messaging Service contains no phone numbers")
            return Route(self.phone_number, service_sid, service_sid)
        assert from_ is not None
        owned = self.numbers.get(from_)
        mine = owned is not None and owned.account_sid == account.sid
        if not mine and (owned is not None or account.strict):
            raise ApiError(
                400,
                21660,
                f"Mismatch between the 'From' number {from_} and the account {account.sid}.",
            )
        return Route(from_, None, self.service_of.get(from_, from_))

    # -- media ------------------------------------------------------------------------------

    def add_media(self, items: list[Media]) -> None:
        for item in items:
            self.media[item.sid] = item
            self.media_of.setdefault(item.message_sid, []).append(item)

    def media_item(self, account: Account, message_sid: str, media_sid: str) -> Media:
        item = self.media.get(media_sid)
        if item is None or item.message_sid != message_sid or item.account_sid != account.sid:
            path = f"/{API_VERSION}/Accounts/{account.sid}/Messages/{message_sid}/Media/{media_sid}"
            raise ApiError(404, 20404, f"The requested resource {path}.json was not found")
        return item


def _same(given: str, secret: str) -> bool:
    return hmac.compare_digest(given.encode(), secret.encode())


def _unauthenticated() -> ApiError:
    return ApiError(401, 20003, "Authenticate")
