"""The send loop over JSON: the next contacts prefetched, one text per contact, quiet hours."""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from gotv.db import db
from gotv.models import (
    Campaign,
    CampaignStatus,
    Contact,
    ContactStatus,
    Direction,
    Message,
    Organization,
    User,
    utcnow,
)
from gotv.texting import assignment
from tests.conftest import csrf_token, login, run_jobs
from tests.factories import (
    make_campaign,
    make_contact,
    make_conversation,
    make_org,
    make_question,
    make_user,
)

pytestmark = pytest.mark.usefixtures("weekday_morning")


def campaign_for(volunteer: User, contacts: int, **fields: Any) -> Campaign:
    """An active campaign whose first `contacts` contacts are in the volunteer's batch."""
    campaign = make_campaign(volunteer.organization, script="Hi {first_name}!", **fields)
    for number in range(contacts):
        make_contact(campaign, cell=f"+1212555{number:04d}", first_name=f"Voter{number}")
    assignment.take_batch(campaign, volunteer, utcnow())
    db.session.commit()
    return campaign


def token(client: FlaskClient, campaign: Campaign) -> str:
    return csrf_token(client.get(f"/texting/{campaign.id}/send").get_data(as_text=True))


def send_json(
    client: FlaskClient,
    campaign: Campaign,
    contact: dict[str, Any],
    csrf: str,
    after: int = 0,
    want: int = 0,
) -> tuple[int, dict[str, Any]]:
    response = client.post(
        f"/texting/{campaign.id}/send.json",
        json={
            "contact_id": contact["contact_id"],
            "idempotency_key": contact["idempotency_key"],
            "after": after,
            "want": want,
        },
        headers={"X-CSRFToken": csrf},
    )
    return response.status_code, response.get_json()


def outbound_to(campaign: Campaign) -> list[int | None]:
    return list(
        db.session.scalars(
            select(Message.contact_id).where(
                Message.campaign_id == campaign.id, Message.direction == Direction.OUTBOUND
            )
        )
    )


def test_the_queue_offers_the_next_contacts_rendered_with_their_segments(
    client: FlaskClient, volunteer: User
) -> None:
    campaign = campaign_for(volunteer, 7)
    login(client, volunteer)

    state = client.get(f"/texting/{campaign.id}/queue.json").get_json()

    assert [c["first_name"] for c in state["ready"]] == [f"Voter{n}" for n in range(5)]
    first = state["ready"][0]
    assert first["body"] == "Hi Voter0!" and first["segments"] == 1
    assert len({c["idempotency_key"] for c in state["ready"]}) == 5
    assert (state["ready_count"], state["held"], state["later"]) == (7, 7, [])


def test_a_send_answers_with_the_contact_that_tops_the_queue_up(
    client: FlaskClient, volunteer: User
) -> None:
    campaign = campaign_for(volunteer, 7)
    login(client, volunteer)
    csrf = token(client, campaign)
    state = client.get(f"/texting/{campaign.id}/queue.json").get_json()
    held = [contact["contact_id"] for contact in state["ready"]]
    assert state["after"] == held[-1]

    status, answer = send_json(client, campaign, state["ready"][0], csrf, state["after"], 1)

    assert status == 200
    assert answer["sent"] == {"contact_id": held[0]}
    sixth = answer["next"][0]
    assert [c["first_name"] for c in answer["next"]] == ["Voter5"]
    assert sixth["body"] == "Hi Voter5!" and sixth["idempotency_key"] not in held
    assert answer["after"] == sixth["contact_id"]
    assert outbound_to(campaign) == [held[0]]


def test_the_top_up_passes_over_contacts_in_quiet_hours_and_says_where_it_stopped(
    client: FlaskClient, volunteer: User
) -> None:
    campaign = campaign_for(volunteer, 1)
    sleeping = make_contact(campaign, time_zones="Pacific/Honolulu", texter_id=volunteer.id)
    awake = make_contact(campaign, first_name="Awake", texter_id=volunteer.id)
    db.session.commit()
    login(client, volunteer)
    first = client.get(f"/texting/{campaign.id}/queue.json").get_json()["ready"][0]

    _, answer = send_json(client, campaign, first, token(client, campaign), first["contact_id"], 5)
    _, emptied = send_json(client, campaign, answer["next"][0], token(client, campaign), 10**9, 5)

    assert sleeping.id < awake.id
    assert [c["contact_id"] for c in answer["next"]] == [awake.id]
    assert answer["after"] == awake.id
    assert emptied["next"] == [] and emptied["after"] == 10**9


