"""Survey questions and answers, canned responses and tags: the rules, the organizer's pages,
the volunteer's conversation tools, the dashboard's survey counts, and who may do what."""

from __future__ import annotations

import io
import json

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy import func, select

from gotv.campaigns import content, dashboard
from gotv.db import db
from gotv.models import (
    AuditEvent,
    Campaign,
    CannedResponse,
    Contact,
    ContactStatus,
    ContactTag,
    Organization,
    Role,
    SurveyAnswer,
    SurveyChoice,
    SurveyQuestion,
    Tag,
    User,
)
from tests.conftest import csrf_token, login
from tests.factories import (
    make_campaign,
    make_canned,
    make_contact,
    make_org,
    make_question,
    make_tag,
    make_user,
)

JSON = {"Accept": "application/json"}


@pytest.fixture
def campaign(organization: Organization) -> Campaign:
    return make_campaign(organization, custom_field_names=["polling_place"])


@pytest.fixture
def contact(campaign: Campaign, volunteer: User) -> Contact:
    return make_contact(
        campaign,
        first_name="Ana",
        last_name="Peña",
        texter_id=volunteer.id,
        custom_fields={"polling_place": "the library"},
    )


@pytest.fixture
def question(campaign: Campaign) -> SurveyQuestion:
    return make_question(campaign, "Will you vote?", ("Yes", "No", "Maybe"))


def choice(question: SurveyQuestion, label: str) -> SurveyChoice:
    return next(c for c in question.choices if c.label == label)


def token(client: FlaskClient, page: str = "/texting") -> str:
    return csrf_token(client.get(page).get_data(as_text=True))


