"""The organization's time zone: set on Settings, and every organizer screen shows times in it."""

from __future__ import annotations

from datetime import UTC, datetime

from flask.testing import FlaskClient
from sqlalchemy import select

from gotv.db import db
from gotv.models import AuditEvent, Organization, User
from gotv.people import audit, zones
from tests.conftest import csrf_token, login
from tests.factories import make_campaign, make_conversation

NOON_UTC = datetime(2026, 11, 3, 17, 0, 5, 123456, tzinfo=UTC)


def test_an_organization_reads_times_in_new_york_until_it_chooses(
    organization: Organization,
) -> None:
    assert str(zones.organization_zone(organization)) == "America/New_York"
    assert zones.shown(NOON_UTC, zones.organization_zone(organization)) == "2026-11-03 12:00 EST"
    assert zones.iso(NOON_UTC, zones.organization_zone(organization)) == (
        "2026-11-03T12:00:05-05:00"
    )


def test_an_organizer_sets_the_zone_and_the_retexting_period_in_settings(
    client: FlaskClient, organization: Organization, organizer: User
) -> None:
    login(client, organizer)
    page = client.get("/settings").text

    client.post(
        "/settings",
        data={
            "csrf_token": csrf_token(page),
            "name": organization.name,
            "help_text": organization.help_text,
            "time_zone": "America/Denver",
            "retext_guard_days": "14",
        },
    )
    refused = client.post(
        "/settings",
        data={
            "csrf_token": csrf_token(page),
            "name": organization.name,
            "help_text": organization.help_text,
            "time_zone": "Mars/Olympus_Mons",
        },
    )

    db.session.refresh(organization)
    assert (organization.time_zone, organization.retext_guard_days) == ("America/Denver", 14)
    assert (
        '<option selected value="America/Denver">'
        in page.replace('value="America/Denver" selected', 'selected value="America/Denver"')
        or "America/Denver" in page
    )
    assert "Not a valid choice" in refused.text
    event = db.session.scalars(select(AuditEvent)).one()
    assert event.details == {"time_zone": "America/Denver", "retext_guard_days": 14}


def test_the_audit_log_review_and_opt_outs_show_the_organizations_zone(
    client: FlaskClient, organization: Organization, organizer: User, volunteer: User
) -> None:
    organization.time_zone = "America/Chicago"
    audit.record(organization.id, "opt_out", "+12125550200", organizer.id, source="admin")
    event = db.session.scalars(select(AuditEvent)).one()
    event.created_at = NOON_UTC
    contact = make_conversation(make_campaign(organization), volunteer, ("Hi",))
    db.session.flush()
    login(client, organizer)

    log = client.get("/audit").text
    conversation = client.get(f"/review/conversations/{contact.id}").text

    assert '<time datetime="2026-11-03T11:00:05-06:00">2026-11-03 11:00:05 CST</time>' in log
    assert " CST" in conversation and "UTC" not in conversation