def test_a_send_asking_for_nothing_more_gets_nothing_more(
    client: FlaskClient, volunteer: User
) -> None:
    campaign = campaign_for(volunteer, 3)
    login(client, volunteer)
    first = client.get(f"/texting/{campaign.id}/queue.json").get_json()["ready"][0]

    status, answer = send_json(client, campaign, first, token(client, campaign))

    assert status == 200 and answer["next"] == [] and answer["after"] == 0


def test_a_second_send_of_the_same_contact_is_refused_over_json(
    app: Flask, client: FlaskClient, volunteer: User
) -> None:
    campaign = campaign_for(volunteer, 2)
    login(client, volunteer)
    csrf = token(client, campaign)
    first = client.get(f"/texting/{campaign.id}/queue.json").get_json()["ready"][0]
    send_json(client, campaign, first, csrf)

    repeated = send_json(client, campaign, first, csrf)  # the same key: a double click
    other_key = send_json(client, campaign, {**first, "idempotency_key": "x" * 24}, csrf)
    run_jobs(app)

    assert repeated[0] == 200
    assert other_key[0] == 409 and "already been texted" in other_key[1]["error"]
    assert outbound_to(campaign) == [first["contact_id"]]


def test_a_json_send_without_the_csrf_header_is_refused(
    client: FlaskClient, volunteer: User
) -> None:
    campaign = campaign_for(volunteer, 1)
    login(client, volunteer)
    first = client.get(f"/texting/{campaign.id}/queue.json").get_json()["ready"][0]

    response = client.post(
        f"/texting/{campaign.id}/send.json",
        json={"contact_id": first["contact_id"], "idempotency_key": first["idempotency_key"]},
    )

    assert response.status_code == 400
    assert outbound_to(campaign) == []


def test_another_volunteers_contact_is_never_sent(client: FlaskClient, volunteer: User) -> None:
    campaign = campaign_for(volunteer, 1)
    colleague = make_user(volunteer.organization)
    db.session.commit()
    login(client, colleague)
    held = db.session.scalars(select(Contact.id).where(Contact.texter_id == volunteer.id)).one()

    status, answer = send_json(
        client, campaign, {"contact_id": held, "idempotency_key": "k" * 24}, token(client, campaign)
    )

    assert status == 409 and answer["next"] == []
    assert outbound_to(campaign) == []


def test_contacts_in_quiet_hours_are_held_back_and_shown_as_later(
    client: FlaskClient, volunteer: User
) -> None:
    campaign = campaign_for(volunteer, 1)
    for _ in range(3):  # 6 am in Honolulu; taken into the batch before quiet hours, say
        make_contact(
            campaign,
            time_zones="Pacific/Honolulu",
            state="HI",
            rule_states="HI",
            texter_id=volunteer.id,
        )
    db.session.commit()
    login(client, volunteer)

    state = client.get(f"/texting/{campaign.id}/queue.json").get_json()
    page = client.get(f"/texting/{campaign.id}/send").get_data(as_text=True)

    assert state["ready_count"] == 1 and state["held"] == 4
    assert state["later"] == [
        {"count": 3, "opens_at": "2026-11-03T19:00:00+00:00", "local_time": "9:00 AM"}
    ]
    assert "3 people open at 9:00 AM their time" in page


def test_the_plain_form_still_sends_without_javascript(
    client: FlaskClient, volunteer: User
) -> None:
    campaign = campaign_for(volunteer, 2)
    login(client, volunteer)
    page = client.get(f"/texting/{campaign.id}/send").get_data(as_text=True)
    contact_id = re.search(r'name="contact_id"[^>]*value="(\d+)"', page)
    key = re.search(r'name="idempotency_key"[^>]*value="([^"]+)"', page)
    assert contact_id and key

    response = client.post(
        f"/texting/{campaign.id}/send",
        data={
            "csrf_token": csrf_token(page),
            "contact_id": contact_id.group(1),
            "idempotency_key": key.group(1),
        },
    )

    assert response.status_code == 302
    assert outbound_to(campaign) == [int(contact_id.group(1))]


