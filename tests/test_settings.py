"""Organization settings: the help text voters get, organizers only, audited."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy import select

from gotv.db import db
from gotv.models import AuditEvent, User
from tests.conftest import csrf_token, login


def test_an_organizer_changes_the_help_text_and_the_audit_log_records_it(
    client: FlaskClient, organizer: User
) -> None:
    login(client, organizer)
    page = client.get("/settings").get_data(as_text=True)

    client.post(
        "/settings",
        data={
            "csrf_token": csrf_token(page),
            "name": "Vote Together",
            "help_text": "{organization}: GOTV volunteers. Call 555-0200. Reply STOP to opt out.",
        },
    )

    db.session.refresh(organizer.organization)
    assert organizer.organization.help_text.startswith("{organization}: GOTV volunteers.")
    event = db.session.scalars(select(AuditEvent)).one()
    assert (event.action, event.user_id) == ("settings_changed", organizer.id)


def test_a_help_text_longer_than_two_segments_is_refused(
    client: FlaskClient, organizer: User
) -> None:
    login(client, organizer)
    page = client.get("/settings").get_data(as_text=True)

    response = client.post(
        "/settings",
        data={"csrf_token": csrf_token(page), "name": "Vote Together", "help_text": "x" * 321},
    )

    assert response.status_code == 200
    assert "Field cannot be longer than 320 characters" in response.get_data(as_text=True)


def test_the_us_territories_are_texted_only_after_an_organizer_chooses_it(
    client: FlaskClient, organizer: User
) -> None:
    login(client, organizer)
    page = client.get("/settings").get_data(as_text=True)
    assert organizer.organization.texts_us_territories is False
    assert "Text voters in the US territories" in page
    form = {"csrf_token": csrf_token(page), "name": "Vote Together", "help_text": "Hi"}

    client.post("/settings", data={**form, "texts_us_territories": "y"})
    db.session.refresh(organizer.organization)
    assert organizer.organization.texts_us_territories is True

    client.post("/settings", data=form)
    db.session.refresh(organizer.organization)
    assert organizer.organization.texts_us_territories is False
    changes = db.session.scalars(select(AuditEvent.details)).all()
    assert [change["texts_us_territories"] for change in changes] == [True, False]
