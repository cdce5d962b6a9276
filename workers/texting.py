"""Jobs that send texts. They run inside the app context the worker process owns."""

from __future__ import annotations

import asyncio
import logging

from flask import current_app

from gotv.db import db
from gotv.edge import queue
from gotv.models import Message, utcnow
from gotv.texting import assignment, outbox
from workers.worker import STOPPING

log = logging.getLogger(__name__)


def pump_settings() -> outbox.PumpSettings:
    config = current_app.config
    return outbox.PumpSettings(
        status_callback=config["PUBLIC_URL"].rstrip("/") + "/twilio/status",
        concurrency=config.get("SEND_CONCURRENCY") or 100,
        stop=STOPPING,
    )


def pump_outbox() -> int:
    """Send due queued messages until the outbox is empty or a minute has passed.

    Returns how many messages Twilio accepted.
    """
    # A click made while this pump runs must be able to wake another one.
    queue.redis().delete(queue.WAKE_KEY)
    sent = asyncio.run(outbox.pump(current_app.config, pump_settings()))
    log.info("pump sent %d messages", sent)
    return sent


def send_message(message_id: int) -> str | None:
    """Send one queued message now, through the same claim and gate as the pump.

    Returns its new status, or None when it was not queued (another pump had it already).
    """
    queued = db.session.get(Message, message_id)
    before = queued.status if queued else None
    asyncio.run(outbox.pump(current_app.config, pump_settings(), only_ids=[message_id]))
    db.session.expire_all()
    message = db.session.get(Message, message_id)
    if message is None or (before != "queued"):
        return None
    return message.status.value


def sweep_outbox() -> bool:
    """Wake a pump when due messages wait with none coming (Redis lost the job, a retry is due)."""
    if outbox.due_messages_exist(utcnow()):
        return queue.wake_senders()
    return False


def release_idle_batches() -> int:
    """Give idle volunteers' unsent contacts back to the pool (each campaign's idle time)."""
    released = assignment.release_idle(utcnow())
    db.session.commit()
    if released:
        log.info("released %d contacts held by idle volunteers", released)
    return released


def settle_abandoned() -> int:
    """Settle, against Twilio's own list, the messages a dead worker left in `sending`: sent
    ones are recorded as sent, the others go back to the queue (and the last gate)."""
    settled = outbox.settle_abandoned(utcnow())
    if settled:
        log.info("settled %d messages a worker left in sending", settled)
    return settled