def actions() -> list[str]:
    return list(db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


# --- Survey answers ------------------------------------------------------------------------


def test_a_new_answer_replaces_the_contacts_old_one(
    contact: Contact, question: SurveyQuestion, volunteer: User, organizer: User
) -> None:
    content.record_answer(contact, question.id, choice(question, "Maybe").id, volunteer)
    content.record_answer(contact, question.id, choice(question, "Yes").id, organizer)

    answer = db.session.scalars(select(SurveyAnswer)).one()
    assert (answer.choice.label, answer.user_id) == ("Yes", organizer.id)
    assert actions() == ["survey_answer_recorded", "survey_answer_recorded"]


def test_the_database_holds_one_answer_per_contact_and_question(
    contact: Contact, question: SurveyQuestion
) -> None:
    for label in ("Yes", "No"):
        db.session.add(
            SurveyAnswer(
                contact_id=contact.id, question_id=question.id, choice_id=choice(question, label).id
            )
        )

    with pytest.raises(sa.exc.IntegrityError):
        db.session.flush()


def test_an_answer_without_a_choice_clears_it(
    contact: Contact, question: SurveyQuestion, volunteer: User
) -> None:
    content.record_answer(contact, question.id, choice(question, "No").id, volunteer)

    content.record_answer(contact, question.id, None, volunteer)

    assert content.current_answers(contact) == {}


def test_it_refuses_a_choice_of_another_question(
    campaign: Campaign, contact: Contact, question: SurveyQuestion, volunteer: User
) -> None:
    other = make_question(campaign, "Need a ride?", ("Yes", "No"))

    with pytest.raises(content.ContentError):
        content.record_answer(contact, question.id, choice(other, "Yes").id, volunteer)


def test_it_refuses_a_question_of_another_campaign(
    organization: Organization, contact: Contact, volunteer: User
) -> None:
    elsewhere = make_question(make_campaign(organization))

    with pytest.raises(content.ContentError, match="not part of this campaign"):
        content.record_answer(contact, elsewhere.id, elsewhere.choices[0].id, volunteer)


def test_deleting_a_question_nobody_answered_deletes_it_and_its_choices(
    question: SurveyQuestion, organizer: User
) -> None:
    assert content.delete_question(question, organizer) is True
    db.session.flush()

    assert db.session.scalar(select(func.count()).select_from(SurveyQuestion)) == 0
    assert db.session.scalar(select(func.count()).select_from(SurveyChoice)) == 0


def test_deleting_an_answered_question_retires_it_and_keeps_its_answers(
    campaign: Campaign, contact: Contact, question: SurveyQuestion, organizer: User
) -> None:
    content.record_answer(contact, question.id, choice(question, "Yes").id, organizer)

    assert content.delete_question(question, organizer) is False

    assert question.retired_at is not None
    assert content.questions(campaign) == []
    assert content.current_answers(contact) == {question.id: choice(question, "Yes").id}
    with pytest.raises(content.ContentError, match="retired"):
        content.record_answer(contact, question.id, choice(question, "No").id, organizer)


def test_a_choice_somebody_chose_cannot_be_deleted(
    contact: Contact, question: SurveyQuestion, organizer: User
) -> None:
    content.record_answer(contact, question.id, choice(question, "Maybe").id, organizer)

    with pytest.raises(content.ContentError, match="1 contact chose “Maybe”"):
        content.delete_choice(choice(question, "Maybe"), organizer)
    content.delete_choice(choice(question, "No"), organizer)
    db.session.flush()

    assert [c.label for c in question.choices] == ["Yes", "Maybe"]


def test_questions_and_choices_move_up_and_down(
    campaign: Campaign, question: SurveyQuestion, organizer: User
) -> None:
    second = make_question(campaign, "Need a ride?")

    content.move_question(second, -1, organizer)
    content.move_choice(choice(question, "Maybe"), -1, organizer)
    content.move_question(second, -1, organizer)  # already first: nothing moves
    db.session.flush()
    db.session.expire_all()

    assert [q.text for q in content.questions(campaign)] == ["Need a ride?", "Will you vote?"]
    assert [c.label for c in question.choices] == ["Yes", "Maybe", "No"]


def test_a_question_needs_two_distinct_choices(campaign: Campaign, organizer: User) -> None:
    with pytest.raises(content.ContentError, match="at least two choices"):
        content.add_question(campaign, "Will you vote?", "Yes\nyes\n\n", organizer)


# --- Tags ----------------------------------------------------------------------------------


def test_tag_names_are_unique_ignoring_case_and_spaces(
    organization: Organization, organizer: User
) -> None:
    tag = content.create_tag(organization.id, "Needs a ride", organizer)

    with pytest.raises(content.ContentError, match="already a tag"):
        content.create_tag(organization.id, "  NEEDS   a RIDE ", organizer)
    assert content.tag_named(organization.id, "needs a ride", organizer) is tag
    assert content.create_tag(make_org().id, "Needs a ride", organizer).name == "Needs a ride"


def test_the_database_refuses_a_second_tag_differing_only_in_case(
    organization: Organization,
) -> None:
    make_tag(organization, "Wrong number")
    db.session.add(Tag(organization_id=organization.id, name="WRONG NUMBER"))

    with pytest.raises(sa.exc.IntegrityError):
        db.session.flush()


def test_a_contact_carries_a_tag_once(
    organization: Organization, contact: Contact, volunteer: User
) -> None:
    tag = make_tag(organization)

    assert content.tag_contact(contact, tag, volunteer) is True
    assert content.tag_contact(contact, tag, volunteer) is False

    tagged = db.session.scalars(select(ContactTag)).one()
    assert (tagged.tag_id, tagged.user_id) == (tag.id, volunteer.id)
    assert content.tags_by_contact(db.session, [contact.id]) == {contact.id: ["Needs a ride"]}


def test_deleting_a_tag_takes_it_off_its_contacts(
    organization: Organization, contact: Contact, organizer: User
) -> None:
    tag = make_tag(organization)
    content.tag_contact(contact, tag, organizer)

    assert content.delete_tag(tag, organizer) == 1
    db.session.flush()

    assert db.session.scalar(select(func.count()).select_from(ContactTag)) == 0


# --- Canned responses ----------------------------------------------------------------------


def test_a_canned_response_is_rendered_like_the_script(
    campaign: Campaign, contact: Contact, volunteer: User
) -> None:
    response = make_canned(
        campaign, body="Hi {first_name}, it's {texter_name}: vote at {polling_place}."
    )

    rendered = content.canned_texts(campaign, contact, volunteer)

    assert rendered == [(response.title, "Hi Ana, it's Val: vote at the library.")]


def test_a_canned_response_with_an_unknown_merge_field_is_refused_by_name(
    campaign: Campaign, organizer: User
) -> None:
    with pytest.raises(content.ContentError, match=r"Unknown merge field: \{precinct\}"):
        content.add_canned(campaign, "Where", "Vote at {precinct}, {first_name}", organizer)


def test_a_canned_csv_adds_the_good_rows_and_reports_the_bad_ones_by_line(
    client: FlaskClient, organizer: User, campaign: Campaign
) -> None:
    login(client, organizer)
    csv = (
        b"Title,Body\n"
        b'Where,"Vote at {polling_place},\n{first_name}"\n'  # lines 2-3
        b",No title\n"  # line 4
        b"Precinct,Your precinct is {precinct}\n"  # line 5
        b"\n"
        b"Thanks,Thank you {first_name}!\n"  # line 7
    )

    page = client.post(
        f"/campaigns/{campaign.id}/canned/import",
        data={
            "csrf_token": token(client, f"/campaigns/{campaign.id}"),
            "canned_file": (io.BytesIO(csv), "canned.csv"),
        },
        content_type="multipart/form-data",
        follow_redirects=True,
    ).get_data(as_text=True)

    titles = db.session.scalars(select(CannedResponse.title).order_by(CannedResponse.title))
    assert list(titles) == ["Thanks", "Where"]
    assert "2 canned responses added." in page
    assert "Line 4 not imported: The title cannot be empty." in page
    assert "Line 5 not imported: Unknown merge field: {precinct}" in page
    assert actions().count("canned_response_added") == 2


@pytest.mark.parametrize(
    ("csv", "problem"),
    [
        # The quote swallowed line 3 into line 2's body, silently.
        (b'title,body\nWhere,"Vote at {polling_place}\nThanks,Thank you!\n', "unexpected end"),
        (b"title,body\nLong," + b"x" * 200_000 + b"\nThanks,Thank you!\n", "field limit"),  # 500
    ],
)
def test_a_canned_csv_row_that_cannot_be_read_is_named_and_nothing_is_imported(
    client: FlaskClient, organizer: User, campaign: Campaign, csv: bytes, problem: str
) -> None:
    login(client, organizer)

    page = client.post(
        f"/campaigns/{campaign.id}/canned/import",
        data={
            "csrf_token": token(client, f"/campaigns/{campaign.id}"),
            "canned_file": (io.BytesIO(csv), "canned.csv"),
        },
        content_type="multipart/form-data",
        follow_redirects=True,
    ).get_data(as_text=True)

    assert "Line 2 cannot be read as CSV" in page and problem in page
    assert db.session.scalar(select(func.count()).select_from(CannedResponse)) == 0


def test_a_nul_character_in_a_canned_csv_is_dropped(
    client: FlaskClient, organizer: User, campaign: Campaign
) -> None:
    """PostgreSQL cannot store one in text: kept, the import was a 500 there."""
    login(client, organizer)

    client.post(
        f"/campaigns/{campaign.id}/canned/import",
        data={
            "csrf_token": token(client, f"/campaigns/{campaign.id}"),
            "canned_file": (io.BytesIO(b"title,body\nThanks,Thank\x00 you!\n"), "canned.csv"),
        },
        content_type="multipart/form-data",
    )

    assert db.session.scalars(select(CannedResponse.body)).all() == ["Thank you!"]


def test_a_canned_csv_without_title_and_body_columns_is_refused(
    client: FlaskClient, organizer: User, campaign: Campaign
) -> None:
    login(client, organizer)

    page = client.post(
        f"/campaigns/{campaign.id}/canned/import",
        data={
            "csrf_token": token(client, f"/campaigns/{campaign.id}"),
            "canned_file": (io.BytesIO(b"name,text\nA,B\n"), "canned.csv"),
        },
        content_type="multipart/form-data",
        follow_redirects=True,
    ).get_data(as_text=True)

    assert "needs a header row with the columns title and body" in page
    assert db.session.scalar(select(func.count()).select_from(CannedResponse)) == 0


# --- The organizer's pages -----------------------------------------------------------------


def test_an_organizer_builds_a_survey_and_canned_responses_on_the_campaign_page(
    client: FlaskClient, organizer: User, campaign: Campaign
) -> None:
    login(client, organizer)
    csrf = token(client, f"/campaigns/{campaign.id}")

    client.post(
        f"/campaigns/{campaign.id}/questions",
        data={"csrf_token": csrf, "text": "Will you vote?", "choices": "Yes\r\nNo\r\n"},
    )
    question = db.session.scalars(select(SurveyQuestion)).one()
    client.post(
        f"/campaigns/{campaign.id}/questions/{question.id}/choices",
        data={"csrf_token": csrf, "label": "Already voted"},
    )
    client.post(
        f"/campaigns/{campaign.id}/canned",
        data={"csrf_token": csrf, "title": "Where", "body": "At {polling_place}"},
    )
    refused = client.post(
        f"/campaigns/{campaign.id}/canned",
        data={"csrf_token": csrf, "title": "Bad", "body": "At {precinct}"},
        follow_redirects=True,
    )
    page = client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)

    assert "Unknown merge field: {precinct}" in refused.get_data(as_text=True)
    assert "Will you vote?" in page and "Already voted" in page and "At {polling_place}" in page
    assert actions() == ["survey_question_added", "survey_choice_added", "canned_response_added"]


