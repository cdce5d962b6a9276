"""The fake carrier over HTTP: Twilio's Messages API, the voter page, and `main()`."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, jsonify, redirect, render_template_string, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException
from werkzeug.serving import make_server

from gotv.fakecarrier.carrier import FakeCarrier
from gotv.fakecarrier.protocol import (
    API_VERSION,
    MESSAGE_ROUTE,
    MESSAGES_ROUTE,
    ApiError,
)

_VOTER_PAGE = """<!doctype html>
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
{{ pending }} webhook(s) waiting. <a href="{{ url_for('voter_page') }}">Refresh</a></p>
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
<form method="post" action="{{ url_for('voter_reply') }}">
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
<form method="post" action="{{ url_for('voter_reply') }}">
<label>From <input name="from" placeholder="+15555550100" required></label>
<label>Message <input name="body" required></label>
<button type="submit">Send</button>
</form>
</section>
</body>
</html>
"""


def _basic_auth() -> tuple[str | None, str | None]:
    auth = request.authorization
    if auth is None or auth.type != "basic":
        return None, None
    return auth.username, auth.password


def _api_response(status: int, body: dict[str, Any]) -> Response:
    response = jsonify(body)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
    return response


def _control_reply(carrier: FakeCarrier) -> ResponseReturnValue:
    """``POST /_carrier/reply``: form or JSON ``from``, ``body``, optional ``to``."""
    data = request.get_json(silent=True) if request.is_json else request.form
    fields: Mapping[str, Any] = data if isinstance(data, Mapping) else {}
    sender, body, to = fields.get("from"), fields.get("body"), fields.get("to")
    if not isinstance(sender, str) or not sender or not isinstance(body, str) or not body:
        return jsonify({"error": "fields 'from' and 'body' are required"}), 400
    try:
        webhook = carrier.reply(sender, body, to=to if isinstance(to, str) and to else None)
    except ValueError as err:
        return jsonify({"error": str(err)}), 409
    return jsonify({"url": webhook.url, "params": webhook.params, "headers": webhook.headers}), 201


def _api_not_found(err: HTTPException) -> ResponseReturnValue:
    # Inside the API, answer with Twilio's error JSON; elsewhere keep Flask's page.
    status = err.code or 404
    if not request.path.startswith(f"/{API_VERSION}/"):
        return err.get_response()
    if status == 405:
        return _api_response(status, ApiError(status, 20004, "Method not allowed").body())
    message = f"The requested resource {request.path} was not found"
    return _api_response(status, ApiError(status, 20404, message).body())


def create_carrier_app(carrier: FakeCarrier) -> Flask:
    """Build the Flask app serving ``carrier``: Twilio's Messages API plus the voter page.

    Routes: ``POST`` :data:`MESSAGES_ROUTE`, ``GET`` :data:`MESSAGE_ROUTE` (Basic auth),
    ``GET /`` (voter page), ``POST /reply`` (form: from, body; redirects to ``/``) and
    ``POST /_carrier/reply`` (form or JSON: from, body, optional to; returns the webhook).
    The control routes need no auth: this is a local fake.
    """
    app = Flask(__name__)

    @app.post(MESSAGES_ROUTE)
    def create_message(AccountSid: str) -> Response:
        return _api_response(*carrier._handle_send(AccountSid, _basic_auth(), request.form))

    @app.get(MESSAGE_ROUTE)
    def fetch_message(AccountSid: str, Sid: str) -> Response:
        return _api_response(*carrier._handle_fetch(AccountSid, _basic_auth(), Sid))

    @app.get("/")
    def voter_page() -> str:
        return render_template_string(
            _VOTER_PAGE,
            conversations=carrier.conversations(),
            account_sid=carrier.account_sid,
            phone_number=carrier.phone_number,
            inbound_url=carrier.inbound_url,
            pending=len(carrier.pending_webhooks()),
        )

    @app.post("/reply")
    def voter_reply() -> ResponseReturnValue:
        sender = request.form.get("from", "").strip()
        body = request.form.get("body", "")
        if not sender or not body:
            return "Both 'from' and 'body' are required.", 400
        try:
            carrier.reply(sender, body)
        except ValueError as err:
            return str(err), 409
        return redirect(url_for("voter_page"), code=303)

    @app.post("/_carrier/reply")
    def control_reply() -> ResponseReturnValue:
        return _control_reply(carrier)

    app.register_error_handler(404, _api_not_found)
    app.register_error_handler(405, _api_not_found)
    return app


def main(argv: list[str] | None = None) -> None:
    """Serve a fake carrier until interrupted; credentials come from the command line only."""
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
    args = parser.parse_args(argv)
    carrier = FakeCarrier(
        args.account_sid,
        args.auth_token,
        inbound_url=args.inbound_url,
        phone_number=args.phone_number,
        delivery_delay=args.delay,
    )
    server = make_server(args.host, args.port, create_carrier_app(carrier), threaded=True)
    print(
        f"Fake carrier listening on http://{args.host}:{server.server_port} "
        f"(voter page at /; inbound webhooks to {args.inbound_url or 'nowhere'})",
        flush=True,
    )
    carrier.start_delivery()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        carrier.stop_delivery()


if __name__ == "__main__":
    main()
