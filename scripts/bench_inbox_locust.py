"""Locust volunteers for scripts/bench_inbox.py (configured by its BENCH_* environment).

Each logs in, takes a batch, sends one initial text every BENCH_PACE seconds (3: a volunteer's
fastest real pace; 1 in the earlier runs of docs/benchmarks.md) through the JSON send endpoint
as send.js does (keeping PREFETCH contacts ready: each send asks for the one after the last it
holds, and queue.json is fetched only when the queue runs dry), has every fifth voter reply (a
signed webhook), and answers through the inbox and the thread (the answer posted as inbox.js
does, asking for JSON: the page stays, no thread is reloaded; before issue 21 the answer
redirected to the thread, counted as "thread, answered").
With BENCH_FLOOR=1 the volunteers log in the same way and keep the same pacing, mix and names,
but every request after that goes to the floor endpoints scripts/bench_inbox_wsgi.py adds then:
a signed-in request that does nothing, its POSTs carrying the CSRF token from a real send page
(the reply webhook is an unsigned-in, CSRF-exempt POST, as the real one is). No batch is taken.
FastHttpUser (geventhttpclient): the load generator shares the CPUs it measures, so it must be
cheap.
With BENCH_STREAMS=1 each volunteer also holds its live event stream (/texting/events) open the
whole time, as a second tab on the inbox would, reconnecting as a browser's EventSource does;
a reply is answered once its live event has come (within LIVE_WAIT seconds, else it counts as
an error of "live reply", whose times are from the webhook's post to the event's arrival).
At the end the response times, errors, X-DB-Queries, X-CPU-Ms and X-Server-Ms of every request
go to BENCH_RESULTS, with the CPU seconds that each kind of process (and the whole machine)
spent in the measured time.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from collections import Counter, defaultdict
from typing import Any
from urllib.parse import urlsplit

import gevent
from gevent.queue import Empty, Queue
from locust import FastHttpUser, constant_pacing, events, task

from gotv.fakecarrier.protocol import twilio_signature

CAMPAIGN = os.environ["BENCH_CAMPAIGN"]
EMAILS = os.environ["BENCH_EMAILS"].split(",")
PASSWORD = os.environ["BENCH_PASSWORD"]
FLOOR = os.environ.get("BENCH_FLOOR") == "1"
STREAMS = os.environ.get("BENCH_STREAMS") == "1"
PACE = float(os.environ.get("BENCH_PACE", "3"))  # seconds between a volunteer's sends
LIVE_WAIT = 5.0  # seconds a volunteer waits for a reply's live event
# One browser: Flask-Login's strong session protection ties a session to its user agent.
USER_AGENT = "gotv-bench-volunteer"
FLOOR_URL = "/bench/floor"  # as scripts/bench_inbox_wsgi.py
FLOOR_WEBHOOK_URL = "/bench/floor/webhook"
REPLY_EVERY = 5
PREFETCH = 5  # as gotv/web/inbox.py and send.js
ANSWER = "At the library on Main St, 7am to 8pm."
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
KEY = re.compile(r'name="idempotency_key"[^>]*value="([^"]+)"')
WAITING = re.compile(r'data-contact-id="(\d+)" data-needs-reply="yes"')
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

stats: dict[str, dict[str, Any]] = defaultdict(
    lambda: {"times": [], "errors": 0, "queries": [], "cpu": [], "server": []}
)
# Requests count only once every volunteer has signed in and taken a batch: signing in is a
# deliberately slow password hash, once a shift, and would otherwise swamp the steady state.
users: dict[str, Any] = {"count": 0, "ready": 0, "expected": len(EMAILS)}
# What the servers told the streams, over the whole run: "connected", "busy" (come back later).
streams: Counter[str] = Counter()


# --- CPU by process kind ----------------------------------------------------------------------


# The benchmark's own processes, by the process at the root of each kind (BENCH_ROOTS:
# "gunicorn=PID,postgres=PID,redis=PID", from scripts/bench_inbox.py; Locust is this process).
# Counted by ancestry, not by name: the machine is shared, and other people's PostgreSQL or
# gunicorn must not count as this benchmark's.
ROOTS = {
    int(pid): kind
    for kind, pid in (
        item.split("=") for item in os.environ.get("BENCH_ROOTS", "").split(",") if item
    )
}


def process_stat(pid: str) -> tuple[int, float]:
    """A process's parent and the CPU seconds (user and system) it has used so far."""
    with open(f"/proc/{pid}/stat") as handle:
        # After the command name in parentheses (which may hold spaces): state is field 3,
        # the parent field 4, utime and stime fields 14 and 15.
        fields = handle.read().rsplit(")", 1)[1].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has been busy: user, nice, system, irq, softirq, steal."""
    with open("/proc/stat") as handle:
        ticks = [int(field) for field in handle.readline().split()[1:9]]
    return (sum(ticks[0:3]) + sum(ticks[5:8])) / CLOCK_TICKS


def cpu_snapshot() -> dict[str, float]:
    """Cumulative CPU seconds of the benchmark's live processes by kind (the roots and their
    descendants), and of the whole machine ("machine")."""
    stats: dict[int, tuple[int, float]] = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                stats[int(pid)] = process_stat(pid)
            except OSError:  # gone meanwhile, or not ours to read
                continue
    roots = {**ROOTS, os.getpid(): "locust"}
    seconds: Counter[str] = Counter()
    for pid, (_parent, used) in stats.items():
        ancestor, hops = pid, 0
        while ancestor not in roots and ancestor in stats and ancestor > 1 and hops < 64:
            ancestor, hops = stats[ancestor][0], hops + 1
        if ancestor in roots:
            seconds[roots[ancestor]] += used
    seconds["machine"] = machine_busy_seconds()
    return dict(seconds)


def cpu_used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """The CPU seconds each kind used between two snapshots."""
    return {kind: after[kind] - before.get(kind, 0.0) for kind in after}


# --- Recording --------------------------------------------------------------------------------


@events.request.add_listener
def record(
    name: str, response_time: float, exception: Exception | None, response: Any, **_: Any
) -> None:
    if users["ready"] < users["expected"]:
        return
    row = stats[name]
    if exception is not None:
        row["errors"] += 1
        return
    row["times"].append(response_time)
    headers = response.headers if response is not None else {}
    for header, key, kind in (
        ("X-DB-Queries", "queries", int),
        ("X-CPU-Ms", "cpu", float),
        ("X-Server-Ms", "server", float),
    ):
        if headers.get(header) is not None:
            row[key].append(kind(headers[header]))


def start_measuring() -> None:
    """Every volunteer is ready: the measured time (and its CPU count) starts now."""
    users["since"] = time.time()
    users["cpu"] = cpu_snapshot()


@events.quitting.add_listener
def save(**_: Any) -> None:
    measured, cpu = 0.0, {}
    if "since" in users:
        measured = time.time() - users["since"]
        cpu = cpu_used(users["cpu"], cpu_snapshot())
    with open(os.environ["BENCH_RESULTS"], "w") as handle:
        json.dump(
            {
                "requests": stats,
                "users": users["count"],
                "seconds": measured,
                "cpu": cpu,
                "streams": streams,
            },
            handle,
        )


# --- Volunteers -------------------------------------------------------------------------------


class Volunteer(FastHttpUser):
    """Signs in, gets ready, then sends a text every PACE seconds and answers every fifth voter's
    reply.

    The kinds below say what getting ready, sending, a reply and answering it are.
    """

    abstract = True
    wait_time = constant_pacing(PACE)  # one send every PACE seconds
    default_headers = {"User-Agent": USER_AGENT}

    def on_start(self) -> None:
        users["count"] += 1
        self.email = EMAILS.pop()
        page = self.client.get("/login", name="login page").text
        self.client.post(
            "/login",
            data={"email": self.email, "password": PASSWORD, "csrf_token": csrf(page)},
            name="login",
        )
        self.get_ready()
        self.sent = 0
        users["ready"] += 1
        if users["ready"] == users["expected"]:
            start_measuring()

    @task
    def text(self) -> None:
        contact_id = self.send()
        if contact_id is None:
            return
        self.sent += 1
        if self.sent % REPLY_EVERY == 0:
            self.voter_replies(contact_id)
            self.answer_replies()

    def get_ready(self) -> None:
        raise NotImplementedError

    def send(self) -> int | None:
        """Send one initial text; the contact's id, or None if nothing was sent."""
        raise NotImplementedError

    def voter_replies(self, contact_id: int) -> None:
        raise NotImplementedError

    def answer_replies(self) -> None:
        raise NotImplementedError


