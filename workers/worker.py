"""The RQ worker class every gotv worker process runs, and the tests run jobs with."""

from __future__ import annotations

import logging
import threading
from types import FrameType
from typing import Any

from flask import Flask
from rq import SimpleWorker
from rq.job import Job

from gotv import logs
from gotv.db import db

log = logging.getLogger(__name__)

# Set when the worker process must stop (SIGTERM, Ctrl-C): the job in hand stops taking work
# and finishes or hands back what it holds (a send pump: outbox.PumpSettings.stop).
STOPPING = threading.Event()


class Worker(SimpleWorker):
    """RQ's SimpleWorker (jobs in the worker's own process), stopping at once when it ends."""

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        """A warm shutdown, as RQ's, and a word to the job in hand that it must end now:
        RQ alone would let a send pump run its full minute, past a platform's grace period."""
        log.info("stop requested (signal %s): finishing the job in hand", signum)
        STOPPING.set()
        super().request_stop(signum, frame)

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

    def perform_job(self, job: Job, *args: Any, **kwargs: Any) -> bool:
        with self.app.app_context(), logs.with_request_id(f"job-{job.id}"):
            try:
                return bool(super().perform_job(job, *args, **kwargs))
            finally:
                db.session.remove()
