"""Secrets where they belong: two-step secrets encrypted at rest, nothing secret readable in the
session cookie, invitation tokens out of the logs, the development state closed to others, and
the CLI holding passwords to the web's rule.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import stat
import subprocess
import zlib
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pyotp
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from gunicorn.config import Config

from gotv import encryption
from gotv.db import db
from gotv.models import Role, User
from gotv.web.redaction import AccessLogger
from tests.conftest import csrf_token, login
from tests.factories import make_user

ROOT = Path(__file__).resolve().parents[1]
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def cookie_payload(client: FlaskClient) -> str:
    """What anyone holding the session cookie reads in it: its payload, signed, not secret."""
    cookie = client.get_cookie("session")
    assert cookie is not None
    payload = cookie.value.lstrip(".").split(".")[0]
    data = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    if cookie.value.startswith("."):
        data = zlib.decompress(data)
    return json.dumps(json.loads(data))


def test_a_two_step_secret_is_stored_encrypted(organization: object, organizer: User) -> None:
    organizer.totp_secret = SECRET
    db.session.flush()

    stored = db.session.execute(
        sa.text("SELECT totp_secret FROM " + '"user"' + " WHERE id = :id"), {"id": organizer.id}
    ).scalar_one()

    assert stored != SECRET and SECRET not in stored
    assert encryption.decrypt(stored) == SECRET
    db.session.expire(organizer)
    assert organizer.totp_secret == SECRET


def test_the_secret_being_set_up_is_not_readable_in_the_session_cookie(
    client: FlaskClient, organizer: User
) -> None:
    login(client, organizer)

    page = client.get("/account/two-factor").get_data(as_text=True)

    key = re.search(r'<code class="secret">([A-Z2-7 ]+)</code>', page)
    assert key is not None
    secret = key[1].replace(" ", "")
    assert secret not in cookie_payload(client)
    token = csrf_token(client.get("/account").get_data(as_text=True))
    enabled = client.post(
        "/account/two-factor", data={"csrf_token": token, "code": pyotp.TOTP(secret).now()}
    )
    assert enabled.headers["Location"] == "/account"


def test_a_new_invitation_link_is_not_readable_in_the_session_cookie(
    client: FlaskClient, organizer: User
) -> None:
    login(client, organizer)
    token = csrf_token(client.get("/team").get_data(as_text=True))

    client.post("/team/invites", data={"csrf_token": token, "role": "texter", "days": "14"})
    carried = cookie_payload(client)
    page = client.get("/team").get_data(as_text=True)

    link = re.search(r"https://gotv\.test/join/([A-Za-z0-9_-]+)", page)
    assert link is not None
    assert link[1] not in carried and "/join/" not in carried


def test_the_access_log_never_holds_an_invitation_token(tmp_path: Path) -> None:
    config = Config()
    config.set("accesslog", str(tmp_path / "access.log"))
    logger = AccessLogger(config)
    token = "s3cr3t-t0ken_abcdefghijklmnopqrstuvwxyz012"
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": f"/join/{token}",
        "PATH_INFO": f"/join/{token}",
        "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "203.0.113.7",
        "HTTP_REFERER": f"https://gotv.test/join/{token}",
    }
    response = SimpleNamespace(status="200 OK", headers=[], sent=10)
    request = SimpleNamespace(headers=[("REFERER", f"https://gotv.test/join/{token}")])

    logger.access(response, request, environ, timedelta(milliseconds=5))
    for handler in logger.access_log.handlers:
        handler.flush()
    line = (tmp_path / "access.log").read_text()

    assert "GET /join/[redacted] HTTP/1.1" in line
    assert token not in line


def test_the_apps_own_log_never_holds_an_invitation_token(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        app.logger.error("Exception on %s [%s]", "/join/s3cr3t-t0ken", "POST")

    assert "/join/[redacted]" in caplog.text and "s3cr3t" not in caplog.text


def test_scripts_run_keeps_its_state_from_other_users(tmp_path: Path) -> None:
    """The state directory's secrets, database and uploads: this user's alone."""
    script = (ROOT / "scripts/run").read_text()
    state_lines = script[: script.index('[ -s "$state/secret_key" ]')]
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    (state / "secret_key").write_text("old\n")
    (state / "secret_key").chmod(0o644)
    setup = state_lines.split('cd "$GOTV_ROOT"', 1)[1].replace("ensure_venv run --inexact", "")
    subprocess.run(
        ["bash", "-c", f'set -e\n{setup}\necho fresh > "$state/encryption_key"'],
        env={**os.environ, "GOTV_STATE_DIR": str(state)},
        check=True,
    )

    for path in (state, state / "secret_key", state / "encryption_key"):
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path


@pytest.mark.parametrize("password", ["x", "short", "123456789"])
def test_create_user_refuses_a_password_the_web_would_refuse(
    app: Flask, organization: object, password: str
) -> None:
    cli = app.test_cli_runner()
    organization_id = db.session.scalars(sa.select(User.organization_id)).first()
    make_user(role=Role.OWNER)

    result = cli.invoke(
        args=[
            "create-user",
            "--org",
            str(organization_id or 1),
            "--email",
            "weak@example.test",
            "--name",
            "Weak",
            "--password",
            password,
        ]
    )

    assert result.exit_code != 0
    assert "Use at least 10 characters." in result.output
    weak = sa.select(User).where(User.email == "weak@example.test")
    assert db.session.scalars(weak).first() is None