class Texter(Volunteer):
    """The real thing: the send loop, the carrier's webhook, the inbox and the thread."""

    abstract = FLOOR

    def get_ready(self) -> None:
        self.take_batch()
        if STREAMS:
            self.replies: Queue[tuple[int, float]] = Queue()
            self.listener = gevent.spawn(self.listen)

    def on_stop(self) -> None:
        if getattr(self, "listener", None) is not None:  # (stopped before it was ready: none)
            self.listener.kill(block=False)

    def take_batch(self) -> None:
        page = self.client.get(f"/texting/{CAMPAIGN}/send", name="send page").text
        self.token = csrf(page)
        self.client.post(
            f"/texting/{CAMPAIGN}/batch", data={"csrf_token": self.token}, name="take batch"
        )
        self.refill()

    def refill(self) -> None:
        state = self.client.get(f"/texting/{CAMPAIGN}/queue.json", name="queue").json()
        self.ready, self.after = state["ready"], state["after"]

    def send(self) -> int | None:
        if not self.ready:
            self.refill()
        if not self.ready:
            self.take_batch()
            if not self.ready:
                return None
        contact = self.ready.pop(0)
        with self.client.post(
            f"/texting/{CAMPAIGN}/send.json",
            json={
                "contact_id": contact["contact_id"],
                "idempotency_key": contact["idempotency_key"],
                "after": self.after,
                "want": PREFETCH - len(self.ready),
            },
            headers={"X-CSRFToken": self.token},
            name="send",
            catch_response=True,
        ) as response:
            answer = response.json() if response.status_code in (200, 409) else {}
            self.ready += answer.get("next", [])
            self.after = answer.get("after", self.after)
            if response.status_code != 200:
                response.failure(f"{response.status_code}")
                return None
        return contact["contact_id"]

    def voter_replies(self, contact_id: int) -> None:
        """The voter texts back: Twilio's signed webhook, as the carrier would send it."""
        self.replied_at = time.time()
        form = reply_form(contact_id)
        url = self.host + "/twilio/inbound"
        signature = twilio_signature(os.environ["BENCH_AUTH_TOKEN"], url, form)
        self.client.post(
            "/twilio/inbound",
            data=form,
            headers={"X-Twilio-Signature": signature},
            name="reply webhook",
        )

    def answer_replies(self) -> None:
        waiting = self.heard_live() if STREAMS else None
        inbox = self.client.get(f"/texting/{CAMPAIGN}/conversations", name="inbox").text
        for contact_id in [waiting] if STREAMS else WAITING.findall(inbox)[:1]:
            if contact_id is None:
                continue
            thread = self.client.get(f"/texting/conversations/{contact_id}", name="thread").text
            key = KEY.search(thread)
            # As inbox.js: the reply goes with fetch and the page stays (no thread reloaded).
            self.client.post(
                f"/texting/conversations/{contact_id}/reply",
                data={
                    "csrf_token": csrf(thread),
                    "body": ANSWER,
                    "idempotency_key": key.group(1) if key else "",
                },
                headers={"Accept": "application/json"},
                name="answer",
            )

    def heard_live(self) -> int | None:
        """The contact whose reply's live event came (recorded as "live reply"), or None."""
        try:
            contact_id, heard_at = self.replies.get(timeout=LIVE_WAIT)
        except Empty:
            record("live reply", 0.0, TimeoutError("no live event"), None)
            return None
        record("live reply", (heard_at - self.replied_at) * 1000, None, None)
        return contact_id

    def listen(self) -> None:
        """Hold the live event stream as an open inbox does: reconnect after each end (after
        the stream's `retry`), and queue the contact of every new reply."""
        address = urlsplit(self.host)
        cookies = "; ".join(f"{cookie.name}={cookie.value}" for cookie in self.client.cookiejar)
        request = (
            f"GET /texting/events HTTP/1.0\r\nHost: {address.netloc}\r\n"
            f"User-Agent: {USER_AGENT}\r\nAccept: text/event-stream\r\n"
            f"Cookie: {cookies}\r\n\r\n"
        ).encode()
        while True:
            retry = 2.0
            try:
                retry = self.hold_stream((address.hostname, address.port), request)
            except OSError:
                streams["failed"] += 1
            gevent.sleep(retry)

    def hold_stream(self, address: tuple[Any, Any], request: bytes) -> float:
        """One stream, read to its end (HTTP/1.0: no chunks, the server closes it); the seconds
        it asked to wait before reconnecting."""
        retry, buffer = 2.0, b""
        with socket.create_connection(address) as connection:
            connection.sendall(request)
            while chunk := connection.recv(65536):
                *blocks, buffer = (buffer + chunk).split(b"\n\n")
                for block in blocks:
                    retry = self.heard(block.decode(), retry)
        return retry

    def heard(self, block: str, retry: float) -> float:
        """Take in one block of the stream (or the response's head); the retry it sets."""
        for line in block.splitlines():
            if line.startswith("retry: "):
                retry = int(line.removeprefix("retry: ")) / 1000
            elif line in (": connected", ": busy"):
                streams[line.removeprefix(": ")] += 1
            elif line.startswith("data: ") and '"type": "inbound"' in line:
                self.replies.put(
                    (json.loads(line.removeprefix("data: "))["contact_id"], time.time())
                )
        return retry


