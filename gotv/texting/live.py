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
import threading
import time
from collections.abc import Iterator
from typing import Any

from redis import Redis

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
# When to come back: spread out, so that pages turned away together do not return together.
BUSY_RETRY_SECONDS = (15, 45)


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


def inbound_event(contact: Any, message_id: int, body: str, media: int = 0) -> dict[str, Any]:
    """What an open inbox needs to show a new reply in place (`media`: how many pictures).

    `contact` is the Contact after the reply, or a row with the same names (id, campaign_id,
    first_name, last_name, needs_reply, unread, opt_out_suggested).
    """
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
    }


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
    slots: threading.Semaphore,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
    stream_seconds: float = STREAM_SECONDS,
    stop: threading.Event | None = None,
) -> Iterator[str]:
    """Server-Sent Events for one user, holding one of `slots` while it lasts: their channel's
    events, a comment every heartbeat, and an end after `stream_seconds` (the browser
    reconnects), or within a second of `stop` (the process is shutting down: the browser
    reconnects to another). Subscribed before the first chunk. With no slot free it ends at
    once, telling the browser to come back in 15-45 s."""
    if not slots.acquire(blocking=False):
        retry = random.randint(*BUSY_RETRY_SECONDS) * 1000
        yield f"retry: {retry}\n: busy\n\n"
        return
    metrics.LIVE_STREAMS.inc()
    try:
        yield from _events(connection, user_id, heartbeat_seconds, stream_seconds, stop)
    finally:
        metrics.LIVE_STREAMS.dec()
        slots.release()


# A stream looks at its process's stop signal this often, at least.
STOP_CHECK_SECONDS = 1.0


def _events(
    connection: Redis,
    user_id: int,
    heartbeat_seconds: float,
    stream_seconds: float,
    stop: threading.Event | None,
) -> Iterator[str]:
    pubsub = connection.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(channel(connection, user_id))
    try:
        yield f"retry: {RECONNECT_MILLISECONDS}\n: connected\n\n"
        ends = time.monotonic() + stream_seconds
        beat = time.monotonic() + heartbeat_seconds
        while (now := time.monotonic()) < ends and not (stop is not None and stop.is_set()):
            wait = max(0.0, min(beat, ends, now + STOP_CHECK_SECONDS) - now)
            message = pubsub.get_message(timeout=wait)
            if message is not None and message["type"] == "message":
                data = message["data"]
                text = data.decode() if isinstance(data, bytes) else str(data)
                kind = json.loads(text).get("type", "message")
                yield f"event: {kind}\ndata: {text}\n\n"
            elif time.monotonic() >= beat:
                beat = time.monotonic() + heartbeat_seconds
                yield ": heartbeat\n\n"
    finally:
        pubsub.close()
