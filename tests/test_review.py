"""Message review: searching the organization's conversations, paging, and reassigning them."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from gotv.campaigns import review
from gotv.compliance import optouts
from gotv.db import db
from gotv.models import (
    AuditEvent,
    CampaignStatus,
    Contact,
    ContactStatus,
    ContactTag,
    Organization,
    Role,
    User,
    utcnow,
)
from tests.conftest import csrf_token, login
from tests.factories import (
    make_campaign,
    make_contact,
    make_conversation,
    make_message,
    make_org,
    make_tag,
    make_user,
)


@dataclass
class Known:
    """A known set of conversations, one per status, to check each filter against."""

    val: User
    sam: User
    contacts: dict[str, Contact]
    campaign_id: int
    archived_id: int


@pytest.fixture
def known(organization: Organization, organizer: User) -> Known:
    val = make_user(organization, name="Val")
    sam = make_user(organization, name="Sam")
    campaign = make_campaign(organization, name="Early vote")
    archived = make_campaign(organization, name="Primary", status=CampaignStatus.ARCHIVED)
    ana = make_conversation(campaign, val, ("Where do I vote?",), first_name="Ana")
    ana.needs_reply = True
    ben = make_conversation(campaign, val, ("Yes, 100%",), first_name="Ben")
    make_message(ben, body="Great, see you there")
    cy = make_conversation(campaign, sam, first_name="Cy", cell="+12125550303")
    make_message(cy, body="Reminder", error_code=30007)
    dee = make_conversation(campaign, None, ("STOP",), first_name="Dee")
    optouts.record_opt_out(organization.id, dee.cell, "inbound_keyword")
    eve = make_conversation(archived, sam, first_name="Eve")
    make_contact(campaign, first_name="Fay")  # never texted: not a conversation
    make_conversation(make_campaign(make_org()), first_name="Gus")  # another organization
    db.session.flush()
    return Known(
        val,
        sam,
        {"Ana": ana, "Ben": ben, "Cy": cy, "Dee": dee, "Eve": eve},
        campaign.id,
        archived.id,
    )


def names(organization_id: int, **filters: str) -> set[str]:
    return {c.name.split()[0] for c in review.page(organization_id, filters).conversations}


def test_the_review_lists_every_texted_conversation_of_the_organization_only(
    organization: Organization, known: Known
) -> None:
    assert names(organization.id) == {"Ana", "Ben", "Cy", "Dee", "Eve"}


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("needs_reply", {"Ana"}),
        ("replied", {"Ben"}),
        ("no_reply", {"Cy", "Eve"}),
        ("opted_out", {"Dee"}),
        ("closed", {"Eve"}),
    ],
)
def test_it_filters_by_conversation_status(
    organization: Organization, known: Known, status: str, expected: set[str]
) -> None:
    assert names(organization.id, status=status) == expected


def test_it_filters_by_campaign(organization: Organization, known: Known) -> None:
    assert names(organization.id, campaign=str(known.archived_id)) == {"Eve"}
    assert names(organization.id, campaign=str(known.campaign_id)) == {"Ana", "Ben", "Cy", "Dee"}


def test_it_filters_by_volunteer_including_nobody(organization: Organization, known: Known) -> None:
    assert names(organization.id, texter=str(known.val.id)) == {"Ana", "Ben"}
    assert names(organization.id, texter=str(known.sam.id)) == {"Cy", "Eve"}
    assert names(organization.id, texter=review.UNASSIGNED) == {"Dee"}


def test_it_filters_by_the_error_code_of_the_last_message(
    organization: Organization, known: Known
) -> None:
    assert names(organization.id, error="30007") == {"Cy"}
    assert names(organization.id, error="21610") == set()


def test_it_finds_a_person_by_name_or_number(organization: Organization, known: Known) -> None:
    assert names(organization.id, who="ana") == {"Ana"}
    assert names(organization.id, who="(212) 555-0303") == {"Cy"}
    assert names(organization.id, who="0303") == {"Cy"}


def test_it_finds_message_text_in_any_case(organization: Organization, known: Known) -> None:
    assert names(organization.id, text="WHERE do i") == {"Ana"}
    assert names(organization.id, text="see you") == {"Ben"}
    assert names(organization.id, text="100%") == {"Ben"}  # % is a character, not a wildcard
    assert names(organization.id, text="_") == set()


def test_it_filters_by_tag_of_the_organization_only(
    organization: Organization, known: Known
) -> None:
    ride = make_tag(organization, "Needs a ride")
    elsewhere = make_tag(make_org(), "Needs a ride")
    for name in ("Ana", "Eve"):
        db.session.add(ContactTag(contact_id=known.contacts[name].id, tag_id=ride.id))
    db.session.add(ContactTag(contact_id=known.contacts["Ben"].id, tag_id=elsewhere.id))
    db.session.flush()

    assert names(organization.id, tag=str(ride.id)) == {"Ana", "Eve"}
    assert names(organization.id, tag=str(elsewhere.id)) == set()


def test_filters_combine(organization: Organization, known: Known) -> None:
    assert names(organization.id, texter=str(known.sam.id), status="closed") == {"Eve"}


@pytest.mark.parametrize(
    "filters", [{"campaign": "abc"}, {"texter": "val"}, {"status": "bogus"}, {"error": "x"}]
)
def test_a_filter_value_it_cannot_read_matches_nothing(
    organization: Organization, known: Known, filters: dict[str, str]
) -> None:
    assert review.page(organization.id, filters).conversations == []


def test_pages_follow_each_other_newest_first_without_gaps_or_repeats(
    organization: Organization, volunteer: User
) -> None:
    campaign = make_campaign(organization)
    made = [make_conversation(campaign, volunteer).id for _ in range(2 * review.PAGE_SIZE + 7)]

    seen: list[int] = []
    before = None
    pages = 0
    while True:
        result = review.page(organization.id, {}, before)
        seen += [c.id for c in result.conversations]
        pages += 1
        if result.next_before is None:
            break
        before = result.next_before

    assert pages == 3
    assert seen == sorted(made, reverse=True)


# --- Reassigning -----------------------------------------------------------------------------


def holders(known: Known) -> dict[str, int | None]:
    db.session.expire_all()
    return {name: contact.texter_id for name, contact in known.contacts.items()}


def reassignments(organization: Organization) -> list[AuditEvent]:
    return list(
        db.session.scalars(
            select(AuditEvent).where(
                AuditEvent.organization_id == organization.id,
                AuditEvent.action == "conversations_reassigned",
            )
        )
    )


def test_reassigning_a_selection_moves_only_those_and_is_audited(
    organization: Organization, organizer: User, known: Known
) -> None:
    ids = [known.contacts["Ana"].id, known.contacts["Cy"].id]

    moved = review.reassign_selected(organization.id, ids, known.sam.id, organizer.id)

    assert moved == 2
    assert holders(known) == {
        "Ana": known.sam.id,
        "Ben": known.val.id,
        "Cy": known.sam.id,
        "Dee": None,
        "Eve": known.sam.id,
    }
    (entry,) = reassignments(organization)
    assert entry.user_id == organizer.id
    assert entry.details["count"] == 2
    assert entry.details["to_user_id"] == known.sam.id
    assert entry.details["contact_ids"] == sorted(ids)


def test_reassigning_everything_matching_a_filter_is_one_audited_update(
    organization: Organization, organizer: User, known: Known
) -> None:
    filters = {"texter": str(known.val.id)}

    moved = review.reassign_matching(organization.id, filters, None, organizer.id)

    assert moved == 2
    assert holders(known)["Ana"] is None and holders(known)["Ben"] is None
    assert holders(known)["Cy"] == known.sam.id
    (entry,) = reassignments(organization)
    assert entry.details["filters"] == filters
    assert entry.details["count"] == 2
    assert entry.details["to"] == "nobody (unassigned)"


def test_reassigning_by_message_text_and_status_moves_exactly_the_matches(
    organization: Organization, organizer: User, known: Known
) -> None:
    moved = review.reassign_matching(
        organization.id,
        {"status": "no_reply", "campaign": str(known.archived_id)},
        known.val.id,
        organizer.id,
    )

    assert moved == 1
    assert holders(known)["Eve"] == known.val.id


def test_it_refuses_to_reassign_to_a_user_of_another_organization(
    organization: Organization, organizer: User, known: Known, other_org_organizer: User
) -> None:
    before = holders(known)

    with pytest.raises(review.CannotReassign):
        review.reassign_matching(organization.id, {}, other_org_organizer.id, organizer.id)
    with pytest.raises(review.CannotReassign):
        review.reassign_selected(
            organization.id, [known.contacts["Ana"].id], other_org_organizer.id, organizer.id
        )

    assert holders(known) == before
    assert reassignments(organization) == []


def test_it_refuses_to_reassign_to_a_suspended_user(
    organization: Organization, organizer: User, known: Known
) -> None:
    known.sam.suspended_at = utcnow()
    db.session.flush()

    with pytest.raises(review.CannotReassign):
        review.reassign_selected(
            organization.id, [known.contacts["Ana"].id], known.sam.id, organizer.id
        )

    assert known.sam not in review.assignable_users(organization.id)
    assert holders(known)["Ana"] == known.val.id


def test_a_selection_never_reaches_another_organizations_contacts(
    organization: Organization, organizer: User, known: Known
) -> None:
    outsider = make_conversation(make_campaign(make_org()), first_name="Hal")
    untexted = make_contact(make_campaign(organization))

    moved = review.reassign_selected(
        organization.id, [outsider.id, untexted.id], known.val.id, organizer.id
    )

    assert moved == 0
    db.session.expire_all()
    assert outsider.texter_id is None and untexted.texter_id is None


# --- The pages -------------------------------------------------------------------------------


def test_the_review_page_shows_the_matching_conversations(
    client: FlaskClient, organizer: User, known: Known
) -> None:
    login(client, organizer)

    page = client.get("/review", query_string={"status": "needs_reply"}).text

    assert "Ana" in page and "Where do I vote?" in page
    assert "Ben" not in page
    assert f"/review/conversations/{known.contacts['Ana'].id}" in page


def test_an_organizer_reassigns_everything_matching_from_the_page(
    client: FlaskClient, organization: Organization, organizer: User, known: Known
) -> None:
    login(client, organizer)
    token = csrf_token(client.get("/review").text)

    response = client.post(
        "/review/reassign",
        data={
            "csrf_token": token,
            "to": str(known.val.id),
            "all_matching": "y",
            "match-texter": str(known.sam.id),
        },
        follow_redirects=True,
    )

    assert "Reassigned 2 conversations." in response.text
    assert holders(known)["Cy"] == known.val.id and holders(known)["Eve"] == known.val.id
    assert reassignments(organization)[0].details["filters"] == {"texter": str(known.sam.id)}


def test_an_organizer_reassigns_ticked_conversations_from_the_page(
    client: FlaskClient, organizer: User, known: Known
) -> None:
    login(client, organizer)
    token = csrf_token(client.get("/review").text)
    ana, dee = known.contacts["Ana"].id, known.contacts["Dee"].id

    response = client.post(
        "/review/reassign",
        data={"csrf_token": token, "to": str(known.sam.id), "contact": [str(ana), str(dee)]},
        follow_redirects=True,
    )

    assert "Reassigned 2 conversations." in response.text
    assert holders(known)["Ana"] == holders(known)["Dee"] == known.sam.id


def test_the_page_refuses_a_volunteer_of_another_organization(
    client: FlaskClient, organizer: User, known: Known, other_org_organizer: User
) -> None:
    login(client, organizer)
    token = csrf_token(client.get("/review").text)

    response = client.post(
        "/review/reassign",
        data={"csrf_token": token, "to": str(other_org_organizer.id), "all_matching": "y"},
        follow_redirects=True,
    )

    assert "Choose a volunteer of your organization." in response.text
    assert holders(known)["Ana"] == known.val.id


def test_an_organizer_reads_a_thread_and_reassigns_it(
    client: FlaskClient, organization: Organization, organizer: User, known: Known
) -> None:
    login(client, organizer)
    ana = known.contacts["Ana"]

    thread = client.get(f"/review/conversations/{ana.id}").text
    response = client.post(
        f"/review/conversations/{ana.id}/reassign",
        data={"csrf_token": csrf_token(thread), "to": str(known.sam.id)},
        follow_redirects=True,
    )

    assert "Where do I vote?" in thread and "Val" in thread
    assert f"/texting/conversations/{ana.id}" in thread  # reply as an organizer
    assert "Reassigned." in response.text
    assert holders(known)["Ana"] == known.sam.id
    assert reassignments(organization)[0].details["contact_ids"] == [ana.id]


def test_reassigning_a_contact_never_texted_says_so(
    client: FlaskClient, organization: Organization, organizer: User, volunteer: User
) -> None:
    contact = make_contact(make_campaign(organization))
    login(client, organizer)
    page = client.get(f"/review/conversations/{contact.id}").text

    response = client.post(
        f"/review/conversations/{contact.id}/reassign",
        data={"csrf_token": csrf_token(page), "to": str(volunteer.id)},
        follow_redirects=True,
    )

    assert "Only conversations" in response.text
    db.session.expire_all()
    assert contact.texter_id is None and contact.status == ContactStatus.NEW


def test_a_texter_may_not_review(client: FlaskClient, volunteer: User) -> None:
    login(client, volunteer)

    assert client.get("/review").status_code == 403


def test_organizers_of_the_organization_can_be_handed_conversations_too(
    organization: Organization, organizer: User
) -> None:
    admin = make_user(organization, role=Role.ADMIN)

    assert admin in review.assignable_users(organization.id)
