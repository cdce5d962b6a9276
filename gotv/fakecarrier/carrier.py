"""The fake carrier's state: messages, conversations, failures, webhooks to deliver."""

from __future__ import annotations

import bisect
import gc
import heapq
import hmac
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from multidict import MultiMapping

from gotv.fakecarrier.protocol import (
    API_VERSION,
    KNOWN_MESSAGES,
    MAGIC_FROM,
    MAGIC_TO,
    MAX_ATTEMPTS,
    OPT_IN_REPLY,
    OPT_IN_WORDS,
    OPT_OUT_REPLY,
    OPT_OUT_WORDS,
    WEBHOOK_TIMEOUT,
    ApiError,
    Failure,
    ListQuery,
    Pending,
    Send,
    Webhook,
    count_segments,
    new_sid,
    parse_list,
    parse_send,
    post_webhook,
    rfc2822,
    twilio_signature,
)

FREEZE_EVERY = 10_000


class FakeCarrier:
    """The carrier's state: accepted messages, conversations, and webhooks waiting to go out.

    Every public method is thread-safe (one lock guards all state) because the HTTP server's
    event loop, the test calling in, and the delivery thread all use the carrier at once.

    ``messages`` holds the Twilio JSON of every accepted send, in order, in its final state;
    ``requests`` holds the raw form of every Messages.json POST, accepted or not;
    ``delivery_log`` holds one entry per webhook POST attempt by the delivery thread.
    A stored message's JSON never changes afterwards, so it may be served without a copy.

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
    ) -> None:
        """Create a carrier; with ``auto_deliver`` the delivery thread starts at once.

        With ``status_callbacks=False`` the carrier ignores every ``StatusCallback`` (a
        benchmark measures the sender, not the app's webhook endpoint); replies still go out.
        """
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.inbound_url = inbound_url
        self.phone_number = phone_number
        self.auto_deliver = False
        self.delivery_delay = delivery_delay
        self.status_callbacks = status_callbacks
        self.messages: list[dict[str, Any]] = []
        self.requests: list[dict[str, str]] = []
        self.delivery_log: list[dict[str, Any]] = []
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._changed = threading.Condition(self._lock)  # notified after every request
        self._by_sid: dict[str, dict[str, Any]] = {}
        self._conversations: dict[str, list[dict[str, Any]]] = {}
        self._send_failures: dict[str, Failure] = {}
        self._delivery_failures: dict[str, int] = {}
        self._outage: int | None = None
        self._opted_out: set[tuple[str, str]] = set()
        self._last_sender: dict[str, tuple[str, str | None]] = {}
        # Every message, both ways, in arrival order as (date_sent in Unix seconds, JSON), and
        # the same entries per To and per From: the list API walks the smallest of them.
        self._log: list[tuple[int, dict[str, Any]]] = []
        self._log_by_to: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        self._log_by_from: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        # False once the wall clock ran backwards between two messages: the list API then
        # cannot bisect or stop early by date_sent, and scans its source list instead.
        self._log_in_date_order = True
        # Pending webhooks by sequence number, and a heap of (due, seq) for the delivery
        # thread; a heap entry whose webhook was taken or rescheduled is stale and skipped.
        self._pending: dict[int, Pending] = {}
        self._due: list[tuple[float, int]] = []
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

    # -- the REST API (called by the HTTP server) -------------------------------------------

    def _outage_error(self) -> ApiError | None:
        if self._outage is None:
            return None
        code = 20000 + self._outage if self._outage in (429, 500, 503) else 20500
        return ApiError(self._outage, code, KNOWN_MESSAGES.get(code, "Service Unavailable"))

    def _check_auth(self, path_sid: str, username: str | None, password: str | None) -> None:
        good = (
            username is not None
            and password is not None
            and hmac.compare_digest(username.encode(), self.account_sid.encode())
            and hmac.compare_digest(password.encode(), self.auth_token.encode())
            and path_sid == self.account_sid
        )
        if not good:
            raise ApiError(401, 20003, "Authenticate")

    def _check_access(self, path_sid: str, auth: tuple[str | None, str | None]) -> None:
        """Raise the error every API call gets before its own checks: auth, then an outage."""
        self._check_auth(path_sid, *auth)
        outage = self._outage_error()
        if outage is not None:
            raise outage

    def handle_create(
        self, path_sid: str, auth: tuple[str | None, str | None], form: MultiMapping[str]
    ) -> tuple[int, dict[str, Any]]:
        """Run one CreateMessage request; return (HTTP status, JSON body).

        ``auth`` is the Basic-auth (username, password), (None, None) when absent.
        """
        with self._lock:
            self.requests.append(_first_values(form))
            try:
                self._check_access(path_sid, auth)
                send = parse_send(form)
                self._check_refusals(send)
                return 201, self._accept(send)
            except ApiError as err:
                return err.status, err.body()
            finally:
                self._changed.notify_all()

    def wait_for(self, condition: Callable[[FakeCarrier], bool], timeout: float) -> bool:
        """Wait until ``condition(carrier)`` holds, checked now and after every send request
        the carrier handles; False when ``timeout`` seconds pass first."""
        with self._changed:
            return self._changed.wait_for(lambda: condition(self), timeout)

    def handle_fetch(
        self, path_sid: str, auth: tuple[str | None, str | None], sid: str
    ) -> tuple[int, dict[str, Any]]:
        """Run one FetchMessage request; return (HTTP status, JSON body)."""
        with self._lock:
            try:
                self._check_access(path_sid, auth)
                message = self._by_sid.get(sid)
                if message is None:
                    path = f"/{API_VERSION}/Accounts/{path_sid}/Messages/{sid}.json"
                    raise ApiError(404, 20404, f"The requested resource {path} was not found")
                return 200, message
            except ApiError as err:
                return err.status, err.body()

    def handle_list(
        self, path_sid: str, auth: tuple[str | None, str | None], query: MultiMapping[str]
    ) -> tuple[int, dict[str, Any]]:
        """Run one ListMessage request; return (HTTP status, JSON body).

        Lists every message both ways, newest first, filtered by ``To``, ``From`` and the
        ``DateSent`` bounds (see :func:`~gotv.fakecarrier.protocol.parse_list`), one page of
        ``PageSize`` (default 50) at a time, in Twilio's ``ListMessageResponse`` shape.
        """
        with self._lock:
            try:
                self._check_access(path_sid, auth)
                listing = parse_list(query)
            except ApiError as err:
                return err.status, err.body()
            messages, next_token = self._page(listing)
            return 200, self._list_body(path_sid, listing, messages, next_token)

    def _page(self, listing: ListQuery) -> tuple[list[dict[str, Any]], int | None]:
        """One page of matches, newest first, and the cursor of the next page (None: last)."""
        if listing.to is not None:
            source = self._log_by_to.get(listing.to, [])
        elif listing.from_ is not None:
            source = self._log_by_from.get(listing.from_, [])
        else:
            source = self._log
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

    def _check_refusals(self, send: Send) -> None:
        failure = self._send_failures.get(send.to)
        if failure is not None:
            raise ApiError(failure.status, failure.code, failure.message)
        if send.to in MAGIC_TO:
            raise ApiError(400, *MAGIC_TO[send.to])
        if send.from_ is not None and send.from_ in MAGIC_FROM:
            raise ApiError(400, *MAGIC_FROM[send.from_])
        if (send.to, send.sender_key) in self._opted_out:
            raise ApiError(400, 21610, "Attempt to send to unsubscribed recipient")

    def _accept(self, send: Send) -> dict[str, Any]:
        """Store an accepted send, queue its callbacks, and return the 201 body."""
        now = datetime.now(UTC)
        stamp = rfc2822(now)
        sid = new_sid("MM" if send.media else "SM")
        base = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}"
        uses_service = send.service_sid is not None
        segments = str(count_segments(send.body))
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
        self._last_sender[send.to] = (sender, send.service_sid)
        if send.status_callback is not None and self.status_callbacks:
            self._queue_callbacks(send, record, error_code)
        return response

    def _store(self, record: dict[str, Any], voter: str, sent: datetime) -> None:
        """File a message (final JSON, never changed again) under every index."""
        entry = (int(sent.timestamp()), record)
        if self._log and entry[0] < self._log[-1][0]:
            self._log_in_date_order = False
        self._log.append(entry)
        self._log_by_to.setdefault(record["to"], []).append(entry)
        self._log_by_from.setdefault(record["from"], []).append(entry)
        self._by_sid[record["sid"]] = record
        self._conversations.setdefault(voter, []).append(record)

    def _queue_callbacks(self, send: Send, record: dict[str, Any], error_code: int | None) -> None:
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
            sid = new_sid("SM")
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
                "NumSegments": str(count_segments(body)),
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
        now = datetime.now(UTC)
        stamp = rfc2822(now)
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

    def _apply_keyword(self, voter: str, ours: str, service_sid: str | None, body: str) -> None:
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
        else:
            return
        self._record_voter_message(
            voter, ours, auto_reply, new_sid("SM"), service_sid, "outbound-reply"
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
            thread.join(timeout=WEBHOOK_TIMEOUT + 1)

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
