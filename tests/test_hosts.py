"""Several hosts: two web and two worker processes on one PostgreSQL and Redis, as
docs/deploy.md sets them up, each "host" with its own working, upload, temp and metrics folders.

A list uploaded to one web host is mapped on the other and loaded by a worker; two volunteers
text the campaign through both web hosts; one worker is told to stop mid-send as a deploy tells
it, the other is killed -9 as a lost machine is. Checked from the carrier's own record: every
text sent once, none lost, none left `sending`. The real processes run on the real clock; the
test's own process travels in time (time_machine) only for the two-minute settling bound.
tests/test_import_recovery.py kills imports mid-load the same way.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
import time_machine
from flask import Flask
from sqlalchemy import func, select, update

from gotv.db import db
from gotv.edge import queue
from gotv.fakecarrier import CarrierServer, FakeCarrier
from gotv.models import (
    Contact,
    ContactImport,
    ImportStatus,
    Message,
    MessageStatus,
    Role,
    utcnow,
)
from gotv.texting import outbox, texts
from tests.factories import make_campaign, make_org, make_user
from tests.fault_support import ROOT, free_port, private_app, sigkill, wait_until
from tests.test_deploy import answers, environment_of, signed_in
from tests.test_faults import zone_at_noon

VOTERS = 20
PUMP_STARTS = "send: workers.texting.pump_outbox()"  # what RQ logs as a worker takes it
METRICS_TOKEN = "hosts-metrics-token"
PROCESS_STARTS = 120.0  # seconds a process may take to start on a busy 2-core machine

pytestmark = [pytest.mark.committing, pytest.mark.heavy]


@pytest.fixture(autouse=True)
def postgresql_only(app: Flask) -> None:
    """Hosts share a database server; the embedded SQLite file belongs to one machine."""
    if sa.engine.make_url(app.config["SQLALCHEMY_DATABASE_URI"]).get_backend_name() == "sqlite":
        pytest.skip("several hosts share PostgreSQL, not the embedded SQLite file")


# --- Hosts ----------------------------------------------------------------------------------


def host_environment(app: Flask, home: Path) -> dict[str, str]:
    """The environment of one host: the shared database, Redis and Twilio, its own folders."""
    folders = {name: home / name for name in ("work", "tmp", "uploads", "metrics")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    return {
        **environment_of(app),
        "PYTHONPATH": str(ROOT),  # the code, not the working folder: gotv is installed there
        "TMPDIR": str(folders["tmp"]),
        "UPLOAD_DIR": str(folders["uploads"]),
        "PROMETHEUS_MULTIPROC_DIR": str(folders["metrics"]),
        "METRICS_TOKEN": METRICS_TOKEN,
        "SEND_CONCURRENCY": "2",  # slower than volunteers press: the outbox fills
    }


@contextmanager
def web_host(app: Flask, home: Path) -> Iterator[str]:
    """gunicorn as the Procfile runs it, working in `home/work`; its base URL."""
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "wsgi:app", "-c", "python:gotv.web.serving"]
    command += ["--bind", f"127.0.0.1:{port}", "--workers", "2"]
    command += ["--worker-class", "gthread", "--threads", "8"]
    environment = host_environment(app, home)
    process = subprocess.Popen(
        command,
        cwd=home / "work",
        # (development: session cookies over plain HTTP, as this test speaks it)
        env={**environment, "GOTV_ENV": "development"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(url), seconds=PROCESS_STARTS, what="gunicorn to answer")
        yield url
    finally:
        sigkill(process)


def worker_host(app: Flask, home: Path) -> subprocess.Popen[bytes]:
    """`python -m workers` as the Procfile runs it (every queue), working in `home/work`."""
    home.mkdir(parents=True)
    environment = host_environment(app, home)
    with (home / "worker.log").open("wb") as log:  # (the child keeps its own copy open)
        return subprocess.Popen(
            [sys.executable, "-m", "workers"],
            cwd=home / "work",
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


# --- What the people on them do --------------------------------------------------------------


def csrf_of(page: str) -> str:
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
        r'data-csrf-token="([^"]+)"', page
    )
    assert token is not None, page[:2000]
    return token.group(1)


def voter_list() -> bytes:
    lines = ["First,Last,Cell Phone,Zip"]
    lines += [f"Voter{n},Hosts,(602) 555-{3000 + n:04d},85001" for n in range(VOTERS)]
    return ("\n".join(lines) + "\n").encode()


def upload(url: str, session: requests.Session, campaign_id: int) -> str:
    """Upload the list on one host; the path of its mapping page."""
    page = session.get(f"{url}/campaigns/{campaign_id}").text
    answer = session.post(
        f"{url}/campaigns/{campaign_id}/imports",
        data={"csrf_token": csrf_of(page)},
        files={"contacts": ("voters.csv", voter_list(), "text/csv")},
        allow_redirects=False,
    )
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"].removeprefix(url)


def map_and_start(url: str, session: requests.Session, mapping_path: str) -> None:
    page = session.get(url + mapping_path)
    assert page.status_code == 200 and "Cell Phone" in page.text
    form = {
        "csrf_token": csrf_of(page.text),
        "cell": "Cell Phone",
        "first_name": "First",
        "last_name": "Last",
        "zip": "Zip",
        "mode": "append",
    }
    answer = session.post(url + mapping_path, data=form, allow_redirects=False)
    assert answer.status_code == 302, answer.text


def send_a_batch(url: str, session: requests.Session, campaign_id: int) -> int:
    """Take a batch, then press Send for each contact the send screen offers; how many."""
    page = session.get(f"{url}/texting/{campaign_id}/send").text
    taken = session.post(
        f"{url}/texting/{campaign_id}/batch",
        data={"csrf_token": csrf_of(page)},
        allow_redirects=False,
    )
    assert taken.status_code == 302
    headers = {"X-CSRFToken": csrf_of(page), "Accept": "application/json"}
    sent = 0
    while True:
        ready = session.get(f"{url}/texting/{campaign_id}/queue.json").json()["ready"]
        if not ready:
            return sent
        for contact in ready:
            time.sleep(texts.MIN_READ.total_seconds())  # a person reads before pressing Send
            answer = session.post(
                f"{url}/texting/{campaign_id}/send.json",
                json={
                    "contact_id": contact["contact_id"],
                    "idempotency_key": contact["idempotency_key"],
                },
                headers=headers,
            )
            assert answer.status_code == 200, answer.text
            sent += 1


def outbox_depth(url: str) -> float:
    """What the metrics endpoint says is waiting in the outbox."""
    text = requests.get(
        url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10
    ).text
    found = re.search(r"^gotv_outbox_queued(?:\{[^}]*\})? ([0-9.e+]+)$", text, re.MULTILINE)
    assert found is not None, text
    return float(found.group(1))


# --- What the database and the carrier hold --------------------------------------------------


def committed(query: sa.Select[Any]) -> int:
    """A count as other processes committed it, read in a transaction that ends at once."""
    value = db.session.scalar(query) or 0
    db.session.rollback()
    return value


def statuses(campaign_id: int) -> Counter[MessageStatus]:
    query = select(Message.status).join(Contact).where(Contact.campaign_id == campaign_id)
    found = Counter(db.session.scalars(query))
    db.session.rollback()
    return found


def logged(home: Path, what: str, after: int = 0) -> bool:
    """Whether the worker on `home` has logged `what` past byte `after` of its log."""
    return what in (home / "worker.log").read_text(errors="replace")[after:]


def log_size(home: Path) -> int:
    return len((home / "worker.log").read_text(errors="replace"))


def make_textable_now(campaign_id: int) -> None:
    """Move the loaded voters to a zone where it is midday: the real processes check quiet
    hours on the real clock, whenever this test runs."""
    db.session.execute(
        update(Contact)
        .where(Contact.campaign_id == campaign_id)
        .values(time_zones=zone_at_noon(), state="", rule_states="")
    )
    db.session.commit()


def test_two_web_and_two_worker_hosts_share_uploads_and_lose_or_repeat_no_text(
    app: Flask,
    carrier: FakeCarrier,
    carrier_server: CarrierServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with private_app(app, tmp_path, monkeypatch) as ours, ExitStack() as hosts:
        organization = make_org()
        organizer = make_user(organization, role=Role.ADMIN)
        volunteers = [make_user(organization, role=Role.TEXTER) for _ in range(2)]
        campaign_id = make_campaign(organization, batch_size=VOTERS // 2).id
        emails = [organizer.email, *(volunteer.email for volunteer in volunteers)]
        db.session.commit()

        web_a = hosts.enter_context(web_host(ours, tmp_path / "web-a"))
        web_b = hosts.enter_context(web_host(ours, tmp_path / "web-b"))
        worker_c = worker_host(ours, tmp_path / "worker-c")
        hosts.callback(sigkill, worker_c)

        # An upload accepted by host A, mapped on host B, loaded by the worker on host C.
        organizing = signed_in(web_a, emails[0])
        mapping_path = upload(web_a, organizing, campaign_id)
        map_and_start(web_b, organizing, mapping_path)
        wait_until(
            lambda: (
                committed(
                    select(func.count())
                    .select_from(ContactImport)
                    .where(ContactImport.status == ImportStatus.DONE)
                )
                == 1
            ),
            seconds=PROCESS_STARTS,
            what="the list loaded",
        )
        loaded = committed(
            select(func.count()).select_from(Contact).where(Contact.campaign_id == campaign_id)
        )
        make_textable_now(campaign_id)

        # Texted through both web hosts, sent by two workers, each answer after 5 s.
        carrier_server.latency = 5.0
        worker_d = worker_host(ours, tmp_path / "worker-d")
        hosts.callback(sigkill, worker_d)
        wait_until(
            lambda: logged(tmp_path / "worker-d", "Listening on"),
            seconds=PROCESS_STARTS,
            what="the second worker to start",
        )
        before_sending = log_size(tmp_path / "worker-c")
        pressed = send_a_batch(web_a, signed_in(web_a, emails[1]), campaign_id)
        depth_while_sending = outbox_depth(web_a)
        pressed += send_a_batch(web_b, signed_in(web_b, emails[2]), campaign_id)
        depth_while_sending = max(depth_while_sending, outbox_depth(web_b))
        wait_until(
            lambda: (
                logged(tmp_path / "worker-c", PUMP_STARTS, before_sending)
                and logged(tmp_path / "worker-d", PUMP_STARTS)
            ),
            seconds=PROCESS_STARTS,
            what="both workers sending",
        )
        assert carrier.wait_for(lambda held: len(held.requests) >= 1, timeout=PROCESS_STARTS)

        # A deploy tells C to stop; host D is lost mid-send.
        told = time.monotonic()
        worker_c.send_signal(signal.SIGTERM)
        sigkill(worker_d)
        worker_c.wait(timeout=30)
        stopped_within = time.monotonic() - told
        left_sending = statuses(campaign_id)[MessageStatus.SENDING]

        # The new release's worker, on a third place, sends the rest; the sweep settles what
        # the lost host held once the two-minute bound has passed.
        carrier_server.latency = 0.0
        worker_e = worker_host(ours, tmp_path / "worker-e")
        hosts.callback(sigkill, worker_e)
        queue.wake_senders()
        with time_machine.travel(utcnow() + outbox.SETTLE_AFTER + timedelta(seconds=5)):
            settled = outbox.settle_abandoned(utcnow())
        queue.wake_senders()
        wait_until(
            lambda: statuses(campaign_id)[MessageStatus.ACCEPTED] == VOTERS,
            seconds=PROCESS_STARTS,
            what="every text sent and recorded",
        )
        wait_until(lambda: outbox_depth(web_b) == 0, seconds=30, what="the outbox drained")
        final = statuses(campaign_id)

    received = Counter(record["to"] for record in carrier.messages)
    assert loaded == VOTERS and pressed == VOTERS
    assert depth_while_sending > 0
    assert worker_c.returncode == 0 and stopped_within < 20
    assert settled == left_sending  # what D held: recorded as sent, or queued again
    assert len(received) == VOTERS and max(received.values()) == 1
    assert left_sending >= 1  # D died holding sends
    assert set(final) == {MessageStatus.ACCEPTED}
