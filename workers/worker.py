"""The RQ worker class every gotv worker process runs, and the tests run jobs with."""

from __future__ import annotations

from typing import Any

from flask import Flask
from rq import SimpleWorker

from gotv.db import db


class Worker(SimpleWorker):
    """RQ's SimpleWorker (jobs in the worker's own process), stopping at once when it ends."""

    def unsubscribe(self) -> None:
        """Stop listening for RQ's commands without waiting a minute.

        rq unsubscribes first and tells its listening thread to stop after. When the server's
        answer to UNSUBSCRIBE reaches the thread before it is told, the thread goes back to
        waiting for a message for up to rq's 60 s, and redis-py's stop() waits for it. Told to
        stop first, the thread ends on that answer.
        """
        if self.pubsub_thread is not None:
            self.pubsub_thread.stop(timeout=0)
        super().unsubscribe()


class AppWorker(Worker):
    """Runs each job in a fresh app context, so each gets its own database session."""

    app: Flask

    def perform_job(self, *args: Any, **kwargs: Any) -> bool:
        with self.app.app_context():
            try:
                return bool(super().perform_job(*args, **kwargs))
            finally:
                db.session.remove()
