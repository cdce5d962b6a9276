"""Twilio's webhooks: replies from voters and delivery status callbacks.

Every request must come from a Twilio account gotv knows (`AccountSid`: an organization's own,
or the instance's), carry a valid X-Twilio-Signature made with that account's auth token, and be
addressed to our PUBLIC_URL's host; a reply must come to a sender of that account's (403
otherwise). Valid requests get 200 quickly, even for messages we do not know or numbers nobody
uses, so Twilio does not retry them forever.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, wraps
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from flask import Blueprint, Response, abort, current_app, request
from werkzeug.datastructures import MultiDict

from gotv.edge import metrics, sms
from gotv.texting import replies, senders

bp = Blueprint("webhooks", __name__, url_prefix="/twilio")

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def signed_by_twilio(view: Callable[..., Any]) -> Callable[..., Any]:
    """Refuse with 403 any request that is not signed with the auth token of the account it
    names; pass the view the parameters Twilio posted and that account's SID."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with metrics.WEBHOOK_SECONDS.labels(view.__name__).time():
            return checked(*args, **kwargs)

    def checked(*args: Any, **kwargs: Any) -> Any:
        signature = request.headers.get("X-Twilio-Signature", "")
        params = posted_params()
        account_sid = params.get("AccountSid", "")
        credentials = senders.credentials_for(account_sid) if account_sid else None
        if (
            not signature
            or credentials is None
            or not addressed_to_us()
            or not sms.is_valid_signature(credentials.auth_token, called_url(), params, signature)
        ):
            abort(403)
        body = request.get_data(as_text=True)
        if "%00" in body or "\x00" in body:  # (signed as posted, so dropped only now)
            params = without_nul(params)
        return view(params, account_sid, *args, **kwargs)

    return wrapped


def posted_params() -> MultiDict[str, str]:
    """The form Twilio posted (always application/x-www-form-urlencoded), parsed straight from
    the body: werkzeug's general form parser costs twice as much.

    :raise 413: for a body over MAX_WEBHOOK_BYTES, before the signature is even checked.
    """
    request.max_content_length = MAX_WEBHOOK_BYTES
    return MultiDict(parse_qsl(request.get_data(as_text=True), keep_blank_values=True))


def without_nul(params: MultiDict[str, str]) -> MultiDict[str, str]:
    """The parameters with any NUL character dropped (PostgreSQL cannot store one in text): a
    voter's text is kept, and a "STOP" with one still opts the voter out."""
    return MultiDict((key, value.replace("\x00", "")) for key, value in params.items(multi=True))


# Twilio's largest webhook (a 1,600-character body, ten media URLs) is a few kilobytes; the
# app's own limit is for voter files.
MAX_WEBHOOK_BYTES = 64 * 1024


def called_url() -> str:
    """The URL Twilio called, as it signed it: percent-encoded, as it came.

    (request.url decodes it into an IRI, at a cost greater than the signature's own HMAC.)
    """
    path = quote(request.script_root + request.path, safe=PATH_SAFE)
    url = f"{request.scheme}://{request.host}{path}"
    query = request.query_string.decode("latin-1")
    return f"{url}?{quote(query, safe=QUERY_SAFE)}" if query else url


# What a URL keeps unquoted (werkzeug's own choice for request.url).
PATH_SAFE = "!$&'()*+,/:;=@%"
QUERY_SAFE = PATH_SAFE + "?"


def addressed_to_us() -> bool:
    """True when the request came to our PUBLIC_URL's scheme and host.

    Twilio signs the URL it calls, host included, and the Host header is the caller's to choose:
    without this, a request Twilio signed for another deployment on the same account (staging,
    say) could be replayed here with that deployment's Host.
    """
    asked = (request.scheme, request.host.lower())
    return asked == our_origin(current_app.config["PUBLIC_URL"])


@cache
def our_origin(public_url: str) -> tuple[str, str]:
    """PUBLIC_URL's scheme and host, as addressed_to_us compares them."""
    ours = urlsplit(public_url)
    return ours.scheme, ours.netloc.lower()


@bp.post("/inbound")
@signed_by_twilio
def inbound(params: MultiDict[str, str], account_sid: str) -> Response:
    to, service = params.get("To", ""), params.get("MessagingServiceSid", "")
    recipient = senders.recipient_of(account_sid, to, service)
    if recipient is senders.FOREIGN:
        abort(403)  # another of our accounts holds that number: not this account's to report
    replies.record_inbound(params, account_sid, recipient)
    return Response(EMPTY_TWIML, mimetype="text/xml")


@bp.post("/status")
@signed_by_twilio
def status(params: MultiDict[str, str], account_sid: str) -> Response:
    replies.record_status(params, account_sid, request.args.get("message"))
    return Response("", status=200)
