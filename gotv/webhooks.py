"""Twilio's webhooks: replies from voters and delivery status callbacks.

Every request must carry a valid X-Twilio-Signature and be addressed to our PUBLIC_URL's host
(403 otherwise). Valid requests get 200
quickly, even for messages we do not know, so Twilio does not retry them forever.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, wraps
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, abort, current_app, request

from gotv import sms, texting

bp = Blueprint("webhooks", __name__, url_prefix="/twilio")

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def signed_by_twilio(view: Callable[..., Any]) -> Callable[..., Any]:
    """Refuse with 403 any request whose signature does not match our auth token."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        signature = request.headers.get("X-Twilio-Signature", "")
        url = request.url
        if (
            not signature
            or not addressed_to_us(url)
            or not sms.is_valid_signature(url, request.form, signature)
        ):
            abort(403)
        return view(*args, **kwargs)

    return wrapped


def addressed_to_us(url: str) -> bool:
    """True when `url` has our PUBLIC_URL's scheme and host.

    Twilio signs the URL it calls, host included, and the Host header is the caller's to choose:
    without this, a request Twilio signed for another deployment on the same account (staging,
    say) could be replayed here with that deployment's Host.
    """
    asked = urlsplit(url)
    return (asked.scheme, asked.netloc.lower()) == our_origin(current_app.config["PUBLIC_URL"])


@cache
def our_origin(public_url: str) -> tuple[str, str]:
    """PUBLIC_URL's scheme and host, as addressed_to_us compares them."""
    ours = urlsplit(public_url)
    return ours.scheme, ours.netloc.lower()


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
