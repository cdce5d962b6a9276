"""Small factories with defaults: make_x(**overrides) adds a row and flushes it."""

from __future__ import annotations

import itertools
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from werkzeug.security import generate_password_hash

from gotv.db import db
from gotv.models import (
    Campaign,
    CampaignStatus,
    CannedResponse,
    Contact,
    ContactStatus,
    Direction,
    Invite,
    Message,
    MessageStatus,
    Organization,
    Role,
    SurveyChoice,
    SurveyQuestion,
    Tag,
    User,
    utcnow,
)
from gotv.people import team
from gotv.texting import texts

PASSWORD = "correct horse battery staple"
# Made once, with cheap parameters: the same check_password_hash reads them from the hash, so
# signing in runs the real code in milliseconds instead of the production cost (a tenth of a
# second) for every user every test makes. Tests of hashing itself use User.set_password.
CHEAP_HASH = "pbkdf2:sha256:1000"
PASSWORD_HASH = generate_password_hash(PASSWORD, method=CHEAP_HASH)
_serial = itertools.count(1)


def make_org(**overrides: Any) -> Organization:
    organization = Organization(**{"name": f"Org {next(_serial)}", **overrides})
    db.session.add(organization)
    db.session.flush()
    return organization


def make_user(organization: Organization | None = None, **overrides: Any) -> User:
    organization = organization or make_org()
    number = next(_serial)
    fields = {
        "organization_id": organization.id,
        "email": f"user{number}@example.test",
        "name": f"User {number}",
        "role": Role.TEXTER,
        **overrides,
    }
    user = User(**fields)
    user.password_hash = PASSWORD_HASH
    db.session.add(user)
    db.session.flush()
    return user


def make_campaign(organization: Organization | None = None, **overrides: Any) -> Campaign:
    organization = organization or make_org()
    fields = {
        "organization_id": organization.id,
        "name": f"Campaign {next(_serial)}",
        "script": "Hi {first_name}, it's {texter_name}. Will you vote on Tuesday?",
        "status": CampaignStatus.ACTIVE,
        **overrides,
    }
    campaign = Campaign(**fields)
    db.session.add(campaign)
    db.session.flush()
    return campaign


def make_contact(campaign: Campaign | None = None, **overrides: Any) -> Contact:
    campaign = campaign or make_campaign()
    number = next(_serial)
    fields = {
        "campaign_id": campaign.id,
        "cell": f"+1212555{number % 9000 + 1000:04d}",  # never the fictional 555-01xx
        "first_name": "Maria",
        "last_name": f"Voter{number}",
        "zip": "10001",
        "state": "NY",
        "time_zones": "America/New_York",
        **overrides,
    }
    fields.setdefault("rule_states", fields["state"])
    contact = Contact(**fields)
    db.session.add(contact)
    db.session.flush()
    return contact


def make_message(contact: Contact, **overrides: Any) -> Message:
    fields = {
        "organization_id": contact.campaign.organization_id,
        "campaign_id": contact.campaign_id,
        "contact_id": contact.id,
        "texter_id": contact.texter_id,
        "direction": Direction.OUTBOUND,
        "body": "Hello",
        "to_number": contact.cell,
        "status": MessageStatus.QUEUED,
        **overrides,
    }
    message = Message(**fields)
    db.session.add(message)
    db.session.flush()
    return message


def make_conversation(
    campaign: Campaign, texter: User | None = None, replies: tuple[str, ...] = (), **overrides: Any
) -> Contact:
    """A texted contact: the initial text (delivered), then each of `replies` from the voter."""
    contact = make_contact(
        campaign,
        status=ContactStatus.TEXTED,
        texter_id=texter.id if texter else None,
        **overrides,
    )
    make_message(contact, is_initial=True, status=MessageStatus.DELIVERED)
    for body in replies:
        make_message(
            contact,
            direction=Direction.INBOUND,
            body=body,
            status=MessageStatus.RECEIVED,
            texter_id=None,
            from_number=contact.cell,
            to_number="",
        )
    return contact


