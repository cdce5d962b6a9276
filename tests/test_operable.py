"""What operators run gotv with: health and readiness, metrics, request ids in the logs, Sentry,
and failed jobs shown to the organization they belong to only."""

from __future__ import annotations

import gzip
import io
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import sentry_sdk
from flask import Flask
from flask.testing import FlaskClient

from gotv import create_app, logs
from gotv.db import db
from gotv.edge import errors, queue
from gotv.lists import imports
from gotv.models import ImportMode, User
from tests.conftest import config_like, login, run_jobs
from tests.factories import make_campaign, make_contact, make_message, make_org
from tests.fault_support import ROOT, PrivatePostgres, postgres_bin, private_app
from tests.test_config import PRODUCTION

TOKEN = "metrics-token-for-tests"


def test_the_process_says_it_is_up_without_signing_in(client: FlaskClient) -> None:
    answer = client.get("/healthz")

    assert (answer.status_code, answer.get_json()) == (200, {"status": "ok"})


def test_the_process_is_ready_when_it_reaches_the_database_and_redis(client: FlaskClient) -> None:
    answer = client.get("/readyz")

    assert answer.status_code == 200
    assert answer.get_json() == {"status": "ready", "database": "ok", "redis": "ok"}


def test_a_process_that_cannot_reach_redis_is_not_ready(app: Flask) -> None:
    broken = create_app(config_like(app, REDIS_URL="redis://127.0.0.1:1/0"))

    answer = broken.test_client().get("/readyz")
    with broken.app_context():
        db.engine.dispose()  # (its connection would be left for the garbage collector)

    assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"
    assert answer.get_json()["redis"] == "unreachable"


@pytest.mark.committing
def test_readiness_follows_postgresql_going_down_and_coming_back(
    app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed")
    server = PrivatePostgres(bin_dir).create()
    try:
        with private_app(app, tmp_path, monkeypatch, SQLALCHEMY_DATABASE_URI=server.url) as ours:
            client = ours.test_client()
            before = client.get("/readyz").status_code
            server.crash()
            down = client.get("/readyz")
            server.start()
            after = client.get("/readyz").status_code
    finally:
        server.remove()

    assert (before, down.status_code, after) == (200, 503, 200)
    assert down.get_json()["database"] == "unreachable"


def metrics_of(app: Flask) -> dict[str, float]:
    """The unlabelled samples /metrics shows (name -> value)."""
    answer = app.test_client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200
    samples = {}
    for line in answer.get_data(as_text=True).splitlines():
        if line and not line.startswith("#") and "{" not in line:
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def test_metrics_need_their_token(client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(client.application.config, "METRICS_TOKEN", TOKEN)

    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 404


def test_metrics_show_the_outbox_as_the_database_holds_it(
    app: Flask, volunteer: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "METRICS_TOKEN", TOKEN)
    campaign = make_campaign(volunteer.organization)
    for _ in range(3):
        make_message(make_contact(campaign))

    assert metrics_of(app)["gotv_outbox_queued"] == 3


def import_rows(app: Flask) -> dict[str, float]:
    """gotv_import_rows_total by outcome, as /metrics shows it."""
    answer = app.test_client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    counted = {}
    for line in answer.get_data(as_text=True).splitlines():
        if line.startswith('gotv_import_rows_total{outcome="'):
            labels, value = line.rsplit(" ", 1)
            counted[labels.split('"')[1]] = float(value)
    return counted


def test_metrics_count_the_rows_of_finished_imports_by_what_became_of_them(
    app: Flask, organizer: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "METRICS_TOKEN", TOKEN)
    campaign = make_campaign(organizer.organization)
    rows = b"cell\n+12125550200\n+12125550201\n+12125550200\nnot a number\n"
    imp = imports.receive_upload(campaign, organizer, "v.csv", io.BytesIO(rows))
    imports.start(imp, dict(imp.mapping), ImportMode.APPEND, [])
    db.session.commit()
    before = import_rows(app)

    imports.run(imp.id)
    after = import_rows(app)

    added = {outcome: after[outcome] - before.get(outcome, 0) for outcome in after}
    assert {outcome: n for outcome, n in added.items() if n} == {
        "loaded": 2,
        "duplicates": 1,
        "rejected": 1,
    }


def test_every_response_names_its_request_and_the_logs_carry_it(client: FlaskClient) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logs.WithRequestId())
    handler.setFormatter(logging.Formatter("%(request_id)s %(message)s"))
    logger = logging.getLogger("gotv.web.errors")
    logger.addHandler(handler)
    try:
        given = client.get("/healthz", headers={"X-Request-ID": "proxy-abc-123"})
        made = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
        with logs.with_request_id("job-7"):
            logger.warning("something happened")
    finally:
        logger.removeHandler(handler)

    assert given.headers["X-Request-ID"] == "proxy-abc-123"
    assert made.headers["X-Request-ID"] not in ("", "bad id with spaces")
    assert stream.getvalue() == "job-7 something happened\n"


def test_logs_are_one_json_object_a_line_with_the_level() -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logs.configure("INFO", as_json=True)
        stream = io.StringIO()
        root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
        with logs.with_request_id("req-1"):
            logging.getLogger("gotv.test").info("sent %d texts", 5)
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)

    line = json.loads(stream.getvalue())
    assert {key: line[key] for key in ("level", "logger", "request_id", "message")} == {
        "level": "INFO",
        "logger": "gotv.test",
        "request_id": "req-1",
        "message": "sent 5 texts",
    }


