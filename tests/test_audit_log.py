"""The audit log page: newest first, filtered, paged; and nothing anywhere rewrites an entry."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import event

from gotv.db import db
from gotv.models import Campaign, Contact, Organization, User
from gotv.people import audit
from tests import test_auth
from tests.conftest import csrf_token, login
from tests.factories import make_campaign, make_contact, make_user

ROOT = Path(__file__).resolve().parents[1]


def entries_shown(page: str) -> list[str]:
    return re.findall(r"<strong>([^<]+)</strong>", page)


def test_the_log_lists_the_organizations_entries_newest_first(
    client: FlaskClient, organization: Organization, organizer: User, other_org_organizer: User
) -> None:
    audit.record(organization.id, "opt_out", "+12125550200", organizer.id, source="admin")
    audit.record(organization.id, "script_changed", "campaign 1", organizer.id)
    audit.record(other_org_organizer.organization_id, "secret_thing", "", other_org_organizer.id)
    login(client, organizer)

    page = client.get("/audit").text

    assert entries_shown(page) == ["script changed", "opt out"]
    assert "secret" not in page
    assert "+12125550200" in page and organizer.name in page


def test_the_log_filters_by_action_and_by_person(
    client: FlaskClient, organization: Organization, organizer: User, volunteer: User
) -> None:
    audit.record(organization.id, "opt_out", "by volunteer", volunteer.id)
    audit.record(organization.id, "opt_out", "by organizer", organizer.id)
    audit.record(organization.id, "export", "contacts", organizer.id)
    login(client, organizer)

    by_action = client.get("/audit", query_string={"action": "opt_out"}).text
    by_person = client.get("/audit", query_string={"user": volunteer.id}).text
    both = client.get("/audit", query_string={"action": "export", "user": volunteer.id}).text

    assert entries_shown(by_action) == ["opt out", "opt out"]
    assert "by volunteer" in by_person and "by organizer" not in by_person
    assert entries_shown(both) == []


def test_details_are_shown_as_words_not_json(
    client: FlaskClient, organization: Organization, organizer: User
) -> None:
    audit.record(
        organization.id,
        "conversations_reassigned",
        "3 conversations",
        organizer.id,
        filters={"status": "needs_reply", "texter": "none"},
        count=3,
        to_user_id=None,
    )
    login(client, organizer)

    page = client.get("/audit").text

    assert "<dt>filters</dt><dd>status: needs_reply, texter: none</dd>" in page
    assert "<dt>to user id</dt><dd>—</dd>" in page
    assert "{" not in page.split("<main>")[1]


def test_the_log_is_paged_by_keyset_newest_first(organization: Organization) -> None:
    for n in range(audit.PAGE_SIZE * 2 + 3):
        audit.record(organization.id, "opt_out", f"entry {n}")
    db.session.flush()

    first = audit.page(organization.id)
    second = audit.page(organization.id, before=first.next_before)
    third = audit.page(organization.id, before=second.next_before)

    subjects = [e.subject for p in (first, second, third) for e in p.entries]
    assert subjects == [f"entry {n}" for n in reversed(range(audit.PAGE_SIZE * 2 + 3))]
    assert third.next_before is None


def test_the_page_links_to_older_entries(
    client: FlaskClient, organization: Organization, organizer: User
) -> None:
    for n in range(audit.PAGE_SIZE + 1):
        audit.record(organization.id, "export", f"entry {n}", organizer.id)
    login(client, organizer)

    first = client.get("/audit", query_string={"action": "export"}).text
    older = re.search(r'href="(/audit\?[^"]*before=\d+[^"]*)"', first)

    assert older, "no link to older entries"
    second = client.get(older.group(1).replace("&amp;", "&")).text
    assert entries_shown(second) == ["export"]
    assert "entry 0<" in second


def test_a_texter_may_not_read_the_log(client: FlaskClient, volunteer: User) -> None:
    login(client, volunteer)

    assert client.get("/audit").status_code == 403


# --- Append-only -----------------------------------------------------------------------------


def test_no_code_updates_or_deletes_an_audit_entry() -> None:
    writers = []
    for path in sorted((ROOT / "gotv").rglob("*.py")):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("update", "delete")
                and any(isinstance(a, ast.Name) and a.id == "AuditEvent" for a in node.args)
            ):
                writers.append(f"{path.name}:{node.lineno}")

    assert writers == []


@pytest.fixture
def statements() -> Iterator[list[str]]:
    """Every SQL statement run while the test runs (in the test's app context)."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(args[2])

    engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def test_no_route_rewrites_the_audit_log(
    client: FlaskClient,
    organization: Organization,
    organizer: User,
    statements: list[str],
) -> None:
    campaign: Campaign = make_campaign(organization, name=test_auth.CAMPAIGN_NAME)
    contact: Contact = make_contact(campaign, first_name=test_auth.CONTACT_NAME)
    make_user(organization)
    audit.record(organization.id, "opt_out", "before")
    login(client, organizer)
    token = csrf_token(client.get("/audit").text)

    for route in test_auth.ROUTES:
        if route.rule != "/logout":
            test_auth.request(client, route, campaign, contact, token)

    rewrites = [
        sql
        for sql in statements
        if re.match(r"\s*(UPDATE|DELETE FROM)\s+\"?audit_event", sql, re.IGNORECASE)
    ]
    assert rewrites == []
    assert any("INSERT INTO audit_event" in sql for sql in statements)
