"""The fake carrier over HTTP (aiohttp): Twilio's API slice, the voter page, and `main()`.

One event loop on one thread serves everything. API calls are answered after the server's
``latency`` (an ``asyncio.sleep``, so hundreds of calls wait at once without blocking the
loop), and count as in flight for their account until then; the carrier itself is plain
synchronous code called from the handlers.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import json
import socket
import threading
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any

import jinja2
from aiohttp import BasicAuth, hdrs, web
from multidict import MultiMapping
from yarl import URL

from gotv.fakecarrier.accounts import MESSAGING_VERSION, Auth
from gotv.fakecarrier.carrier import Answer, FakeCarrier
from gotv.fakecarrier.protocol import (
    ACCOUNT_ROUTE,
    ACCOUNTS_ROUTE,
    API_VERSION,
    INCOMING_NUMBERS_ROUTE,
    MEDIA_CONTENT_ROUTE,
    MEDIA_LIST_ROUTE,
    MEDIA_ROUTE,
    MESSAGE_ROUTE,
    MESSAGES_ROUTE,
    SERVICE_NUMBERS_ROUTE,
    SERVICE_ROUTE,
    ApiError,
)

_API_PREFIXES = (f"/{API_VERSION}/", f"/{MESSAGING_VERSION}/")
#: Twilio accepts MMS media up to 5 MB; the voter page's form carries one picture.
_MAX_UPLOAD = 6 * 1024 * 1024

_VOTER_PAGE = jinja2.Environment(autoescape=True).from_string(
    """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Fake carrier (demo)</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; }
