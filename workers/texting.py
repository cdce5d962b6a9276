"""Jobs that send texts. They run inside the app context the worker process owns."""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app

from gotv import queue, texting
from gotv.models import utcnow

log = logging.getLogger(__name__)

# A queued message whose job has not run after this long is enqueued again.
SWEEP_AFTER = timedelta(minutes=2)


def status_callback_url() -> str:
    return current_app.config["PUBLIC_URL"].rstrip("/") + "/twilio/status"


def send_message(message_id: int) -> str | None:
    """Send one queued message, exactly once; returns its new status (None if already taken).

    :raise texting.RetryLater: during a Twilio outage, so RQ retries the job with backoff.
    """
    status = texting.deliver(message_id, status_callback_url(), utcnow())
    log.info("message %s: %s", message_id, status)
    return status.value if status else None


def sweep_queued_messages() -> int:
    """Enqueue again every message left queued too long (Redis lost it, a worker died)."""
    message_ids = texting.stale_queued_messages(utcnow() - SWEEP_AFTER)
    for message_id in message_ids:
        queue.enqueue_send(message_id)
    if message_ids:
        log.info("re-enqueued %d queued messages", len(message_ids))
    return len(message_ids)