def test_the_campaign_page_previews_the_script_for_real_contacts(
    client: FlaskClient, organizer: User, campaign: Campaign, contact: Contact
) -> None:
    login(client, organizer)

    page = client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)

    assert "Hi Ana, it&#39;s Olivia. Will you vote on Tuesday?" in page
    assert "builder.js" in page


def test_the_preview_renders_a_draft_for_three_contacts_and_names_unknown_fields(
    client: FlaskClient, organizer: User, campaign: Campaign
) -> None:
    for name in ("Ana", "Ben", "Cy", "Di"):
        make_contact(campaign, first_name=name, custom_fields={"polling_place": "City Hall"})
    login(client, organizer)

    response = client.post(
        f"/campaigns/{campaign.id}/script/preview",
        data={
            "csrf_token": token(client, f"/campaigns/{campaign.id}"),
            "script": "{first_name}: {polling_place} {ward}",
        },
        headers=JSON,
    )

    result = response.get_json()
    assert result["unknown"] == ["ward"]
    assert [p["text"] for p in result["previews"]] == [
        "Ana: City Hall {ward}",
        "Ben: City Hall {ward}",
        "Cy: City Hall {ward}",
    ]
    assert result["previews"][0]["segments"] == 1
    assert db.session.get(Campaign, campaign.id).script.startswith("Hi {first_name}")


