"""The fake carrier's state: accounts, messages, conversations, failures, webhooks to deliver."""

from __future__ import annotations

import bisect
import gc
import heapq
import mimetypes
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from multidict import MultiMapping

from gotv.fakecarrier.accounts import (
    MESSAGING_VERSION,
    Account,
    Auth,
    Directory,
    Media,
    Route,
    new_media,
    number_matches,
)
from gotv.fakecarrier.protocol import (
    API_VERSION,
    HELP_REPLY,
    HELP_WORDS,
    KNOWN_MESSAGES,
    MAGIC_FROM,
    MAGIC_TO,
    MAX_ATTEMPTS,
    NUMBER_FILTERS,
    OPT_IN_REPLY,
    OPT_IN_WORDS,
    OPT_OUT_REPLY,
    OPT_OUT_TYPES,
    OPT_OUT_WORDS,
    TOO_MANY_REQUESTS,
    WEBHOOK_TIMEOUT,
    ApiError,
    Failure,
    ListQuery,
    Pending,
    Send,
    Webhook,
    count_segments,
    list_page,
    meta_page,
    new_sid,
    parse_list,
    parse_paging,
    parse_send,
    post_webhook,
    rfc2822,
    twilio_signature,
)

FREEZE_EVERY = 10_000
#: Where media URLs point while no server has told the carrier its own URL.
TWILIO_API_URL = "https://api.twilio.com"

Entry = tuple[int, dict[str, Any]]
Answer = tuple[int, dict[str, Any]]


@dataclass
class _Log:
    """One account's messages, both ways, in arrival order as (date_sent in Unix seconds,
    JSON), and the same entries per To and per From: the list API walks the smallest."""

    everything: list[Entry] = field(default_factory=list)
    by_to: dict[str, list[Entry]] = field(default_factory=dict)
    by_from: dict[str, list[Entry]] = field(default_factory=dict)


@dataclass(frozen=True)
class Admission:
    """An API request let in by :meth:`FakeCarrier.admit`: ``account`` is the account it counts
    against (None when its credentials are bad: the handler answers 401), ``refusal`` the 429
    to answer at once instead. Give it back to :meth:`FakeCarrier.release` when answered."""

    account: Account | None
    refusal: Answer | None = None


