"""The voter-list import job. It runs inside the app context the worker process owns."""

from __future__ import annotations

import logging

from flask import current_app
from sqlalchemy import select

from gotv.db import db
from gotv.edge import queue
from gotv.lists import imports
from gotv.models import ContactImport, ImportStatus

log = logging.getLogger(__name__)


def import_contacts(import_id: int) -> None:
    """Load one queued import, all or nothing (see gotv.lists.imports.run)."""
    imports.run(import_id, current_app.config["DEFAULT_REGION"])


def sweep_imports() -> int:
    """Enqueue again every queued import whose job Redis no longer knows (Redis restarted).

    An import is claimed with a conditional UPDATE before it runs, so a second job for one that
    did run does nothing.
    """
    queued = db.session.execute(
        select(ContactImport.id, ContactImport.organization_id).where(
            ContactImport.status == ImportStatus.QUEUED
        )
    ).all()
    lost = [row for row in queued if not queue.import_job_exists(row.id)]
    for import_id, organization_id in lost:
        queue.enqueue_import(import_id, organization_id)
    if lost:
        log.warning("re-enqueued imports whose jobs were lost: %s", [row.id for row in lost])
    return len(lost)
