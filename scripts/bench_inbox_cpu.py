"""CPU per volunteer-second, in one process (see scripts/bench): robust to a shared machine.

    python scripts/bench_inbox_cpu.py --database-url ... --redis-url ... [--sends 300]
        [--contacts 10000] [--rounds 3]

One volunteer, through Flask's test client against a private PostgreSQL, does what a
volunteer-second of `scripts/bench inbox` holds: a send (send.json), and for every fifth send
the voter's reply (a signed webhook), the inbox, the thread and the answer (as inbox.js posts
it, asking for JSON; code from before issue 21 answers with a redirect, whose thread is
fetched too, as that page did). Each request's CPU is measured twice, where it is spent: the
app's thread (`time.thread_time`) and its PostgreSQL backend (`/proc/<pid>/stat`, the pooled
connection's), so other processes on the machine do not count. Prints, per kind of request,
the median CPU of each side and the queries it ran, then the CPU of a volunteer-second (a send
and a fifth of the rest): the figure `scripts/bench inbox` divides the machine's CPU by, without
gunicorn, Locust and the HTTP around it. Run it on two checkouts (PYTHONPATH) to compare.

Each send is followed by the floor (as `scripts/bench inbox --floor`'s, in
scripts/bench_inbox_wsgi.py): the same signed-in POST, with the same JSON body and CSRF
header, to a view that does nothing but answer a small JSON. What a send costs over it
(send - floor) is gotv's own part of a send.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import re
import statistics
import sys
import time
from collections import defaultdict
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_inbox import SCRIPT  # noqa: E402
from bench_send import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, log  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PUBLIC_URL = "http://bench.test"
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
KEY = re.compile(r'name="idempotency_key"[^>]*value="([^"]+)"')
WAITING = re.compile(r'data-contact-id="(\d+)" data-needs-reply="yes"')


def backend_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--sends", type=int, default=300)
    args = parser.parse_args()

    from cryptography.fernet import Fernet
    from flask_login import login_required
    from flask_migrate import upgrade
    from werkzeug.security import generate_password_hash

    from gotv import create_app
    from gotv.db import db
    from gotv.fakecarrier.protocol import twilio_signature
    from gotv.models import Campaign, Organization, User

    app = create_app(
        {
            "SECRET_KEY": "bench",
            "ENCRYPTION_KEYS": [Fernet.generate_key().decode()],
            "SQLALCHEMY_DATABASE_URI": args.database_url,
            "REDIS_URL": args.redis_url,
            "PUBLIC_URL": PUBLIC_URL,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_FROM_NUMBER": FROM_NUMBER,
            "TWILIO_API_URL": "http://127.0.0.1:9",
            "DEFAULT_REGION": "US",
            "DATABASE_POOL_SIZE": 1,  # one backend, whose CPU is measured
            "PROXY_COUNT": 0,
            "SEND_MIN_GAP_MS": 0,  # one volunteer sends back to back here (the gate still runs)
        }
    )
    queries = [0]

    @app.post("/bench/floor")
    @login_required
    def _floor() -> dict[str, bool]:
        """A signed-in request (CSRF checked, as for every view), and nothing else."""
        return {"ok": True}

    with app.app_context():
        upgrade()
        sa.event.listen(
            db.engine, "before_cursor_execute", lambda *_: queries.__setitem__(0, queries[0] + 1)
        )
        organization = db.session.execute(
            sa.insert(Organization.__table__).returning(Organization.__table__.c.id), {"name": "B"}
        ).scalar_one()
        db.session.execute(
            sa.insert(User.__table__),
            {
                "organization_id": organization,
                "email": "v@bench.test",
                "name": "Val",
                "password_hash": generate_password_hash("pw", method="pbkdf2:sha256:1000"),
                "role": "texter",
            },
        )
        campaign = db.session.execute(
            sa.insert(Campaign.__table__).returning(Campaign.__table__.c.id),
            {
                "organization_id": organization,
                "name": "Bench",
                "script": SCRIPT,
                "custom_field_names": [],
                "status": "active",
                "window_start_hour": 0,
                "window_end_hour": 24,
                "smart_encoding": True,
                "batch_size": min(args.sends + 50, 1000),
                "batch_while_replies_wait": True,
                "release_after_minutes": 600,
            },
        ).scalar_one()
        db.session.execute(
            sa.text(
                "INSERT INTO contact (campaign_id, cell, first_name, last_name, zip, state,"
                " rule_states, time_zones, custom_fields, status, needs_reply,"
                " opt_out_suggested, unread, updated_at)"
                " SELECT :campaign, '+1212' || (2000000 + n)::text, 'Maria', 'Voter', '10001',"
                " 'NY', 'NY', 'America/New_York', '{}', 'new', false, false, 0, now()"
                " FROM generate_series(1, :count) AS n"
            ),
            {"campaign": campaign, "count": args.contacts},
        )
        db.session.commit()
        db.session.execute(sa.text("ANALYZE"))
        db.session.commit()
        backend = db.session.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        db.session.remove()

    client = app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = "bench"
    page = client.get("/login").get_data(as_text=True)
    client.post(
        "/login",
        data={"email": "v@bench.test", "password": "pw", "csrf_token": CSRF.search(page).group(1)},
    )
    page = client.get(f"/texting/{campaign}/send").get_data(as_text=True)
    token = CSRF.search(page).group(1)
    client.post(f"/texting/{campaign}/batch", data={"csrf_token": token})
    state = client.get(f"/texting/{campaign}/queue.json").get_json()
    ready, after = state["ready"], state["after"]

    samples: dict[str, list[tuple[float, float, int]]] = defaultdict(list)

    # BENCH_PROFILE=send: cProfile that kind of request (its CPU time) and print the top 40, by
    # BENCH_PROFILE_SORT (tottime, or cumulative).
    profiled = os.environ.get("BENCH_PROFILE")
    profiler = cProfile.Profile(time.thread_time)  # CPU, not time waiting on PostgreSQL

    def measured(name: str, method: Any, *args: Any, **kwargs: Any) -> Any:
        """`method(*args, **kwargs)`, its CPU (the app's, its backend's) and queries noted."""
        queries[0] = 0
        app_start, db_start = time.thread_time(), backend_seconds(backend)
        if name == profiled:
            profiler.enable()
        response = method(*args, **kwargs)
        if name == profiled:
            profiler.disable()
        app_used = time.thread_time() - app_start
        samples[name].append(
            (app_used * 1000, (backend_seconds(backend) - db_start) * 1000, queries[0])
        )
        return response

    for sent in range(1, args.sends + 1):
        contact = ready.pop(0)
        answer = measured(
            "send",
            client.post,
            f"/texting/{campaign}/send.json",
            json={
                "contact_id": contact["contact_id"],
                "idempotency_key": contact["idempotency_key"],
                "after": after,
                "want": 5 - len(ready),
            },
            headers={"X-CSRFToken": token},
        ).get_json()
        ready += answer.get("next", [])
        after = answer.get("after", after)
        measured(
            "floor",
            client.post,
            "/bench/floor",
            json={
                "contact_id": contact["contact_id"],
                "idempotency_key": contact["idempotency_key"],
            },
            headers={"X-CSRFToken": token},
        )
        if sent % 5:
            continue
        form = {
            "MessageSid": f"SM{contact['contact_id']:032d}",
            "AccountSid": ACCOUNT_SID,
            "From": f"+1212{contact['contact_id']:07d}",
            "To": FROM_NUMBER,
            "Body": "Yes! Where do I vote?",
        }
        signature = twilio_signature(AUTH_TOKEN, PUBLIC_URL + "/twilio/inbound", form)
        measured(
            "reply webhook",
            client.post,
            "/twilio/inbound",
            data=form,
            headers={"X-Twilio-Signature": signature},
            base_url=PUBLIC_URL,
        )
        inbox = measured("inbox", client.get, f"/texting/{campaign}/conversations")
        waiting = WAITING.findall(inbox.get_data(as_text=True))
        if not waiting:
            continue
        thread = measured("thread", client.get, f"/texting/conversations/{waiting[0]}")
        html = thread.get_data(as_text=True)
        key = KEY.search(html)
        answered = measured(
            "answer",
            client.post,
            f"/texting/conversations/{waiting[0]}/reply",
            data={
                "csrf_token": token,
                "body": "At the library on Main St, 7am to 8pm.",
                "idempotency_key": key.group(1) if key else "",
            },
            headers={"Accept": "application/json"},
        )
        if answered.status_code == 302:  # the page before issue 21 reloaded the thread
            location = answered.headers["Location"]
            measured("thread, answered", client.get, location)

    report(samples)
    if profiled:
        stats = pstats.Stats(profiler)
        stats.sort_stats(os.environ.get("BENCH_PROFILE_SORT", "tottime")).print_stats(40)
        by_package(stats, len(samples[profiled]))


def by_package(stats: pstats.Stats, requests: int) -> None:
    """The profile's own time (tottime) a request, by package (gotv's by module)."""
    spent: dict[str, float] = defaultdict(float)
    for (path, _line, function), row in stats.stats.items():  # type: ignore[attr-defined]
        if "site-packages/" in path:
            where = path.split("site-packages/", 1)[1].split("/", 1)[0]
        elif "/gotv/" in path:
            where = "gotv/" + path.split("/gotv/", 1)[1]
        elif path == "~":
            where = f"builtin {function}"
        else:
            where = os.path.basename(path)
        spent[where] += row[2]
    total = sum(spent.values())
    log(f"\nprofiled CPU by package, ms a request (of {total * 1000 / requests:.2f}):")
    for where, seconds in sorted(spent.items(), key=lambda item: -item[1])[:30]:
        log(f"  {where:<50}{seconds * 1000 / requests:8.3f}")


def report(samples: dict[str, list[tuple[float, float, int]]]) -> None:
    """Per kind of request: its median app CPU, its backend's mean CPU and its queries; then
    gotv's own part of a send (over the floor) and a volunteer-second."""
    log(f"\n{'request':<18}{'count':>6}{'app ms':>9}{'db ms':>8}{'both':>8}{'queries':>9}")
    per_second = 0.0
    medians = {}
    for name, rows in samples.items():
        app_ms = statistics.median(row[0] for row in rows)
        db_ms = statistics.mean(row[1] for row in rows)  # 10 ms ticks: a mean, not a median
        count = statistics.median(row[2] for row in rows)
        medians[name] = (app_ms, db_ms)
        if name != "floor":  # (not part of a volunteer's second)
            per_second += (1.0 if name == "send" else 0.2) * (app_ms + db_ms)
        both = app_ms + db_ms
        log(f"{name:<18}{len(rows):>6}{app_ms:>9.2f}{db_ms:>8.2f}{both:>8.2f}{count:>9.0f}")
    (send_app, send_db), (floor_app, floor_db) = medians["send"], medians["floor"]
    log(
        f"\nsend - floor (gotv's own part of a send): {send_app - floor_app:.2f} ms app,"
        f" {send_db - floor_db:.2f} ms db, {send_app + send_db - floor_app - floor_db:.2f} ms both"
    )
    log(
        f"a volunteer-second (a send and a fifth of the rest): {per_second:.2f} ms of CPU"
        " (app median + PostgreSQL backend mean)"
    )


if __name__ == "__main__":
    main()