class FakeCarrier:
    """The carrier's state: accounts, accepted messages, conversations, webhooks waiting to go out.

    Every public method is thread-safe (one lock guards all state) because the HTTP server's
    event loop, the test calling in, and the delivery thread all use the carrier at once.

    The constructor's ``account_sid`` and ``auth_token`` make the *main* account, which owns
    ``phone_number`` and, as the demo and test default, also sends from any number or
    Messaging Service that no other account owns. Accounts added with :meth:`add_account` are
    strict, as with Twilio: they send only from their own numbers and services.

    ``messages`` holds the Twilio JSON of every accepted send (every account's), in order, in
    its final state; ``requests`` holds the raw form of every Messages.json POST, accepted or
    not; ``delivery_log`` holds one entry per webhook POST attempt by the delivery thread;
    ``throttled`` counts the 429s given for :attr:`Account.concurrency`. A stored message's
    JSON never changes afterwards, so it may be served without a copy.

    Every request costs O(1) bookkeeping (or O(log n), and O(page) for a list), so a run
    can hold hundreds of thousands of messages.
    """

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        inbound_url: str | None = None,
        phone_number: str = "+15005550006",
        auto_deliver: bool = False,
        delivery_delay: float = 0.3,
        status_callbacks: bool = True,
        concurrency: int | None = None,
        delivery_threads: int = 1,
    ) -> None:
        """Create a carrier; with ``auto_deliver`` the delivery threads start at once.

        With ``status_callbacks=False`` the carrier ignores every ``StatusCallback`` (a
        benchmark measures the sender, not the app's webhook endpoint); replies still go out.
        ``concurrency`` bounds the main account's API requests in flight (see :meth:`admit`).
        ``delivery_threads`` webhooks are POSTed at once at most (Twilio sends many at once;
        one is the default, so that a test sees them in order).
        """
        if delivery_threads < 1:
            raise ValueError("delivery_threads must be at least 1")
        self.delivery_threads = delivery_threads
        self.inbound_url = inbound_url
        self.auto_deliver = False
        self.delivery_delay = delivery_delay
        self.status_callbacks = status_callbacks
        #: The URL the carrier is served at (set by :class:`CarrierServer`); media URLs use it.
        self.base_url: str | None = None
        self.messages: list[dict[str, Any]] = []
        self.requests: list[dict[str, str]] = []
        self.delivery_log: list[dict[str, Any]] = []
        self.throttled = 0
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._changed = threading.Condition(self._lock)  # notified after every request
        main = Account(
            account_sid,
            auth_token,
            "Fake carrier main account",
            concurrency=concurrency,
            strict=False,
        )
        self._directory = Directory(main, phone_number)
        self._by_sid: dict[str, dict[str, Any]] = {}
        self._conversations: dict[str, list[dict[str, Any]]] = {}
        self._send_failures: dict[str, Failure] = {}
        self._delivery_failures: dict[str, int] = {}
        self._outage: int | None = None
        self._opted_out: set[tuple[str, str]] = set()
        self._last_sender: dict[str, tuple[str, str | None]] = {}
        self._logs: dict[str, _Log] = {}
        self._last_sent = 0
        # False once the wall clock ran backwards between two messages: the list API then
        # cannot bisect or stop early by date_sent, and scans its source list instead.
        self._log_in_date_order = True
        # Pending webhooks by sequence number, and a heap of (due, seq) for the delivery
        # thread; a heap entry whose webhook was taken or rescheduled is stale and skipped.
        self._pending: dict[int, Pending] = {}
        self._due: list[tuple[float, int]] = []
        self._seq = 0
        self._threads: list[threading.Thread] = []
        self._stopping = False
        if auto_deliver:
            self.start_delivery()

    # -- accounts ----------------------------------------------------------------------------

    @property
    def main(self) -> Account:
        """The main account (the constructor's SID and token)."""
        return self._directory.main

    @property
    def account_sid(self) -> str:
        return self._directory.main.sid

    @property
    def auth_token(self) -> str:
        return self._directory.main.auth_token

    @property
    def phone_number(self) -> str:
        return self._directory.phone_number

    def add_account(
        self,
        sid: str | None = None,
        auth_token: str | None = None,
        friendly_name: str = "",
        parent_sid: str | None = None,
        numbers: Sequence[str] = (),
        concurrency: int | None = None,
    ) -> Account:
        """Add a (strict) account owning ``numbers``; a subaccount of ``parent_sid`` if given.

        A new AC SID and a 32-hex-digit auth token are made when not given. ``concurrency``
        bounds its API requests in flight (None: no bound). Raises ``ValueError`` for a SID
        taken or malformed, an unknown parent or one that is itself a subaccount, or a number
        another account owns.
        """
        with self._lock:
            directory = self._directory
            directory.check_claimable(None, numbers, into_service=False)
            account = directory.add_account(sid, auth_token, friendly_name, parent_sid, concurrency)
            for number in numbers:
                directory.add_number(account, number)
            return account

    def add_number(self, account_sid: str, number: str, service_sid: str | None = None) -> str:
        """Give ``number`` to the account (and put it in its service ``service_sid``, if given);
        return the number's PN SID. Raises ``ValueError`` if another account owns it."""
        with self._lock:
            directory = self._directory
            owned = directory.add_number(directory.account(account_sid), number)
            if service_sid is not None:
                service = directory.service(service_sid)
                if service.account_sid != account_sid:
                    raise ValueError(f"{service_sid} is not a service of {account_sid}")
                directory.add_to_service(service, number)
            return owned.sid

    def add_service(
        self,
        account_sid: str,
        sid: str | None = None,
        numbers: Sequence[str] = (),
        advanced_opt_out: bool = False,
        friendly_name: str = "",
    ) -> str:
        """Add a Messaging Service to the account, with ``numbers`` as its sender pool (given
        to the account if nobody owns them); return its MG SID (made when not given).

        With ``advanced_opt_out`` a keyword reply to one of its numbers carries ``OptOutType``.
        Raises ``ValueError`` for a number another account owns or another service holds.
        """
        with self._lock:
            directory = self._directory
            account = directory.account(account_sid)
            directory.check_claimable(account_sid, numbers, into_service=True)
            service = directory.add_service(account, sid, friendly_name, advanced_opt_out)
            for number in numbers:
                directory.add_to_service(service, number)
            return service.sid

    def add_api_key(self, account_sid: str, main: bool = False) -> tuple[str, str]:
        """A new API key of the account: ``(SK SID, secret)``, for HTTP Basic auth.

        A standard key (the default, and the only kind Twilio's API creates) may do everything
        but fetch or create accounts; a ``main`` key (made in Twilio's Console) may do that too.
        """
        with self._lock:
            directory = self._directory
            key = directory.add_api_key(directory.account(account_sid), main)
            return key.sid, key.secret

    def account(self, sid: str) -> Account:
        """The account with this SID; ``ValueError`` if there is none."""
        with self._lock:
            return self._directory.account(sid)

    def accounts(self) -> list[Account]:
        """Every account, the main one first, in the order they were made."""
        with self._lock:
            return list(self._directory.accounts.values())

    def owner_of(self, number: str) -> Account:
        """The account owning ``number`` (directly or through a service); the main account
        for a number nobody owns, as replies to it arrive there."""
        with self._lock:
            return self._directory.owner_of(number)

    def services(self, account_sid: str) -> dict[str, list[str]]:
        """The account's Messaging Services: SID -> its numbers."""
        with self._lock:
            return {
                sid: list(service.numbers)
                for sid, service in self._directory.services.items()
                if service.account_sid == account_sid
            }

    # -- failure switches -------------------------------------------------------------------

    def fail_sends_to(
        self, number: str, code: int, status: int = 400, message: str | None = None
    ) -> None:
        """Make later sends To ``number`` fail synchronously with Twilio error ``code``.

        ``message`` defaults to Twilio's text for well-known codes.
        """
        text = message or KNOWN_MESSAGES.get(code, f"Simulated Twilio error {code}")
        with self._lock:
            self._send_failures[number] = Failure(status, code, text)

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

    # -- admission: requests in flight per account ---------------------------------------------

    def admit(self, path_sid: str | None, auth: Auth, accounts_resource: bool = False) -> Admission:
        """Count an API request in flight against the account it acts on, or refuse it.

        The server calls this as a request arrives and :meth:`release` once it is answered
        (its latency included). A request arriving while its account already has
        ``concurrency`` requests in flight gets Twilio's 429 (code 20429) at once, and counts in
        :attr:`throttled` and the account's ``throttled``. Bad credentials are not counted: the
        request's handler answers them with 401.
        """
        with self._lock:
            try:
                account = self._directory.authenticate(path_sid, auth, accounts_resource)
            except ApiError:
                return Admission(None)
            limit = account.concurrency
            if limit is not None and account.in_flight >= limit:
                account.throttled += 1
                self.throttled += 1
                self._changed.notify_all()
                error = ApiError(429, TOO_MANY_REQUESTS, KNOWN_MESSAGES[TOO_MANY_REQUESTS])
                return Admission(None, (error.status, error.body()))
            account.in_flight += 1
            self._changed.notify_all()
            return Admission(account)

    def release(self, admission: Admission) -> None:
        """The request :meth:`admit` let in has been answered."""
        if admission.account is None:
            return
        with self._lock:
            admission.account.in_flight -= 1
            self._changed.notify_all()

    # -- the REST API (called by the HTTP server) -------------------------------------------

    def _outage_error(self) -> ApiError | None:
        if self._outage is None:
            return None
        code = 20000 + self._outage if self._outage in (429, 500, 503) else 20500
        return ApiError(self._outage, code, KNOWN_MESSAGES.get(code, "Service Unavailable"))

    def _check_access(
        self, path_sid: str | None, auth: Auth, accounts_resource: bool = False
    ) -> Account:
        """The account a call acts on, or the error every API call gets before its own
        checks: auth, then an outage."""
        account = self._directory.authenticate(path_sid, auth, accounts_resource)
        outage = self._outage_error()
        if outage is not None:
            raise outage
        return account

    def handle_create(
        self, path_sid: str, auth: Auth, form: MultiMapping[str]
    ) -> tuple[int, dict[str, Any]]:
        """Run one CreateMessage request; return (HTTP status, JSON body).

        ``auth`` is the Basic-auth (username, password), (None, None) when absent.
        """
        with self._lock:
            self.requests.append(_first_values(form))
            try:
                account = self._check_access(path_sid, auth)
                send = parse_send(form)
                self._check_refusals(send)
                route = self._directory.route(account, send.to, send.from_, send.service_sid)
                if (send.to, route.block_key) in self._opted_out:
                    raise ApiError(400, 21610, "Attempt to send to unsubscribed recipient")
                return 201, self._accept(account, send, route)
            except ApiError as err:
                return err.status, err.body()
            finally:
                self._changed.notify_all()

    def wait_for(self, condition: Callable[[FakeCarrier], bool], timeout: float) -> bool:
        """Wait until ``condition(carrier)`` holds, checked now and after every send request
        the carrier handles (and every request admitted or released); False when ``timeout``
        seconds pass first."""
        with self._changed:
            return self._changed.wait_for(lambda: condition(self), timeout)

    def handle_fetch(self, path_sid: str, auth: Auth, sid: str) -> tuple[int, dict[str, Any]]:
        """Run one FetchMessage request; return (HTTP status, JSON body)."""
        with self._lock:
            try:
                account = self._check_access(path_sid, auth)
                message = self._by_sid.get(sid)
                if message is None or message["account_sid"] != account.sid:
                    path = f"/{API_VERSION}/Accounts/{path_sid}/Messages/{sid}.json"
                    raise ApiError(404, 20404, f"The requested resource {path} was not found")
                return 200, message
            except ApiError as err:
                return err.status, err.body()

    def handle_list(
        self, path_sid: str, auth: Auth, query: MultiMapping[str]
    ) -> tuple[int, dict[str, Any]]:
        """Run one ListMessage request; return (HTTP status, JSON body).

        Lists the path account's messages both ways, newest first, filtered by ``To``,
        ``From`` and the ``DateSent`` bounds (see :func:`~gotv.fakecarrier.protocol.parse_list`),
        one page of ``PageSize`` (default 50) at a time, in Twilio's ``ListMessageResponse``
        shape.
        """
        with self._lock:
            try:
                account = self._check_access(path_sid, auth)
                listing = parse_list(query)
            except ApiError as err:
                return err.status, err.body()
            messages, next_token = self._page(self._logs.get(account.sid), listing)
            return 200, self._list_body(path_sid, listing, messages, next_token)

    def _page(
        self, log: _Log | None, listing: ListQuery
    ) -> tuple[list[dict[str, Any]], int | None]:
        """One page of matches, newest first, and the cursor of the next page (None: last)."""
        source: list[Entry]
        if log is None:
            source = []
        elif listing.to is not None:
            source = log.by_to.get(listing.to, [])
        elif listing.from_ is not None:
            source = log.by_from.get(listing.from_, [])
        else:
            source = log.everything
        index = len(source) if listing.page_token is None else min(listing.page_token, len(source))
        ordered = self._log_in_date_order
        if ordered and listing.sent_until is not None:
            index = min(index, bisect.bisect_right(source, listing.sent_until, key=_sent_at))
        found: list[dict[str, Any]] = []
        while index > 0:
            index -= 1
            sent, message = source[index]
            if ordered and listing.sent_from is not None and sent < listing.sent_from:
                break  # everything further back was sent even earlier
            if listing.admits(sent, message):
                if len(found) == listing.page_size:
                    return found, index + 1
                found.append(message)
        return found, None

    def _list_body(
        self,
        path_sid: str,
        listing: ListQuery,
        messages: list[dict[str, Any]],
        next_token: int | None,
    ) -> dict[str, Any]:
        path = f"/{API_VERSION}/Accounts/{path_sid}/Messages.json"
        page = listing.page
        start = page * listing.page_size
        # The cursor only runs forwards, so only the second page can link back (to the first).
        previous = f"{path}?{listing.page_query(0, None)}" if page == 1 else None
        return {
            "end": start + max(len(messages) - 1, 0),
            "first_page_uri": f"{path}?{listing.page_query(0, None)}",
            "messages": messages,
            "next_page_uri": (
                None if next_token is None else f"{path}?{listing.page_query(page + 1, next_token)}"
            ),
            "page": page,
            "page_size": listing.page_size,
            "previous_page_uri": previous,
            "start": start,
            "uri": f"{path}?{listing.page_query(page, listing.page_token)}",
        }

    # -- accounts, numbers, services and media over the API ------------------------------------

    def handle_fetch_account(self, path_sid: str, auth: Auth) -> Answer:
        """Run one FetchAccount request: the account's JSON, auth token included."""
        with self._lock:
            try:
                return 200, self._check_access(path_sid, auth, accounts_resource=True).resource()
            except ApiError as err:
                return err.status, err.body()

    def handle_create_account(self, auth: Auth, form: MultiMapping[str]) -> Answer:
        """Run one CreateAccount request: a subaccount of the credentials' account (201)."""
        with self._lock:
            try:
                parent = self._check_access(None, auth, accounts_resource=True)
                if parent.parent_sid is not None:
                    raise ApiError(401, 20003, "Authenticate")  # subaccounts have none
                name = (form.get("FriendlyName") or "")[:64]
                account = self._directory.add_account(None, None, name, parent.sid, None)
                return 201, account.resource()
            except ApiError as err:
                return err.status, err.body()

    def handle_list_accounts(self, auth: Auth, query: MultiMapping[str]) -> Answer:
        """Run one ListAccount request: the credentials' account and its subaccounts, filtered
        by ``FriendlyName`` and ``Status`` (every fake account is ``active``)."""
        with self._lock:
            try:
                holder = self._check_access(None, auth, accounts_resource=True)
                paging = parse_paging(query)
            except ApiError as err:
                return err.status, err.body()
            filters = {name: query[name] for name in ("FriendlyName", "Status") if query.get(name)}
            found = [
                account.resource()
                for account in self._directory.accounts.values()
                if holder.sid in (account.sid, account.parent_sid)
                and filters.get("FriendlyName", account.friendly_name) == account.friendly_name
                and filters.get("Status", "active") == "active"
            ]
            path = f"/{API_VERSION}/Accounts.json"
            return 200, list_page("accounts", path, filters, found, paging)

    def handle_list_numbers(self, path_sid: str, auth: Auth, query: MultiMapping[str]) -> Answer:
        """Run one ListIncomingPhoneNumber request: the account's numbers, in the order they
        were added, filtered by ``PhoneNumber`` (digits anywhere, ``*`` for any digit) and
        ``FriendlyName``, paged like Messages."""
        with self._lock:
            try:
                account = self._check_access(path_sid, auth)
                paging = parse_paging(query)
            except ApiError as err:
                return err.status, err.body()
            filters = {name: query[name] for name in NUMBER_FILTERS if query.get(name)}
            pattern = filters.get("PhoneNumber", "")
            numbers = self._directory.numbers
            found = [
                resource
                for number in account.numbers
                if number_matches(pattern, number)
                for resource in (numbers[number].resource(self.inbound_url),)
                if filters.get("FriendlyName", resource["friendly_name"])
                == resource["friendly_name"]
            ]
            path = f"/{API_VERSION}/Accounts/{account.sid}/IncomingPhoneNumbers.json"
            return 200, list_page("incoming_phone_numbers", path, filters, found, paging)

    def handle_fetch_service(self, auth: Auth, sid: str) -> Answer:
        """Run one FetchService request (Messaging API): 404 unless it is the credentials'
        account's service."""
        with self._lock:
            try:
                account = self._check_access(None, auth)
                service = self._directory.services.get(sid)
                if service is None or service.account_sid != account.sid:
                    path = f"/{MESSAGING_VERSION}/Services/{sid}"
                    raise ApiError(404, 20404, f"The requested resource {path} was not found")
                return 200, service.resource(self._public_url, self.inbound_url)
            except ApiError as err:
                return err.status, err.body()

    def handle_list_service_numbers(
        self, auth: Auth, service_sid: str, query: MultiMapping[str]
    ) -> Answer:
        """Run one ListPhoneNumber request (Messaging API): the service's sender pool."""
        with self._lock:
            try:
                account = self._check_access(None, auth)
                paging = parse_paging(query)
                service = self._directory.services.get(service_sid)
                url = f"{self._public_url}/{MESSAGING_VERSION}/Services/{service_sid}/PhoneNumbers"
                if service is None or service.account_sid != account.sid:
                    path = url.removeprefix(self._public_url)
                    raise ApiError(404, 20404, f"The requested resource {path} was not found")
            except ApiError as err:
                return err.status, err.body()
            numbers = self._directory.numbers
            found = [
                numbers[n].service_resource(self._public_url, service.sid) for n in service.numbers
            ]
            return 200, meta_page("phone_numbers", url, found, paging)

    def handle_list_media(
        self, path_sid: str, auth: Auth, message_sid: str, query: MultiMapping[str]
    ) -> Answer:
        """Run one ListMedia request: the message's media, in order."""
        with self._lock:
            try:
                account = self._check_access(path_sid, auth)
                paging = parse_paging(query)
                self._message_of(account, message_sid)
            except ApiError as err:
                return err.status, err.body()
            found = [item.resource() for item in self._directory.media_of.get(message_sid, [])]
            path = f"/{API_VERSION}/Accounts/{account.sid}/Messages/{message_sid}/Media.json"
            return 200, list_page("media_list", path, {}, found, paging)

    def handle_fetch_media(
        self, path_sid: str, auth: Auth, message_sid: str, media_sid: str
    ) -> Answer:
        """Run one FetchMedia request: the media item's metadata."""
        with self._lock:
            try:
                return 200, self._media_item(path_sid, auth, message_sid, media_sid).resource()
            except ApiError as err:
                return err.status, err.body()

    def media_content(self, path_sid: str, auth: Auth, message_sid: str, media_sid: str) -> Media:
        """The media item whose bytes (``content``, or at ``source_url`` for an outbound MMS)
        its URL serves; raises :class:`ApiError` (401, 404, an outage) as the API would."""
        with self._lock:
            return self._media_item(path_sid, auth, message_sid, media_sid)

    def _media_item(self, path_sid: str, auth: Auth, message_sid: str, media_sid: str) -> Media:
        account = self._check_access(path_sid, auth)
        self._message_of(account, message_sid)
        return self._directory.media_item(account, message_sid, media_sid)

    def _message_of(self, account: Account, sid: str) -> dict[str, Any]:
        message = self._by_sid.get(sid)
        if message is None or message["account_sid"] != account.sid:
            path = f"/{API_VERSION}/Accounts/{account.sid}/Messages/{sid}.json"
            raise ApiError(404, 20404, f"The requested resource {path} was not found")
        return message

    @property
    def _public_url(self) -> str:
        return (self.base_url or TWILIO_API_URL).rstrip("/")

    # -- sending -----------------------------------------------------------------------------

    def _check_refusals(self, send: Send) -> None:
        failure = self._send_failures.get(send.to)
        if failure is not None:
            raise ApiError(failure.status, failure.code, failure.message)
        if send.to in MAGIC_TO:
            raise ApiError(400, *MAGIC_TO[send.to])
        if send.from_ is not None and send.from_ in MAGIC_FROM:
            raise ApiError(400, *MAGIC_FROM[send.from_])

    def _accept(self, account: Account, send: Send, route: Route) -> dict[str, Any]:
        """Store an accepted send, queue its callbacks, and return the 201 body."""
        now = datetime.now(UTC)
        stamp = rfc2822(now)
        sid = new_sid("MM" if send.media else "SM")
        base = f"/{API_VERSION}/Accounts/{account.sid}/Messages/{sid}"
        uses_service = send.service_sid is not None
        segments = str(count_segments(send.body))
        record: dict[str, Any] = {
            "account_sid": account.sid,
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
        error_code = self._delivery_failures.get(send.to)
        final = "undelivered" if error_code is not None else "delivered"
        record.update(
            {
                "from": route.sender,
                "num_segments": segments,
                "status": final,
                "date_sent": stamp,
                "error_code": error_code,
                "error_message": None if error_code is None else KNOWN_MESSAGES.get(error_code),
            }
        )
        self.messages.append(record)
        if len(self.messages) % FREEZE_EVERY == 0:
            # Every message stays in memory for good: take them out of the cyclic collector's
            # sight, or its full collections grow with the store and stall the server for
            # seconds at a time in a long benchmark.
            gc.freeze()
        self._store(record, send.to, now)
        if send.media:
            self._directory.add_media(
                [
                    new_media(account.sid, sid, _guess_type(url), source_url=url)
                    for url in send.media
                ]
            )
        self._last_sender[send.to] = (route.sender, send.service_sid)
        if send.status_callback is not None and self.status_callbacks:
            self._queue_callbacks(account, send, record, error_code)
        return response

    def _store(self, record: dict[str, Any], voter: str, sent: datetime) -> None:
        """File a message (final JSON, never changed again) under every index."""
        entry = (int(sent.timestamp()), record)
        if entry[0] < self._last_sent:
            self._log_in_date_order = False
        self._last_sent = entry[0]
        log = self._logs.get(record["account_sid"])
        if log is None:
            log = self._logs[record["account_sid"]] = _Log()
        log.everything.append(entry)
        log.by_to.setdefault(record["to"], []).append(entry)
        log.by_from.setdefault(record["from"], []).append(entry)
        self._by_sid[record["sid"]] = record
        self._conversations.setdefault(voter, []).append(record)

    def _queue_callbacks(
        self, account: Account, send: Send, record: dict[str, Any], error_code: int | None
    ) -> None:
        assert send.status_callback is not None
        done = datetime.now(UTC).strftime("%y%m%d%H%M")
        for step, status in enumerate(("sent", record["status"]), start=1):
            params = {
                "MessageSid": record["sid"],
                "SmsSid": record["sid"],
                "MessageStatus": status,
                "SmsStatus": status,
                "AccountSid": account.sid,
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
            self._enqueue(self._signed(send.status_callback, params, account.auth_token), step)

    # -- voters ------------------------------------------------------------------------------

    def reply(
        self,
        from_number: str,
        body: str,
        to: str | None = None,
        media: Sequence[tuple[str, bytes]] = (),
    ) -> Webhook:
        """A voter texts in: queue (and return) a signed inbound webhook to ``inbound_url``.

        ``to`` defaults to the number that last texted ``from_number`` (the pool number when a
        Messaging Service sent it), else ``phone_number``. The webhook's ``AccountSid`` is the
        account owning ``to`` (the main account when nobody does), and it is signed with that
        account's auth token. ``MessagingServiceSid`` is included when ``to`` is in a
        Messaging Service (or that conversation used one); with the service's Advanced Opt-Out,
        a keyword reply carries ``OptOutType`` (STOP, START or HELP).

        ``media`` is a sequence of ``(content_type, bytes)``: the message becomes an MMS (an
        MM SID) with ``NumMedia``, ``MediaContentType{i}`` and ``MediaUrl{i}``, an absolute URL
        on the carrier's own :attr:`base_url` that serves the bytes to the account's
        credentials.

        A body that is exactly an opt-out keyword blocks later sends to the voter (21610) and
        an opt-in keyword lifts the block; either change, and HELP or INFO, adds Twilio's
        auto-reply to the conversation (no webhook: Twilio sends none for it).
        Raises ``ValueError`` when the carrier has no ``inbound_url``.
        """
        with self._lock:
            if self.inbound_url is None:
                raise ValueError("this FakeCarrier has no inbound_url to send replies to")
            last = self._last_sender.get(from_number)
            if to is None:
                to = last[0] if last is not None else self.phone_number
            directory = self._directory
            service_sid = directory.service_of.get(to)
            if service_sid is None and last is not None and last[0] == to:
                service_sid = last[1]
            account = directory.owner_of(to)
            sid = new_sid("MM" if media else "SM")
            params = {
                "ToCountry": "US",
                "FromCountry": "US",
                "MessageSid": sid,
                "SmsMessageSid": sid,
                "SmsSid": sid,
                "AccountSid": account.sid,
                "From": from_number,
                "To": to,
                "Body": body,
                "NumMedia": str(len(media)),
                "NumSegments": str(count_segments(body)),
                "SmsStatus": "received",
                "ApiVersion": API_VERSION,
            }
            items = [new_media(account.sid, sid, kind, content) for kind, content in media]
            for index, item in enumerate(items):
                params[f"MediaContentType{index}"] = item.content_type
                params[f"MediaUrl{index}"] = self._public_url + item.path
            if service_sid is not None:
                params["MessagingServiceSid"] = service_sid
            opt_out_type = self._opt_out_type(service_sid, body)
            if opt_out_type is not None:
                params["OptOutType"] = opt_out_type
            self._record_voter_message(
                account.sid, from_number, to, body, sid, service_sid, "inbound", len(items)
            )
            directory.add_media(items)
            webhook = self._signed(self.inbound_url, params, account.auth_token)
            self._enqueue(webhook, 1)
            self._apply_keyword(account.sid, from_number, to, service_sid, body)
            return webhook

    def _opt_out_type(self, service_sid: str | None, body: str) -> str | None:
        """Advanced Opt-Out's ``OptOutType`` for a reply to a service, if it applies."""
        service = None if service_sid is None else self._directory.services.get(service_sid)
        if service is None or not service.advanced_opt_out:
            return None
        word = body.strip().upper()
        return next((kind for words, kind in OPT_OUT_TYPES if word in words), None)

    def _record_voter_message(
        self,
        account_sid: str,
        voter: str,
        ours: str,
        body: str,
        sid: str,
        service_sid: str | None,
        direction: str,
        num_media: int = 0,
    ) -> None:
        now = datetime.now(UTC)
        stamp = rfc2822(now)
        inbound = direction == "inbound"
        base = f"/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}"
        record: dict[str, Any] = {
            "account_sid": account_sid,
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
            "num_media": str(num_media),
            "num_segments": str(count_segments(body)),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "received" if inbound else "delivered",
            "subresource_uris": {"media": f"{base}/Media.json"},
            "to": ours if inbound else voter,
            "uri": f"{base}.json",
        }
        self._store(record, voter, now)

    def _apply_keyword(
        self, account_sid: str, voter: str, ours: str, service_sid: str | None, body: str
    ) -> None:
        # Twilio matches the whole message, case-insensitively; "STOP please" is not a keyword.
        word = body.strip().upper()
        key = (voter, service_sid or ours)
        if word in OPT_OUT_WORDS:
            self._opted_out.add(key)
            auto_reply = OPT_OUT_REPLY
        elif word in OPT_IN_WORDS and key in self._opted_out:
            # Only a voter who had opted out gets the resubscribe text: in a demo, a plain
            # "Yes" to "Will you vote?" should not draw a carrier auto-reply.
            self._opted_out.discard(key)
            auto_reply = OPT_IN_REPLY
        elif word in HELP_WORDS:
            auto_reply = HELP_REPLY
        else:
            return
        self._record_voter_message(
            account_sid, voter, ours, auto_reply, new_sid("SM"), service_sid, "outbound-reply"
        )

    def conversations(self) -> dict[str, list[dict[str, Any]]]:
        """Voter number -> every message with that voter, both ways, oldest first (copies)."""
        with self._lock:
            return {
                voter: [_copy_message(m) for m in thread]
                for voter, thread in self._conversations.items()
            }

    # -- webhook queue -----------------------------------------------------------------------

    def _signed(self, url: str, params: dict[str, str], auth_token: str) -> Webhook:
        headers = {
            "X-Twilio-Signature": twilio_signature(auth_token, url, params),
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
        }
        return Webhook(url=url, params=params, headers=headers)

    def _enqueue(self, webhook: Webhook, step: int) -> None:
        # Callbacks for one message are spaced out so that a live demo shows them in turn.
        self._seq += 1
        self._schedule(Pending(webhook, self._seq, time.monotonic() + self.delivery_delay * step))

    def _schedule(self, item: Pending) -> None:
        """(Re)queue ``item`` for its ``due`` time; wake the delivery thread if it is first."""
        self._pending[item.seq] = item
        earliest = self._due[0][0] if self._due else None
        heapq.heappush(self._due, (item.due, item.seq))
        # Waking the thread for every message would make it contend for the GIL with the
        # server; it only needs to know when the earliest due time moves up.
        if earliest is None or item.due < earliest:
            self._wake.notify_all()

    def _in_order(self) -> list[Webhook]:
        return [self._pending[seq].webhook for seq in sorted(self._pending)]

    def take_webhooks(self) -> list[Webhook]:
        """Remove and return every pending webhook (status callbacks and inbound), in order."""
        with self._lock:
            taken = self._in_order()
            self._pending.clear()
            self._due.clear()
            return taken

    def pending_webhooks(self) -> list[Webhook]:
        """Return the pending webhooks, in order, without removing them."""
        with self._lock:
            return self._in_order()

    def start_delivery(self) -> None:
        """Start the daemon threads that POST pending webhooks when due (idempotent).

        A webhook that gets no response or a 5xx is retried with exponential backoff up to
        four attempts in all; one that got any other status is never sent again.
        """
        with self._lock:
            self.auto_deliver = True
            if any(thread.is_alive() for thread in self._threads):
                return
            self._stopping = False
            self._threads = [
                threading.Thread(
                    target=self._deliver_loop, name=f"fakecarrier-delivery-{n}", daemon=True
                )
                for n in range(self.delivery_threads)
            ]
            for thread in self._threads:
                thread.start()

    def stop_delivery(self) -> None:
        """Stop the delivery threads and wait for them; undelivered webhooks stay pending."""
        with self._lock:
            self.auto_deliver = False
            self._stopping = True
            threads, self._threads = self._threads, []
            self._wake.notify_all()
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(timeout=WEBHOOK_TIMEOUT + 1)

    def stats(self) -> dict[str, Any]:
        """Counts a benchmark reads over the control endpoint: messages accepted, 429s given
        (in all and per account, with each account's limit and requests in flight now), and
        webhooks pending, attempted, and answered 2xx."""
        with self._lock:
            answered = sum(1 for entry in self.delivery_log if 200 <= (entry["status"] or 0) < 300)
            return {
                "messages": len(self.messages),
                "throttled": self.throttled,
                "accounts": {
                    account.sid: {
                        "concurrency": account.concurrency,
                        "in_flight": account.in_flight,
                        "throttled": account.throttled,
                    }
                    for account in self._directory.accounts.values()
                },
                "webhooks": {
                    "pending": len(self._pending),
                    "attempts": len(self.delivery_log),
                    "answered_2xx": answered,
                },
            }

    def _deliver_loop(self) -> None:
        while True:
            item = self._next_due()
            if item is None:
                return
            status = post_webhook(item.webhook)
            self._after_attempt(item, status)

    def _next_due(self) -> Pending | None:
        """Block until a webhook is due and remove it from the queue; None once stopping."""
        with self._wake:
            while not self._stopping:
                now = time.monotonic()
                while self._due:
                    due, seq = self._due[0]
                    item = self._pending.get(seq)
                    if item is None or item.due != due:
                        heapq.heappop(self._due)  # stale: taken, or rescheduled since
                        continue
                    if due > now:
                        break
                    heapq.heappop(self._due)
                    del self._pending[seq]
                    return item
                wait = self._due[0][0] - now if self._due else 1.0
                self._wake.wait(timeout=max(wait, 0.001))
            return None

    def _after_attempt(self, item: Pending, status: int | None) -> None:
        with self._lock:
            item.attempts += 1
            self.delivery_log.append(
                {"url": item.webhook.url, "status": status, "attempt": item.attempts}
            )
            retry = status is None or status >= 500
            if retry and item.attempts < MAX_ATTEMPTS:
                backoff = max(self.delivery_delay, 0.05) * 2 ** (item.attempts - 1)
                item.due = time.monotonic() + backoff
                self._schedule(item)


def _sent_at(entry: tuple[int, dict[str, Any]]) -> int:
    return entry[0]


def _first_values(form: MultiMapping[str]) -> dict[str, str]:
    """The form as a plain dict, keeping the first value of a repeated field."""
    first: dict[str, str] = {}
    for name, value in form.items():
        first.setdefault(name, value)
    return first


def _copy_message(message: dict[str, Any]) -> dict[str, Any]:
    copied = dict(message)
    copied["subresource_uris"] = dict(message["subresource_uris"])
    return copied


def _guess_type(url: str) -> str:
    kind, _ = mimetypes.guess_type(url.split("?", 1)[0])
    return kind or "application/octet-stream"
