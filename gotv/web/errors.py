"""Pages for requests gotv refuses or cannot serve: not found, forbidden, a form that expired,
too many sign-ins, too large, no database, our own failure.

Each is a styled page that says plainly what happened and what to do, with the way back.
Twilio's webhooks get a bare status instead of a page: a 503 tells Twilio the request failed,
so it is not taken as delivered.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, abort, current_app, render_template, request
from flask_babel import gettext
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge, TooManyRequests

from gotv.api.errors import from_http_exception, is_api_request, json_error
from gotv.web.admission import DOWNLOAD_RETRY_AFTER_SECONDS, DownloadsBusy

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 60


def init_app(app: Flask) -> None:
    app.before_request(refuse_nul_characters)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(TooManyRequests, too_many_requests)
    app.register_error_handler(RequestEntityTooLarge, too_large)
    app.register_error_handler(DBAPIError, database_error)
    app.register_error_handler(PoolTimeout, no_connection_in_time)
    app.register_error_handler(DownloadsBusy, downloads_busy)


def refuse_nul_characters() -> None:
    """400 for a NUL character in a query or form value or an uploaded file's name.

    No one types one, PostgreSQL cannot store one in text (its driver raises), and SQLite
    would keep it: refused here, once, for every page and the API. (Twilio's webhooks read
    their own body and drop it themselves: gotv/web/webhooks.py.)
    """
    if request.blueprint == "webhooks":
        return
    values = [value for _, value in request.args.items(multi=True)]
    if not is_api_request():  # (the API reads its own bodies, streaming uploads)
        values += (value for _, value in request.form.items(multi=True))
        values += (file.filename or "" for _, file in request.files.items(multi=True))
    if any("\x00" in value for value in values):
        abort(400)


def http_error(error: HTTPException) -> Response:
    """Every other refusal (404, 403, 400, 405, an expired form, a 500): a styled page with the
    way back; the API answers JSON, Twilio's webhooks a bare status."""
    if is_api_request():
        return from_http_exception(error)
    code = error.code or 500
    if request.blueprint == "webhooks":
        return Response("", code)
    title, explanation = describe(error)
    try:
        page = render_template("errors/page.html", title=title, explanation=explanation)
    except Exception:  # the page needs the database (who is signed in): say it plainly
        log.exception("could not render the error page for %s", code)
        page = f"<!doctype html><title>{code}</title><h1>{code}</h1><p><a href='/'>gotv</a></p>"
    response = Response(page, code, mimetype="text/html")
    if code == 405 and "Allow" in error.get_headers():
        response.headers["Allow"] = dict(error.get_headers())["Allow"]
    return response


def describe(error: HTTPException) -> tuple[str, str]:
    """A page's title and explanation, in the page's language."""
    if isinstance(error, CSRFError):
        return (
            gettext("This form expired"),
            gettext(
                "The page was open too long, or you signed in again elsewhere. Go back, reload"
                " the page and try again."
            ),
        )
    if error.code == 404:
        return (
            gettext("Page not found"),
            gettext("There is nothing here: the link may be old, or the page is not yours."),
        )
    if error.code == 403:
        return (
            gettext("Not allowed"),
            gettext("Your role in the organization does not allow this. Ask an organizer."),
        )
    if error.code is not None and error.code >= 500:
        return (
            gettext("Something went wrong on our side"),
            gettext("Nothing you did caused this. Try again in a minute."),
        )
    return (
        gettext("That did not work"),
        gettext("gotv could not understand that request. Go back and try again."),
    )


def too_many_requests(error: TooManyRequests) -> Response:
    """Only sign-in is rate limited, so the page speaks of sign-in attempts."""
    if is_api_request():
        return from_http_exception(error)
    page = render_template("errors/too_many_attempts.html")
    return Response(page, 429, {"Retry-After": str(RETRY_AFTER_SECONDS)})


def too_large(error: RequestEntityTooLarge) -> Response:
    """Name the limit the request went over: the whole upload, or one form field."""
    if is_api_request():
        return from_http_exception(error)
    upload_limit = current_app.config.get("MAX_CONTENT_LENGTH")
    length = request.content_length
    # A chunked body has no length: it was stopped where it passed the upload limit.
    if upload_limit and (length is None or length > upload_limit):
        limit, what = upload_limit, "upload"
    else:
        limit, what = current_app.config.get("MAX_FORM_MEMORY_SIZE") or 0, "form field"
    page = render_template("errors/too_large.html", limit=human_size(limit), what=what)
    return Response(page, 413)


def database_error(error: DBAPIError) -> Response:
    """503 and Retry-After while the database cannot be reached; other errors stay 500s."""
    if not (isinstance(error, OperationalError | InterfaceError) or error.connection_invalidated):
        raise error
    log.warning("database unreachable: %s", error.orig or error)
    return unavailable("database_unavailable", "Try again in a minute.", RETRY_AFTER_SECONDS)


def no_connection_in_time(error: PoolTimeout) -> Response:
    """503 and Retry-After when every database connection of the process stayed busy for the
    pool's whole timeout (requests take turns for them, so this means something held them far
    too long): the request did nothing, and may be sent again."""
    log.warning("no database connection in time: %s", error)
    return unavailable("busy", "gotv is busy; try again in a minute.", RETRY_AFTER_SECONDS)


def downloads_busy(error: DownloadsBusy) -> Response:
    """503 and Retry-After: the process streams as many downloads as its budget allows."""
    message = "Too many downloads are running right now; try again in a minute."
    return unavailable("downloads_busy", message, DOWNLOAD_RETRY_AFTER_SECONDS)


def unavailable(what: str, message: str, retry_after: int) -> Response:
    """A 503 with Retry-After: bare for Twilio's webhooks, JSON for the API, else the page
    errors/`what`.html. A static file: rendering a template would ask the database who is
    signed in."""
    headers = {"Retry-After": str(retry_after)}
    if request.blueprint == "webhooks":
        return Response("", 503, headers)
    if is_api_request():
        response = json_error(503, what, message)
        response.headers.update(headers)
        return response
    with current_app.open_resource(f"templates/errors/{what}.html") as page:
        return Response(page.read(), 503, headers, mimetype="text/html")


def human_size(size: int) -> str:
    """1024 -> "1 KB", 256 * 1024 * 1024 -> "256 MB" (rounded to whole units)."""
    for unit in ("bytes", "KB", "MB"):
        if size < 1024:
            return f"{size} {unit}"
        size //= 1024
    return f"{size} GB"
