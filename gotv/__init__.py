"""gotv: peer-to-peer get-out-the-vote texting."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, request
from werkzeug.middleware.proxy_fix import ProxyFix


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the web app from `config`, or from the environment when none is given."""
    from gotv import api, cli, db, encryption, logs
    from gotv import config as configuration
    from gotv.edge import errors as error_reports
    from gotv.edge import queue, sms
    from gotv.web import (
        account,
        admission,
        audit,
        auth,
        campaigns,
        content,
        errors,
        exports,
        health,
        i18n,
        ids,
        imports,
        inbox,
        operations,
        optouts,
        redaction,
        review,
        settings,
        team,
        trash,
        webhooks,
    )

    app = Flask(__name__)
    if config is None:
        config = configuration.from_environment()
    else:
        configuration.check(config)
    app.config.from_mapping(config)
    # Flask's defaults hold MAX_CONTENT_LENGTH (as None: no limit), so setdefault would keep
    # that None. With a limit, Werkzeug refuses a larger Content-Length before reading any of
    # the body, and stops a chunked body as soon as it passes the limit, on every path.
    app.config["MAX_CONTENT_LENGTH"] = (
        config.get("MAX_CONTENT_LENGTH") or configuration.DEFAULT_UPLOAD_LIMIT
    )
    # Flask's own default for the session cookie is None (no SameSite at all); only a value
    # given in `config` overrides Lax.
    app.config["SESSION_COOKIE_SAMESITE"] = config.get("SESSION_COOKIE_SAMESITE", "Lax")
    app.config.setdefault("REMEMBER_COOKIE_SAMESITE", "Lax")
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config["REDIS_URL"])
    app.config.setdefault("TWILIO_API_URL", configuration.TWILIO_API_URL)
    app.config["TWILIO_MESSAGING_URL"] = configuration.messaging_url(app.config)
    app.config.setdefault("TWILIO_CONCURRENCY", 100)
    if not app.config.get("UPLOAD_DIR"):
        app.config["UPLOAD_DIR"] = os.path.join(app.instance_path, "uploads")
    # Trust X-Forwarded-* only from as many proxies as the operator says are in front: with
    # none configured, a client's own header would choose its address (docs/deploy.md).
    proxies = app.config.get("PROXY_COUNT", 0)
    if proxies:
        # Twilio signs the public URL; behind a proxy, rebuild it from the forwarded headers.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies, x_port=proxies
        )

    error_reports.init(app.config)
    ids.init_app(app)  # before any blueprint: every <int:...> is an id
    encryption.init_app(app)
    logs.init_app(app)
    db.init_app(app)
    auth.init_app(app)
    i18n.init_app(app)
    sms.init_app(app)
    queue.init_app(app)
    inbox.init_app(app)
    cli.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(campaigns.bp)
    app.register_blueprint(content.bp)
    app.register_blueprint(imports.bp)
    app.register_blueprint(inbox.bp)
    app.register_blueprint(operations.bp)
    app.register_blueprint(optouts.bp)
    app.register_blueprint(settings.bp)
    app.register_blueprint(team.bp)
    app.register_blueprint(team.join_bp)
    app.register_blueprint(account.bp)
    app.register_blueprint(trash.bp)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(review.bp)
    app.register_blueprint(exports.bp)
    app.register_blueprint(audit.bp)
    app.register_blueprint(health.bp)
    auth.csrf.exempt(webhooks.bp)
    api.init_app(app)
    auth.limit_logins(app)
    errors.init_app(app)
    app.after_request(add_security_headers)
    app.logger.addFilter(redaction.RedactingFilter())  # "Exception on /join/<token> [POST]"
    # Outermost: requests take turns, one for each database connection the process keeps;
    # the live streams, waiting on Redis, do not.
    app.wsgi_app = admission.Admission(  # type: ignore[method-assign]
        app.wsgi_app,
        app.config.get("DATABASE_POOL_SIZE") or admission.TURNS,
        unlimited=[
            rule.rule
            for endpoint in ("inbox.events", "health.healthz", "health.readyz", "health.prometheus")
            for rule in app.url_map.iter_rules(endpoint)
        ],
    )
    return app


def add_security_headers(response: Response) -> Response:
    """Headers every page gets: no framing, no sniffing, scripts and styles only from us.

    Over HTTPS, HSTS too: browsers then refuse plain HTTP to this host for a year.
    """
    headers = response.headers
    for name, value in SECURITY_HEADERS:
        if name not in headers:
            headers.add(name, value)
    if request.is_secure and "Strict-Transport-Security" not in headers:
        headers.add("Strict-Transport-Security", "max-age=31536000")
    return response


SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    (
        "Content-Security-Policy",
        "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    ),
)
