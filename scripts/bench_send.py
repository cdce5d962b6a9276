"""Benchmark the sending pipeline against the fake carrier's ceiling (see scripts/bench).

    python scripts/bench_send.py --database-url ... --redis-url ... [--messages 100000]
        [--latency 0.15] [--workers 2] [--concurrency 300] [--senders 4 --per-second 50]

Starts the fake carrier (its own process, `--latency` seconds per API call, no callbacks) and
`--workers` worker processes (`python -m workers send`), then runs four phases:

- ceiling: a plain aiohttp client per worker, the same requests in flight, straight at the
  carrier: the most this carrier and this HTTP stack give with no app in between;
- throughput: `--messages` queued rows, written as a click writes them, then one wake-up:
  sustained messages/s from the first click to the last accepted, and over the middle 80%, and
  the CPU each message cost the carrier, the workers and PostgreSQL;
- latency: clicks offered at a steady rate (half the measured throughput) for `--latency-seconds`:
  p50/p99 from click (created_at) to Twilio-accepted (sent_at);
- pacing: `--senders` senders limited to `--per-second` each: each sender's measured rate.

Every phase then checks with the carrier's own message list that no message was sent twice and
none was lost.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
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


def environment(args: argparse.Namespace, carrier_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "GOTV_ENV": "production",
        "SECRET_KEY": "bench",
        "ENCRYPTION_KEYS": BENCH_ENCRYPTION_KEY,
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "PUBLIC_URL": "http://127.0.0.1:9",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": FROM_NUMBER,
        "TWILIO_API_URL": carrier_url,
        "SEND_CONCURRENCY": str(args.concurrency),
    }


def start_carrier(args: argparse.Namespace, port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "gotv.fakecarrier", "--port", str(port)]
    command += ["--account-sid", ACCOUNT_SID, "--auth-token", AUTH_TOKEN]
    command += ["--latency", str(args.latency), "--no-callbacks"]
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


def start_workers(count: int, env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    return [
        subprocess.Popen(
            [sys.executable, "-m", "workers", "send"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]


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


# --- The ceiling -----------------------------------------------------------------------------


CEILING_CLIENT = """
import asyncio, sys, time, aiohttp
url, count, in_flight, offset = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
auth = {"Authorization": aiohttp.encode_basic_auth(sys.argv[5], sys.argv[6])}
async def main():
    next_index = iter(range(count))
    connector = aiohttp.TCPConnector(limit=in_flight)
    async with aiohttp.ClientSession(connector=connector, headers=auth) as session:
        async def lane():
            for i in next_index:
                form = {"To": f"+1202{offset + i:07d}", "From": "+15005550006",
                        "Body": "Hi Maria, it's Val. Will you vote Tuesday? Reply STOP to opt out.",
                        "StatusCallback": "http://127.0.0.1:9/twilio/status?message=1",
                        "ValidityPeriod": "14400"}
                async with session.post(url, data=form) as response:
                    await response.json()
        started = time.monotonic()
        await asyncio.gather(*(lane() for _ in range(in_flight)))
        print(started, time.monotonic())
