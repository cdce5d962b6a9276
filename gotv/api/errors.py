"""The API's one error shape: {"error": {"code": ..., "message": ...}}, on every /api/ path."""

from __future__ import annotations

import re
from typing import Any

from flask import Response, jsonify, request
from werkzeug.exceptions import HTTPException

API_PATH = "/api/"


def is_api_request() -> bool:
    return request.path.startswith(API_PATH)


def json_error(status: int, code: str, message: str, **details: Any) -> Response:
    """An error response in the API's shape; `details` go beside code and message."""
    response = jsonify({"error": {"code": code, "message": message, **details}})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="gotv"'
    return response


def from_http_exception(error: HTTPException) -> Response:
    """Werkzeug's 404, 405, 413... in the API's shape: code "not_found", "method_not_allowed"."""
    status = error.code or 500
    code = re.sub(r"[^a-z0-9]+", "_", (error.name or "error").lower()).strip("_")
    response = json_error(status, code, error.description or error.name or "")
    if status == 405 and error.get_response().headers.get("Allow"):
        response.headers["Allow"] = error.get_response().headers["Allow"]
    return response


def http_error(error: HTTPException) -> HTTPException | Response:
    """The app's handler of last resort: JSON under /api/, Werkzeug's own page elsewhere."""
    if error.code is None or not is_api_request():
        return error
    return from_http_exception(error)