def test_an_organizer_manages_the_organizations_tags(
    client: FlaskClient, organizer: User, organization: Organization
) -> None:
    login(client, organizer)
    csrf = token(client, "/settings/tags")

    client.post("/settings/tags", data={"csrf_token": csrf, "name": "Needs a ride"})
    again = client.post(
        "/settings/tags", data={"csrf_token": csrf, "name": "needs A ride"}, follow_redirects=True
    )
    tag = db.session.scalars(select(Tag)).one()
    client.post(f"/settings/tags/{tag.id}", data={"csrf_token": csrf, "name": "Ride"})

    assert "There is already a tag" in again.get_data(as_text=True)
    assert "Ride" in client.get("/settings/tags").get_data(as_text=True)
    client.post(f"/settings/tags/{tag.id}/delete", data={"csrf_token": csrf})
    assert db.session.scalars(select(Tag)).first() is None
    assert actions() == ["tag_created", "tag_renamed", "tag_deleted"]


# --- The volunteer's tools -----------------------------------------------------------------


def test_the_conversation_shows_the_contacts_tools(
    client: FlaskClient,
    organization: Organization,
    campaign: Campaign,
    contact: Contact,
    question: SurveyQuestion,
    volunteer: User,
) -> None:
    make_canned(campaign, title="Where", body="{first_name}, vote at {polling_place}")
    content.record_answer(contact, question.id, choice(question, "Maybe").id, volunteer)
    content.tag_contact(contact, make_tag(organization, "Needs a ride"), volunteer)
    make_tag(organization, "Wrong number")
    login(client, volunteer)

    page = client.get(f"/texting/conversations/{contact.id}").get_data(as_text=True)

    assert 'data-canned-body="Ana, vote at the library"' in page
    maybe = choice(question, "Maybe").id
    assert f'id="answer-{maybe}" name="choice_id" value="{maybe}" checked' in page
    assert 'aria-label="Remove tag Needs a ride"' in page
    assert '<option value="Wrong number">' in page
    assert "contact_tools.js" in page


