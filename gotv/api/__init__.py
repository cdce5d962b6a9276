"""The JSON API (/api/v1) and its tokens' settings page (/settings/api-tokens).

`tokens` and `service` hold the rules as plain functions; `views` and `settings_web` are thin.
"""

from __future__ import annotations

from flask import Flask
from werkzeug.exceptions import HTTPException

from gotv.api import errors, views
from gotv.web import api_tokens
from gotv.web.auth import csrf


def init_app(app: Flask) -> None:
    """Register the API and the settings page.

    The API is exempt from CSRF: it takes no cookies, only a bearer token, which a browser
    never adds to a forged request. Its errors are JSON, even Werkzeug's 404s and 405s.
    """
    app.register_blueprint(views.bp)
    app.register_blueprint(api_tokens.bp)
    csrf.exempt(views.bp)
    app.register_error_handler(HTTPException, errors.http_error)
