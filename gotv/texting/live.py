"""Live updates for volunteers: small JSON events over Redis pub/sub, streamed as SSE.

The webhooks publish after their commit on the channel of the volunteer who holds the
conversation; each open inbox subscribes to its own user's channel only, through whichever web
process serves it. Publishing is best effort: a lost event costs a live update (the page is
still right when reloaded), never a webhook.
"""

from __future__ import annotations

import json
import logging
import random
import select
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from redis import Redis
from sqlalchemy import event
from sqlalchemy.orm import Session

from gotv.edge import metrics, queue
from gotv.models import MessageStatus

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15
# A stream ends after this long and the browser's EventSource reconnects, so no web thread is
# held for ever and a redeploy drains quickly.
STREAM_SECONDS = 180
RECONNECT_MILLISECONDS = 2000
# Streams one web process holds at once (LIVE_STREAMS_PER_PROCESS). Each holds a thread, idle
# on Redis, for minutes; past this many a page is asked to come back later, so that open pages
# can never take the threads that answer requests (WEB_THREADS is this and the requests that
# run at once, gotv/web/admission.py: one for each database connection).
STREAMS_PER_PROCESS = 96
# Of those, what one user's pages may hold (several tabs), and one organization's (so that on
# a shared instance one organization cannot take every slot of a process). A single
# organization's instance raises LIVE_STREAMS_PER_ORGANIZATION to the whole process.
STREAMS_PER_USER = 4
ORGANIZATION_SHARE = 0.75
# When to come back: spread out, so that pages turned away together do not return together.
BUSY_RETRY_SECONDS = (15, 45)
# How often a stream looks whether its browser has gone (and its slot can be given back) and
# whether its process is shutting down, between events and heartbeats.
CLIENT_CHECK_SECONDS = 1.0
# The event that ends a user's streams: their sessions were ended (signed out, suspended...).
SIGNED_OUT = "signed_out"


class Slots:
    """The stream slots of one web process: at most `total` at once, `per_user` for one user
    and `per_organization` for one organization. Thread-safe."""

    def __init__(self, total: int, per_user: int, per_organization: int) -> None:
        self.free = total
        self.per_user = per_user
        self.per_organization = per_organization
        self.users: Counter[int] = Counter()
        self.organizations: Counter[int] = Counter()
        self.lock = threading.Lock()

    def take(self, user_id: int, organization_id: int) -> bool:
        """Take a slot for the user, if one is free to them."""
        with self.lock:
            if (
                self.free <= 0
                or self.users[user_id] >= self.per_user
                or self.organizations[organization_id] >= self.per_organization
            ):
                return False
            self.free -= 1
            self.users[user_id] += 1
            self.organizations[organization_id] += 1
            return True

    def give_back(self, user_id: int, organization_id: int) -> None:
        with self.lock:
            self.free += 1
            self.users[user_id] -= 1
            self.organizations[organization_id] -= 1
            self.users += Counter()  # drop the zeros
            self.organizations += Counter()


def organization_limit(total: int) -> int:
    """The default share of a process's slots one organization may hold."""
    return max(1, int(total * ORGANIZATION_SHARE))


def channel(connection: Redis, user_id: int) -> str:
    """The user's channel. Channels are server-wide in Redis, so the database number is in it:
    deployments sharing a Redis server on different databases never hear each other."""
    database = connection.connection_pool.connection_kwargs.get("db", 0)
    return f"gotv:{database}:user:{user_id}"


def publish(user_id: int | None, event: dict[str, Any]) -> None:
    """Publish `event` to the user's open pages; never raises (call after the commit)."""
    if user_id is None:
        return
    try:
        connection = queue.redis()
        connection.publish(channel(connection, user_id), json.dumps(event))
    except Exception:  # a live update is never worth failing a webhook for
        log.warning("could not publish a live update for user %s", user_id, exc_info=True)


def sign_out(user_id: int) -> None:
    """Close the user's open streams, on every web process (after the commit that ended their
    sessions); never raises. A stream ends by itself within STREAM_SECONDS if this is lost.
    The page then goes to sign-in (strings.js)."""
    publish(user_id, {"type": SIGNED_OUT})


def inbound_event(
    contact: Any, message_id: int, body: str, media: int = 0, opted_out: bool = False
) -> dict[str, Any]:
    """What an open inbox, thread or send screen needs to show a new reply in place (`media`:
    how many pictures).

    `contact` is the Contact after the reply, or a row with the same names (id, campaign_id,
    first_name, last_name, needs_reply, unread, opt_out_suggested, waiting_since); `opted_out`:
    the reply opted the number out.
    """
    waiting_since = contact.waiting_since
    return {
        "media": media,
        "type": "inbound",
        "contact_id": contact.id,
        "campaign_id": contact.campaign_id,
        "message_id": message_id,
        "name": f"{contact.first_name} {contact.last_name}".strip(),
        "body": body,
        "needs_reply": bool(contact.needs_reply),  # (a raw SQLite row holds 0 or 1)
        "unread": contact.unread,
        "opt_out_suggested": bool(contact.opt_out_suggested),
        "waiting_since": iso(waiting_since) if waiting_since else None,
        "opted_out": opted_out,
    }


