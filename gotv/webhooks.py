"""Twilio's webhooks: replies from voters and delivery status callbacks.

Every request must carry a valid X-Twilio-Signature and be addressed to our PUBLIC_URL's host
(403 otherwise). Valid requests get 200
quickly, even for messages we do not know, so Twilio does not retry them forever.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from functools import cache, wraps
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, abort, current_app, request
from werkzeug.datastructures import MultiDict

from gotv import sms, texting

bp = Blueprint("webhooks", __name__, url_prefix="/twilio")

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def signed_by_twilio(view: Callable[..., Any]) -> Callable[..., Any]:
    """Refuse with 403 any request whose signature does not match our auth token."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        signature = request.headers.get("X-Twilio-Signature", "")
        url = request.url
        if not signature or not addressed_to_us(url) or not signed(url, request.form, signature):
            abort(403)
        return view(*args, **kwargs)

    return wrapped


def signed(url: str, params: MultiDict[str, str], signature: str) -> bool:
    """True when `signature` is Twilio's signature of `url` and `params`.

    The URL as we received it is nearly always the one Twilio signed, so its HMAC is tried
    alone first: one HMAC instead of the two (with and without the port) and the URL parsing of
    twilio's own check, which decides whenever that one does not match.
    """
    if hmac.compare_digest(signature_of(url, params), signature):
        return True
    return sms.is_valid_signature(url, params, signature)


def signature_of(url: str, params: MultiDict[str, str]) -> str:
    """Twilio's X-Twilio-Signature for `url` and `params`, as twilio's RequestValidator
    computes it: base64(HMAC-SHA1(auth token, url + each name and value, sorted))."""
    payload = url + "".join(
        name + value for name in sorted(params) for value in sorted(set(params.getlist(name)))
    )
    token = current_app.config["TWILIO_AUTH_TOKEN"].encode()
    return base64.b64encode(hmac.new(token, payload.encode(), hashlib.sha1).digest()).decode()


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
