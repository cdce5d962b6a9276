"""Hostile input and safe failure: guessing passwords, planted sessions, forged webhooks, markup
in every field, oversized uploads, and a database that does not answer.

Each test goes through the real pages with the test client; apps with a broken Redis, database or
a small upload limit are built with create_app, as production builds them.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import EnvironBuilder, FlaskClient
from markupsafe import escape
from sqlalchemy import func, select
from werkzeug.test import TestResponse, run_wsgi_app

from gotv import config as configuration
from gotv import create_app
from gotv.db import db
from gotv.edge import storage
from gotv.fakecarrier import twilio_signature
from gotv.models import (
    Campaign,
    Contact,
    ContactImport,
    ContactStatus,
    Direction,
    Message,
    MessageStatus,
    Organization,
    User,
)
from gotv.models import utcnow as now_utc
from tests.conftest import (
    AUTH_TOKEN,
    PUBLIC_URL,
    closed_port,
    config_like,
    csrf_token,
    login,
    run_jobs,
)
from tests.factories import PASSWORD, make_api_token, make_campaign, make_message
from tests.test_webhooks import inbound_params, post_signed

SCRIPT_TAG = "<script>alert(1)</script>"
IMG_ONERROR = '"><img src=x onerror=alert(1)>'
SQL = "'; DROP TABLE message; --"
HOSTILE = (SCRIPT_TAG, IMG_ONERROR, SQL)
ADDRESS = "203.0.113.7"
OTHER_ADDRESS = "198.51.100.9"


def app_like(app: Flask, in_context: bool = True, **changes: Any) -> Iterator[Flask]:
    """An app configured like the test app, with `changes`; its engines are disposed after.

    With `in_context`, the app's context stays pushed, so its requests share it as the test app's
    requests share the test's: a request's own context would, on leaving, close the test's
    session and so roll back the rows the test made.
    """
    other = create_app(config_like(app, **changes))
    if in_context:
        with other.app_context():
            yield other
    else:
        yield other
    with other.app_context():
        db.engine.dispose()
    storage.dispose(other)  # (the upload store's own connections, on PostgreSQL)


def sign_in(client: FlaskClient, email: str, password: str, address: str = ADDRESS) -> TestResponse:
    """POST the login form from `address` (as the proxy in front of gotv reports it)."""
    token = csrf_token(client.get("/login").get_data(as_text=True))
    return client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": token},
        headers={"X-Forwarded-For": address},
    )


def assert_security_headers(response: TestResponse) -> None:
    headers = response.headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin"
    policy = headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy


# --- Guessing passwords ----------------------------------------------------------------------


def test_the_eleventh_failed_sign_in_from_one_address_in_a_minute_is_refused(
    client: FlaskClient, volunteer: User
) -> None:
    failures = [sign_in(client, f"guess{n}@example.test", "wrong").status_code for n in range(10)]

    refused = sign_in(client, volunteer.email, PASSWORD)

    assert failures == [200] * 10
    assert refused.status_code == 429
    assert "Too many sign-in attempts; try again in a minute" in refused.get_data(as_text=True)
    assert refused.headers["Retry-After"] == "60"
    assert_security_headers(refused)
    assert client.get("/texting").status_code == 302


def test_the_sixth_failed_sign_in_for_one_email_is_refused_from_any_address(
    client: FlaskClient, volunteer: User
) -> None:
    failures = [
        sign_in(client, volunteer.email, "wrong", f"203.0.113.{n}").status_code for n in range(5)
    ]

    refused = sign_in(client, volunteer.email.upper(), PASSWORD, OTHER_ADDRESS)

    assert failures == [200] * 5
    assert refused.status_code == 429


def test_addresses_behind_the_proxy_are_counted_apart(client: FlaskClient, volunteer: User) -> None:
    for n in range(10):
        sign_in(client, f"guess{n}@example.test", "wrong", ADDRESS)

    assert sign_in(client, volunteer.email, PASSWORD, ADDRESS).status_code == 429
    assert sign_in(client, volunteer.email, PASSWORD, OTHER_ADDRESS).status_code == 302


def test_successful_sign_ins_are_not_counted(client: FlaskClient, volunteer: User) -> None:
    statuses = [sign_in(client, volunteer.email, PASSWORD).status_code for _ in range(12)]

    assert statuses == [302] * 12


def test_webhooks_and_other_pages_are_not_rate_limited(
    client: FlaskClient, volunteer: User
) -> None:
    login(client, volunteer)

    webhooks = {
        post_signed(client, "/twilio/inbound", inbound_params(MessageSid=f"SM{n:032d}")).status_code
        for n in range(30)
    }
    pages = {client.get("/texting").status_code for _ in range(30)}
    login_pages = {client.get("/login").status_code for _ in range(30)}

    assert (webhooks, pages, login_pages) == ({200}, {200}, {200})


@pytest.fixture
def app_with_redis_down(app: Flask) -> Iterator[Flask]:
    yield from app_like(app, REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0")


def test_sign_in_works_while_redis_is_down_and_is_limited_in_memory_instead(
    app_with_redis_down: Flask, volunteer: User, caplog: pytest.LogCaptureFixture
) -> None:
    client = app_with_redis_down.test_client()

    with caplog.at_level(logging.WARNING):
        signed_in = sign_in(client, volunteer.email, PASSWORD)
    failures = [sign_in(client, f"guess{n}@example.test", "wrong").status_code for n in range(10)]
    refused = sign_in(client, volunteer.email, PASSWORD)

    assert signed_in.status_code == 302
    assert "storage unreachable" in caplog.text
    assert failures == [200] * 10
    assert refused.status_code == 429


# --- Sessions and cookies --------------------------------------------------------------------


def test_a_session_planted_before_sign_in_does_not_survive_it(
    client: FlaskClient, volunteer: User
) -> None:
    with client.session_transaction() as planted:
        planted["planted"] = "by someone else"
    before = client.get_cookie("session")
    assert before is not None

    login(client, volunteer)

    after = client.get_cookie("session")
    assert after is not None and after.value != before.value
    with client.session_transaction() as session:
        assert "planted" not in session and session["_user_id"] == volunteer.get_id()
    stranger = client.application.test_client()
    stranger.set_cookie("session", before.value)
    with client.application.app_context():  # a request of its own, as in production
        assert stranger.get("/texting").status_code == 302


def test_a_csrf_token_from_before_sign_in_is_refused_after_it(
    client: FlaskClient, volunteer: User
) -> None:
    old_token = csrf_token(client.get("/login").get_data(as_text=True))
    login(client, volunteer)

    refused = client.post("/logout", data={"csrf_token": old_token})
    new_token = csrf_token(client.get("/texting").get_data(as_text=True))
    accepted = client.post("/logout", data={"csrf_token": new_token})

    assert (refused.status_code, accepted.status_code) == (400, 302)


@pytest.fixture
def production_app(app: Flask) -> Iterator[Flask]:
    """The app as configured from a production environment."""
    environ = {
        "SECRET_KEY": "production-secret",
        "ENCRYPTION_KEYS": ",".join(app.config["ENCRYPTION_KEYS"]),
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": app.config["REDIS_URL"],
        "PUBLIC_URL": PUBLIC_URL,
        "TWILIO_ACCOUNT_SID": app.config["TWILIO_ACCOUNT_SID"],
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": app.config["TWILIO_FROM_NUMBER"],
    }
    yield from app_like(app, **configuration.from_environment(environ))


def sign_in_at(client: FlaskClient, email: str, password: str, **environ: str) -> TestResponse:
    """POST the login form on PUBLIC_URL, the request's environ given (REMOTE_ADDR, headers)."""
    page = client.get(PUBLIC_URL + "/login", environ_overrides=environ)
    return client.post(
        PUBLIC_URL + "/login",
        data={"email": email, "password": password, "csrf_token": csrf_token(page.text)},
        environ_overrides={"HTTP_REFERER": PUBLIC_URL + "/login", **environ},
    )


