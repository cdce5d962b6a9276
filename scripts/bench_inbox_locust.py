"""Locust volunteers for scripts/bench_inbox.py (configured by its BENCH_* environment).

Each logs in, takes a batch, sends one initial text a second through the JSON send endpoint
as send.js does (keeping PREFETCH contacts ready: each send asks for the one after the last it
holds, and queue.json is fetched only when the queue runs dry), has every fifth voter reply (a
signed webhook), and answers through the inbox and the thread (the answer's redirect back to
the thread is its own request, "thread, answered").
FastHttpUser (geventhttpclient): the load generator shares the CPUs it measures, so it must be
cheap.
At the end the response times, errors, X-DB-Queries, X-CPU-Ms and X-Server-Ms of every request
go to BENCH_RESULTS.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import defaultdict
from typing import Any

from locust import FastHttpUser, constant_pacing, events, task

from gotv.fakecarrier.protocol import twilio_signature

CAMPAIGN = os.environ["BENCH_CAMPAIGN"]
EMAILS = os.environ["BENCH_EMAILS"].split(",")
PASSWORD = os.environ["BENCH_PASSWORD"]
REPLY_EVERY = 5
PREFETCH = 5  # as gotv/inbox.py and send.js
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
KEY = re.compile(r'name="idempotency_key"[^>]*value="([^"]+)"')
WAITING = re.compile(r'data-contact-id="(\d+)" data-needs-reply="yes"')

stats: dict[str, dict[str, Any]] = defaultdict(
    lambda: {"times": [], "errors": 0, "queries": [], "cpu": [], "server": []}
)
# Requests count only once every volunteer has signed in and taken a batch: signing in is a
# deliberately slow password hash, once a shift, and would otherwise swamp the steady state.
users: dict[str, Any] = {"count": 0, "ready": 0, "expected": len(EMAILS)}


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


@events.quitting.add_listener
def save(**_: Any) -> None:
    with open(os.environ["BENCH_RESULTS"], "w") as handle:
        measured = time.time() - users["since"] if "since" in users else 0.0
        json.dump({"requests": stats, "users": users["count"], "seconds": measured}, handle)


class Volunteer(FastHttpUser):
    wait_time = constant_pacing(1)  # one send a second

    def on_start(self) -> None:
        users["count"] += 1
        self.email = EMAILS.pop()
        page = self.client.get("/login", name="login page").text
        self.client.post(
            "/login",
            data={"email": self.email, "password": PASSWORD, "csrf_token": csrf(page)},
            name="login",
        )
        self.take_batch()
        users["ready"] += 1
        if users["ready"] == users["expected"]:
            users["since"] = time.time()

    def take_batch(self) -> None:
        page = self.client.get(f"/texting/{CAMPAIGN}/send", name="send page").text
        self.token = csrf(page)
        self.client.post(
            f"/texting/{CAMPAIGN}/batch", data={"csrf_token": self.token}, name="take batch"
        )
        self.refill()
        self.sent = 0

    def refill(self) -> None:
        state = self.client.get(f"/texting/{CAMPAIGN}/queue.json", name="queue").json()
        self.ready, self.after = state["ready"], state["after"]

    @task
    def send(self) -> None:
        if not self.ready:
            self.refill()
        if not self.ready:
            self.take_batch()
            if not self.ready:
                return
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
                return
        self.sent += 1
        if self.sent % REPLY_EVERY == 0:
            self.voter_replies(contact["contact_id"])
            self.answer_replies()

    def voter_replies(self, contact_id: int) -> None:
        """The voter texts back: Twilio's signed webhook, as the carrier would send it."""
        cell = f"+1212{contact_id:07d}"
        sid = f"SM{contact_id:032d}"
        form = {
            "MessageSid": sid,
            "AccountSid": os.environ["BENCH_ACCOUNT_SID"],
            "From": cell,
            "To": os.environ["BENCH_FROM_NUMBER"],
            "Body": "Yes! Where do I vote?",
        }
        url = self.host + "/twilio/inbound"
        signature = twilio_signature(os.environ["BENCH_AUTH_TOKEN"], url, form)
        self.client.post(
            "/twilio/inbound",
            data=form,
            headers={"X-Twilio-Signature": signature},
            name="reply webhook",
        )

    def answer_replies(self) -> None:
        inbox = self.client.get(f"/texting/{CAMPAIGN}/conversations", name="inbox").text
        for contact_id in WAITING.findall(inbox)[:1]:
            thread = self.client.get(f"/texting/conversations/{contact_id}", name="thread").text
            key = KEY.search(thread)
            # The post and the thread it redirects to are counted apart: following the redirect
            # within "answer" would report the headers (CPU, queries) of the thread page only.
            answered = self.client.post(
                f"/texting/conversations/{contact_id}/reply",
                data={
                    "csrf_token": csrf(thread),
                    "body": "At the library on Main St, 7am to 8pm.",
                    "idempotency_key": key.group(1) if key else "",
                },
                name="answer",
                allow_redirects=False,
            )
            location = answered.headers.get("Location") if answered.headers else None
            if location:
                self.client.get(location, name="thread, answered")


def csrf(html: str) -> str:
    found = CSRF.search(html)
    return found.group(1) if found else ""
