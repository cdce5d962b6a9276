"""Benchmark the sending pipeline in the shape that ships (see scripts/bench).

    python scripts/bench_send.py --database-url ... --redis-url ... [--messages 10000]
        [--runs 3] [--latency 0.15] [--workers 2] [--web-workers 2] [--threads 8]
        [--twilio-concurrency 100] [--over 40 --over-carrier 20] [--phases ...]

Runs gotv's processes from the Procfile's own `web` and `worker` lines: gunicorn (gthread,
WEB_CONCURRENCY = `--web-workers` processes x WEB_THREADS = `--threads`, gotv.web.serving,
the access log as shipped) serving the status webhook at PUBLIC_URL, and `--workers` worker
processes on every queue. The fake carrier runs in its own process: `--latency` seconds per
API call, at most `--twilio-concurrency` requests in flight for the account (Twilio's
concurrency limit: more get 429/20429 at once), status callbacks `sent` and `delivered`
signed and POSTed to gunicorn by `--delivery-threads` threads. gotv's own ceiling on requests
in flight per account (TWILIO_CONCURRENCY) is the same figure. Phases:

- ceiling: plain aiohttp clients (one per worker), the same requests in flight in all,
  straight at the carrier, no callbacks: the most this carrier gives with no app in between;
- throughput: `--messages` queued rows, written as clicks write them, then one wake-up; ends
  when every message is `delivered` in the database (through its callbacks): messages/s from
  the clicks to the last accepted and to the last delivered, the 429s the carrier gave, and
  the CPU per message of the carrier (the load generator), gotv (gunicorn, workers),
  PostgreSQL and Redis;
- over: gotv's TWILIO_CONCURRENCY set to `--over` (the workers restarted) against a carrier
  of its own limiting the account to `--over-carrier`: the 429s it gets, and every message
  still delivered once;
- latency: clicks offered at a steady rate (half the measured throughput) for
  `--latency-seconds`: p50/p99 from click to Twilio-accepted and to delivered;
- pacing: `--senders` senders limited to `--per-second` each: each sender's measured rate.

Every phase then checks with the carrier's own message list that no message was sent twice and
none was lost. Ceiling and throughput alternate `--runs` times; medians and the median of the
per-run ratios are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import sqlalchemy as sa

ACCOUNT_SID = "AC" + "b" * 32
AUTH_TOKEN = "bench-token"
FROM_NUMBER = "+15005550006"
# Encrypts the benchmark database's secrets (a Fernet key; gotv/encryption.py).
BENCH_ENCRYPTION_KEY = "7eNhgs-o2TXQ6xDvfXWsVL1Jb38-2C8nqjRq2XRtN8s="


def log(text: str) -> None:
    print(text, flush=True)


# --- Processes -------------------------------------------------------------------------------

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def environment(args: argparse.Namespace, carrier_url: str, web_port: int) -> dict[str, str]:
    """gotv's environment, as a deploy sets it (docs/deploy.md), for this benchmark's servers."""
    return {
        **os.environ,
        # The Procfile's `gunicorn` and `python` are this interpreter's.
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
        "GOTV_ENV": "production",
        "SECRET_KEY": "bench",
        "ENCRYPTION_KEYS": BENCH_ENCRYPTION_KEY,
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "PUBLIC_URL": f"http://127.0.0.1:{web_port}",
        "PORT": str(web_port),
        "WEB_CONCURRENCY": str(args.web_workers),
        "WEB_THREADS": str(args.threads),
        "PROXY_COUNT": "0",
        "PROMETHEUS_MULTIPROC_DIR": args.metrics_dir,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": FROM_NUMBER,
        "TWILIO_API_URL": carrier_url,
        # gotv's ceiling on the account's requests in flight, across every worker: Twilio's.
        "TWILIO_CONCURRENCY": str(args.twilio_concurrency),
        "SEND_CONCURRENCY": str(args.send_concurrency),
    }


def procfile_command(name: str) -> str:
    """The Procfile's command for the process type `name`, run by a shell as a platform does."""
    with open(os.path.join(ROOT, "Procfile")) as procfile:
        for line in procfile:
            kind, _, command = line.partition(":")
            if kind.strip() == name:
                return command.strip()
    raise SystemExit(f"the Procfile has no {name!r} process")