class FloorTexter(Volunteer):
    """The same requests, by name and pace, each a signed-in request that does nothing."""

    abstract = not FLOOR

    def get_ready(self) -> None:
        page = self.client.get(f"/texting/{CAMPAIGN}/send", name="send page").text
        self.token = csrf(page)

    def send(self) -> int | None:
        sent = self.floor(
            "POST", "send", json={"contact_id": self.sent}, headers={"X-CSRFToken": self.token}
        )
        return self.sent if sent else None

    def voter_replies(self, contact_id: int) -> None:
        """The reply's form, unsigned, to an endpoint that neither signs in nor checks CSRF."""
        self.floor("POST", "reply webhook", url=FLOOR_WEBHOOK_URL, data=reply_form(contact_id))

    def answer_replies(self) -> None:
        self.floor("GET", "inbox")
        self.floor("GET", "thread")
        form = {"csrf_token": self.token, "body": ANSWER, "idempotency_key": "k" * 32}
        self.floor("POST", "answer", data=form)

    def floor(self, method: str, name: str, url: str = FLOOR_URL, **kwargs: Any) -> bool:
        """One request to a floor endpoint; anything but a 200 (a redirect to sign in, a CSRF
        refusal) counts as an error."""
        with self.client.request(
            method, url, name=name, catch_response=True, allow_redirects=False, **kwargs
        ) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}")
                return False
        return True


def reply_form(contact_id: int) -> dict[str, str]:
    """The form Twilio posts when contact `contact_id` texts back (its cell: +1212 and
    2,000,000 plus its id)."""
    return {
        "MessageSid": f"SM{contact_id:032d}",
        "AccountSid": os.environ["BENCH_ACCOUNT_SID"],
        "From": f"+1212{2000000 + contact_id}",
        "To": os.environ["BENCH_FROM_NUMBER"],
        "Body": "Yes! Where do I vote?",
    }


def csrf(html: str) -> str:
    found = CSRF.search(html)
    return found.group(1) if found else ""
