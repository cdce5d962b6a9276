"""Logs every process writes: one line per record, with its level, and the request or job it
belongs to, so a line found on one host leads to the rest of the story on the others.

`configure()` sets up the process (web or worker, called once at its start, never by tests);
`init_app()` gives every web request an id (the proxy's X-Request-ID when it sent a sound one),
returned in the response's X-Request-ID; a worker names each job by its RQ job id
(`with_request_id`).
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from flask import Flask, Response, g, request
from flask.logging import default_handler
from pythonjsonlogger.json import JsonFormatter

REQUEST_ID: ContextVar[str] = ContextVar("request_id", default="")
# What an X-Request-ID from the proxy may hold: anything else is replaced by our own.
SOUND_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class WithRequestId(logging.Filter):
    """Adds the current request's (or job's) id to every record, as `request_id`."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


def configure(level: str = "INFO", as_json: bool = True) -> None:
    """Send this process's logs to stderr, one line each: JSON with the time, level, logger,
    request id and message (or readable text, for development).

    The root logger's handler is the only one: Flask gives the app's logger ("gotv", the
    parent of every gotv module's) a handler of its own when the app is made before this is
    called, as wsgi.py and the worker make it, and each record would be written twice, once
    not as JSON."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(WithRequestId())
    if as_json:
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    for logger in logging.Logger.manager.loggerDict.values():
        if isinstance(logger, logging.Logger):
            logger.removeHandler(default_handler)
    root.setLevel(level)
    logging.getLogger("twilio").setLevel(logging.WARNING)  # it logs every request's headers


def init_app(app: Flask) -> None:
    """Give every request an id, in its log lines and its response's X-Request-ID."""

    @app.before_request
    def start() -> None:
        given = request.headers.get("X-Request-ID", "")
        g.request_id = given if SOUND_ID.match(given) else uuid.uuid4().hex
        g.request_id_token = REQUEST_ID.set(g.request_id)

    @app.after_request
    def stamp(response: Response) -> Response:
        if "request_id" in g:
            response.headers["X-Request-ID"] = g.request_id
        return response

    @app.teardown_request
    def end(_error: BaseException | None) -> None:
        token = g.pop("request_id_token", None)
        if token is not None:
            REQUEST_ID.reset(token)


@contextmanager
def with_request_id(request_id: str) -> Iterator[None]:
    """Log lines within carry `request_id` (a worker's job id)."""
    token = REQUEST_ID.set(request_id)
    try:
        yield
    finally:
        REQUEST_ID.reset(token)