def test_a_web_process_writes_each_log_record_once_as_json() -> None:
    """As gunicorn and the flask command load it (wsgi.py: the app made, then the logs set up),
    with the production environment's defaults."""
    script = (
        "import logging, wsgi\n"
        "logging.getLogger('gotv.lists.imports').warning('progress not reported')\n"
        "wsgi.app.logger.error('from the app')\n"
    )
    process = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], **PRODUCTION},
        capture_output=True,
        text=True,
        timeout=60,
    )

    lines = process.stderr.splitlines()
    assert process.returncode == 0, process.stderr
    assert [(json.loads(line)["logger"], json.loads(line)["message"]) for line in lines] == [
        ("gotv.lists.imports", "progress not reported"),
        ("gotv", "from the app"),
    ]


@pytest.fixture
def sentry_collector() -> Iterator[list[bytes]]:
    """A local HTTP server standing in for Sentry; the bodies posted to it."""
    received: list[bytes] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            gzipped = self.headers.get("Content-Encoding") == "gzip"
            received.append(gzip.decompress(body) if gzipped else body)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    received.append(f"http://key@127.0.0.1:{server.server_port}/1".encode())
    yield received
    server.shutdown()
    server.server_close()


def test_errors_go_to_sentry_when_it_is_configured_without_personal_data(
    sentry_collector: list[bytes],
) -> None:
    dsn = sentry_collector.pop().decode()
    assert errors.init({}) is False
    try:
        assert errors.init({"SENTRY_DSN": dsn}) is True
        try:
            voter = "+1212555" + "0142"  # a local variable, as a voter's number would be
            raise RuntimeError("the carrier broke")
        except RuntimeError as error:
            assert voter
            sentry_sdk.capture_exception(error)
        sentry_sdk.flush(timeout=5)
    finally:
        sentry_sdk.init()  # no DSN: reporting off again for the other tests

    sent = b"".join(sentry_collector)
    assert b"the carrier broke" in sent
    assert b"+12125550142" not in sent


def test_failed_jobs_are_shown_to_their_organization_only(
    client: FlaskClient, organizer: User, other_org_organizer: User
) -> None:
    queue.enqueue("builtins.no_such_function", organization_id=organizer.organization_id)
    queue.enqueue("builtins.no_such_function", organization_id=other_org_organizer.organization_id)
    run_jobs(client.application)
    login(client, organizer)

    page = client.get("/operations").get_data(as_text=True)

    assert page.count("builtins.no_such_function") == 1
    assert len(queue.failed_jobs(organizer.organization_id) or []) == 1
    assert len(queue.failed_jobs(queue.EVERY_ORGANIZATION) or []) == 2


def test_the_operators_command_lists_every_organizations_failed_jobs(app: Flask) -> None:
    for organization in (make_org(), make_org()):
        queue.enqueue("builtins.no_such_function", organization_id=organization.id)
    run_jobs(app)

    listed = app.test_cli_runner().invoke(args=["failed-jobs"])

    assert listed.output.count("builtins.no_such_function") == 2
