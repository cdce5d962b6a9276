"""Benchmark Twilio's webhooks under gunicorn (see scripts/bench).

    python scripts/bench_webhooks.py --database-url ... --redis-url ... [--contacts 4000]
        [--web-workers 2] [--threads 2] [--wrk-threads 2] [--burst 256] [--concurrency 16]
        [--overload 4] [--deadline 120]

Starts gunicorn serving `wsgi:app` (production settings, PUBLIC_URL = its own address) against
the private PostgreSQL and Redis, then for every phase writes a fresh organization, campaign and
`--contacts` contacts each with an accepted initial message (Twilio SID set), and sends a
shuffled mix of signed webhooks with wrk on loopback (scripts/bench_webhooks.lua: the requests
are signed here beforehand, written one file per wrk thread, and each is sent exactly once):

- status callbacks `sent` and `delivered` for every message (`?message=<id>`), each twice, in
  random order (so `delivered` often arrives before `sent`);
- one reply per contact (`Yes I'll vote`, every `--stop-every`th `STOP`), each with its own
  MessageSid, every `--retry-every`th delivered twice (Twilio's retry).

Phases: `burst` (everything at once, `--burst` requests in flight), `closed` (`--concurrency`
in flight) and `overload` (`--overload` times that). Each prints requests/s answered 2xx,
p50/p95/p99 latency (wrk's), non-2xx counts and CPU per request of gunicorn, PostgreSQL and
wrk, then checks the database: every inbound MessageSid
stored exactly once, every message at its furthest status, one opt-out for every STOP, no
stray rows.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_send import (  # noqa: E402
    ACCOUNT_SID,
    AUTH_TOKEN,
    BENCH_ENCRYPTION_KEY,
    FROM_NUMBER,
    CpuMeter,
    free_port,
    log,
    migrated_engine,
    new_organization,
    postgres_pids,
    process_tree,
    wait_for_port,
)

BODY = "Hi Maria, it's Val. Will you vote Tuesday? Reply STOP to opt out."
YES = "Yes I'll vote"


def environment(args: argparse.Namespace, public_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "GOTV_ENV": "production",
        "SECRET_KEY": "bench",
        "ENCRYPTION_KEYS": BENCH_ENCRYPTION_KEY,
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "PUBLIC_URL": public_url,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": FROM_NUMBER,
        "TWILIO_API_URL": "http://127.0.0.1:9",
        "DATABASE_POOL_SIZE": str(args.threads),  # one connection per thread
        # As a deployment behind one proxy (Twilio's requests reach gotv through it), so the
        # figures include ProxyFix; wrk sends no X-Forwarded-* header, so nothing changes.
        "PROXY_COUNT": "1",
    }


def start_gunicorn(args: argparse.Namespace, port: int, env: dict[str, str]) -> subprocess.Popen:
    command = [sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", f"127.0.0.1:{port}"]
    command += ["--workers", str(args.web_workers), "--threads", str(args.threads)]
    command += ["--worker-class", args.worker_class, "--backlog", "4096"]
    # As the Procfile: each worker listens on its own socket, so the kernel spreads the
    # connections over the workers (see docs/benchmarks.md).
    command += ["--reuse-port"]
    command += ["--log-level", "warning", "--timeout", "60"]
    # wrk needs keep-alive (see the Lua); idle connections then stay open for the whole phase.
    command += ["--keep-alive", str(int(args.deadline) + 10)]
    process = subprocess.Popen(command, env=env)
    wait_for_port(port)
    time.sleep(1.0)  # let every worker boot
    return process


# --- Data ------------------------------------------------------------------------------------


def setup(engine: sa.Engine, count: int, first: int) -> dict[str, Any]:
    """An organization, a texter, a campaign and `count` contacts with accepted initial texts."""
    from gotv.models import Campaign, Contact, Message

    with engine.begin() as db:
        # Fresh tables for every phase: the same table sizes for every run.
        db.execute(sa.text("TRUNCATE organization RESTART IDENTITY CASCADE"))
        organization, user = new_organization(db)
        campaign = db.execute(
            sa.insert(Campaign.__table__).returning(Campaign.__table__.c.id),
            {
                "organization_id": organization,
                "name": "Bench",
                "status": "active",
                "window_start_hour": 0,
                "window_end_hour": 24,
            },
        ).scalar_one()
        contacts = Contact.__table__
        rows = db.execute(
            sa.insert(contacts).returning(contacts.c.id, contacts.c.cell),
            [
                {
                    "campaign_id": campaign,
                    "cell": f"+1212{first + n:07d}",
                    "first_name": "Maria",
                    "time_zones": "America/New_York",
                    "status": "texted",
                    "texter_id": user,
                }
                for n in range(count)
            ],
        ).all()
        now = datetime.now(UTC)
        messages = Message.__table__
        sent = db.execute(
            sa.insert(messages).returning(
                messages.c.id, messages.c.to_number, messages.c.twilio_sid
            ),
            [
                {
                    "organization_id": organization,
                    "campaign_id": campaign,
                    "contact_id": contact_id,
                    "texter_id": user,
                    "direction": "outbound",
                    "kind": "text",
                    "is_initial": True,
                    "body": BODY,
                    "from_number": FROM_NUMBER,
                    "to_number": cell,
                    "status": "accepted",
                    "twilio_sid": f"SM{first + n:032d}",
                    "sender": "",
                    "attempts": 1,
                    "created_at": now,
                    "sent_at": now,
                    "updated_at": now,
                }
                for n, (contact_id, cell) in enumerate(rows)
            ],
        ).all()
    return {"organization": organization, "campaign": campaign, "messages": sent}


def plan(
    args: argparse.Namespace, public_url: str, ids: dict[str, Any], first: int
) -> tuple[list[list[Any]], dict[str, Any]]:
    """The shuffled, signed requests of one phase, and what the database must show after it."""
    from gotv.fakecarrier.protocol import twilio_signature

    rng = random.Random(first)
    requests: list[list[Any]] = []
    inbound_sids, stops = [], []
    for n, (message_id, cell, sid) in enumerate(ids["messages"]):
        path = f"/twilio/status?message={message_id}"
        for status in ("sent", "delivered"):
            form = {
                "MessageSid": sid,
                "SmsSid": sid,
                "AccountSid": ACCOUNT_SID,
                "From": FROM_NUMBER,
                "To": cell,
                "MessageStatus": status,
                "SmsStatus": status,
                "ApiVersion": "2010-04-01",
            }
            signed = [path, form, twilio_signature(AUTH_TOKEN, public_url + path, form), "status"]
            requests += [signed, signed]  # every callback twice
        body = "STOP" if n % args.stop_every == 0 else YES
        inbound_sid = f"SM{first + n:07d}{'f' * 25}"
        form = {
            "MessageSid": inbound_sid,
            "SmsMessageSid": inbound_sid,
            "AccountSid": ACCOUNT_SID,
            "From": cell,
            "To": FROM_NUMBER,
            "Body": body,
            "NumMedia": "0",
            "NumSegments": "1",
            "ApiVersion": "2010-04-01",
        }
        path = "/twilio/inbound"
        signed = [path, form, twilio_signature(AUTH_TOKEN, public_url + path, form), "inbound"]
        requests.append(signed)
        if n % args.retry_every == 0:
            requests.append(signed)  # Twilio's retry
        inbound_sids.append(inbound_sid)
        if body == "STOP":
            stops.append(cell)
    rng.shuffle(requests)  # out of order: `delivered` before `sent` for about half the messages
    return requests, {"inbound": inbound_sids, "stops": stops}


def check(engine: sa.Engine, ids: dict[str, Any], expected: dict[str, Any]) -> dict[str, int]:
    """Lost, duplicated and wrong rows, from the database itself."""
    with engine.connect() as db:
        inbound = dict(
            db.execute(
                sa.text(
                    "SELECT twilio_sid, count(*) FROM message WHERE direction = 'inbound' "
                    "GROUP BY twilio_sid"
                )
            ).all()
        )
        unattributed = db.execute(
            sa.text(
                "SELECT count(*) FROM message WHERE direction = 'inbound' "
                "AND (contact_id IS NULL OR organization_id <> :o)"
            ),
            {"o": ids["organization"]},
        ).scalar_one()
        statuses = dict(
            db.execute(
                sa.text(
                    "SELECT status, count(*) FROM message WHERE direction = 'outbound' "
                    "AND is_initial GROUP BY status"
                )
            ).all()
        )
        outbound = db.execute(
            sa.text("SELECT count(*) FROM message WHERE direction = 'outbound'")
        ).scalar_one()
        opt_outs = dict(
            db.execute(
                sa.text(
                    "SELECT cell, count(*) FROM opt_out WHERE organization_id = :o GROUP BY cell"
                ),
                {"o": ids["organization"]},
            ).all()
        )
    wanted = set(expected["inbound"])
    stops = set(expected["stops"])
    return {
        "inbound lost": sum(1 for sid in wanted if sid not in inbound),
        "inbound duplicated": sum(n - 1 for n in inbound.values() if n > 1),
        "inbound stray": sum(1 for sid in inbound if sid not in wanted),
        "inbound unattributed": unattributed,
        "status not delivered": sum(n for s, n in statuses.items() if s != "delivered"),
        "extra outbound rows": outbound - len(ids["messages"]),
        "opt-outs missing": sum(1 for cell in stops if cell not in opt_outs),
        "opt-outs extra": sum(1 for cell in opt_outs if cell not in stops)
        + sum(n - 1 for n in opt_outs.values()),
        "_statuses": statuses,  # type: ignore[dict-item]
    }


# --- Load ------------------------------------------------------------------------------------

LUA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_webhooks.lua")


def write_plan(directory: str, requests: list[list[Any]], threads: int) -> None:
    """One file per wrk thread (1.txt ...): `path TAB signature TAB body` a line, in order."""
    for n in range(threads):
        with open(os.path.join(directory, f"{n + 1}.txt"), "w") as plan_file:
            for path, form, signature, _kind in requests[n::threads]:
                plan_file.write(f"{path}\t{signature}\t{urlencode(form)}\n")


def load(
    args: argparse.Namespace, base: str, requests: list[list[Any]], in_flight: int
) -> dict[str, Any]:
    """Send every request once with wrk, `in_flight` connections; wrk's summary (see the Lua)
    and `elapsed`: seconds from starting wrk to the last answer."""
    threads = max(1, min(args.wrk_threads, in_flight))
    with tempfile.TemporaryDirectory(prefix="gotv-wrk-") as directory:
        write_plan(directory, requests, threads)
        command = ["wrk", "-t", str(threads), "-c", str(in_flight)]
        command += ["-d", f"{args.deadline:.0f}s", "--timeout", "60s", "-s", LUA, base]
        marks = [os.path.join(directory, f"{n + 1}.done") for n in range(threads)]
        started = time.time()
        wrk = subprocess.Popen(
            [*command, "--", directory], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        while wrk.poll() is None and not all(os.path.exists(mark) for mark in marks):
            time.sleep(0.005)
        if wrk.poll() is None:
            wrk.send_signal(signal.SIGINT)  # every answer is in: no need to sleep out -d
        out, err = wrk.communicate()
        if wrk.returncode != 0:
            raise RuntimeError(f"wrk failed: {err}")
        finished = [os.stat(mark).st_mtime for mark in marks if os.path.exists(mark)]
    summary: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    # The last thread's mark is the last answer; without every mark, wrk ran to its deadline.
    summary["elapsed"] = max(finished) - started if len(finished) == threads else summary["seconds"]
    return summary


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent not idle since boot (/proc/stat)."""
    with open("/proc/stat") as stat:
        fields = [int(n) for n in stat.readline().split()[1:8]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")


def phase(
    args: argparse.Namespace,
    engine: sa.Engine,
    web: subprocess.Popen,
    name: str,
    in_flight: int,
    run: int,
) -> dict[str, Any]:
    first = 1_000_000 * run
    ids = setup(engine, args.contacts, first)
    requests, expected = plan(args, args.base, ids, first)
    meter = CpuMeter(
        {"gunicorn": lambda: process_tree(web.pid), "postgres": lambda: postgres_pids(engine)},
        unit="request",
    )
    meter.start()
    machine_before = machine_busy_seconds()
    clients_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    summary = load(args, args.base, requests, in_flight)
    cpu = meter.report(len(requests))
    machine_us = (machine_busy_seconds() - machine_before) / len(requests) * 1e6
    clients_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    client_seconds = sum(
        getattr(clients_after, field) - getattr(clients_before, field)
        for field in ("ru_utime", "ru_stime")
    )
    codes = {int(code): count for code, count in summary["codes"].items()}
    ok = sum(count for code, count in codes.items() if 200 <= code < 300)
    unanswered = len(requests) - sum(codes.values())
    problems_http = {str(code): count for code, count in codes.items() if not 200 <= code < 300}
    if unanswered:
        problems_http["unanswered"] = unanswered
    socket_errors = {kind: n for kind, n in summary["errors"].items() if n and kind != "status"}
    if summary["idle"]:
        socket_errors["idle requests (reconnections)"] = summary["idle"]
    problems_http.update(socket_errors)
    result = {
        "name": name,
        "in_flight": in_flight,
        "requests": len(requests),
        "ok": ok,
        "rate": ok / summary["elapsed"],
        "p50": summary["p50"] / 1000,
        "p95": summary["p95"] / 1000,
        "p99": summary["p99"] / 1000,
        "max": summary["max"] / 1000,
        "non_2xx": problems_http,
        "check": check(engine, ids, expected),
        "client_us": client_seconds / len(requests) * 1e6,
    }
    problems = {k: v for k, v in result["check"].items() if not k.startswith("_") and v}
    log(
        f"{name} (run {run}, {in_flight} in flight): {len(requests)} requests, {ok} 2xx in "
        f"{summary['elapsed']:.2f} s: {result['rate']:.0f} req/s; latency "
        f"p50 {result['p50']:.1f} ms, p95 {result['p95']:.1f} ms, p99 {result['p99']:.1f} ms, "
        f"max {result['max']:.1f} ms; non-2xx {problems_http or 0}"
    )
    log(
        f"{name} (run {run}): {cpu}; load client (wrk) {result['client_us']:.0f}; the whole "
        f"machine (every process, the kernel, exited PostgreSQL backends) {machine_us:.0f}"
    )
    log(
        f"{name} (run {run}): check: "
        + (
            "0 lost, 0 duplicated, every status at its furthest, one opt-out per STOP"
            if not problems
            else f"PROBLEMS {problems}; final statuses {result['check']['_statuses']}"
        )
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--contacts", type=int, default=4000, help="per phase: 6.2 requests each")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=2, help="gunicorn threads per worker")
    parser.add_argument("--worker-class", default="gthread", help="gthread: keep-alive")
    parser.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (-t)")
    parser.add_argument("--burst", type=int, default=256, help="in flight in the burst phase")
    parser.add_argument("--concurrency", type=int, default=16, help="closed loop: in flight")
    parser.add_argument("--overload", type=int, default=4, help="overload: x the concurrency")
    parser.add_argument("--stop-every", type=int, default=10, help="every Nth reply is STOP")
    parser.add_argument("--retry-every", type=int, default=5, help="every Nth reply sent twice")
    parser.add_argument("--deadline", type=float, default=120, help="seconds per phase, at most")
    parser.add_argument("--phases", default="burst,closed,overload")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args.base = base
    env = environment(args, base)
    engine = migrated_engine(env)
    web = start_gunicorn(args, port, env)
    log(
        f"webhooks benchmark: gunicorn {args.web_workers} x {args.worker_class} workers x "
        f"{args.threads} threads, wrk with {args.wrk_threads} threads, {args.contacts} contacts "
        f"per phase, {os.cpu_count()} CPUs"
    )
    in_flight = {
        "burst": args.burst,
        "closed": args.concurrency,
        "overload": args.concurrency * args.overload,
    }
    results: dict[str, list[dict[str, Any]]] = {}
    try:
        for run in range(1, args.runs + 1):
            log(f"--- run {run} of {args.runs}")
            for name in args.phases.split(","):
                result = phase(args, engine, web, name, in_flight[name], run)
                results.setdefault(name, []).append(result)
    finally:
        web.terminate()
        web.wait()
    for name, runs in results.items():
        clean = all(
            not v for r in runs for k, v in r["check"].items() if not k.startswith("_")
        ) and not any(r["non_2xx"] for r in runs)
        log(
            f"median of {len(runs)} {name} ({in_flight[name]} in flight): "
            f"{statistics.median(r['rate'] for r in runs):.0f} req/s 2xx, "
            f"p50 {statistics.median(r['p50'] for r in runs):.1f} ms, "
            f"p95 {statistics.median(r['p95'] for r in runs):.1f} ms, "
            f"p99 {statistics.median(r['p99'] for r in runs):.1f} ms; "
            + ("no non-2xx, nothing lost or duplicated" if clean else "SEE PROBLEMS ABOVE")
        )


if __name__ == "__main__":
    main()