def start_procfile(name: str, env: dict[str, str], log_path: str) -> subprocess.Popen[bytes]:
    """One process of the Procfile's type `name` (the shell `exec`s it: its pid is ours); its
    standard error (gunicorn's and the worker's logs) goes to `log_path`, the access log (on
    standard output) nowhere."""
    with open(log_path, "ab") as errors:
        return subprocess.Popen(
            ["sh", "-c", "exec " + procfile_command(name)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )


def start_web(env: dict[str, str], log_path: str) -> subprocess.Popen[bytes]:
    process = start_procfile("web", env, log_path)
    deadline = time.monotonic() + 180  # a busy shared machine takes its time
    while not _answers(env["PUBLIC_URL"] + "/healthz"):
        if process.poll() is not None or time.monotonic() > deadline:
            with open(log_path) as errors:
                log(errors.read()[-3000:])
            raise SystemExit("gunicorn did not start (its log is above)")
        time.sleep(0.2)
    return process


def _answers(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status) == 200
    except OSError:
        return False


def start_carrier(
    args: argparse.Namespace, port: int, public_url: str, limit: int
) -> subprocess.Popen[bytes]:
    """The fake carrier: `limit` requests in flight for the account, callbacks to gunicorn."""
    command = [sys.executable, "-m", "gotv.fakecarrier", "--port", str(port)]
    command += ["--account-sid", ACCOUNT_SID, "--auth-token", AUTH_TOKEN]
    command += ["--latency", str(args.latency), "--delay", str(args.callback_delay)]
    command += ["--concurrency", str(limit)]
    command += ["--delivery-threads", str(args.delivery_threads)]
    command += ["--inbound-url", public_url + "/twilio/inbound"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    wait_for_port(port)
    return process


def wait_for_port(port: int) -> None:
    import socket

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"nothing listens on port {port}")


def start_workers(count: int, env: dict[str, str], log_dir: str) -> list[subprocess.Popen[bytes]]:
    workers = [
        start_procfile("worker", env, os.path.join(log_dir, f"worker-{n}.log"))
        for n in range(count)
    ]
    time.sleep(3)  # each imports the app and registers with RQ before the first wake-up
    return workers


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def migrated_engine(env: dict[str, str]) -> sa.Engine:
    """Migrate the benchmark's database as the app configured by `env` would; its engine."""
    import flask_migrate

    from gotv import create_app
    from gotv.db import db

    os.environ.update(env)
    with create_app().app_context():
        flask_migrate.upgrade()
        return db.engine


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def carrier_stats(carrier_url: str) -> dict[str, Any]:
    """The carrier's counts (GET /_carrier/stats): 429s given, messages, webhooks."""
    import json
    import urllib.request

    with urllib.request.urlopen(carrier_url + "/_carrier/stats", timeout=10) as response:
        stats: dict[str, Any] = json.load(response)
    return stats


# --- The ceiling -----------------------------------------------------------------------------


CEILING_CLIENT = """
import asyncio, resource, sys, time, aiohttp
url, count, in_flight, offset = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
auth = {"Authorization": aiohttp.encode_basic_auth(sys.argv[5], sys.argv[6])}
async def main():
    next_index = iter(range(count))
    connector = aiohttp.TCPConnector(limit=in_flight)
    refused = 0
    async with aiohttp.ClientSession(connector=connector, headers=auth) as session:
        async def lane():
            nonlocal refused
            for i in next_index:
                form = {"To": f"+1202{offset + i:07d}", "From": "+15005550006",
                        "Body": "Hi Maria, it's Val. Will you vote Tuesday? Reply STOP to opt out.",
                        "ValidityPeriod": "14400"}
                async with session.post(url, data=form) as response:
                    await response.json()
                    refused += response.status == 429
        started = time.monotonic()
        await asyncio.gather(*(lane() for _ in range(in_flight)))
        usage = resource.getrusage(resource.RUSAGE_SELF)
        print(started, time.monotonic(), usage.ru_utime + usage.ru_stime, refused)
asyncio.run(main())
"""


def measure_ceiling(args: argparse.Namespace, carrier_url: str, carrier_pid: int) -> float:
    """Messages/s of plain aiohttp clients (one per worker) posting straight to the carrier,
    `--twilio-concurrency` requests in flight in all; prints their CPU and the carrier's."""
    url = f"{carrier_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    count = args.ceiling_messages // args.workers
    lanes = max(1, args.twilio_concurrency // args.workers)
    carrier_before = process_cpu_seconds(carrier_pid)
    clients = [
        subprocess.Popen(
            [sys.executable, "-c", CEILING_CLIENT, url, str(count), str(lanes)]
            + [str(9_000_000 - (n + 1) * count), ACCOUNT_SID, AUTH_TOKEN],
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(args.workers)
    ]
    # From the first request to the last answer, as the throughput phase counts (monotonic
    # clocks are shared by all processes): interpreter start-up is not the carrier's ceiling.
    answers = [client.communicate()[0].split() for client in clients]
    carrier_cpu = process_cpu_seconds(carrier_pid) - carrier_before
    started = min(float(a[0]) for a in answers)
    ended = max(float(a[1]) for a in answers)
    client_cpu = sum(float(a[2]) for a in answers)
    refused = sum(int(a[3]) for a in answers)
    sent = count * args.workers
    log(
        f"ceiling: {sent / (ended - started):.0f} msg/s ({sent} sends, {lanes * args.workers} in "
        f"flight, plain aiohttp, no app); 429s {refused}; CPU per message (us): clients "
        f"{client_cpu / sent * 1e6:.0f}, carrier {carrier_cpu / sent * 1e6:.0f}"
    )
    return sent / (ended - started)


# --- Data ------------------------------------------------------------------------------------

BODY = "Hi Maria, it's Val. Will you vote Tuesday? Reply STOP to opt out."


def new_organization(db: sa.Connection) -> tuple[int, int]:
    """A new organization and its volunteer Val; returns their ids."""
    from gotv.models import Organization, User

    organization = db.execute(
        sa.insert(Organization.__table__).returning(Organization.__table__.c.id),
        {"name": "Bench"},
    ).scalar_one()
    user = db.execute(
        sa.insert(User.__table__).returning(User.__table__.c.id),
        {
            "organization_id": organization,
            "email": f"v{organization}@bench.test",
            "name": "Val",
            "password_hash": "x",
            "role": "texter",
        },
    ).scalar_one()
    return organization, user


def setup(engine: sa.Engine, senders: list[tuple[str, float | None]]) -> dict[str, Any]:
    """An organization, a volunteer and one active campaign per sender; returns their ids."""
    from gotv.models import Campaign, Sender

    with engine.begin() as db:
        organization, user = new_organization(db)
        campaigns = []
        for address, per_second in senders:
            sender = None
            if address:
                sender = db.execute(
                    sa.insert(Sender.__table__).returning(Sender.__table__.c.id),
                    {"organization_id": organization, "address": address, "per_second": per_second},
                ).scalar_one()
            campaigns.append(
                db.execute(
                    sa.insert(Campaign.__table__).returning(Campaign.__table__.c.id),
                    {
                        "organization_id": organization,
                        "name": "Bench",
                        "status": "active",
                        "window_start_hour": 0,
                        "window_end_hour": 24,
                        "sender_id": sender,
                    },
                ).scalar_one()
            )
    return {
        "organization": organization,
        "user": user,
        "campaigns": campaigns,
        "senders": [address for address, _ in senders],
    }


def click(
    engine: sa.Engine, ids: dict[str, Any], first: int, count: int, hold: bool = False
) -> None:
    """Write `count` contacts and their queued initial messages, as the send loop leaves them.

    `hold` writes them not due until tomorrow, for release() to make due all at once.
    """
    from gotv.models import Contact, Message

    campaigns, senders = ids["campaigns"], ids["senders"]
    contacts = Contact.__table__
    with engine.begin() as db:
        rows = db.execute(
            sa.insert(contacts).returning(contacts.c.id, contacts.c.campaign_id, contacts.c.cell),
            [
                {
                    "campaign_id": campaigns[n % len(campaigns)],
                    "cell": f"+1212{first + n:07d}",
                    "first_name": "Maria",
                    "time_zones": "America/New_York",
                    "status": "texted",
                    "texter_id": ids["user"],
                }
                for n in range(count)
            ],
        ).all()
        now = datetime.now(UTC)
        db.execute(
            sa.insert(Message.__table__),
            [
                {
                    "organization_id": ids["organization"],
                    "campaign_id": campaign_id,
                    "contact_id": contact_id,
                    "texter_id": ids["user"],
                    "direction": "outbound",
                    "kind": "text",
                    "is_initial": True,
                    "body": BODY,
                    "to_number": cell,
                    "status": "queued",
                    "sender": senders[campaigns.index(campaign_id)],
                    "created_at": now,
                    "updated_at": now,
                    "next_attempt_at": now + timedelta(days=1) if hold else None,
                }
                for contact_id, campaign_id, cell in rows
            ],
        )


def release(engine: sa.Engine, campaigns: list[int]) -> datetime:
    """Make held messages due, as if all their clicks had just landed; returns when they did.

    That is the commit: the messages become due for the workers then, not when this harness
    began rewriting them (100,000 rows take seconds).
    """
    with engine.begin() as db:
        db.execute(
            sa.text(
                "UPDATE message SET next_attempt_at = NULL, created_at = now() "
                "WHERE campaign_id = ANY(:c)"
            ),
            {"c": campaigns},
        )
    return datetime.now(UTC)


def wake(redis_url: str) -> None:
    """What a click does after its commit (queue.wake_senders), outside an app context."""
    from redis import Redis
    from rq import Queue

    connection = Redis.from_url(redis_url)
    if connection.set("gotv:send:wake", 1, nx=True, ex=10):
        Queue("send", connection=connection).enqueue("workers.texting.pump_outbox", job_timeout=180)


def wait_until_delivered(engine: sa.Engine, campaigns: list[int], timeout: float) -> None:
    """Wait until every message of `campaigns` is `delivered`: accepted by the carrier, then
    moved on by its status callbacks through gunicorn."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.begin() as db:
            # While any is queued or sending, one row at most, each found by walking its
            # status's partial index (as the pump's claim does, see outbox._WALK_THE_QUEUE_PG):
            # polling must not cost PostgreSQL, which is metered, a scan of every message.
            db.execute(sa.text("SELECT set_config('enable_bitmapscan', 'off', true)"))
            pending = db.execute(
                sa.text(
                    "SELECT EXISTS (SELECT FROM message WHERE status = 'queued' "
                    "AND campaign_id = ANY(:c)) OR EXISTS (SELECT FROM message "
                    "WHERE status = 'sending' AND campaign_id = ANY(:c))"
                ),
                {"c": campaigns},
            ).scalar_one()
            if not pending:
                # Then only the callbacks' tail is left.
                statuses: dict[str, int] = dict(
                    db.execute(
                        sa.text(
                            "SELECT status, count(*) FROM message WHERE campaign_id = ANY(:c) "
                            "AND status <> 'delivered' GROUP BY status"
                        ),
                        {"c": campaigns},
                    ).all()
                )
                if not statuses:
                    return
                if not set(statuses) & {"accepted", "sent"}:
                    raise SystemExit(f"messages that will never be delivered: {statuses}")
        time.sleep(0.5)
    raise SystemExit(f"messages not all delivered after {timeout} s")


def sends(engine: sa.Engine, campaigns: list[int]) -> list[Any]:
    """Every message of `campaigns`: created_at, sent_at (accepted), updated_at (delivered,
    once it is), sender, status, attempts."""
    with engine.connect() as db:
        return list(
            db.execute(
                sa.text(
                    "SELECT created_at, sent_at, updated_at, sender, status, attempts "
                    "FROM message WHERE campaign_id = ANY(:c)"
                ),
                {"c": campaigns},
            )
        )


def carrier_counts(carrier_url: str, prefix: str) -> Counter[str]:
    """How many messages the carrier holds per recipient, from its own message list."""

    async def fetch() -> Counter[str]:
        counts: Counter[str] = Counter()
        auth = {"Authorization": aiohttp.encode_basic_auth(ACCOUNT_SID, AUTH_TOKEN)}
        async with aiohttp.ClientSession(headers=auth) as session:
            url: str | None = (
                f"{carrier_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json?PageSize=1000"
            )
            while url:
                async with session.get(url) as response:
                    page = await response.json()
                counts.update(m["to"] for m in page["messages"] if m["to"].startswith(prefix))
                url = carrier_url + page["next_page_uri"] if page["next_page_uri"] else None
        return counts

    return asyncio.run(fetch())


def check_once(carrier_url: str, first: int, count: int, prefix: str = "+1212") -> tuple[int, int]:
    """(duplicates, lost) for the recipients first..first+count, by the carrier's own list."""
    counts = carrier_counts(carrier_url, prefix)
    wanted = {f"{prefix}{first + n:07d}" for n in range(count)}
    duplicates = sum(n - 1 for to, n in counts.items() if to in wanted and n > 1)
    lost = sum(1 for to in wanted if to not in counts)
    return duplicates, lost


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_pids(engine: sa.Engine) -> list[int]:
    """The database server's processes: its postmaster and every child of it."""
    with engine.connect() as db:
        backend = db.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
    postmaster = _parent_of(backend)
    assert postmaster is not None
    return process_tree(postmaster)


def process_tree(parent: int) -> list[int]:
    """A process and its children (gunicorn's master and workers, PostgreSQL's backends)."""
    children = [
        int(pid) for pid in os.listdir("/proc") if pid.isdigit() and _parent_of(int(pid)) == parent
    ]
    return [parent, *children]


def _parent_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rpartition(")")[2].split()[1])
    except OSError:
        return None


class CpuMeter:
    """CPU seconds used by each part of the pipeline between start() and the report."""

    def __init__(self, parts: dict[str, Any]) -> None:
        self.parts = parts  # name -> a function returning that part's pids

    def start(self) -> None:
        self.before = {name: self._seconds(pids()) for name, pids in self.parts.items()}

    def _seconds(self, pids: list[int]) -> dict[int, float]:
        return {pid: process_cpu_seconds(pid) for pid in pids}

    def per_message(self, messages: int) -> dict[str, float]:
        """Microseconds of CPU per message for each part since start()."""
        used = {}
        for name, pids in self.parts.items():
            before = self.before[name]
            after = self._seconds(pids())
            seconds = sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())
            used[name] = seconds / messages * 1e6
        return used


def describe_cpu(us: dict[str, float]) -> str:
    """One line: the load generator's CPU per message apart from gotv's, PostgreSQL's, Redis's."""
    gotv = us["web"] + us["workers"]
    return (
        f"CPU per message (us): load generator (fake carrier) {us['carrier']:.0f}; "
        f"gotv {gotv:.0f} (web {us['web']:.0f} + workers {us['workers']:.0f}); "
        f"PostgreSQL {us['postgres']:.0f}; Redis {us['redis']:.0f}"
    )


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


# --- Phases ----------------------------------------------------------------------------------


class Bench:
    """The running processes and what every phase needs of them."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.web_port, carrier_port = free_port(), free_port()
        self.carrier_url = f"http://127.0.0.1:{carrier_port}"
        self.env = environment(args, self.carrier_url, self.web_port)
        self.carriers: list[subprocess.Popen[bytes]] = []
        self.engine = migrated_engine(self.env)
        self.carrier = start_carrier(
            args, carrier_port, self.env["PUBLIC_URL"], args.twilio_concurrency
        )
        try:
            self.web = start_web(self.env, os.path.join(args.log_dir, "web.log"))
        except BaseException:
            stop([self.carrier])
            raise
        self.workers: list[subprocess.Popen[bytes]] = []
        self.next_recipient = 5_000_000
        from redis import Redis

        self.redis_pid = int(Redis.from_url(args.redis_url).info("server")["process_id"])

    def start_workers(self, env: dict[str, str] | None = None) -> None:
        """(Re)start the workers, then warm every process up, unmeasured: imports, first
        connections and first requests are not what a message costs."""
        stop(self.workers)
        self.workers = start_workers(self.args.workers, env or self.env, self.args.log_dir)
        send_all(self, self.args.warm_up, "warm-up", quiet=True)

    def stop(self) -> None:
        stop([*self.workers, self.web, *self.carriers])

    @property
    def carrier(self) -> subprocess.Popen[bytes]:
        """The carrier the workers send through now (the last one started)."""
        return self.carriers[-1]

    @carrier.setter
    def carrier(self, process: subprocess.Popen[bytes]) -> None:
        self.carriers.append(process)

    def meter(self) -> CpuMeter:
        workers = [worker.pid for worker in self.workers]
        return CpuMeter(
            {
                "carrier": lambda: [self.carrier.pid],
                "web": lambda: process_tree(self.web.pid),  # gunicorn's master and workers
                "workers": lambda: [pid for w in workers for pid in process_tree(w)],
                "postgres": lambda: postgres_pids(self.engine),
                "redis": lambda: [self.redis_pid],
            }
        )

    def throttled(self) -> int:
        return int(carrier_stats(self.carrier_url)["throttled"])


def send_all(bench: Bench, count: int, what: str, quiet: bool = False) -> dict[str, Any]:
    """Queue `count` messages at once, wake the workers, wait until all are delivered; print
    and return the rates, 429s, retries, CPU per message, duplicates and losses."""
    args, engine = bench.args, bench.engine
    ids = setup(engine, [("", None)])
    # New recipients for every run, apart from the latency and pacing phases' (valid US
    # numbers: the last gate refuses any other).
    first, bench.next_recipient = bench.next_recipient, bench.next_recipient + count
    if not quiet:
        log(f"{what}: writing {count} queued messages")
    for start in range(first, first + count, 10_000):
        click(engine, ids, start, min(10_000, first + count - start), hold=True)
    throttled_before = bench.throttled()
    started = release(engine, ids["campaigns"])
    meter = bench.meter()
    meter.start()  # after the harness's own rewrite of every row
    wake(args.redis_url)
    wait_until_delivered(engine, ids["campaigns"], timeout=count / 20 + 120)
    cpu = meter.per_message(count)
    rows = sends(engine, ids["campaigns"])
    throttled = bench.throttled() - throttled_before
    accepted = sorted(row.sent_at for row in rows)
    delivered = sorted(row.updated_at for row in rows)
    low, high = accepted[len(accepted) // 10], accepted[len(accepted) * 9 // 10]
    middle = (len(accepted) * 8 // 10) / (high - low).total_seconds()
    retried = sum(1 for row in rows if row.attempts > 1)
    duplicates, lost = check_once(bench.carrier_url, first, count)
    result = {
        "accepted": count / (accepted[-1] - started).total_seconds(),
        "delivered": count / (delivered[-1] - started).total_seconds(),
        "middle": middle,
        "throttled": throttled,
        "retried": retried,
        "cpu": cpu,
        "duplicates": duplicates,
        "lost": lost,
    }
    if quiet:
        return result
    log(
        f"{what}: {len(rows)} delivered of {count}: click to accepted {result['accepted']:.0f} "
        f"msg/s ({middle:.0f} over the middle 80%), click to delivered "
        f"{result['delivered']:.0f} msg/s ({(delivered[-1] - started).total_seconds():.1f} s); "
        f"429s from the carrier {throttled}, messages retried {retried}; "
        f"duplicates {duplicates}, lost {lost}"
    )
    log(f"{what}: {describe_cpu(cpu)}")
    return result


def over(bench: Bench) -> None:
    """gotv's ceiling above the carrier's: 429s, retried, and still once each."""
    args = bench.args
    log(
        f"over: gotv's TWILIO_CONCURRENCY {args.over} against a carrier limiting the account "
        f"to {args.over_carrier} (a carrier of its own; the workers restarted)"
    )
    # A lower limit than Twilio's, so that a busy 2-core box, which keeps far fewer than 100
    # requests in flight, still goes over it.
    port = free_port()
    bench.carrier = start_carrier(args, port, bench.env["PUBLIC_URL"], args.over_carrier)
    bench.carrier_url = f"http://127.0.0.1:{port}"
    env = {**bench.env, "TWILIO_API_URL": bench.carrier_url}
    bench.start_workers({**env, "TWILIO_CONCURRENCY": str(args.over)})
    result = send_all(bench, args.over_messages, "over")
    if result["duplicates"] or result["lost"]:
        raise SystemExit("over: a message was lost or sent twice")


def latency(bench: Bench, rate: float) -> None:
    args, engine = bench.args, bench.engine
    ids = setup(engine, [("", None)])
    first, tick = 2_000_000, 0.05
    per_tick = max(1, int(rate * tick))
    count = per_tick * int(args.latency_seconds / tick)
    log(f"latency: offering {per_tick / tick:.0f} clicks/s for {args.latency_seconds:.0f} s")
    next_at = time.monotonic()
    for start in range(first, first + count, per_tick):
        click(engine, ids, start, per_tick)
        wake(args.redis_url)
        next_at += tick
        time.sleep(max(0.0, next_at - time.monotonic()))
    wait_until_delivered(engine, ids["campaigns"], timeout=180)
    rows = sends(engine, ids["campaigns"])
    to_accepted = [(row.sent_at - row.created_at).total_seconds() * 1000 for row in rows]
    to_delivered = [(row.updated_at - row.created_at).total_seconds() * 1000 for row in rows]
    duplicates, lost = check_once(bench.carrier_url, first, count)
    log(
        f"latency: {len(rows)} delivered; click to accepted p50 "
        f"{percentile(to_accepted, 0.5):.0f} ms, p99 {percentile(to_accepted, 0.99):.0f} ms; "
        f"click to delivered p50 {percentile(to_delivered, 0.5):.0f} ms, p99 "
        f"{percentile(to_delivered, 0.99):.0f} ms (the carrier's callback delay is "
        f"{args.callback_delay:g} s a step); duplicates {duplicates}, lost {lost}"
    )


def pacing(bench: Bench) -> None:
    args, engine = bench.args, bench.engine
    senders = [(f"+1415555{1000 + n}", args.per_second) for n in range(args.senders)]
    ids = setup(engine, senders)
    first = 4_000_000
    count = int(args.senders * args.per_second * args.pacing_seconds)
    log(f"pacing: {count} messages over {args.senders} senders at {args.per_second:g}/s each")
    click(engine, ids, first, count, hold=True)
    release(engine, ids["campaigns"])
    wake(args.redis_url)
    wait_until_delivered(engine, ids["campaigns"], timeout=args.pacing_seconds * 2 + 120)
    by_sender: dict[str, list[datetime]] = {}
    for row in sends(engine, ids["campaigns"]):
        by_sender.setdefault(row.sender, []).append(row.sent_at)
    rates = []
    for sender, times in sorted(by_sender.items()):
        times.sort()
        # The first second is the bucket's burst; measure the steady rate after it.
        steady = [t for t in times if (t - times[0]).total_seconds() >= 1.0]
        rate = (len(steady) - 1) / (steady[-1] - steady[0]).total_seconds()
        rates.append(rate)
        log(
            f"pacing: sender {sender}: {len(times)} sent, {rate:.2f} msg/s "
            f"({(rate / args.per_second - 1) * 100:+.1f}% of the limit)"
        )
    duplicates, lost = check_once(bench.carrier_url, first, count)
    log(
        f"pacing: median {statistics.median(rates):.2f} msg/s per sender; "
        f"duplicates {duplicates}, lost {lost}"
    )


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--ceiling-messages", type=int, default=None, help="default: --messages")
    parser.add_argument("--latency", type=float, default=0.15, help="carrier seconds per call")
    parser.add_argument("--callback-delay", type=float, default=0.1, help="seconds a step")
    parser.add_argument("--delivery-threads", type=int, default=8, help="callbacks at once")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--web-workers", type=int, default=2, help="WEB_CONCURRENCY")
    parser.add_argument("--threads", type=int, default=8, help="WEB_THREADS")
    parser.add_argument(
        "--twilio-concurrency",
        type=int,
        default=100,
        help="the account's requests in flight: the carrier's limit and gotv's",
    )
    parser.add_argument("--send-concurrency", type=int, default=100, help="per worker")
    parser.add_argument("--over", type=int, default=40, help="gotv's limit in the over phase")
    parser.add_argument(
        "--over-carrier", type=int, default=20, help="the carrier's limit in the over phase"
    )
    parser.add_argument("--over-messages", type=int, default=2_000)
    parser.add_argument("--warm-up", type=int, default=500, help="messages, unmeasured")
    parser.add_argument("--latency-seconds", type=float, default=20)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--per-second", type=float, default=50)
    parser.add_argument("--pacing-seconds", type=float, default=30)
    parser.add_argument("--phases", default="ceiling,throughput,over,latency,pacing")
    parser.add_argument("--runs", type=int, default=3, help="ceiling and throughput runs")
    args = parser.parse_args()
    args.ceiling_messages = args.ceiling_messages or args.messages
    return args


def main() -> None:
    args = arguments()
    # Every process this starts imports the app: let the first compile it for the others
    # (a development shell's PYTHONDONTWRITEBYTECODE would have each compile it afresh).
    sys.dont_write_bytecode = False
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    # Ended by a signal (scripts/bench's trap, a timeout), stop every process it started.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(f"signal {signum}"))
    phases = args.phases.split(",")
    with tempfile.TemporaryDirectory(prefix="gotv-bench-send.") as work:
        args.metrics_dir = os.path.join(work, "metrics")
        args.log_dir = work  # the processes' logs
        os.mkdir(args.metrics_dir)
        bench = Bench(args)
        try:
            run_phases(bench, phases)
        finally:
            bench.stop()


def run_phases(bench: Bench, phases: list[str]) -> None:
    args = bench.args
    log(
        f"send benchmark: gunicorn {args.web_workers} x {args.threads} threads and "
        f"{args.workers} workers as the Procfile runs them; the account's requests in flight "
        f"{args.twilio_concurrency} (carrier's limit and gotv's); carrier latency "
        f"{args.latency:g} s, callbacks {args.callback_delay:g} s a step over "
        f"{args.delivery_threads} threads; {os.cpu_count()} CPUs"
    )
    ceilings: list[float] = []
    results: list[dict[str, Any]] = []
    if set(phases) - {"ceiling", "over"}:
        bench.start_workers()
    for run in range(1, args.runs + 1):
        log(f"--- run {run} of {args.runs}")
        if "ceiling" in phases:
            ceilings.append(measure_ceiling(args, bench.carrier_url, bench.carrier.pid))
        if "throughput" in phases:
            results.append(send_all(bench, args.messages, "throughput"))
    if results:
        summarize(ceilings, results)
    rate = statistics.median(r["delivered"] for r in results) if results else 300.0
    if "latency" in phases:
        latency(bench, rate / 2)
    if "pacing" in phases:
        pacing(bench)
    if "over" in phases:
        over(bench)


def summarize(ceilings: list[float], results: list[dict[str, Any]]) -> None:
    def median(key: str) -> float:
        return statistics.median(r[key] for r in results)

    cpu = {part: statistics.median(r["cpu"][part] for r in results) for part in results[0]["cpu"]}
    line = (
        f"median of {len(results)}: click to accepted {median('accepted'):.0f} msg/s, "
        f"click to delivered {median('delivered'):.0f} msg/s"
    )
    if ceilings:
        pairs = list(zip(results, ceilings, strict=True))
        line += (
            f"; ceiling {statistics.median(ceilings):.0f} msg/s; accepted / ceiling "
            f"{statistics.median(r['accepted'] / c for r, c in pairs):.0%}, delivered / ceiling "
            f"{statistics.median(r['delivered'] / c for r, c in pairs):.0%}"
        )
    log(line)
    log(
        f"median of {len(results)}: {describe_cpu(cpu)}; 429s "
        f"{sum(r['throttled'] for r in results)}, duplicates "
        f"{sum(r['duplicates'] for r in results)}, lost {sum(r['lost'] for r in results)}"
    )


if __name__ == "__main__":
    main()
