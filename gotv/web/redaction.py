"""Secrets kept out of the logs: an invitation link's token (/join/<token>) is a password to
join an organization, and access logs keep every path asked for, and every Referer.

gunicorn logs requests through `AccessLogger` (the Procfile and scripts/run name it with
--logger-class), and the app's own log messages (an exception names the path it happened on)
pass through `RedactingFilter`. A proxy in front keeps its own logs: docs/deploy.md.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from gunicorn.glogging import Logger

# What follows /join/ up to the end of that path segment.
SECRET_PATHS = re.compile(r"(/join/)[^/?#&\s\"']+")
REDACTED = r"\1[redacted]"


def redact(text: str) -> str:
    """`text` with the token of every invitation link in it replaced."""
    return SECRET_PATHS.sub(REDACTED, text) if "/join/" in text else text


class AccessLogger(Logger):
    """gunicorn's logger, whose access log line never holds an invitation token: the request
    line, the path, the query, the Referer and every header or environ value it may print."""

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        return {
            name: redact(value) if isinstance(value, str) else value
            for name, value in atoms.items()
        }


class RedactingFilter(logging.Filter):
    """Redacts invitation tokens in the messages of the logger it is added to."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "/join/" in message:
            record.msg, record.args = redact(message), None
        return True