def test_with_no_proxy_configured_a_forged_forwarded_address_does_not_escape_the_limit(
    production_app: Flask, volunteer: User
) -> None:
    client = production_app.test_client()
    forged = [
        sign_in_at(
            client, f"guess{n}@example.test", "wrong", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}"
        ).status_code
        for n in range(10)
    ]

    refused = sign_in_at(client, volunteer.email, PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.99")

    assert forged == [200] * 10
    assert refused.status_code == 429


def test_with_no_proxy_configured_a_copied_cookie_fails_from_another_address(
    production_app: Flask, volunteer: User
) -> None:
    """Even with the victim's User-Agent and their address in X-Forwarded-For."""
    victim = production_app.test_client()
    browser = {"HTTP_USER_AGENT": "Victim's browser", "REMOTE_ADDR": ADDRESS}
    assert sign_in_at(victim, volunteer.email, PASSWORD, **browser).status_code == 302
    cookie = victim.get_cookie("session", domain="gotv.test")
    assert cookie is not None
    attacker = production_app.test_client()
    attacker.set_cookie("session", cookie.value, domain="gotv.test")

    own = victim.get(PUBLIC_URL + "/texting", environ_overrides=browser)
    with production_app.app_context():  # a request of its own, as in production
        stolen = attacker.get(
            PUBLIC_URL + "/texting",
            environ_overrides={
                "HTTP_USER_AGENT": "Victim's browser",
                "HTTP_X_FORWARDED_FOR": ADDRESS,
                "REMOTE_ADDR": OTHER_ADDRESS,
            },
        )

    assert stolen.status_code == 302 and "/login" in stolen.headers["Location"]
    assert own.status_code == 200


def test_in_production_the_session_cookie_is_secure_http_only_and_same_site_lax(
    production_app: Flask,
) -> None:
    response = production_app.test_client().get(PUBLIC_URL + "/login")

    cookies = response.headers.getlist("Set-Cookie")
    cookie = next(cookie for cookie in cookies if cookie.startswith("session="))
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"secure", "httponly", "samesite=lax"} <= flags
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"


