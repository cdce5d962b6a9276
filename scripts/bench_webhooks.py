"""Benchmark Twilio's webhooks under gunicorn (see scripts/bench).

    python scripts/bench_webhooks.py --database-url ... --redis-url ... [--contacts 4000]
        [--web-workers 2] [--threads 1] [--burst 256] [--concurrency 16] [--overload 4]

Starts gunicorn serving `wsgi:app` (production settings, PUBLIC_URL = its own address) against
the private PostgreSQL and Redis, then for every phase writes a fresh organization, campaign and
`--contacts` contacts each with an accepted initial message (Twilio SID set), and sends a
shuffled mix of signed webhooks from a plain aiohttp client process on loopback:

- status callbacks `sent` and `delivered` for every message (`?message=<id>`), each twice, in
  random order (so `delivered` often arrives before `sent`);
- one reply per contact (`Yes I'll vote`, every `--stop-every`th `STOP`), each with its own
  MessageSid, every `--retry-every`th delivered twice (Twilio's retry).

Phases: `burst` (everything at once, `--burst` requests in flight), `closed` (`--concurrency`
in flight) and `overload` (`--overload` times that). Each prints requests/s answered 2xx,
p50/p95/p99 latency and non-2xx counts, then checks the database: every inbound MessageSid
stored exactly once, every message at its furthest status, one opt-out for every STOP, no
stray rows.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_send import (  # noqa: E402
    ACCOUNT_SID,
    AUTH_TOKEN,
    FROM_NUMBER,
    CpuMeter,
    free_port,
    log,
    migrated_engine,
    new_organization,
    percentile,
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
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "PUBLIC_URL": public_url,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": FROM_NUMBER,
        "TWILIO_API_URL": "http://127.0.0.1:9",
    }


def start_gunicorn(args: argparse.Namespace, port: int, env: dict[str, str]) -> subprocess.Popen:
    command = [sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", f"127.0.0.1:{port}"]
    command += ["--workers", str(args.web_workers), "--threads", str(args.threads)]
    command += ["--worker-class", args.worker_class, "--backlog", "4096"]
    command += ["--log-level", "warning", "--timeout", "60"]
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

CLIENT = r"""
import asyncio, json, sys, time, aiohttp
base, plan_file = sys.argv[1], sys.argv[2]
in_flight, deadline = int(sys.argv[3]), float(sys.argv[4])
with open(plan_file) as f:
    requests = json.load(f)
results = [None] * len(requests)
async def main():
    pending = iter(range(len(requests)))
    connector = aiohttp.TCPConnector(limit=in_flight, force_close=False)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        async def lane():
            for i in pending:
                if time.time() > deadline:
                    results[i] = ["skipped", 0.0, 0.0]
                    continue
                path, form, signature, kind = requests[i]
                started = time.perf_counter()
                try:
                    async with session.post(base + path, data=form,
                                            headers={"X-Twilio-Signature": signature}) as r:
                        await r.read()
                        code = r.status
                except Exception as error:
                    code = type(error).__name__
                results[i] = [code, time.perf_counter() - started, time.time()]
        await asyncio.gather(*(lane() for _ in range(in_flight)))
asyncio.run(main())
json.dump(results, sys.stdout)
"""


def load(
    args: argparse.Namespace, base: str, requests: list[list[Any]], in_flight: int
) -> tuple[list[Any], float]:
    """Send `requests` from `--clients` processes, `in_flight` in all; returns results, seconds."""
    clients = args.clients
    files, processes = [], []
    deadline = time.time() + args.deadline
    for n in range(clients):
        part = requests[n::clients]
        handle = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
        json.dump(part, handle)
        handle.close()
        files.append(handle.name)
    started = time.perf_counter()
    for n in range(clients):
        command = [sys.executable, "-c", CLIENT, base, files[n], str(max(1, in_flight // clients))]
        processes.append(subprocess.Popen([*command, str(deadline)], stdout=subprocess.PIPE))
    results: list[Any] = []
    for process in processes:
        out, _ = process.communicate()
        results += json.loads(out)
    elapsed = time.perf_counter() - started
    for name in files:
        os.unlink(name)
    return results, elapsed


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
    clients_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    results, elapsed = load(args, args.base, requests, in_flight)
    cpu = meter.report(len(requests))
    clients_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    client_seconds = sum(
        getattr(clients_after, field) - getattr(clients_before, field)
        for field in ("ru_utime", "ru_stime")
    )
    ok = [latency for code, latency, _ in results if isinstance(code, int) and 200 <= code < 300]
    codes: dict[str, int] = {}
    for code, _, _ in results:
        if not (isinstance(code, int) and 200 <= code < 300):
            codes[str(code)] = codes.get(str(code), 0) + 1
    finished = sorted(at for code, _, at in results if code != "skipped")
    span = finished[-1] - finished[0] if len(finished) > 1 else elapsed
    # The middle 80% of completions: the steady rate, without start-up and the last stragglers.
    low, high = finished[len(finished) // 10], finished[len(finished) * 9 // 10]
    steady = (len(finished) * 8 // 10) / max(high - low, 1e-9)
    result = {
        "name": name,
        "in_flight": in_flight,
        "requests": len(requests),
        "ok": len(ok),
        "rate": len(ok) / span,
        "steady": steady,
        "p50": percentile(ok, 0.5) * 1000,
        "p95": percentile(ok, 0.95) * 1000,
        "p99": percentile(ok, 0.99) * 1000,
        "non_2xx": codes,
        "check": check(engine, ids, expected),
    }
    problems = {k: v for k, v in result["check"].items() if not k.startswith("_") and v}
    log(
        f"{name} (run {run}, {in_flight} in flight): {len(requests)} requests, {len(ok)} 2xx in "
        f"{span:.1f} s: {result['rate']:.0f} req/s ({steady:.0f} over the middle 80%); latency "
        f"p50 {result['p50']:.1f} ms, p95 {result['p95']:.1f} ms, p99 {result['p99']:.1f} ms; "
        f"non-2xx {codes or 0}"
    )
    log(f"{name} (run {run}): {cpu}; load client {client_seconds / len(requests) * 1e6:.0f}")
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
    parser.add_argument("--threads", type=int, default=1, help="gunicorn threads per worker")
    parser.add_argument("--worker-class", default="sync")
    parser.add_argument("--clients", type=int, default=1, help="load generator processes")
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
        f"{args.threads} threads, {args.clients} client process(es), {args.contacts} contacts "
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
            f"{statistics.median(r['rate'] for r in runs):.0f} req/s 2xx "
            f"({statistics.median(r['steady'] for r in runs):.0f} middle 80%), "
            f"p50 {statistics.median(r['p50'] for r in runs):.1f} ms, "
            f"p95 {statistics.median(r['p95'] for r in runs):.1f} ms, "
            f"p99 {statistics.median(r['p99'] for r in runs):.1f} ms; "
            + ("no non-2xx, nothing lost or duplicated" if clean else "SEE PROBLEMS ABOVE")
        )


if __name__ == "__main__":
    main()