def insert_contacts(campaign: Campaign, count: int, **columns: Any) -> None:
    """Add `count` contacts to the campaign in one INSERT ... SELECT (fast at a million rows).

    Cells are +12000000001 onwards; each has a custom field "ward". `columns` may set status
    and texter_id.
    """
    connection = db.session.connection()
    postgres = connection.dialect.name == "postgresql"
    numbers = (
        "generate_series(1, :count) AS g(n)"
        if postgres
        else "(WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < :count)"
        " SELECT n FROM g) AS g"
    )
    ward = (
        "json_build_object('ward', 'W' || (n % 100))"
        if postgres
        else ("json_object('ward', 'W' || (n % 100))")
    )
    now = "now()" if postgres else "strftime('%Y-%m-%d %H:%M:%f', 'now')"
    connection.execute(
        text(
            "INSERT INTO contact (campaign_id, cell, first_name, last_name, zip, state,"
            " rule_states, time_zones, custom_fields, status, texter_id, needs_reply,"
            " opt_out_suggested, updated_at)"
            f" SELECT :campaign_id, '+1' || CAST(2000000000 + n AS TEXT), 'First' || n,"
            f" 'Last' || n, '10001', 'NY', 'NY', 'America/New_York', {ward}, :status,"
            f" :texter_id, false, false, {now} FROM {numbers}"
        ),
        {
            "campaign_id": campaign.id,
            "count": count,
            "status": columns.get("status", ContactStatus.NEW).value,
            "texter_id": columns.get("texter_id"),
        },
    )


def make_question(
    campaign: Campaign, text: str = "Will you vote?", labels: tuple[str, ...] = ("Yes", "No")
) -> SurveyQuestion:
    question = SurveyQuestion(campaign_id=campaign.id, text=text, position=next(_serial))
    question.choices = [
        SurveyChoice(label=label, position=position) for position, label in enumerate(labels)
    ]
    db.session.add(question)
    db.session.flush()
    return question


def make_canned(campaign: Campaign, **overrides: Any) -> CannedResponse:
    fields = {"campaign_id": campaign.id, "title": "Where", "body": "Hi {first_name}!", **overrides}
    response = CannedResponse(**fields)
    db.session.add(response)
    db.session.flush()
    return response


def make_tag(organization: Organization, name: str = "Needs a ride") -> Tag:
    tag = Tag(organization_id=organization.id, name=name)
    db.session.add(tag)
    db.session.flush()
    return tag


def make_api_token(
    organization: Organization, user: User | None = None, scopes: list[str] | None = None
) -> str:
    """A live API token of the organization, with every scope unless told; returns its secret."""
    from gotv.api import tokens

    creator = user or make_user(organization, role=Role.OWNER)
    _token, secret = tokens.create_token(
        organization.id, "test token", list(tokens.SCOPES) if scopes is None else scopes, creator.id
    )
    return secret


def make_invite(inviter: User, **overrides: Any) -> tuple[Invite, str]:
    """An open invitation to join the inviter's organization as a texter, and its token."""
    token = secrets.token_urlsafe(32)
    fields = {
        "organization_id": inviter.organization_id,
        "token_hash": team.hash_token(token),
        "role": Role.TEXTER,
        "created_by_id": inviter.id,
        "expires_at": utcnow() + timedelta(days=14),
        "uses": 0,
        **overrides,
    }
    invite = Invite(**fields)
    db.session.add(invite)
    db.session.flush()
    return invite, token


def queue_initial_message(
    campaign: Campaign, contact_id: int, texter: User, idempotency_key: str, now: datetime
) -> Message:
    """`texts.queue_initial`, and the message it wrote."""
    message = db.session.get(
        Message, texts.queue_initial(campaign, contact_id, texter, idempotency_key, now)
    )
    assert message is not None
    return message
