"""The voter-list import job. It runs inside the app context the worker process owns."""

from __future__ import annotations

from gotv import imports


def import_contacts(import_id: int) -> None:
    """Load one queued import, all or nothing (see gotv.imports.run)."""
    imports.run(import_id)
