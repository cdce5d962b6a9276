"""The voter-list import job. It runs inside the app context the worker process owns."""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import select

from gotv.db import db
from gotv.edge import queue
from gotv.lists import imports
from gotv.models import ContactImport, ImportStatus
from workers.worker import STOPPING

log = logging.getLogger(__name__)

DEFAULT_EXPIRY_HOURS = 24  # as gotv/config.py


def import_contacts(import_id: int) -> None:
    """Load one queued import, all or nothing (see gotv.lists.imports.run); when the worker is
    told to stop, hand it back to the queue at the next chunk."""
    imports.run(import_id, current_app.config["DEFAULT_REGION"], stop=STOPPING)


def sweep_imports() -> int:
    """Enqueue again every queued import whose job Redis no longer knows (Redis restarted).

    An import is claimed with a conditional UPDATE before it runs, so a second job for one that
    did run does nothing.
    """
    queued = db.session.execute(
        select(ContactImport.id, ContactImport.organization_id, ContactImport.attempts).where(
            ContactImport.status == ImportStatus.QUEUED
        )
    ).all()
    db.session.commit()
    lost = [row for row in queued if not queue.import_job_exists(row.id, row.attempts)]
    for import_id, organization_id, attempts in lost:
        queue.enqueue_import(import_id, organization_id, attempt=attempts)
    if lost:
        log.warning("re-enqueued imports whose jobs were lost: %s", [row.id for row in lost])
    return len(lost)


def recover_imports() -> int:
    """Take back the imports whose worker died mid-load: queued again, or ended (cancelled, or
    failed after imports.MAX_ATTEMPTS loads) with their partial rows rolled back (see
    gotv.lists.imports.recover_stranded). Cheap (one query on contact_import): run it every
    sweep. :return: how many were taken back."""
    return len(imports.recover_stranded())


def expire_uploads() -> int:
    """Delete the uploads left at the mapping step longer than UPLOAD_EXPIRY_HOURS (their
    imports end cancelled, saying why) and the stored files no import names. Lists the upload
    store: run it every few minutes, not every sweep. :return: files deleted."""
    hours = current_app.config.get("UPLOAD_EXPIRY_HOURS") or DEFAULT_EXPIRY_HOURS
    return imports.expire_uploads(timedelta(hours=hours))