def queries_for_one_send(client: FlaskClient, volunteer: User, contacts: int) -> list[str]:
    campaign = campaign_for(volunteer, contacts, batch_size=contacts)
    login(client, volunteer)
    csrf = token(client, campaign)
    state = client.get(f"/texting/{campaign.id}/queue.json").get_json()
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        status, _ = send_json(client, campaign, state["ready"][0], csrf, state["after"], 1)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    assert status == 200
    return seen


def test_a_send_runs_the_same_few_queries_for_10_or_200_contacts(
    client: FlaskClient, organization: Any
) -> None:
    small = queries_for_one_send(client, make_user(organization), 10)
    large = queries_for_one_send(client, make_user(organization), 200)

    writes_and_reads = [s for s in small if not s.startswith(("SAVEPOINT", "RELEASE"))]
    assert len(small) == len(large)
    # Loading the user; one read (the campaign, the contact, the top-up); one write (the read
    # gate, the claim and the insert: one statement on PostgreSQL, three on SQLite).
    most = 3 if db.engine.dialect.name == "postgresql" else 5
    assert len(writes_and_reads) <= most, writes_and_reads


def test_a_send_to_another_organizations_campaign_is_not_found_and_sends_nothing(
    client: FlaskClient, organization: Organization
) -> None:
    volunteer = make_user(organization)
    stranger = make_user(make_org())
    theirs = campaign_for(stranger, 3)
    ours = campaign_for(volunteer, 3)
    login(client, volunteer)
    csrf = token(client, ours)
    their_contact = db.session.scalars(select(Contact.id).where(Contact.campaign_id == theirs.id))
    contact = {"contact_id": next(iter(their_contact)), "idempotency_key": "k" * 24}

    status, _ = send_json(client, theirs, contact, csrf, want=3)

    assert status == 404
    assert outbound_to(theirs) == []


def test_a_send_in_a_paused_campaign_is_refused_and_offers_no_next_contacts(
    client: FlaskClient, volunteer: User
) -> None:
    campaign = campaign_for(volunteer, 5)
    login(client, volunteer)
    csrf = token(client, campaign)
    state = client.get(f"/texting/{campaign.id}/queue.json").get_json()
    campaign.status = CampaignStatus.PAUSED
    db.session.commit()

    status, answer = send_json(client, campaign, state["ready"][0], csrf, state["after"], 3)

    assert status == 409
    assert answer["next"] == [] and answer["after"] == state["after"]
    assert outbound_to(campaign) == []


def test_a_volunteer_sees_how_many_replies_wait_and_how_many_are_unread(
    client: FlaskClient, volunteer: User
) -> None:
    campaign = make_campaign(volunteer.organization)
    make_contact(
        campaign, texter_id=volunteer.id, status=ContactStatus.TEXTED, needs_reply=True, unread=2
    )
    db.session.commit()
    login(client, volunteer)

    page = client.get(f"/texting/{campaign.id}/conversations").get_data(as_text=True)
    send = client.get(f"/texting/{campaign.id}/send").get_data(as_text=True)

    assert "2 unread" in page and "needs reply" in page
    assert "1 waiting" in send
    unread = db.session.scalar(select(func.sum(Contact.unread)))
    assert unread == 2


def queries_for_a_thread(
    client: FlaskClient, organization_id: int, replies: int, questions: int
) -> list[str]:
    organization = db.session.get(Organization, organization_id)
    volunteer = make_user(organization)
    campaign = make_campaign(organization)
    for number in range(questions):
        make_question(campaign, text=f"Question {number}?")
    contact = make_conversation(
        campaign,
        volunteer,
        replies=tuple(f"Reply {number}" for number in range(replies)),
        needs_reply=True,
        unread=replies,
    )
    db.session.commit()
    login(client, volunteer)
    thread_url = f"/texting/conversations/{contact.id}"
    db.session.expunge_all()  # nothing left loaded from setting up: count what the page loads
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        page = client.get(thread_url)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    assert page.status_code == 200 and f"Reply {replies - 1}" in page.get_data(as_text=True)
    return [s for s in seen if not s.startswith(("SAVEPOINT", "RELEASE"))]


def test_a_thread_runs_the_same_queries_for_one_reply_or_twenty_and_for_one_question_or_five(
    client: FlaskClient, organization: Any
) -> None:
    organization_id = organization.id
    small = queries_for_a_thread(client, organization_id, replies=1, questions=1)
    large = queries_for_a_thread(client, organization_id, replies=20, questions=5)

    assert len(small) == len(large), large
    assert len(large) <= 12, large