asyncio.run(main())
"""


def measure_ceiling(args: argparse.Namespace, carrier_url: str) -> float:
    """Messages/s of plain aiohttp clients (one per worker) posting straight to the carrier."""
    url = f"{carrier_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    count = args.ceiling_messages // args.workers
    clients = [
        subprocess.Popen(
            [sys.executable, "-c", CEILING_CLIENT, url, str(count), str(args.concurrency)]
            + [str(9_000_000 - (n + 1) * count), ACCOUNT_SID, AUTH_TOKEN],
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(args.workers)
    ]
    # From the first request to the last answer, as the throughput phase counts (monotonic
    # clocks are shared by all processes): interpreter start-up is not the carrier's ceiling.
    spans = [tuple(map(float, client.communicate()[0].split())) for client in clients]
    return count * args.workers / (max(end for _, end in spans) - min(s for s, _ in spans))


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


def wait_until_settled(engine: sa.Engine, campaigns: list[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.begin() as db:
            # One row at most, each found by walking its status's partial index (as the
            # pump's claim does, see outbox._WALK_THE_QUEUE_PG): polling must not cost
            # PostgreSQL, which is metered, a scan of every message twice a second.
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
            return
        time.sleep(0.5)
    raise SystemExit(f"messages still queued or sending after {timeout} s")


def sends(engine: sa.Engine, campaigns: list[int]) -> list[tuple[datetime, datetime, str, str]]:
    with engine.connect() as db:
        return [
            tuple(row)  # type: ignore[misc]
            for row in db.execute(
                sa.text(
                    "SELECT created_at, sent_at, sender, status FROM message "
                    "WHERE campaign_id = ANY(:c)"
                ),
                {"c": campaigns},
            )
        ]


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

    def __init__(self, parts: dict[str, Any], unit: str = "message") -> None:
        self.parts = parts  # name -> a function returning that part's pids
        self.unit = unit  # what report()'s count counts

    def start(self) -> None:
        self.before = {name: self._seconds(pids()) for name, pids in self.parts.items()}

    def _seconds(self, pids: list[int]) -> dict[int, float]:
        return {pid: process_cpu_seconds(pid) for pid in pids}

    def report(self, messages: int) -> str:
        """Microseconds of CPU per message (or other unit) for each part, and their sum."""
        per_message = {}
        for name, pids in self.parts.items():
            before = self.before[name]
            after = self._seconds(pids())
            used = sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())
            per_message[name] = used / messages * 1e6
        parts = ", ".join(f"{name} {us:.0f}" for name, us in per_message.items())
        return f"CPU per {self.unit} (us): {parts}; total {sum(per_message.values()):.0f}"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


# --- Phases ----------------------------------------------------------------------------------


def throughput(
    args: argparse.Namespace, engine: sa.Engine, carrier_url: str, meter: CpuMeter
) -> float:
    ids = setup(engine, [("", None)])
    first = 10_000_000 + ids["organization"] * args.messages  # new recipients for every run
    log(f"throughput: writing {args.messages} queued messages")
    for start in range(first, first + args.messages, 10_000):
        click(engine, ids, start, min(10_000, first + args.messages - start), hold=True)
    started = release(engine, ids["campaigns"])
    meter.start()  # after the harness's own rewrite of every row
    wake(args.redis_url)
    wait_until_settled(engine, ids["campaigns"], timeout=args.messages / 50 + 60)
    cpu = meter.report(args.messages)
    rows = sends(engine, ids["campaigns"])
    accepted = sorted(sent for _, sent, _, status in rows if status == "accepted")
    total = (accepted[-1] - started).total_seconds()
    low, high = accepted[len(accepted) // 10], accepted[len(accepted) * 9 // 10]
    middle = (len(accepted) * 8 // 10) / (high - low).total_seconds()
    duplicates, lost = check_once(carrier_url, first, args.messages)
    log(
        f"throughput: {len(accepted)} accepted of {args.messages} in {total:.1f} s: "
        f"{len(accepted) / total:.0f} msg/s overall, {middle:.0f} msg/s over the middle 80%; "
        f"duplicates {duplicates}, lost {lost}"
    )
    log(f"throughput: {cpu}")
    return len(accepted) / total


def latency(args: argparse.Namespace, engine: sa.Engine, carrier_url: str, rate: float) -> None:
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
    wait_until_settled(engine, ids["campaigns"], timeout=120)
    delays = [
        (sent - created).total_seconds() * 1000
        for created, sent, _, s in sends(engine, ids["campaigns"])
        if s == "accepted"
    ]
    duplicates, lost = check_once(carrier_url, first, count)
    log(
        f"latency: {len(delays)} accepted; click to accepted p50 {percentile(delays, 0.5):.0f} ms, "
        f"p99 {percentile(delays, 0.99):.0f} ms; duplicates {duplicates}, lost {lost}"
    )


def pacing(args: argparse.Namespace, engine: sa.Engine, carrier_url: str) -> None:
    senders = [(f"+1415555{1000 + n}", args.per_second) for n in range(args.senders)]
    ids = setup(engine, senders)
    first = 4_000_000
    count = int(args.senders * args.per_second * args.pacing_seconds)
    log(f"pacing: {count} messages over {args.senders} senders at {args.per_second:g}/s each")
    click(engine, ids, first, count, hold=True)
    release(engine, ids["campaigns"])
    wake(args.redis_url)
    wait_until_settled(engine, ids["campaigns"], timeout=args.pacing_seconds * 2 + 60)
    by_sender: dict[str, list[datetime]] = {}
    for _, sent, sender, status in sends(engine, ids["campaigns"]):
        if status == "accepted":
            by_sender.setdefault(sender, []).append(sent)
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
    duplicates, lost = check_once(carrier_url, first, count)
    log(
        f"pacing: median {statistics.median(rates):.2f} msg/s per sender; "
        f"duplicates {duplicates}, lost {lost}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--ceiling-messages", type=int, default=50_000)
    parser.add_argument("--latency", type=float, default=0.15, help="carrier seconds per call")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=500, help="in flight per worker")
    parser.add_argument("--latency-seconds", type=float, default=20)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--per-second", type=float, default=50)
    parser.add_argument("--pacing-seconds", type=float, default=30)
    parser.add_argument("--phases", default="ceiling,throughput,latency,pacing")
    parser.add_argument("--runs", type=int, default=3, help="ceiling and throughput runs")
    args = parser.parse_args()
    phases = args.phases.split(",")

    port = free_port()
    carrier_url = f"http://127.0.0.1:{port}"
    env = environment(args, carrier_url)
    engine = migrated_engine(env)
    carrier = start_carrier(args, port)
    workers: list[subprocess.Popen[bytes]] = []
    log(
        f"send benchmark: {args.workers} workers x {args.concurrency} in flight, carrier "
        f"latency {args.latency:g} s, {os.cpu_count()} CPUs"
    )
    try:
        ceilings, rates = [], []
        for run in range(1, args.runs + 1):
            log(f"--- run {run} of {args.runs}")
            if "ceiling" in phases:
                ceilings.append(measure_ceiling(args, carrier_url))
                log(f"ceiling: {ceilings[-1]:.0f} msg/s (plain aiohttp clients, no app)")
            if "throughput" in phases:
                workers = workers or start_workers(args.workers, env)
                time.sleep(2)
                worker_pids = [worker.pid for worker in workers]
                meter = CpuMeter(
                    {
                        "carrier": lambda: [carrier.pid],
                        "workers": lambda pids=worker_pids: pids,
                        "postgres": lambda: postgres_pids(engine),
                    }
                )
                rates.append(throughput(args, engine, carrier_url, meter))
        rate = statistics.median(rates) if rates else 500.0
        if ceilings and rates:
            log(
                f"median of {args.runs}: throughput {rate:.0f} msg/s, ceiling "
                f"{statistics.median(ceilings):.0f} msg/s, throughput / ceiling "
                f"{statistics.median(r / c for r, c in zip(rates, ceilings, strict=True)):.0%}"
            )
        workers = workers or start_workers(args.workers, env)
        if "latency" in phases:
            latency(args, engine, carrier_url, rate / 2)
        if "pacing" in phases:
            pacing(args, engine, carrier_url)
    finally:
        for process in [*workers, carrier]:
            process.terminate()
        for process in [*workers, carrier]:
            process.wait()


if __name__ == "__main__":
    main()
