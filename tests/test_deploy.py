"""A deploy: gotv's real processes, told to stop the way a platform tells them, end in time.

These start `gunicorn` as the Procfile does, on an app of their own (tests/fault_support.py's
private_app, so the processes see what the test commits).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from flask import Flask

from gotv.db import db
from gotv.models import Role
from tests.factories import PASSWORD, make_org, make_user
from tests.fault_support import ROOT, free_port, private_app, wait_until

pytestmark = pytest.mark.heavy  # (scripts/test runs these in a pass of their own)


def environment_of(app: Flask) -> dict[str, str]:
    """The environment `python -m workers` and `gunicorn wsgi:app` read, for `app`'s config."""
    config = app.config
    return {
        **os.environ,
        "GOTV_ENV": "production",
        "SECRET_KEY": config["SECRET_KEY"],
        "ENCRYPTION_KEYS": ",".join(config["ENCRYPTION_KEYS"]),
        "DATABASE_URL": config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": config["REDIS_URL"],
        "PUBLIC_URL": config["PUBLIC_URL"],
        "TWILIO_ACCOUNT_SID": config["TWILIO_ACCOUNT_SID"],
        "TWILIO_AUTH_TOKEN": config["TWILIO_AUTH_TOKEN"],
        "TWILIO_FROM_NUMBER": config["TWILIO_FROM_NUMBER"],
        "TWILIO_API_URL": config["TWILIO_API_URL"],
        "PROXY_COUNT": "0",
    }


@contextmanager
def web_process(app: Flask, workers: int = 1) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """gunicorn as the Procfile runs it (gthread, gotv.web.serving's hooks); its base URL."""
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "wsgi:app", "-c", "python:gotv.web.serving"]
    command += ["--bind", f"127.0.0.1:{port}", "--workers", str(workers)]
    command += ["--worker-class", "gthread", "--threads", "8"]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        # (development: session cookies over plain HTTP, as this test speaks it)
        env={**environment_of(app), "GOTV_ENV": "development"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(url), seconds=60, what="gunicorn to answer")
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def answers(url: str) -> bool:
    try:
        return requests.get(url + "/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def signed_in(url: str, email: str) -> requests.Session:
    session = requests.Session()
    page = session.get(url + "/login").text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert token is not None
    form = {"email": email, "password": PASSWORD, "csrf_token": token.group(1)}
    assert session.post(url + "/login", data=form, allow_redirects=False).status_code == 302
    return session


@pytest.mark.committing
def test_a_web_process_told_to_stop_ends_its_live_streams_and_exits_within_the_grace(
    app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with private_app(app, tmp_path, monkeypatch) as ours:
        email = make_user(make_org(), role=Role.TEXTER).email
        db.session.commit()  # (and read nothing more: on SQLite a read would hold the lock)
        with web_process(ours) as (process, url):
            session = signed_in(url, email)
            stream = session.get(url + "/texting/events", stream=True, timeout=30)
            chunks = stream.iter_content(chunk_size=None)
            assert b": connected" in next(chunks)
            told = time.monotonic()
            process.send_signal(signal.SIGTERM)
            for _ in chunks:  # heartbeats, until the stream ends
                pass
            stream_ended = time.monotonic() - told
            process.wait(timeout=30)
            exited = time.monotonic() - told

    assert stream_ended < 5 and exited < 20
    assert process.returncode == 0