def test_an_html_page_a_csv_export_and_twiml_all_carry_the_security_headers(
    client: FlaskClient, organizer: User
) -> None:
    login(client, organizer)

    with client.get("/opt-outs/export.csv") as export:
        assert export.mimetype == "text/csv"
        assert export.get_data(as_text=True).startswith("cell")  # read it all: closes the cursor
        assert_security_headers(export)
    page = client.get("/campaigns")
    twiml = post_signed(client, "/twilio/inbound", inbound_params())

    assert page.mimetype == "text/html" and twiml.mimetype == "text/xml"
    assert_security_headers(page)
    assert_security_headers(twiml)


# --- A database that does not answer ---------------------------------------------------------


@pytest.fixture
def app_with_database_down(app: Flask) -> Iterator[Flask]:
    """The app configured with a PostgreSQL URL on a port where nothing listens."""
    url = f"postgresql+psycopg://gotv@127.0.0.1:{closed_port()}/gotv?connect_timeout=2"
    yield from app_like(app, in_context=False, SQLALCHEMY_DATABASE_URI=url)


def use_each_apps_own_database(monkeypatch: pytest.MonkeyPatch) -> None:
    """Swap the test's session (bound to the test transaction) for Flask-SQLAlchemy's usual one,
    so an app's requests really go to its own database."""
    monkeypatch.setattr(db, "session", db._make_scoped_session({}))


def signed_in_client(app: Flask, client: FlaskClient, user: User, other: Flask) -> FlaskClient:
    """A client of `other` holding the session cookie `user` got by signing in to `app`."""
    login(client, user)
    cookie = client.get_cookie("session")
    assert cookie is not None
    other_client = other.test_client()
    other_client.set_cookie("session", cookie.value)
    return other_client