def iso(moment: Any) -> str:
    """A timestamp as ISO 8601 in UTC (a raw SQLite row holds it as text without a zone)."""
    if isinstance(moment, str):
        return moment.replace(" ", "T") + ("" if "+" in moment else "+00:00")
    return str(moment.isoformat())


# What happened to a conversation while its volunteer may have it open (a conversation event's
# "change"): another person answered it, or an organizer gave it to someone else, closed it, or
# the number opted out.
CHANGES = ("reassigned", "closed", "opted_out", "answered")


def conversation_event(contact_ids: list[int], change: str) -> dict[str, Any]:
    """Conversations of the volunteer's changed under them: an open thread says so where they
    are looking (and keeps what they typed), a list drops or updates the rows."""
    assert change in CHANGES, change
    return {"type": "conversation", "contact_ids": contact_ids, "change": change}


def after_commit(session: Session, user_id: int | None, event: dict[str, Any]) -> None:
    """Publish `event` to the user's open pages once `session` commits (nothing if it rolls
    back): for rules that change conversations inside a transaction their caller commits."""
    if user_id is not None:
        session.info.setdefault(_PENDING, []).append((user_id, event))


_PENDING = "gotv.live.pending"


@event.listens_for(Session, "after_commit")
def _publish_pending(session: Session) -> None:
    for user_id, pending in session.info.pop(_PENDING, []):
        publish(user_id, pending)


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)


def status_event(contact_id: int | None, message_id: int, status: MessageStatus) -> dict[str, Any]:
    """A message's new status, for an open thread."""
    return {
        "type": "status",
        "contact_id": contact_id,
        "message_id": message_id,
        "status": MessageStatus(status).value,
    }


def stream(
    connection: Redis,
    user_id: int,
    organization_id: int,
    slots: Slots,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
    stream_seconds: float = STREAM_SECONDS,
    client: socket.socket | None = None,
    stop: threading.Event | None = None,
) -> Iterator[str]:
    """Server-Sent Events for one user, holding one of `slots` while it lasts: their channel's
    events, a comment every heartbeat, and an end after `stream_seconds` (the browser
    reconnects), at a `signed_out` event, as soon as the browser's `client` socket (when the
    server gives it) is closed, or within a second of `stop` (the process is shutting down: the
    browser reconnects to another). Subscribed before the first chunk. With no slot free to
    this user it ends at once, telling the browser to come back in 15-45 s."""
    if isinstance(client, ssl.SSLSocket):
        client = None  # no peeking under TLS: the next heartbeat finds it gone
    if not slots.take(user_id, organization_id):
        retry = random.randint(*BUSY_RETRY_SECONDS) * 1000
        yield f"retry: {retry}\n: busy\n\n"
        return
    metrics.LIVE_STREAMS.inc()
    try:
        yield from _events(connection, user_id, heartbeat_seconds, stream_seconds, client, stop)
    finally:
        metrics.LIVE_STREAMS.dec()
        slots.give_back(user_id, organization_id)


def _events(
    connection: Redis,
    user_id: int,
    heartbeat_seconds: float,
    stream_seconds: float,
    client: socket.socket | None,
    stop: threading.Event | None,
) -> Iterator[str]:
    pubsub = connection.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(channel(connection, user_id))
    check = CLIENT_CHECK_SECONDS if client is not None or stop is not None else float("inf")
    try:
        yield f"retry: {RECONNECT_MILLISECONDS}\n: connected\n\n"
        ends = time.monotonic() + stream_seconds
        beat = time.monotonic() + heartbeat_seconds
        while (now := time.monotonic()) < ends and not (stop is not None and stop.is_set()):
            wait = max(0.0, min(beat, ends, now + check) - now)
            message = pubsub.get_message(timeout=wait)
            if message is not None and message["type"] == "message":
                data = message["data"]
                text = data.decode() if isinstance(data, bytes) else str(data)
                kind = json.loads(text).get("type", "message")
                yield f"event: {kind}\ndata: {text}\n\n"
                if kind == SIGNED_OUT:
                    return
            elif time.monotonic() >= beat:
                beat = time.monotonic() + heartbeat_seconds
                yield ": heartbeat\n\n"
            if client is not None and has_left(client):
                return
    finally:
        pubsub.close()


def has_left(client: socket.socket) -> bool:
    """Whether the browser closed its connection: it sends nothing after its request, so a
    readable socket with nothing to read is a closed one (or a broken one)."""
    try:
        readable, _, _ = select.select([client], [], [], 0)
        return bool(readable) and client.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True