.banner { background: #fff3cd; border: 1px solid #e0c36a; padding: .75rem 1rem; }
table { border-collapse: collapse; font-size: .9em; width: 100%; margin: 1rem 0; }
caption { text-align: left; font-weight: bold; padding-bottom: .3rem; }
th, td { text-align: left; padding: .2rem .6rem .2rem 0; vertical-align: top; }
ol { list-style: none; padding: 0; }
li { margin: .4rem 0; padding: .4rem .6rem; border-radius: .5rem; max-width: 80%; }
li.out { background: #e8eef8; }
li.in { background: #dff3e4; margin-left: auto; }
.meta { display: block; font-size: .8em; color: #555; }
section { border-top: 1px solid #ccc; padding: .5rem 0 1rem; }
form label { margin-right: .5rem; }
</style>
</head>
<body>
<h1>Fake carrier</h1>
<p class="banner"><strong>This is a fake carrier for demos and tests.</strong>
No real text messages are sent. Main account {{ account_sid }}, number {{ phone_number }};
replies go to {{ inbound_url or "(no inbound URL configured)" }};
{{ pending }} webhook(s) waiting. <a href="/">Refresh</a></p>
<table class="accounts">
<caption>Accounts</caption>
<tr><th>Account</th><th>SID</th><th>Numbers</th><th>Messaging Services</th></tr>
{% for a in accounts %}
<tr><td>{{ a.friendly_name }}{% if a.parent_sid %} (subaccount){% endif %}</td>
<td><code>{{ a.sid }}</code></td>
<td>{{ a.numbers | join(", ") }}{% if not a.strict %} (and any number nobody owns){% endif %}</td>
<td>{% for sid, numbers in services[a.sid].items() %}
<code>{{ sid }}</code>: {{ numbers | join(", ") }}<br>
{% endfor %}</td></tr>
{% endfor %}
</table>
{% for number, thread in conversations.items() %}
<section>
<h2>{{ number }}</h2>
<ol>
{% for m in thread %}
<li class="{{ 'in' if m['direction'] == 'inbound' else 'out' }}">
<span class="meta">{{ m['from'] or '' }} &rarr; {{ m['to'] }} &middot; {{ m['status'] }}
{%- if m['error_code'] %} &middot; error {{ m['error_code'] }}{% endif %}
 &middot; {{ names.get(m['account_sid'], m['account_sid']) }}
{%- if m['messaging_service_sid'] %} via {{ m['messaging_service_sid'] }}{% endif %}
{%- if m['num_media'] != '0' %} &middot; {{ m['num_media'] }} picture(s){% endif %}</span>
{{ m['body'] }}</li>
{% endfor %}
</ol>
<form method="post" action="/reply" enctype="multipart/form-data">
<input type="hidden" name="from" value="{{ number }}">
<label>Reply as {{ number }} <input name="body"></label>
<label>to <select name="to">
{% for ours, owner in senders[number] %}
<option value="{{ ours }}">{{ ours }} ({{ names.get(owner, owner) }})</option>
{% endfor %}</select></label>
<label>Picture <input type="file" name="media" accept="image/*"></label>
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
<label>To <input name="to" placeholder="{{ phone_number }}"></label>
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
    port; :attr:`url` tells which after :meth:`start`. The served carrier's ``base_url`` is
    set to :attr:`url` (on start, and whenever a carrier is swapped in), so its media URLs
    point here. The server does not start the carrier's webhook delivery: call
    ``carrier.start_delivery()`` for that.
    """

    def __init__(
        self,
        carrier: FakeCarrier,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        backlog: int = 1024,
    ) -> None:
        self.host = host
        self.port = port
        self.latency = latency
        self.backlog = backlog
        self._started = False
        self.carrier = carrier
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None

    @property
    def carrier(self) -> FakeCarrier:
        """The carrier served; assigning one tells it the server's URL once started."""
        return self._carrier

    @carrier.setter
    def carrier(self, carrier: FakeCarrier) -> None:
        self._carrier = carrier
        if self._started:
            carrier.base_url = self.url

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
        self._started = True
        self.carrier.base_url = self.url
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

    async def call_api(
        self,
        request: web.Request,
        path_sid: str | None,
        handle: Callable[[FakeCarrier, Auth], Answer | web.Response],
        accounts_resource: bool = False,
    ) -> web.Response:
        """Run one API call: admitted against its account's concurrency (a 429 at once when
        over it), handled by ``handle(carrier, auth)``, answered after the latency, and
        counted in flight until then."""
        carrier = self.carrier
        auth = _basic_auth(request)
        admission = carrier.admit(path_sid, auth, accounts_resource)
        if admission.refusal is not None:
            return _api_response(*admission.refusal)
        try:
            answer = handle(carrier, auth)
            if isinstance(answer, web.Response):
                if self.latency > 0:
                    await asyncio.sleep(self.latency)
                return answer
            return await self.answer_api(*answer)
        finally:
            carrier.release(admission)


SERVER = web.AppKey("server", CarrierServer)
Handler = Callable[[web.Request], Awaitable[web.Response]]


def create_carrier_app(server: CarrierServer) -> web.Application:
    """Build the aiohttp app serving ``server.carrier``: Twilio's API slice and the voter page.

    API routes (Basic auth, ``server.latency``, each account's ``concurrency``):
    Messages (``POST``/``GET`` :data:`MESSAGES_ROUTE`, ``GET`` :data:`MESSAGE_ROUTE`),
    Accounts (``POST``/``GET`` :data:`ACCOUNTS_ROUTE`, ``GET`` :data:`ACCOUNT_ROUTE`),
    ``GET`` :data:`INCOMING_NUMBERS_ROUTE`, media (``GET`` :data:`MEDIA_LIST_ROUTE`,
    :data:`MEDIA_ROUTE`, and :data:`MEDIA_CONTENT_ROUTE` for the bytes), and the Messaging
    API's ``GET`` :data:`SERVICE_ROUTE` and :data:`SERVICE_NUMBERS_ROUTE`.
    Pages: ``GET /`` (voter page), ``POST /reply`` (form: from, body, optional to and a
    ``media`` file; redirects to ``/``) and ``POST /_carrier/reply`` (form or JSON: from, body,
    optional to, and in JSON optional media ``[{"content_type", "base64"}]``; returns the
    webhook) and ``GET /_carrier/stats`` (:meth:`FakeCarrier.stats` as JSON: the 429s given,
    messages accepted, webhooks delivered). The control routes need no auth: this is a local
    fake. Under ``/2010-04-01/`` and ``/v1/`` an unknown path gets Twilio's 404 JSON (code
    20404) and a wrong method its 405 (code 20004).
    """
    app = web.Application(client_max_size=_MAX_UPLOAD)
    app[SERVER] = server
    routes: list[tuple[str, dict[str, Handler]]] = [
        (MESSAGES_ROUTE, {hdrs.METH_POST: _create_message, hdrs.METH_GET: _list_messages}),
        (MESSAGE_ROUTE, {hdrs.METH_GET: _fetch_message}),
        (ACCOUNTS_ROUTE, {hdrs.METH_POST: _create_account, hdrs.METH_GET: _list_accounts}),
        (ACCOUNT_ROUTE, {hdrs.METH_GET: _fetch_account}),
        (INCOMING_NUMBERS_ROUTE, {hdrs.METH_GET: _list_numbers}),
        (MEDIA_LIST_ROUTE, {hdrs.METH_GET: _list_media}),
        (MEDIA_ROUTE, {hdrs.METH_GET: _fetch_media}),
        # Only a media SID, so that the metadata's ".json" path never lands here.
        (MEDIA_CONTENT_ROUTE.replace("{Sid}", "{Sid:ME[0-9a-fA-F]+}"), {hdrs.METH_GET: _media}),
        (SERVICE_ROUTE, {hdrs.METH_GET: _fetch_service}),
        (SERVICE_NUMBERS_ROUTE, {hdrs.METH_GET: _list_service_numbers}),
    ]
    for path, handlers in routes:
        resource = app.router.add_resource(path)
        for method, handler in handlers.items():
            resource.add_route(method, handler)
        resource.add_route(hdrs.METH_ANY, _api_method_not_allowed)
    for prefix in _API_PREFIXES:
        app.router.add_route(hdrs.METH_ANY, prefix + "{tail:.*}", _api_not_found)
    app.router.add_get("/", _voter_page)
    app.router.add_post("/reply", _voter_reply)
    app.router.add_post("/_carrier/reply", _control_reply)
    app.router.add_get("/_carrier/stats", _control_stats)
    return app


# -- the API -----------------------------------------------------------------------------------


async def _create_message(request: web.Request) -> web.Response:
    form = await _read_form(request)
    account = request.match_info["AccountSid"]
    return await request.app[SERVER].call_api(
        request, account, lambda carrier, auth: carrier.handle_create(account, auth, form)
    )


async def _fetch_message(request: web.Request) -> web.Response:
    account, sid = request.match_info["AccountSid"], request.match_info["Sid"]
    return await request.app[SERVER].call_api(
        request, account, lambda carrier, auth: carrier.handle_fetch(account, auth, sid)
    )


async def _list_messages(request: web.Request) -> web.Response:
    account = request.match_info["AccountSid"]
    return await request.app[SERVER].call_api(
        request, account, lambda carrier, auth: carrier.handle_list(account, auth, request.query)
    )


async def _create_account(request: web.Request) -> web.Response:
    form = await _read_form(request)
    return await request.app[SERVER].call_api(
        request, None, lambda carrier, auth: carrier.handle_create_account(auth, form), True
    )


async def _list_accounts(request: web.Request) -> web.Response:
    return await request.app[SERVER].call_api(
        request,
        None,
        lambda carrier, auth: carrier.handle_list_accounts(auth, request.query),
        True,
    )


async def _fetch_account(request: web.Request) -> web.Response:
    sid = request.match_info["Sid"]
    return await request.app[SERVER].call_api(
        request, sid, lambda carrier, auth: carrier.handle_fetch_account(sid, auth), True
    )


async def _list_numbers(request: web.Request) -> web.Response:
    account = request.match_info["AccountSid"]
    return await request.app[SERVER].call_api(
        request,
        account,
        lambda carrier, auth: carrier.handle_list_numbers(account, auth, request.query),
    )


async def _list_media(request: web.Request) -> web.Response:
    account, message = request.match_info["AccountSid"], request.match_info["MessageSid"]
    return await request.app[SERVER].call_api(
        request,
        account,
        lambda carrier, auth: carrier.handle_list_media(account, auth, message, request.query),
    )


async def _fetch_media(request: web.Request) -> web.Response:
    account, message = request.match_info["AccountSid"], request.match_info["MessageSid"]
    sid = request.match_info["Sid"]
    return await request.app[SERVER].call_api(
        request,
        account,
        lambda carrier, auth: carrier.handle_fetch_media(account, auth, message, sid),
    )


async def _media(request: web.Request) -> web.Response:
    """A media item's bytes with its content type (an outbound MMS's: a redirect to its URL)."""
    account, message = request.match_info["AccountSid"], request.match_info["MessageSid"]
    sid = request.match_info["Sid"]

    def serve(carrier: FakeCarrier, auth: Auth) -> Answer | web.Response:
        try:
            item = carrier.media_content(account, auth, message, sid)
        except ApiError as err:
            return err.status, err.body()
        if item.content is None:
            return web.Response(status=302, headers={hdrs.LOCATION: item.source_url or "/"})
        return web.Response(body=item.content, headers={hdrs.CONTENT_TYPE: item.content_type})

    return await request.app[SERVER].call_api(request, account, serve)


async def _fetch_service(request: web.Request) -> web.Response:
    sid = request.match_info["Sid"]
    return await request.app[SERVER].call_api(
        request, None, lambda carrier, auth: carrier.handle_fetch_service(auth, sid)
    )


async def _list_service_numbers(request: web.Request) -> web.Response:
    sid = request.match_info["ServiceSid"]
    return await request.app[SERVER].call_api(
        request,
        None,
        lambda carrier, auth: carrier.handle_list_service_numbers(auth, sid, request.query),
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


def _basic_auth(request: web.Request) -> Auth:
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
    conversations = carrier.conversations()
    accounts = carrier.accounts()
    html = _VOTER_PAGE.render(
        conversations=conversations,
        senders={
            voter: [(ours, carrier.owner_of(ours).sid) for ours in _our_numbers(thread)]
            for voter, thread in conversations.items()
        },
        accounts=accounts,
        names={account.sid: account.friendly_name for account in accounts},
        services={account.sid: carrier.services(account.sid) for account in accounts},
        account_sid=carrier.account_sid,
        phone_number=carrier.phone_number,
        inbound_url=carrier.inbound_url,
        pending=len(carrier.pending_webhooks()),
    )
    return web.Response(text=html, content_type="text/html")


def _our_numbers(thread: list[dict[str, Any]]) -> list[str]:
    """The carrier-side numbers of a voter's conversation, the latest first."""
    numbers: dict[str, None] = {}
    for message in reversed(thread):
        ours = message["to"] if message["direction"] == "inbound" else message["from"]
        if ours:
            numbers.setdefault(ours)
    return list(numbers)


async def _voter_reply(request: web.Request) -> web.Response:
    """The voter page's reply: from, body, optional to, and an optional picture (``media``)."""
    form = await request.post()
    sender, body, to = form.get("from"), form.get("body", ""), form.get("to")
    upload = form.get("media")
    media = []
    if isinstance(upload, web.FileField):
        content = upload.file.read()
        if content:
            media.append((upload.content_type or "application/octet-stream", content))
    if not isinstance(sender, str) or not sender.strip() or not isinstance(body, str):
        return web.Response(text="Both 'from' and 'body' are required.", status=400)
    if not body and not media:
        return web.Response(text="Both 'from' and 'body' are required.", status=400)
    try:
        request.app[SERVER].carrier.reply(
            sender.strip(),
            body,
            to=to.strip() if isinstance(to, str) and to.strip() else None,
            media=media,
        )
    except ValueError as err:
        return web.Response(text=str(err), status=409)
    raise web.HTTPSeeOther(location="/")


async def _control_reply(request: web.Request) -> web.Response:
    """``POST /_carrier/reply``: form or JSON ``from``, ``body``, optional ``to``; in JSON,
    optional ``media``: a list of ``{"content_type": ..., "base64": ...}``."""
    fields = await _json_or_form(request)
    sender, body, to = fields.get("from"), fields.get("body"), fields.get("to")
    media = _media_of(fields.get("media", []))
    if media is None:
        return web.json_response({"error": "media must be [{content_type, base64}]"}, status=400)
    if not isinstance(sender, str) or not sender or not isinstance(body, str):
        return web.json_response({"error": "fields 'from' and 'body' are required"}, status=400)
    if not body and not media:
        return web.json_response({"error": "fields 'from' and 'body' are required"}, status=400)
    try:
        webhook = request.app[SERVER].carrier.reply(
            sender, body, to=to if isinstance(to, str) and to else None, media=media
        )
    except ValueError as err:
        return web.json_response({"error": str(err)}, status=409)
    reply = {"url": webhook.url, "params": webhook.params, "headers": webhook.headers}
    return web.json_response(reply, status=201)


async def _control_stats(request: web.Request) -> web.Response:
    """``GET /_carrier/stats``: the carrier's counts (see :meth:`FakeCarrier.stats`)."""
    return web.json_response(request.app[SERVER].carrier.stats())


def _media_of(value: Any) -> list[tuple[str, bytes]] | None:
    """The control endpoint's media list, decoded; None when malformed."""
    if not isinstance(value, list):
        return None
    media = []
    for item in value:
        if not isinstance(item, Mapping):
            return None
        kind, encoded = item.get("content_type"), item.get("base64")
        if not isinstance(kind, str) or not isinstance(encoded, str):
            return None
        try:
            media.append((kind, base64.b64decode(encoded, validate=True)))
        except binascii.Error:
            return None
    return media


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
        "--concurrency",
        type=_positive,
        default=None,
        help="API requests the main account may have in flight; more get 429 (default: any)",
    )
    parser.add_argument(
        "--delivery-threads",
        type=_positive,
        default=1,
        help="webhooks POSTed at once at most (default: 1, one after another)",
    )
    parser.add_argument(
        "--account",
        dest="accounts",
        action="append",
        default=[],
        type=_account_spec,
        metavar="[SID:TOKEN:]NUMBER[,NUMBER...]",
        help="another (strict) account owning these numbers; repeatable. Without SID:TOKEN "
        "they are made up and printed at start",
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
        concurrency=args.concurrency,
        delivery_threads=args.delivery_threads,
    )
    for sid, token, numbers in args.accounts:
        try:
            carrier.add_account(sid, token, numbers=numbers)
        except ValueError as err:
            parser.error(f"--account: {err}")
    return CarrierServer(carrier, args.host, args.port, latency=args.latency)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def _account_spec(text: str) -> tuple[str | None, str | None, list[str]]:
    """``[SID:TOKEN:]NUMBER[,NUMBER...]`` -> (sid, token, numbers)."""
    parts = text.split(":")
    if len(parts) not in (1, 3) or not all(parts):
        raise argparse.ArgumentTypeError(f"{text!r} is not [SID:TOKEN:]NUMBER[,NUMBER...]")
    numbers = [number.strip() for number in parts[-1].split(",") if number.strip()]
    if len(parts) == 1:
        return None, None, numbers
    return parts[0], parts[1], numbers


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
    for account in carrier.accounts()[1:]:
        print(
            f"  account {account.sid} (auth token {account.auth_token}): "
            f"{', '.join(account.numbers)}",
            flush=True,
        )
    carrier.start_delivery()
    try:
        server.wait()
    finally:
        carrier.stop_delivery()


if __name__ == "__main__":
    main()