def test_a_page_answers_503_with_retry_after_when_the_database_is_unreachable(
    app_with_database_down: Flask,  # first: building an app ends the test session's savepoint
    app: Flask,
    client: FlaskClient,
    organizer: User,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    down = signed_in_client(app, client, organizer, app_with_database_down)
    use_each_apps_own_database(monkeypatch)

    response = down.get("/campaigns")

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "60"
    page = response.get_data(as_text=True)
    assert "gotv can't reach its database right now; nothing you sent was lost" in page
    assert "Traceback" not in page
    assert_security_headers(response)


def test_signing_in_answers_503_when_the_database_is_unreachable(
    app_with_database_down: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_each_apps_own_database(monkeypatch)
    client = app_with_database_down.test_client()

    response = sign_in(client, "someone@example.test", PASSWORD)

    assert response.status_code == 503
    assert "nothing you sent was lost" in response.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/twilio/inbound", "/twilio/status"])
def test_a_webhook_answers_503_when_the_database_is_unreachable_so_twilio_retries(
    app_with_database_down: Flask, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_each_apps_own_database(monkeypatch)
    client = app_with_database_down.test_client()
    params = inbound_params(MessageStatus="delivered")

    response = post_signed(client, path, params)

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "60"


# --- Oversized input -------------------------------------------------------------------------


@pytest.fixture
def app_with_small_uploads(app: Flask) -> Iterator[Flask]:
    yield from app_like(app, MAX_CONTENT_LENGTH=4096)


def test_an_upload_over_the_limit_is_refused_with_a_page_naming_the_limit(
    app_with_small_uploads: Flask, organizer: User
) -> None:
    client = app_with_small_uploads.test_client()
    login(client, organizer)
    campaign = make_campaign(organizer.organization)
    token = csrf_token(client.get(f"/campaigns/{campaign.id}").get_data(as_text=True))
    big = b"first_name,cell,zip\n" + b"Maria,+12125550242,10001\n" * 400

    response = client.post(
        f"/campaigns/{campaign.id}/imports",
        data={"csrf_token": token, "contacts": (io.BytesIO(big), "voters.csv")},
        content_type="multipart/form-data",
    )

    assert response.status_code == 413
    assert "larger than 4 KB" in response.get_data(as_text=True)
    assert_security_headers(response)


class EndlessBody(io.RawIOBase):
    """A request body that never ends (a CSV line again and again), counting what is read."""

    def __init__(self) -> None:
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        line = b"Maria,+12125550142,10001\n"
        size = len(buffer) - len(buffer) % len(line) or len(buffer)
        buffer[:size] = (line * (size // len(line) + 1))[:size]
        self.read_bytes += size
        return size


def endless_request(
    client: FlaskClient, path: str, headers: dict[str, str], content_length: int | None
) -> tuple[TestResponse, EndlessBody]:
    """POST an endless body, with the client's session: with a (false) Content-Length, or
    chunked (no length at all, the server marking the stream as ending on its own, as gunicorn
    does for chunked bodies). Run on the WSGI app itself: the test client would measure it."""
    body = EndlessBody()
    environ = EnvironBuilder(client.application, path, method="POST", headers=headers).get_environ()
    environ["wsgi.input"] = body
    cookie = client.get_cookie("session")
    if cookie is not None:
        environ["HTTP_COOKIE"] = f"session={cookie.value}"
    if content_length is None:
        environ.pop("CONTENT_LENGTH", None)
        environ["HTTP_TRANSFER_ENCODING"] = "chunked"
        environ["wsgi.input_terminated"] = True
    else:
        environ["CONTENT_LENGTH"] = str(content_length)
    answer, status, response_headers = run_wsgi_app(client.application, environ, buffered=True)
    return TestResponse(answer, status, response_headers, request=None), body


def test_an_app_configured_without_a_limit_still_has_the_default_one(app: Flask) -> None:
    # Flask's defaults hold MAX_CONTENT_LENGTH = None: a setdefault() left it unlimited.
    given_whole = create_app(config_like(app))

    assert given_whole.config["MAX_CONTENT_LENGTH"] == configuration.DEFAULT_UPLOAD_LIMIT
    assert app.config["MAX_CONTENT_LENGTH"] == configuration.DEFAULT_UPLOAD_LIMIT


def test_a_web_upload_declaring_more_than_the_limit_is_refused_before_its_body_is_read(
    app_with_small_uploads: Flask, organizer: User
) -> None:
    client = app_with_small_uploads.test_client()
    login(client, organizer)
    campaign = make_campaign(organizer.organization)

    response, body = endless_request(
        client,
        f"/campaigns/{campaign.id}/imports",
        {"Content-Type": "multipart/form-data; boundary=x"},
        content_length=300 * 1024 * 1024,
    )

    assert response.status_code == 413
    assert "larger than 4 KB" in response.get_data(as_text=True)
    assert body.read_bytes == 0


@pytest.mark.parametrize("content_length", [300 * 1024 * 1024, None], ids=["length", "chunked"])
def test_an_api_upload_over_the_limit_is_refused_and_at_most_the_limit_is_read(
    app_with_small_uploads: Flask, organization: Organization, content_length: int | None
) -> None:
    campaign = make_campaign(organization)
    token = make_api_token(organization)

    response, body = endless_request(
        app_with_small_uploads.test_client(),
        f"/api/v1/campaigns/{campaign.id}/imports",
        {"Content-Type": "text/csv", "Authorization": f"Bearer {token}"},
        content_length=content_length,
    )

    assert response.status_code == 413
    assert (
        response.json is not None and response.json["error"]["code"] == "request_entity_too_large"
    )
    assert body.read_bytes <= 4096 + 64 * 1024  # the limit, and at most one buffer past it
    assert db.session.scalar(select(func.count()).select_from(ContactImport)) == 0


def test_a_chunked_web_upload_over_the_limit_is_stopped_at_the_limit(
    app_with_small_uploads: Flask, organizer: User
) -> None:
    client = app_with_small_uploads.test_client()
    login(client, organizer)
    campaign = make_campaign(organizer.organization)

    response, body = endless_request(
        client,
        f"/campaigns/{campaign.id}/imports",
        {"Content-Type": "multipart/form-data; boundary=x"},
        content_length=None,
    )

    assert response.status_code == 413
    assert "larger than 4 KB" in response.get_data(as_text=True)
    assert body.read_bytes <= 4096 + 64 * 1024


# --- Markup and SQL in every field -----------------------------------------------------------


def hostile_csv() -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["first_name", "last_name", "cell", "zip"])
    writer.writerow([SCRIPT_TAG, IMG_ONERROR, "(212) 555-0242", "10001"])
    writer.writerow([SQL, SCRIPT_TAG, "(212) 555-0243", "10001"])
    return out.getvalue()


def post_form(client: FlaskClient, page: str, url: str, **fields: Any) -> TestResponse:
    token = csrf_token(client.get(page).get_data(as_text=True))
    return client.post(url, data={"csrf_token": token, **fields})


def campaign_built_by_hand(
    app: Flask, client: FlaskClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Campaign:
    """A campaign named, scripted and loaded with contacts through the organizer's pages."""
    monkeypatch.setitem(app.config, "UPLOAD_DIR", str(tmp_path))
    created = post_form(client, "/campaigns", "/campaigns", name=" ".join(HOSTILE))
    page = created.headers["Location"]
    campaign_id = int(page.rsplit("/", 1)[1])
    script = "Hi {first_name}! " + " ".join(HOSTILE) + " Reply STOP to stop."
    assert post_form(client, page, page + "/script", script=script).status_code == 302
    assert post_form(client, page, page + "/status", status="active").status_code == 302
    upload = client.post(
        page + "/imports",
        data={
            "csrf_token": csrf_token(client.get(page).get_data(as_text=True)),
            "contacts": (io.BytesIO(hostile_csv().encode()), "voters.csv"),
        },
        content_type="multipart/form-data",
    )
    mapping = upload.headers["Location"]
    fields = {"mode": "append", "cell": "cell", "first_name": "first_name", "zip": "zip"}
    post_form(client, mapping, mapping, last_name="last_name", **fields)
    run_jobs(app)
    campaign = db.session.get(Campaign, campaign_id)
    assert campaign is not None
    return campaign


def assert_escaped(page: str, *shown: str) -> None:
    """No hostile markup appears raw in `page`; each of `shown` appears escaped.

    Escaped, `<script>` reads `&lt;script&gt;`, `"` reads `&#34;` and `'` reads `&#39;`.
    """
    lowered = page.lower()
    assert "<script>alert" not in lowered and "<img" not in lowered
    assert "onerror=alert(1)>" not in lowered
    for text in shown:
        assert str(escape(text)) in page, f"{text!r} not shown escaped"


def test_markup_and_sql_are_stored_verbatim_and_shown_escaped_on_every_page(
    app: Flask,
    client: FlaskClient,
    organization: Organization,
    organizer: User,
    volunteer: User,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    weekday_morning: Any,
) -> None:
    login(client, organizer)
    campaign = campaign_built_by_hand(app, client, tmp_path, monkeypatch)
    contacts = db.session.scalars(
        select(Contact).where(Contact.campaign_id == campaign.id).order_by(Contact.cell)
    ).all()
    first, second = contacts
    first.texter_id, first.status = volunteer.id, ContactStatus.TEXTED
    second.texter_id = volunteer.id  # in the volunteer's batch, still to text
    make_message(first, status=MessageStatus.DELIVERED, twilio_sid="SM" + "c" * 32)
    make_message(
        first,
        body=" ".join(HOSTILE),
        status=MessageStatus.SENDING,
        updated_at=now_utc() - timedelta(hours=2),
    )
    inbound = inbound_params(From=first.cell, Body=" ".join(HOSTILE))
    assert post_signed(client, "/twilio/inbound", inbound).status_code == 200

    assert campaign.name == " ".join(HOSTILE)
    assert HOSTILE[0] in campaign.script and HOSTILE[2] in campaign.script
    # Imports title-case names typed all in one case (maria -> Maria), and change nothing more.
    names = [(c.first_name, c.last_name) for c in contacts]
    assert names == [(SCRIPT_TAG.title(), IMG_ONERROR.title()), (SQL, SCRIPT_TAG.title())]
    first_name, last_name = names[0]
    second_name = names[1][0]
    reply = select(Message.body).where(Message.direction == Direction.INBOUND)
    assert db.session.scalars(reply).one() == " ".join(HOSTILE)

    organizer_pages = {
        "/campaigns": HOSTILE,
        f"/campaigns/{campaign.id}": HOSTILE,
        "/operations": (SCRIPT_TAG,),  # the stuck message, truncated after its first words
        "/opt-outs?q=" + "+".join(HOSTILE): HOSTILE,
    }
    for path, shown in organizer_pages.items():
        response = client.get(path)
        assert response.status_code == 200, path
        assert_escaped(response.get_data(as_text=True), *shown)

    client.post("/logout", data={"csrf_token": csrf_token(client.get("/campaigns").text)})
    login(client, volunteer)
    volunteer_pages = {
        "/texting": HOSTILE,
        f"/texting/{campaign.id}/send": (*HOSTILE, second_name),
        f"/texting/{campaign.id}/conversations": (first_name, last_name),
        f"/texting/conversations/{first.id}": (*HOSTILE, first_name, last_name),
    }
    for path, shown in volunteer_pages.items():
        response = client.get(path)
        assert response.status_code == 200, path
        assert_escaped(response.get_data(as_text=True), *shown)

    assert db.session.scalar(select(func.count()).select_from(Message)) == 3
    assert "message" in sa.inspect(db.session.connection()).get_table_names()


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        ("/login", {"email": "a\x00@example.test", "password": "x"}),
        ("/campaigns", {"name": "GOTV\x00"}),
        ("/settings/tags", {"name": "\x00"}),
        ("/opt-outs?q=212\x00", {}),
        ("/audit?action=\x00", {}),
    ],
)
def test_a_nul_character_in_a_form_or_query_value_is_refused_with_a_400_page(
    client: FlaskClient, organizer: User, path: str, fields: dict[str, str]
) -> None:
    """PostgreSQL cannot store a NUL in text (its driver raises: a 500), and SQLite keeps it."""
    login(client, organizer)
    token = csrf_token(client.get("/campaigns").get_data(as_text=True))
    campaigns_before = db.session.scalar(select(func.count()).select_from(Campaign))

    if fields:
        response = client.post(path, data={"csrf_token": token, **fields})
    else:
        response = client.get(path)

    assert response.status_code == 400
    assert "That did not work" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Campaign)) == campaigns_before


def test_an_upload_whose_file_name_holds_a_nul_character_is_refused_with_400(
    client: FlaskClient, organizer: User
) -> None:
    campaign = make_campaign(organizer.organization)
    db.session.commit()
    login(client, organizer)
    token = csrf_token(client.get(f"/campaigns/{campaign.id}").get_data(as_text=True))

    response = client.post(
        f"/campaigns/{campaign.id}/imports",
        data={"csrf_token": token, "contacts": (io.BytesIO(b"cell\n2125551234\n"), "v\x00.csv")},
    )

    assert response.status_code == 400
    assert db.session.scalar(select(func.count()).select_from(ContactImport)) == 0


# --- Forged and replayed webhooks ------------------------------------------------------------


def test_a_webhook_signed_for_another_deployments_host_is_refused(client: FlaskClient) -> None:
    """A request Twilio signed for staging (same account, same token) replayed at production."""
    params = inbound_params()
    staging = "https://staging.gotv.test/twilio/inbound"
    signature = twilio_signature(AUTH_TOKEN, staging, params)

    response = client.post(staging, data=params, headers={"X-Twilio-Signature": signature})

    assert response.status_code == 403
    assert db.session.scalar(select(func.count()).select_from(Message)) == 0


def test_a_replayed_inbound_webhook_stores_one_message(client: FlaskClient) -> None:
    statuses = [
        post_signed(client, "/twilio/inbound", inbound_params(Body=SQL)).status_code
        for _ in range(3)
    ]

    assert statuses == [200, 200, 200]
    assert db.session.scalars(select(Message.body)).all() == [SQL]
