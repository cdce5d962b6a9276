"""gunicorn's settings and hooks for gotv's web processes: `gunicorn -c python:gotv.web.serving`.

The Procfile gives the process shape (workers, threads, the port); this module what a deploy
needs of each process: a SIGTERM lets the requests in hand finish and ends the live streams at
once (their browsers reconnect to another process), all within GRACE_SECONDS, inside the 30 s
platforms such as Heroku and Kubernetes wait before they kill.
"""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any

GRACE_SECONDS = 20

graceful_timeout = GRACE_SECONDS
# Access log lines without the secret part of invitation links (gotv/web/redaction.py).
logger_class = "gotv.web.redaction.AccessLogger"
# No runtime control socket: gotv does not use gunicornc, and every gunicorn of a host would
# otherwise share one default path.
control_socket_disable = True


# (gunicorn reads every module-level name here as a setting: gotv's modules are imported in
# the hooks, under names of their own.)


def child_exit(server: Any, worker: Any) -> None:
    """A web process ended: its live gauges (streams open, sends in flight) stop counting."""
    from gotv.config import multiprocess_dir
    from gotv.edge.metrics import process_exited

    process_exited(worker.pid, multiprocess_dir())


def post_worker_init(worker: Any) -> None:
    """On this worker's SIGTERM, end its live streams too, then shut down as gunicorn does."""
    from gotv.web import inbox

    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum: int, frame: FrameType | None) -> None:
        inbox.SHUTTING_DOWN.set()
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_term)


def when_ready(server: Any) -> None:
    """Say where the web answers: with --reuse-port each worker binds the address itself, and
    gunicorn's own line ("Listening at:") names none."""
    server.log.info(
        "Answering at %s with %d workers (each binding it: --reuse-port)",
        ", ".join(f"http://{address}" for address in server.cfg.bind),
        server.cfg.workers,
    )
