"""How many requests a web process runs at once; its live streams wait outside that count.

A web process's threads do two kinds of work. Live event streams (gotv/live.py) wait on Redis
for minutes and cost nothing meanwhile, so each process keeps many threads for them. Requests
want the CPU, and Python threads of one process take turns on one core: past a few dozen
running at once, each only takes longer, and the process spends more of the CPU changing turns
(scripts/bench inbox, 500 volunteers: send p95 2.2 s with 32 threads, 4.8 s with 128).
Threaded gunicorn workers would cap both together; this caps the requests alone, and the
requests past the cap wait for a turn, in order, without using the CPU.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

# Requests each web process runs at once (REQUESTS_PER_PROCESS): the Procfile's threads per
# process before the live streams needed more of them.
REQUESTS_PER_PROCESS = 32


class Admission:
    """WSGI middleware: at most `limit` requests in `wsgi_app` at once, except those for the
    paths in `unlimited` (the live streams, which have their own limit).

    A request's turn ends when the app returns its response; a body streamed after that (the
    CSV exports) is written outside the count.
    """

    def __init__(self, wsgi_app: WSGIApplication, limit: int, unlimited: Iterable[str]) -> None:
        self.wsgi_app = wsgi_app
        self.turns = threading.BoundedSemaphore(max(1, limit))
        self.unlimited = frozenset(unlimited)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        if environ.get("PATH_INFO") in self.unlimited:
            return self.wsgi_app(environ, start_response)
        with self.turns:
            return self.wsgi_app(environ, start_response)
