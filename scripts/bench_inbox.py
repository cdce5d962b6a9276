"""Benchmark the volunteers' texting screens over HTTP (see scripts/bench).

    python scripts/bench_inbox.py --database-url ... --redis-url ... [--contacts 10000]
        [--users 20] [--seconds 30] [--pace 3] [--web-workers 4] [--threads 128] [--floor]
        [--streams]

Writes an organization, `--users` volunteers and one active campaign of `--contacts` untexted
contacts (10,000; try 1,000,000) into the private PostgreSQL, starts gunicorn (threaded
workers, production settings) and runs Locust (scripts/bench_inbox_locust.py): each simulated
volunteer logs in, takes a batch, and sends initials through the JSON send endpoint, one every
`--pace` seconds (3, a volunteer's fastest real pace; the runs before issue 21 used 1); every
fifth text gets a signed reply webhook, and the volunteer opens the inbox and the
thread and answers it. No worker runs: texts stay queued in the outbox, so this measures the
web side only.

`--floor` runs the same volunteers, pacing and mix of requests under the same names, but
everything after signing in goes to an endpoint that does nothing but be a signed-in request
(its POSTs CSRF-checked; the reply webhook's neither signed in nor checked), which only
scripts/bench_inbox_wsgi.py has, and only with BENCH_FLOOR=1: what the box can serve at best,
with Flask, Flask-Login, the session cookie and gunicorn, before gotv does any work.

`--streams`: each volunteer also holds its live event stream open all along (a second tab on
the inbox), and answers a reply once its live event has come ("live reply": from the webhook's
post to the event; web processes hold at most LIVE_STREAMS_PER_PROCESS streams and ask the rest
to come back later).

Prints sends/s, p50/p95/p99 of each request (the send, the inbox page...), errors, the
database queries each request ran, its median CPU time in the web process and the p50/p95 of
its time inside the app (scripts/bench_inbox_wsgi.py measures these and returns them in
headers); then the CPU that gunicorn, PostgreSQL, Locust, Redis and the whole machine used in
the measured time, as cores and as milliseconds per send served.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_send import (  # noqa: E402
    ACCOUNT_SID,
    AUTH_TOKEN,
    FROM_NUMBER,
    free_port,
    log,
    migrated_engine,
    wait_for_port,
)
from bench_webhooks import environment as webhook_environment  # noqa: E402

PASSWORD = "bench-password"
SCRIPT = "Hi {first_name}, it's {texter_name}. Will you vote Tuesday? Reply STOP to opt out."


def environment(args: argparse.Namespace, public_url: str) -> dict[str, str]:
    """The webhook benchmark's production settings; no proxy in front of gunicorn here, and
    the production pool of database connections (that benchmark's one per thread would be 4 x
    192 connections with the Procfile's 128 threads: more than PostgreSQL lets in)."""
    env = {**webhook_environment(args, public_url), "PROXY_COUNT": "0"}
    del env["DATABASE_POOL_SIZE"]
    return env


def setup(engine: sa.Engine, contacts: int, users: int) -> dict[str, Any]:
    """The organization, its volunteers and the campaign; contact n (id n) has cell +1212n."""
    from werkzeug.security import generate_password_hash

    from gotv.models import Campaign, Organization, User

    # A cheap hash for the benchmark's accounts only: signing in is a deliberately slow hash,
    # once a shift, and 500 of them at once would take minutes of this box's CPU before the
    # steady state this measures (requests count only once everyone has signed in anyway).
    password_hash = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")
    with engine.begin() as db:
        db.execute(sa.text("TRUNCATE organization RESTART IDENTITY CASCADE"))
        db.execute(sa.text("TRUNCATE contact RESTART IDENTITY CASCADE"))
        organization = db.execute(
            sa.insert(Organization.__table__).returning(Organization.__table__.c.id),
            {"name": "Bench"},
        ).scalar_one()
        emails = [f"v{n}@bench.test" for n in range(users)]
        db.execute(
            sa.insert(User.__table__),
            [
                {
                    "organization_id": organization,
                    "email": email,
                    "name": f"Val {n}",
                    "password_hash": password_hash,
                    "role": "texter",
                }
                for n, email in enumerate(emails)
            ],
        )
        campaign = db.execute(
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
                # Every volunteer gets a batch, however few contacts per volunteer.
                "batch_size": max(1, min(200, contacts // users)),
                "batch_while_replies_wait": True,
                "release_after_minutes": 60,
            },
        ).scalar_one()
        db.execute(
            sa.text(
                "INSERT INTO contact (campaign_id, cell, first_name, last_name, zip, state,"
                " rule_states, time_zones, custom_fields, status, needs_reply,"
                " opt_out_suggested, unread, updated_at)"
                " SELECT :campaign, '+1212' || (2000000 + n)::text, 'Maria', 'Voter', '10001',"
                " 'NY', 'NY', 'America/New_York', '{}', 'new', false, false, 0, now()"
                " FROM generate_series(1, :count) AS n"
            ),
            {"campaign": campaign, "count": contacts},
        )
        db.execute(sa.text("ANALYZE contact"))
    return {"campaign": campaign, "emails": emails}


def start_gunicorn(args: argparse.Namespace, port: int, env: dict[str, str]) -> subprocess.Popen:
    here = os.path.dirname(os.path.abspath(__file__))
    command = [sys.executable, "-m", "gunicorn", "bench_inbox_wsgi:app", "--pythonpath", here]
    command += ["--bind", f"127.0.0.1:{port}", "--workers", str(args.web_workers)]
    command += ["--worker-class", "gthread", "--threads", str(args.threads)]
    command += ["--reuse-port"]  # as the Procfile: the kernel spreads connections over workers
    command += ["--log-level", "warning", "--timeout", "60"]
    command += ["--graceful-timeout", "5"]  # open live streams would hold the stop for 30 s
    process = subprocess.Popen(command, env={**env, **floor_environment(args)})
    wait_for_port(port)
    time.sleep(1.0)  # let every worker boot
    return process


def process_roots(engine: sa.Engine, redis_url: str, web: subprocess.Popen) -> str:
    """BENCH_ROOTS for Locust: the gunicorn master, PostgreSQL's postmaster (the parent of a
    backend) and the Redis server, whose descendants are this benchmark's processes."""
    import redis

    with engine.connect() as connection:
        backend = connection.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
    with open(f"/proc/{backend}/stat") as handle:
        postmaster = handle.read().rsplit(")", 1)[1].split()[1]
    redis_pid = redis.Redis.from_url(redis_url).info("server")["process_id"]
    return f"gunicorn={web.pid},postgres={postmaster},redis={redis_pid}"


def run_locust(
    args: argparse.Namespace, base: str, ids: dict[str, Any], results: str, roots: str
) -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    env = {
        **os.environ,
        "BENCH_CAMPAIGN": str(ids["campaign"]),
        "BENCH_EMAILS": ",".join(ids["emails"]),
        "BENCH_PASSWORD": PASSWORD,
        "BENCH_AUTH_TOKEN": AUTH_TOKEN,
        "BENCH_ACCOUNT_SID": ACCOUNT_SID,
        "BENCH_FROM_NUMBER": FROM_NUMBER,
        "BENCH_RESULTS": results,
        **floor_environment(args),
        **({"BENCH_STREAMS": "1"} if args.streams else {}),
        "BENCH_PACE": str(args.pace),
        "BENCH_ROOTS": roots,
    }
    command = [sys.executable, "-m", "locust", "-f", os.path.join(here, "bench_inbox_locust.py")]
    command += ["--headless", "--host", base, "-u", str(args.users), "-r", str(args.users)]
    command += ["--run-time", f"{args.seconds}s", "--only-summary", "--loglevel", "WARNING"]
    subprocess.run(command, env=env, check=False)


def floor_environment(args: argparse.Namespace) -> dict[str, str]:
    """BENCH_FLOOR=1 for gunicorn and Locust with `--floor`."""
    return {"BENCH_FLOOR": "1"} if args.floor else {}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def report(results: dict[str, Any], seconds: float, pace: float) -> None:
    """Per request: client-side p50/p95/p99, queries, median CPU ms in the web process, and
    the p50/p95 of the time inside the app (the rest of a response time is waiting)."""
    log("")
    log(
        f"{'request':<16}{'count':>8}{'errors':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
        f"{'queries':>9}{'cpu ms':>8}{'app p50':>9}{'app p95':>9}"
    )
    for name, row in sorted(results["requests"].items()):
        times = row["times"]
        queries = row["queries"]
        per_request = f"{sum(queries) / len(queries):.1f}" if queries else "-"
        log(
            f"{name:<16}{len(times):>8}{row['errors']:>8}{percentile(times, 0.5):>9.1f}"
            f"{percentile(times, 0.95):>9.1f}{percentile(times, 0.99):>9.1f}{per_request:>9}"
            f"{percentile(row.get('cpu', []), 0.5):>8.2f}"
            f"{percentile(row.get('server', []), 0.5):>9.1f}"
            f"{percentile(row.get('server', []), 0.95):>9.1f}"
        )
    sends = len(results["requests"].get("send", {}).get("times", []))
    # What the box must serve per volunteer-second: a send and its share of the rest.
    cpu = sum(sum(row.get("cpu", [])) for row in results["requests"].values())
    if sends:
        log(
            f"\nCPU in the app per send served: {cpu / sends:.2f} ms (all requests' X-CPU-Ms"
            " over the sends; gunicorn's own work not included)"
        )
    report_cpu(results.get("cpu", {}), seconds, sends)
    if results.get("streams"):
        told = ", ".join(f"{what} {count}" for what, count in sorted(results["streams"].items()))
        log(f"\nlive event streams over the whole run: {told}")
    log(
        f"\nsends/s: {sends / seconds:.1f} over the {seconds:.0f} s after every volunteer "
        "signed in and took a batch "
        f"({results['users']} volunteers at one send every {pace:g} s each)"
    )


def report_cpu(cpu: dict[str, float], seconds: float, sends: int) -> None:
    """Per kind of process and for the whole machine: the cores it kept busy over the measured
    time, and its CPU per send served (what each volunteer-second costs it, the send's share of
    the other requests included)."""
    if not cpu or not seconds:
        return
    log(f"\n{'CPU':<16}{'cores':>8}{'ms/send':>9}")
    machine = cpu.get("machine", 0.0)
    rows = {kind: cpu.get(kind, 0.0) for kind in ("gunicorn", "postgres", "locust", "redis")}
    rows["rest"] = machine - sum(rows.values())
    rows["machine"] = machine
    for kind, used in rows.items():
        per_send = f"{used * 1000 / sends:.2f}" if sends else "-"
        log(f"{kind:<16}{used / seconds:>8.2f}{per_send:>9}")
    log(
        "(each kind: the benchmark's own processes, by ancestry; rest: the machine's busy time"
        " less those: other people's processes on a shared machine, interrupts)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument(
        "--pace", type=float, default=3.0, help="seconds between a volunteer's sends (3)"
    )
    parser.add_argument("--web-workers", type=int, default=4)  # as the Procfile
    parser.add_argument("--threads", type=int, default=128)  # as the Procfile
    parser.add_argument(
        "--floor", action="store_true", help="every request after signing in does nothing"
    )
    parser.add_argument(
        "--streams", action="store_true", help="each volunteer holds its live event stream open"
    )
    args = parser.parse_args()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = environment(args, base)
    engine = migrated_engine(env)
    log(f"writing {args.contacts:,} contacts and {args.users} volunteers")
    started = time.perf_counter()
    ids = setup(engine, args.contacts, args.users)
    log(f"  {time.perf_counter() - started:.1f} s")
    web = start_gunicorn(args, port, env)
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        results_file = handle.name
    try:
        log(f"locust: {args.users} volunteers for {args.seconds} s against {base}")
        run_locust(args, base, ids, results_file, process_roots(engine, args.redis_url, web))
    finally:
        web.terminate()
        web.wait(timeout=30)
    with open(results_file) as handle:
        results = json.load(handle)
    os.unlink(results_file)
    report(results, results.get("seconds") or args.seconds, args.pace)


if __name__ == "__main__":
    main()
