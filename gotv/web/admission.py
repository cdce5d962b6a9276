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
from collections.abc import Callable, Iterable, Iterator
from functools import wraps
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app
from werkzeug.exceptions import ServiceUnavailable
from werkzeug.wrappers import Response

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
    CSV exports) is written outside the count, and has its own (`streams_a_download`).
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


# --- Downloads: their own budget of connections -----------------------------------------------

# Downloads a process streams at once when no EXPORTS_PER_PROCESS is set (as config.py's).
DOWNLOADS = 2
DOWNLOAD_RETRY_AFTER_SECONDS = 30


class DownloadsBusy(ServiceUnavailable):
    """Every download slot of this process is taken (gotv/web/errors.py answers 503)."""

    description = "Too many downloads are running right now; try again in a minute."


def init_app(app: Flask) -> None:
    """The process's download slots: EXPORTS_PER_PROCESS of them.

    A CSV download streams from a server-side cursor after its view returns, outside the turns
    above, holding a database connection until the last byte leaves (minutes, to a slow
    client). Counted with the requests, a few slow downloads would take the connections pages
    need, and a page would wait for one until the pool gave up. So downloads have a budget of
    their own: the pool keeps EXPORTS_PER_PROCESS connections on top of DATABASE_POOL_SIZE
    (gotv/db.py), and a download past the budget is refused at once with a 503 and
    Retry-After, before anything is read or audited. A semaphore rather than an engine of
    their own: a download reads in the request's own session, which checked the organizer's
    rights and wrote the audit entry, and the connections are the same in number.
    """
    limit = app.config.get("EXPORTS_PER_PROCESS")
    app.extensions["gotv.downloads"] = threading.BoundedSemaphore(
        DOWNLOADS if limit is None else max(1, limit)
    )


def streams_a_download(view: Callable[..., Response]) -> Callable[..., Response]:
    """For a view answering with a streamed download: take one of the process's download slots
    first (DownloadsBusy when none is free), and give it back after the last byte (the request's
    database connection is back in the pool by then), when the response is closed (a client
    gone), or at once if the view fails. The view is marked `takes_a_download_slot` (kept by
    the decorators around it, which copy its attributes), so a test can check every CSV
    route."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Response:
        slots: threading.BoundedSemaphore = current_app.extensions["gotv.downloads"]
        if not slots.acquire(blocking=False):
            raise DownloadsBusy(retry_after=DOWNLOAD_RETRY_AFTER_SECONDS)
        release = once(slots.release)
        try:
            response = view(*args, **kwargs)
        except BaseException:
            release()
            raise
        response.response = released_at_end(response.response, release)
        response.call_on_close(release)
        return response

    wrapped.__dict__["takes_a_download_slot"] = True
    return wrapped


def once(action: Callable[[], object]) -> Callable[[], None]:
    """`action`, done on the first call only (from whichever thread calls first)."""
    lock = threading.Lock()
    done = False

    def do_once() -> None:
        nonlocal done
        with lock:
            if done:
                return
            done = True
        action()

    return do_once


def released_at_end(body: Iterable[Any], release: Callable[[], None]) -> Iterator[Any]:
    try:
        yield from body
    finally:
        release()
