"""Deleting a campaign: confirmed by its name, audited, archived and never texted, restorable."""

from __future__ import annotations

import asyncio

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from gotv.db import db
from gotv.models import (
    AuditEvent,
    Campaign,
    CampaignStatus,
    ContactStatus,
    MessageStatus,
    User,
    utcnow,
)
from gotv.texting import assignment, outbox, texts
from tests.conftest import csrf_token, login
from tests.factories import make_campaign, make_contact, make_message, queue_initial_message
from workers.texting import pump_settings

pytestmark = pytest.mark.usefixtures("weekday_morning")


@pytest.fixture
def campaign(organizer: User) -> Campaign:
    return make_campaign(organizer.organization, name="Ward 7 GOTV")


def delete(client: FlaskClient, campaign: Campaign, typed: str) -> str:
    token = csrf_token(client.get(f"/campaigns/{campaign.id}").text)
    response = client.post(
        f"/campaigns/{campaign.id}/delete", data={"csrf_token": token, "confirm_name": typed}
    )
    return client.get(response.headers["Location"]).text


def actions() -> list[str]:
    return list(db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def test_a_campaign_is_not_deleted_unless_its_name_is_typed(
    client: FlaskClient, organizer: User, campaign: Campaign
) -> None:
    login(client, organizer)

    page = delete(client, campaign, "Ward 7")

    assert "type the campaign&#39;s name exactly" in page
    db.session.refresh(campaign)
    assert (campaign.deleted_at, campaign.status) == (None, CampaignStatus.ACTIVE)
    assert actions() == []


def test_a_deleted_campaign_is_hidden_audited_and_its_contacts_never_texted(
    app: Flask, client: FlaskClient, organizer: User, volunteer: User, campaign: Campaign
) -> None:
    waiting = make_contact(campaign, texter_id=volunteer.id)
    texted = make_contact(campaign, texter_id=volunteer.id, status=ContactStatus.TEXTED)
    queued = make_message(texted, is_initial=True)
    db.session.commit()
    login(client, organizer)

    page = delete(client, campaign, " Ward 7 GOTV ")
    asyncio.run(outbox.pump(app.config, pump_settings()))

    assert "Deleted Ward 7 GOTV" in page and f'/campaigns/{campaign.id}"' not in page
    db.session.refresh(campaign)
    assert campaign.deleted_at is not None and campaign.status == CampaignStatus.ARCHIVED
    assert actions() == ["campaign_deleted"]
    db.session.refresh(queued)
    assert (queued.status, queued.refusal_reason) == (MessageStatus.REFUSED, "campaign_not_active")
    with pytest.raises(assignment.BatchRefused):
        assignment.take_batch(campaign, volunteer, utcnow())
    with pytest.raises(texts.CannotText):
        queue_initial_message(campaign, waiting.id, volunteer, "key-1", utcnow())


def test_a_deleted_campaign_cannot_be_relaunched_until_restored(
    client: FlaskClient, organizer: User, campaign: Campaign
) -> None:
    login(client, organizer)
    delete(client, campaign, "Ward 7 GOTV")
    token = csrf_token(client.get(f"/campaigns/{campaign.id}").text)

    client.post(f"/campaigns/{campaign.id}/status", data={"csrf_token": token, "status": "active"})

    db.session.refresh(campaign)
    assert campaign.status == CampaignStatus.ARCHIVED


def test_an_organizer_restores_a_deleted_campaign_paused_from_the_archived_list(
    client: FlaskClient, organizer: User, campaign: Campaign
) -> None:
    login(client, organizer)
    delete(client, campaign, "Ward 7 GOTV")
    listed = client.get("/campaigns/archived").text

    response = client.post(
        f"/campaigns/{campaign.id}/restore", data={"csrf_token": csrf_token(listed)}
    )

    assert "Restore Ward 7 GOTV" in listed
    assert "Restored Ward 7 GOTV, paused" in client.get(response.headers["Location"]).text
    db.session.refresh(campaign)
    assert (campaign.deleted_at, campaign.status) == (None, CampaignStatus.PAUSED)
    assert actions() == ["campaign_deleted", "campaign_restored"]
    assert "Ward 7 GOTV" in client.get("/campaigns").text