def test_a_volunteer_records_an_answer_and_gets_json(
    client: FlaskClient, contact: Contact, question: SurveyQuestion, volunteer: User
) -> None:
    login(client, volunteer)
    yes = choice(question, "Yes").id

    response = client.post(
        f"/texting/conversations/{contact.id}/answers",
        data={"csrf_token": token(client), "question_id": question.id, "choice_id": yes},
        headers=JSON,
    )

    assert response.status_code == 200
    assert response.get_json()["answers"] == {str(question.id): yes}
    answer = db.session.scalars(select(SurveyAnswer)).one()
    assert (answer.user_id, answer.choice_id) == (volunteer.id, yes)


def test_a_volunteer_tags_a_contact_with_a_new_tag_then_removes_it(
    client: FlaskClient, contact: Contact, volunteer: User
) -> None:
    login(client, volunteer)
    csrf = token(client)

    added = client.post(
        f"/texting/conversations/{contact.id}/tags", data={"csrf_token": csrf, "name": "Spanish"}
    )
    tag = db.session.scalars(select(Tag)).one()
    removed = client.post(
        f"/texting/conversations/{contact.id}/tags/{tag.id}/remove",
        data={"csrf_token": csrf},
        headers=JSON,
    )

    assert added.status_code == 302
    assert added.headers["Location"] == f"/texting/conversations/{contact.id}"
    assert removed.get_json()["tags"] == []
    assert actions() == ["tag_created", "contact_tagged", "contact_untagged"]


def test_a_texter_cannot_answer_or_tag_for_another_texters_contact(
    client: FlaskClient,
    organization: Organization,
    contact: Contact,
    question: SurveyQuestion,
) -> None:
    login(client, make_user(organization, role=Role.TEXTER))
    csrf = token(client)

    answered = client.post(
        f"/texting/conversations/{contact.id}/answers",
        data={"csrf_token": csrf, "question_id": question.id, "choice_id": question.choices[0].id},
        headers=JSON,
    )
    tagged = client.post(
        f"/texting/conversations/{contact.id}/tags", data={"csrf_token": csrf, "name": "X"}
    )

    assert (answered.status_code, tagged.status_code) == (404, 404)
    assert db.session.scalars(select(SurveyAnswer)).first() is None


def test_an_organizer_of_another_organization_cannot_tag_or_read_its_tools(
    client: FlaskClient,
    organization: Organization,
    other_org_organizer: User,
    contact: Contact,
    campaign: Campaign,
) -> None:
    tag = make_tag(organization)
    content.tag_contact(contact, tag, other_org_organizer)
    login(client, other_org_organizer)
    csrf = token(client, "/campaigns")

    removed = client.post(
        f"/texting/conversations/{contact.id}/tags/{tag.id}/remove", data={"csrf_token": csrf}
    )
    preview = client.post(
        f"/campaigns/{campaign.id}/script/preview", data={"csrf_token": csrf, "script": "x"}
    )

    assert (removed.status_code, preview.status_code) == (404, 404)
    assert db.session.scalar(select(func.count()).select_from(ContactTag)) == 1


def test_a_tag_of_another_organization_cannot_be_put_on_or_taken_off_a_contact(
    client: FlaskClient, organizer: User, contact: Contact
) -> None:
    foreign = make_tag(make_org())
    login(client, organizer)

    response = client.post(
        f"/texting/conversations/{contact.id}/tags/{foreign.id}/remove",
        data={"csrf_token": token(client)},
    )

    assert response.status_code == 404
    with pytest.raises(content.ContentError):
        content.tag_contact(contact, foreign, organizer)


