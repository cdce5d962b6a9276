"""No accidental re-texting: a list uploaded to a campaign leaves out, by default, the numbers
the organization texted within its period (Settings), counts them, and adds them only when
the organizer says so."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from gotv.db import db
from gotv.lists import imports
from gotv.models import (
    Campaign,
    Contact,
    ContactImport,
    ContactStatus,
    Direction,
    ImportMode,
    ImportStatus,
    MessageStatus,
    Organization,
    User,
    utcnow,
)
from tests.conftest import csrf_token, login, run_jobs
from tests.factories import make_campaign, make_contact, make_message, make_org

LIST = "cell,first_name\n+12125550201,Ana\n+12125550202,Ben\n+12125550203,Cy\n"


@pytest.fixture(autouse=True)
def upload_dir(app: Flask, tmp_path: Path) -> Iterator[Path]:
    original = app.config["UPLOAD_DIR"]
    app.config["UPLOAD_DIR"] = str(tmp_path / "uploads")
    yield tmp_path / "uploads"
    app.config["UPLOAD_DIR"] = original


@pytest.fixture
def earlier(organization: Organization) -> Campaign:
    """Last week's campaign, which texted Ana two days ago and Ben forty days ago."""
    campaign = make_campaign(organization, name="Last week")
    for cell, days in (("+12125550201", 2), ("+12125550202", 40)):
        contact = make_contact(campaign, cell=cell, status=ContactStatus.TEXTED)
        make_message(contact, is_initial=True, created_at=utcnow() - timedelta(days=days))
    return campaign


@pytest.fixture
def campaign(organization: Organization) -> Campaign:
    return make_campaign(organization, name="This week")


def load(campaign: Campaign, organizer: User, include_recent: bool = False) -> ContactImport:
    imp = imports.receive_upload(campaign, organizer, "list.csv", io.BytesIO(LIST.encode()))
    imports.start(imp, dict(imp.mapping), ImportMode.APPEND, [], include_recent=include_recent)
    db.session.commit()
    imports.run(imp.id)
    db.session.refresh(imp)
    return imp


def cells(campaign: Campaign) -> list[str]:
    return sorted(
        db.session.scalars(select(Contact.cell).where(Contact.campaign_id == campaign.id))
    )


def test_numbers_texted_within_the_period_are_left_out_and_counted(
    earlier: Campaign, campaign: Campaign, organizer: User
) -> None:
    imp = load(campaign, organizer)

    assert (imp.loaded, imp.recent, imp.recent_days) == (2, 1, 30)
    assert cells(campaign) == ["+12125550202", "+12125550203"]  # Ben's text is 40 days old
    assert imports.progress(imp)["recent"] == 1


def test_the_organizer_includes_them_on_purpose(
    earlier: Campaign, campaign: Campaign, organizer: User
) -> None:
    imp = load(campaign, organizer, include_recent=True)

    assert (imp.loaded, imp.recent, imp.recent_days) == (3, 0, 0)


def test_the_period_is_the_organizations_and_zero_turns_the_guard_off(
    earlier: Campaign, campaign: Campaign, organization: Organization, organizer: User
) -> None:
    organization.retext_guard_days = 60
    assert load(campaign, organizer).recent == 2

    organization.retext_guard_days = 0
    other = make_campaign(organization)
    assert load(other, organizer).recent == 0


def test_texts_refused_before_twilio_and_other_organizations_texts_do_not_count(
    organization: Organization, campaign: Campaign, organizer: User
) -> None:
    refused = make_contact(make_campaign(organization), cell="+12125550201")
    make_message(refused, status=MessageStatus.REFUSED, refusal_reason="opted_out")
    elsewhere = make_contact(make_campaign(make_org()), cell="+12125550202")
    make_message(elsewhere, status=MessageStatus.DELIVERED)
    reply = make_contact(make_campaign(organization), cell="+12125550203")
    make_message(reply, direction=Direction.INBOUND, status=MessageStatus.RECEIVED)

    assert load(campaign, organizer).recent == 0


def test_the_left_out_rows_are_added_on_purpose_from_the_import_page(
    app: Flask, client: FlaskClient, earlier: Campaign, campaign: Campaign, organizer: User
) -> None:
    imp = load(campaign, organizer)
    login(client, organizer)
    page = client.get(f"/campaigns/{campaign.id}/imports/{imp.id}").text

    added = client.post(
        f"/campaigns/{campaign.id}/imports/{imp.id}/include-recent",
        data={"csrf_token": csrf_token(page)},
    )
    run_jobs(app)

    assert "1 number was left out" in page and "in the last 30 days" in page
    again = db.session.scalars(select(ContactImport).where(ContactImport.id != imp.id)).one()
    assert added.headers["Location"].endswith(f"/imports/{again.id}")
    db.session.refresh(again)
    assert (again.status, again.loaded, again.include_recent) == (ImportStatus.DONE, 1, True)
    assert cells(campaign) == ["+12125550201", "+12125550202", "+12125550203"]
    assert again.filename == "list.csv (texted recently)"


def test_the_mapping_page_offers_to_include_them_and_says_for_how_long(
    client: FlaskClient, organizer: User, campaign: Campaign
) -> None:
    imp = imports.receive_upload(campaign, organizer, "list.csv", io.BytesIO(LIST.encode()))
    db.session.commit()
    login(client, organizer)

    page = client.get(f"/campaigns/{campaign.id}/imports/{imp.id}").text
    client.post(
        f"/campaigns/{campaign.id}/imports/{imp.id}",
        data={
            "csrf_token": csrf_token(page),
            "cell": "cell",
            "first_name": "first_name",
            "last_name": "",
            "zip": "",
            "mode": "append",
            "include_recent": "y",
        },
    )

    assert "Numbers texted in the last 30 days" in page
    assert 'id="include_recent"' in page
    db.session.refresh(imp)
    assert imp.include_recent is True and imp.status == ImportStatus.QUEUED


def test_the_api_upload_includes_them_when_asked(
    client: FlaskClient, organization: Organization, earlier: Campaign, campaign: Campaign
) -> None:
    from tests.factories import make_api_token

    secret = make_api_token(organization)  # made by an owner

    response = client.post(
        f"/api/v1/campaigns/{campaign.id}/imports?include_recent=true",
        data=LIST,
        content_type="text/csv",
        headers={"Authorization": f"Bearer {secret}"},
    )

    imp = db.session.get(ContactImport, response.get_json()["id"])
    assert imp is not None and imp.include_recent is True
