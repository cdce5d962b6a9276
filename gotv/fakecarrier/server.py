"""The fake carrier over HTTP (aiohttp): Twilio's Messages API, the voter page, and `main()`.

One event loop on one thread serves everything. API calls are answered after the server's
``latency`` (an ``asyncio.sleep``, so hundreds of calls wait at once without blocking the
loop); the carrier itself is plain synchronous code called from the handlers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import threading
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import jinja2
from aiohttp import BasicAuth, hdrs, web
from multidict import MultiMapping
from yarl import URL

from gotv.fakecarrier.carrier import FakeCarrier
from gotv.fakecarrier.protocol import API_VERSION, MESSAGE_ROUTE, MESSAGES_ROUTE, ApiError

_API_PREFIX = f"/{API_VERSION}/"

_VOTER_PAGE = jinja2.Environment(autoescape=True).from_string(
    """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Fake carrier (demo)</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; }
.banner { background: #fff3cd; border: 1px solid #e0c36a; padding: .75rem 1rem; }
ol { list-style: none; padding: 0; }
li { margin: .4rem 0; padding: .4rem .6rem; border-radius: .5rem; max-width: 80%; }
li.out { background: #e8eef8; }
li.in { background: #dff3e4; margin-left: auto; }
.meta { display: block; font-size: .8em; color: #555; }
section { border-top: 1px solid #ccc; padding: .5rem 0 1rem; }
</style>
</head>
<body>
<h1>Fake carrier</h1>
<p class="banner"><strong>This is a fake carrier for demos and tests.</strong>
No real text messages are sent. Account {{ account_sid }}, number {{ phone_number }};
replies go to {{ inbound_url or "(no inbound URL configured)" }};
{{ pending }} webhook(s) waiting. <a href="/">Refresh</a></p>
{% for number, thread in conversations.items() %}
<section>
<h2>{{ number }}</h2>
<ol>
{% for m in thread %}
<li class="{{ 'in' if m['direction'] == 'inbound' else 'out' }}">
<span class="meta">{{ m['from'] or '' }} &rarr; {{ m['to'] }} &middot; {{ m['status'] }}
{%- if m['error_code'] %} &middot; error {{ m['error_code'] }}{% endif %}</span>
{{ m['body'] }}</li>
{% endfor %}
</ol>
<form method="post" action="/reply">
<input type="hidden" name="from" value="{{ number }}">
<label>Reply as {{ number }} <input name="body" required></label>
<button type="submit">Send reply</button>
</form>
</section>
{% else %}
<p>No messages yet.</p>
{% endfor %}
<section>
<h2>Text in as another voter</h2>
<form method="post" action="/reply">
<label>From <input name="from" placeholder="+15555550100" required></label>
<label>Message <input name="body" required></label>
<button type="submit">Send</button>
</form>
</section>
</body>
</html>
"""
)


class CarrierServer:
    """Serve a :class:`FakeCarrier` over HTTP on an event loop in a daemon thread.

    ``carrier`` and ``latency`` may be changed at any time; each request reads them afresh,
    so tests can serve a fresh carrier per test from one server. ``port=0`` picks a free
    port; :attr:`url` tells which after :meth:`start`. The server does not start the
    carrier's webhook delivery: call ``carrier.start_delivery()`` for that.
    """

    def __init__(
        self,
        carrier: FakeCarrier,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        backlog: int = 1024,
    ) -> None:
        self.carrier = carrier
        self.host = host
        self.port = port
        self.latency = latency
        self.backlog = backlog
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:8100`` (the port is known once started)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> CarrierServer:
        """Bind (raising ``OSError`` here if the port is taken), serve, and return self."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.create_server((self.host, self.port), family=family, backlog=self.backlog)
        self.port = sock.getsockname()[1]
        self._thread = threading.Thread(
            target=self._run, args=(sock,), name="fakecarrier-http", daemon=True
        )
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            raise RuntimeError("the fake carrier's server did not start") from self._failure
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread (idempotent)."""
        loop, stopping, thread = self._loop, self._stopping, self._thread
        if loop is not None and stopping is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stopping.set)
            except RuntimeError:
                pass  # the loop closed in between: nothing left to stop
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self.latency + 10)
        self._thread = None

    def wait(self) -> None:
        """Block until the server stops; Ctrl-C (KeyboardInterrupt) stops it."""
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(timeout=0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def __enter__(self) -> CarrierServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self, sock: socket.socket) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._serve(sock))
        except BaseException as err:  # reported to start() by _serve
            self._failure = self._failure or err
        finally:
            loop.close()
            self._ready.set()

    async def _serve(self, sock: socket.socket) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        # No access log: formatting a line per request would cost more than the request.
        runner = web.AppRunner(
            create_carrier_app(self), access_log=None, shutdown_timeout=self.latency + 1
        )
        try:
            await runner.setup()
            await web.SockSite(runner, sock).start()
            self._ready.set()
            await self._stopping.wait()
        except BaseException as err:
            self._failure = err
            sock.close()
            raise
        finally:
            await runner.cleanup()

    async def answer_api(self, status: int, body: dict[str, Any]) -> web.Response:
        """Answer an API call after the configured latency."""
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        return _api_response(status, body)


SERVER = web.AppKey("server", CarrierServer)


def create_carrier_app(server: CarrierServer) -> web.Application:
    """Build the aiohttp app serving ``server.carrier``: Twilio's Messages API, voter page.

    Routes: ``POST`` :data:`MESSAGES_ROUTE` (create), ``GET`` :data:`MESSAGES_ROUTE` (list)
    and ``GET`` :data:`MESSAGE_ROUTE` (fetch), with Basic auth and ``server.latency``;
    ``GET /`` (voter page), ``POST /reply`` (form: from, body; redirects to ``/``) and
    ``POST /_carrier/reply`` (form or JSON: from, body, optional to; returns the webhook).
    The control routes need no auth: this is a local fake. Under ``/2010-04-01/`` an unknown
    path gets Twilio's 404 JSON (code 20404) and a wrong method its 405 (code 20004).
    """
    app = web.Application()
    app[SERVER] = server
    messages = app.router.add_resource(MESSAGES_ROUTE)
    messages.add_route(hdrs.METH_POST, _create_message)
    messages.add_route(hdrs.METH_GET, _list_messages)
    messages.add_route(hdrs.METH_ANY, _api_method_not_allowed)
    message = app.router.add_resource(MESSAGE_ROUTE)
    message.add_route(hdrs.METH_GET, _fetch_message)
    message.add_route(hdrs.METH_ANY, _api_method_not_allowed)
    app.router.add_route(hdrs.METH_ANY, _API_PREFIX + "{tail:.*}", _api_not_found)
    app.router.add_get("/", _voter_page)
    app.router.add_post("/reply", _voter_reply)
    app.router.add_post("/_carrier/reply", _control_reply)
    return app


# -- the API -----------------------------------------------------------------------------------


async def _create_message(request: web.Request) -> web.Response:
    server = request.app[SERVER]
    form = await _read_form(request)
    account = request.match_info["AccountSid"]
    return await server.answer_api(
        *server.carrier.handle_create(account, _basic_auth(request), form)
    )


async def _fetch_message(request: web.Request) -> web.Response:
    server = request.app[SERVER]
    account, sid = request.match_info["AccountSid"], request.match_info["Sid"]
    return await server.answer_api(*server.carrier.handle_fetch(account, _basic_auth(request), sid))


async def _list_messages(request: web.Request) -> web.Response:
    server = request.app[SERVER]
    account = request.match_info["AccountSid"]
    return await server.answer_api(
        *server.carrier.handle_list(account, _basic_auth(request), request.query)
    )


async def _api_method_not_allowed(request: web.Request) -> web.Response:
    allowed = sorted(route.method for route in request.match_info.route.resource or ())
    response = _api_response(405, ApiError(405, 20004, "Method not allowed").body())
    response.headers[hdrs.ALLOW] = ", ".join(m for m in allowed if m != hdrs.METH_ANY)
    return response


async def _api_not_found(request: web.Request) -> web.Response:
    message = f"The requested resource {request.path} was not found"
    return _api_response(404, ApiError(404, 20404, message).body())


def _api_response(status: int, body: dict[str, Any]) -> web.Response:
    response = web.Response(
        body=json.dumps(body).encode(), status=status, content_type="application/json"
    )
    if status == 401:
        response.headers[hdrs.WWW_AUTHENTICATE] = 'Basic realm="Twilio API"'
    return response


def _basic_auth(request: web.Request) -> tuple[str | None, str | None]:
    """The request's Basic credentials, or (None, None) when absent or malformed."""
    header = request.headers.get(hdrs.AUTHORIZATION)
    if header is None:
        return None, None
    try:
        auth = BasicAuth.decode(header, encoding="utf-8")
    except ValueError:
        return None, None
    return auth.login, auth.password


async def _read_form(request: web.Request) -> MultiMapping[str]:
    """The url-encoded form body (Twilio's API and our own forms send no other kind).

    Parsed as ``urllib.parse.parse_qsl(..., keep_blank_values=True)`` would, but by yarl's
    C unquoter: a third of the cost, on the hottest path.
    """
    raw = await request.read()
    return URL.build(query_string=raw.decode("utf-8", "replace"), encoded=True).query


# -- the voter page and control endpoint -------------------------------------------------------


async def _voter_page(request: web.Request) -> web.Response:
    carrier = request.app[SERVER].carrier
    html = _VOTER_PAGE.render(
        conversations=carrier.conversations(),
        account_sid=carrier.account_sid,
        phone_number=carrier.phone_number,
        inbound_url=carrier.inbound_url,
        pending=len(carrier.pending_webhooks()),
    )
    return web.Response(text=html, content_type="text/html")


async def _voter_reply(request: web.Request) -> web.Response:
    form = await _read_form(request)
    sender, body = form.get("from", "").strip(), form.get("body", "")
    if not sender or not body:
        return web.Response(text="Both 'from' and 'body' are required.", status=400)
    try:
        request.app[SERVER].carrier.reply(sender, body)
    except ValueError as err:
        return web.Response(text=str(err), status=409)
    raise web.HTTPSeeOther(location="/")


async def _control_reply(request: web.Request) -> web.Response:
    """``POST /_carrier/reply``: form or JSON ``from``, ``body``, optional ``to``."""
    fields = await _json_or_form(request)
    sender, body, to = fields.get("from"), fields.get("body"), fields.get("to")
    if not isinstance(sender, str) or not sender or not isinstance(body, str) or not body:
        return web.json_response({"error": "fields 'from' and 'body' are required"}, status=400)
    try:
        webhook = request.app[SERVER].carrier.reply(
            sender, body, to=to if isinstance(to, str) and to else None
        )
    except ValueError as err:
        return web.json_response({"error": str(err)}, status=409)
    reply = {"url": webhook.url, "params": webhook.params, "headers": webhook.headers}
    return web.json_response(reply, status=201)


async def _json_or_form(request: web.Request) -> Mapping[str, Any]:
    """A JSON object body, or the form; anything unreadable counts as no fields."""
    if request.content_type == "application/json" or request.content_type.endswith("+json"):
        try:
            data = await request.json()
        except ValueError:
            return {}
        return data if isinstance(data, Mapping) else {}
    return await _read_form(request)


# -- the command line --------------------------------------------------------------------------


def build_server(argv: list[str] | None = None) -> CarrierServer:
    """The (unstarted) server and carrier the command line asks for."""
    parser = argparse.ArgumentParser(
        prog="python -m gotv.fakecarrier",
        description="Run a fake Twilio carrier for local demos (no real texts are sent).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--account-sid", required=True, help="AccountSid clients must use")
    parser.add_argument("--auth-token", required=True, help="auth token; also signs webhooks")
    parser.add_argument("--inbound-url", default=None, help="where voter replies are POSTed")
    parser.add_argument("--phone-number", default="+15005550006")
    parser.add_argument("--delay", type=float, default=0.3, help="seconds before each webhook")
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds before answering each API call"
    )
    parser.add_argument(
        "--no-callbacks",
        dest="status_callbacks",
        action="store_false",
        help="never POST status callbacks (voter replies still go out)",
    )
    args = parser.parse_args(argv)
    carrier = FakeCarrier(
        args.account_sid,
        args.auth_token,
        inbound_url=args.inbound_url,
        phone_number=args.phone_number,
        delivery_delay=args.delay,
        status_callbacks=args.status_callbacks,
    )
    return CarrierServer(carrier, args.host, args.port, latency=args.latency)


def main(argv: list[str] | None = None) -> None:
    """Serve a fake carrier until interrupted; credentials come from the command line only."""
    server = build_server(argv)
    server.start()
    carrier = server.carrier
    print(
        f"Fake carrier listening on {server.url} (voter page at /; inbound webhooks to "
        f"{carrier.inbound_url or 'nowhere'}; API latency {server.latency:g} s)",
        flush=True,
    )
    carrier.start_delivery()
    try:
        server.wait()
    finally:
        carrier.stop_delivery()


if __name__ == "__main__":
    main()