def test_a_texter_cannot_edit_campaign_content(
    client: FlaskClient, volunteer: User, campaign: Campaign, question: SurveyQuestion
) -> None:
    response_ = make_canned(campaign)
    login(client, volunteer)
    csrf = token(client)

    statuses = [
        client.post(path, data={"csrf_token": csrf, **form}).status_code
        for path, form in (
            (f"/campaigns/{campaign.id}/questions", {"text": "Q", "choices": "A\nB"}),
            (f"/campaigns/{campaign.id}/questions/{question.id}/delete", {}),
            (f"/campaigns/{campaign.id}/canned/{response_.id}", {"title": "T", "body": "B"}),
            ("/settings/tags", {"name": "T"}),
        )
    ]

    assert statuses == [403, 403, 403, 403]
    assert db.session.scalar(select(func.count()).select_from(SurveyQuestion)) == 1


# --- The dashboard -------------------------------------------------------------------------


def test_the_dashboard_counts_each_questions_answers_per_choice(
    client: FlaskClient, organizer: User, campaign: Campaign, question: SurveyQuestion
) -> None:
    picks = ["Yes", "Yes", "Yes", "No"]
    for label in picks:
        content.record_answer(
            make_contact(campaign), question.id, choice(question, label).id, organizer
        )
    retired = make_question(campaign, "Old question?", ("A", "B"))
    content.record_answer(make_contact(campaign), retired.id, retired.choices[1].id, organizer)
    content.delete_question(retired, organizer)
    elsewhere = make_question(make_campaign(campaign.organization), "Elsewhere?", ("Yes", "No"))
    content.record_answer(
        make_contact(elsewhere.campaign), elsewhere.id, elsewhere.choices[0].id, organizer
    )
    login(client, organizer)

    board = dashboard.build(db.session, campaign)
    page = client.get(f"/campaigns/{campaign.id}/dashboard").get_data(as_text=True)

    assert [(r.text, r.retired, r.total) for r in board.survey] == [
        ("Will you vote?", False, 4),
        ("Old question?", True, 1),
    ]
    assert [(c.label, c.count) for c in board.survey[0].choices] == [
        ("Yes", 3),
        ("No", 1),
        ("Maybe", 0),
    ]
    assert "<strong>Will you vote?</strong>" in page and "4 answers" in page
    assert "Yes: 3 (75%)" in page  # the bar's label
    assert "<td>Yes</td><td>3</td><td>75%</td>" in page  # the chart's table, for screen readers
    assert "Elsewhere?" not in page


def test_survey_answers_and_tags_are_readable_for_exports(
    organization: Organization, contact: Contact, question: SurveyQuestion, volunteer: User
) -> None:
    content.record_answer(contact, question.id, choice(question, "No").id, volunteer)
    content.tag_contact(contact, make_tag(organization, "Spanish"), volunteer)
    tag = db.session.scalars(select(Tag)).one()

    tagged = db.session.scalars(select(Contact.id).where(content.tagged_with(tag.id))).all()
    said_no = db.session.scalars(
        select(Contact.id).where(content.answered_with(choice(question, "No").id))
    ).all()

    assert tagged == said_no == [contact.id]
    assert content.answers_by_contact(db.session, [contact.id]) == {contact.id: {question.id: "No"}}
    assert json.dumps(content.tags_by_contact(db.session, [contact.id])) == json.dumps(
        {contact.id: ["Spanish"]}
    )


def test_moving_a_retired_question_changes_nothing(
    client: FlaskClient, organizer: User, campaign: Campaign, contact: Contact
) -> None:
    retired = make_question(campaign)
    content.record_answer(contact, retired.id, retired.choices[0].id, organizer)
    content.delete_question(retired, organizer)
    login(client, organizer)

    response = client.post(
        f"/campaigns/{campaign.id}/questions/{retired.id}/move",
        data={"csrf_token": token(client, "/campaigns"), "direction": "up"},
    )

    assert response.status_code == 302


def test_the_preview_uses_texted_contacts_when_too_few_are_left(
    client: FlaskClient, organizer: User, campaign: Campaign
) -> None:
    make_contact(campaign, first_name="Texted", status=ContactStatus.TEXTED)
    make_contact(campaign, first_name="Fresh")
    login(client, organizer)

    result = client.post(
        f"/campaigns/{campaign.id}/script/preview",
        data={"csrf_token": token(client, "/campaigns"), "script": "Hi {first_name}"},
    ).get_json()

    assert [p["text"] for p in result["previews"]] == ["Hi Fresh", "Hi Texted"]
