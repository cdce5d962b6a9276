"""Twilio's webhooks: replies from voters and delivery status callbacks.

Every request must carry a valid X-Twilio-Signature (403 otherwise). Valid requests get 200
quickly, even for messages we do not know, so Twilio does not retry them forever.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, Response, abort, request

from gotv import sms, texting

bp = Blueprint("webhooks", __name__, url_prefix="/twilio")

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def signed_by_twilio(view: Callable[..., Any]) -> Callable[..., Any]:
    """Refuse with 403 any request whose signature does not match our auth token."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        signature = request.headers.get("X-Twilio-Signature", "")
        if not signature or not sms.is_valid_signature(request.url, request.form, signature):
            abort(403)
        return view(*args, **kwargs)

    return wrapped


@bp.post("/inbound")
@signed_by_twilio
def inbound() -> Response:
    texting.record_inbound(request.form)
    return Response(EMPTY_TWIML, mimetype="text/xml")


@bp.post("/status")
@signed_by_twilio
def status() -> Response:
    texting.record_status(request.form, request.args.get("message"))
    return Response("", status=200)
