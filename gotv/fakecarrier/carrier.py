"""The fake carrier's state: messages, conversations, failures, webhooks to deliver."""

from __future__ import annotations

import hmac
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from werkzeug.datastructures import MultiDict

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
    Pending,
    Send,
    Webhook,
    count_segments,
    new_sid,
    parse_send,
    post_webhook,
    rfc2822,
    twilio_signature,
)


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
        self._send_failures: dict[str, Failure] = {}
        self._delivery_failures: dict[str, int] = {}
        self._outage: int | None = None
        self._opted_out: set[tuple[str, str]] = set()
        self._last_sender: dict[str, tuple[str, str | None]] = {}
        self._pending: list[Pending] = []
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

    # -- the REST API (called by the Flask app) ----------------------------------------------

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
                send = parse_send(form)
                self._check_refusals(send)
                return 201, self._accept(send)
            except ApiError as err:
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
                    raise ApiError(404, 20404, f"The requested resource {path} was not found")
                return 200, _copy_message(message)
            except ApiError as err:
                return err.status, err.body()

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
        self._by_sid[sid] = record
        self._conversations.setdefault(send.to, []).append(record)
        self._last_sender[send.to] = (sender, send.service_sid)
        if send.status_callback is not None:
            self._queue_callbacks(send, record, error_code)
        return response

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
        stamp = rfc2822(datetime.now(UTC))
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
        self._by_sid[sid] = record
        self._conversations.setdefault(voter, []).append(record)

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
        due = time.monotonic() + self.delivery_delay * step
        self._pending.append(Pending(webhook, self._seq, due))
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
            thread.join(timeout=WEBHOOK_TIMEOUT + 1)

    def _deliver_loop(self) -> None:
        while True:
            item = self._next_due()
            if item is None:
                return
            status = post_webhook(item.webhook)
            self._after_attempt(item, status)

    def _next_due(self) -> Pending | None:
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
                self._pending.append(item)
                self._pending.sort(key=lambda p: p.seq)
                self._wake.notify_all()


def _copy_message(message: dict[str, Any]) -> dict[str, Any]:
    copied = dict(message)
    copied["subresource_uris"] = dict(message["subresource_uris"])
    return copied
