"""How many requests a web process runs at once; its live streams wait outside that count.

A web process's threads do two kinds of work. Live event streams (gotv/texting/live.py) wait
on Redis for minutes and cost nothing meanwhile, so each process keeps many threads for them.
Requests want the CPU and a database connection, and Python threads of one process take turns
on one core: past the pool's connections, more requests at once only wait inside the app, where
nothing serves them in order, and the unlucky wait far longer than the rest. Threaded gunicorn
workers would cap requests and streams together; this caps the requests alone, at one for each
database connection, and the requests past the cap wait off the CPU, each let in as another
ends, first come first served (docs/benchmarks.md: the volunteers' screens under overload).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

# Requests a process runs at once when no DATABASE_POOL_SIZE is set (a config given whole, as
# the tests give theirs): as config.py's default.
TURNS = 15


class Admission:
    """WSGI middleware: at most `limit` requests in `wsgi_app` at once, the others let in in
    the order they came, except those for the paths in `unlimited` (the live streams, which
    have their own limit).

    A request's turn ends when the app returns its response; a body streamed after that (the
    CSV exports) is written outside the count.
    """

    def __init__(self, wsgi_app: WSGIApplication, limit: int, unlimited: Iterable[str]) -> None:
        self.wsgi_app = wsgi_app
        self.unlimited = frozenset(unlimited)
        self.free = max(1, limit)
        self.waiting: deque[threading.Event] = deque()
        self.lock = threading.Lock()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        if environ.get("PATH_INFO") in self.unlimited:
            return self.wsgi_app(environ, start_response)
        self.enter()
        try:
            return self.wsgi_app(environ, start_response)
        finally:
            self.leave()

    def enter(self) -> None:
        """Take a turn, waiting behind those who came first."""
        with self.lock:
            if self.free and not self.waiting:
                self.free -= 1
                return
            turn = threading.Event()
            self.waiting.append(turn)
        turn.wait()  # the request leaving hands its turn to this one

    def leave(self) -> None:
        """Hand the turn to the first waiting, or give it back."""
        with self.lock:
            if self.waiting:
                self.waiting.popleft().set()
            else:
                self.free += 1
